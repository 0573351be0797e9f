/**
 * The automatic layer choice for one viewer: how many steps below the top layer it should be. A viewer that
 * negotiated transport-wide feedback is judged by its bandwidth estimate ({@link LayerSelector.onEstimate});
 * any other by its receiver reports ({@link LayerSelector.onReport}), as follows. A link that cannot carry the layer shows as loss (a full queue drops) or as a round-trip
 * time well above the path's own in two reports in a row (a queue filling); either steps the viewer down
 * at once, again after {@link DOWN_HOLD_MS} if it persists. Going up is a trial: after {@link UP_HOLD_MS} without congestion the
 * viewer tries the next layer; congestion soon after a trial doubles the wait before the next one (up to
 * {@link MAX_UP_HOLD_MS}), a trial that holds resets it. Pure: the caller passes `now` (ms).
 */

/** Fraction of packets lost in a report interval that counts as congestion. */
export const LOSS_CONGESTED = 0.08;
/**
 * Round-trip time above the path's lowest by this much (ms), and at least double it, in two reports in a
 * row counts as congestion (one such report is often a stall of either end, not a queue).
 */
export const QUEUE_RTT_MS = 150;
/** The least time between two steps down (the first step's effect must reach the reports). */
export const DOWN_HOLD_MS = 1500;
/** Time without congestion before trying a higher layer. */
export const UP_HOLD_MS = 5000;
/** The longest wait between trials after failed ones. */
export const MAX_UP_HOLD_MS = 10_000;
/** A layer fits an estimate when its rate times this is below it. */
export const HEADROOM = 1.15;
/** How long a probe for the next layer's rate is sent (ms), and how long its feedback may take after. */
export const PROBE_MS = 800;
const PROBE_FEEDBACK_MS = 400;
/** A probe succeeds when the viewer received at least this share of the next layer's rate meanwhile. */
const PROBE_REACHED = 0.85;
/** Congestion within this time after a step up means the step failed. */
const TRIAL_MS = 4000;
/** The path's lowest round-trip time is taken over this window. */
const RTT_WINDOW_MS = 30_000;

/** One viewer's automatic layer level. */
export class LayerSelector {
  /** Steps below the top layer (0 = top). */
  level = 0;
  #lastDownAt = -Infinity;
  #lastUpAt = -Infinity;
  #lastCongestedAt = -Infinity;
  #upHoldMs = UP_HOLD_MS;
  #minRtt = Infinity;
  #minRttAt = -Infinity;
  #highRttReports = 0;
  /** Congestion events seen (for stats and tests). */
  congestions = 0;
  /**
   * While a probe runs: the extra rate (bit/s) to send the viewer on top of its layer, as redundant
   * copies, to learn whether the next layer would fit without switching to it; 0 otherwise.
   */
  probeBps = 0;
  /** Probes that led up, and that met congestion or fell short (for stats and tests). */
  probesPassed = 0;
  probesFailed = 0;
  #probeEndsAt = -Infinity;
  #probeTargetBps = 0;
  #probeReceivedBps = 0;

  constructor(now: number) {
    // A fresh viewer is not tried higher before it has been watched for a while.
    this.#lastCongestedAt = now - UP_HOLD_MS / 2;
  }

  /**
   * Takes one receiver report (`fractionLost` 0..1, `rttMs` when known) and returns the level; `levels` is
   * how many layers are being sent.
   */
  onReport(fractionLost: number, rttMs: number | undefined, levels: number, now: number): number {
    const maxLevel = Math.max(0, levels - 1);
    if (this.level > maxLevel) this.level = maxLevel;
    let queueing = false;
    if (rttMs !== undefined) {
      if (rttMs <= this.#minRtt || now - this.#minRttAt > RTT_WINDOW_MS) {
        this.#minRtt = rttMs;
        this.#minRttAt = now;
      }
      const high = rttMs > this.#minRtt + QUEUE_RTT_MS && rttMs > 2 * this.#minRtt;
      this.#highRttReports = high ? this.#highRttReports + 1 : 0;
      queueing = this.#highRttReports >= 2;
    }
    if (fractionLost >= LOSS_CONGESTED || queueing) {
      this.congestions++;
      this.#lastCongestedAt = now;
      if (now - this.#lastUpAt < TRIAL_MS) this.#upHoldMs = Math.min(this.#upHoldMs * 2, MAX_UP_HOLD_MS);
      if (this.level < maxLevel && now - this.#lastDownAt >= DOWN_HOLD_MS) {
        this.level++;
        this.#lastDownAt = now;
      }
      return this.level;
    }
    if (now - this.#lastUpAt >= TRIAL_MS && this.#lastUpAt > this.#lastCongestedAt) {
      this.#upHoldMs = UP_HOLD_MS;
    }
    if (
      this.level > 0 && now - this.#lastCongestedAt >= this.#upHoldMs &&
      now - this.#lastDownAt >= this.#upHoldMs &&
      now - this.#lastUpAt >= this.#upHoldMs
    ) {
      this.level--;
      this.#lastUpAt = now;
    }
    return this.level;
  }

  /**
   * Takes the viewer's bandwidth estimate after a transport feedback and returns the level. `congestion`:
   * the estimator just cut it (a growing queue or loss); `receivedBps`: what arrived lately; `ladderBps`:
   * the sent layers' rates, best first; `canProbe`: the forwarder can send probe copies (RTX negotiated).
   * Congestion steps down at once to the best layer that fits the estimate (at least one step), again after
   * {@link DOWN_HOLD_MS} if it persists. Going up waits for calm as with reports; then, when it can, it
   * first probes at the next layer's rate for {@link PROBE_MS} and goes up only when that passed cleanly.
   */
  onEstimate(
    estimate: { estimateBps: number; receivedBps: number; congestion: boolean },
    ladderBps: readonly number[],
    canProbe: boolean,
    now: number,
  ): number {
    const maxLevel = Math.max(0, ladderBps.length - 1);
    if (this.level > maxLevel) this.level = maxLevel;
    const probing = this.#probeTargetBps > 0;
    if (probing && now < this.#probeEndsAt) {
      if (estimate.receivedBps > this.#probeReceivedBps) this.#probeReceivedBps = estimate.receivedBps;
    }
    if (probing && now >= this.#probeEndsAt - PROBE_FEEDBACK_MS) this.probeBps = 0;
    if (estimate.congestion) {
      this.congestions++;
      this.#lastCongestedAt = now;
      if (now - this.#lastUpAt < TRIAL_MS) this.#upHoldMs = Math.min(this.#upHoldMs * 2, MAX_UP_HOLD_MS);
      const fits = fittingLevel(estimate.estimateBps, ladderBps);
      if (probing) {
        // The probe itself filled the queue: it ends; the layer stays unless the estimate rules it out.
        this.#endProbe(false);
        if (fits <= this.level) return this.level;
      }
      if (this.level < maxLevel && now - this.#lastDownAt >= DOWN_HOLD_MS) {
        this.level = Math.min(maxLevel, Math.max(this.level + 1, fits));
        this.#lastDownAt = now;
      }
      return this.level;
    }
    if (probing) {
      if (now < this.#probeEndsAt) return this.level;
      const passed = this.#probeReceivedBps >= PROBE_REACHED * this.#probeTargetBps;
      this.#endProbe(passed);
      if (passed && this.level > 0) {
        this.level--;
        this.#lastUpAt = now;
      } else {
        this.#lastCongestedAt = now;
        this.#upHoldMs = Math.min(this.#upHoldMs * 2, MAX_UP_HOLD_MS);
      }
      return this.level;
    }
    if (now - this.#lastUpAt >= TRIAL_MS && this.#lastUpAt > this.#lastCongestedAt) {
      this.#upHoldMs = UP_HOLD_MS;
    }
    if (
      this.level > 0 && now - this.#lastCongestedAt >= this.#upHoldMs &&
      now - this.#lastDownAt >= this.#upHoldMs &&
      now - this.#lastUpAt >= this.#upHoldMs
    ) {
      const next = ladderBps[this.level - 1];
      const current = ladderBps[this.level];
      if (canProbe && next > current && estimate.estimateBps < HEADROOM * next) {
        this.probeBps = next - current;
        this.#probeTargetBps = next;
        this.#probeReceivedBps = 0;
        this.#probeEndsAt = now + PROBE_MS + PROBE_FEEDBACK_MS;
        this.#lastUpAt = now;
        return this.level;
      }
      this.level--;
      this.#lastUpAt = now;
    }
    return this.level;
  }

  #endProbe(passed: boolean): void {
    this.probeBps = 0;
    this.#probeTargetBps = 0;
    this.#probeEndsAt = -Infinity;
    if (passed) this.probesPassed++;
    else this.probesFailed++;
  }

  /** How long the viewer waits before trying a higher layer now (ms). */
  get upHoldMs(): number {
    return this.#upHoldMs;
  }
}

/** The best level (index into `ladderBps`, best first) whose rate fits `estimateBps`; the last when none does. */
function fittingLevel(estimateBps: number, ladderBps: readonly number[]): number {
  for (let i = 0; i < ladderBps.length; i++) if (ladderBps[i] * HEADROOM <= estimateBps) return i;
  return Math.max(0, ladderBps.length - 1);
}
