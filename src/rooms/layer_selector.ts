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
/**
 * With an estimate, the least time between two steps down: the first goes straight to the layer that fits,
 * and the old layer's queue and losses still show in the feedback while the switch waits for a keyframe.
 */
export const ESTIMATE_DOWN_HOLD_MS = 3000;
/** Time without congestion before trying a higher layer. */
export const UP_HOLD_MS = 5000;
/** The longest wait between trials after failed ones. */
export const MAX_UP_HOLD_MS = 10_000;
/** On congestion, a layer sending this much more than arrived is too much for the path. */
export const OVERLOAD = 1.1;
/** Calm time before probing for a higher layer (estimate mode), and its bound after failed probes. */
export const PROBE_HOLD_MS = 2000;
export const MAX_PROBE_HOLD_MS = 4000;
/** How long a probe for the next layer's rate is sent (ms), and how long its feedback may take after. */
export const PROBE_MS = 500;
const PROBE_FEEDBACK_MS = 400;
/** After a probe, a layer fits when its rate times this is at most what arrived during the probe. */
const PROBE_FIT = 1.05;
/** The most a probe's rate is raised after probes that sent too little. */
const MAX_PROBE_BOOST = 2.25;
/** Congestion this soon after a probe ended is the probe's queue draining (ms). */
const PROBE_TAIL_MS = 1000;
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
  #probeHoldMs = PROBE_HOLD_MS;
  #probeTargetBps = 0;
  #probeTailUntil = -Infinity;
  /** Probes send this multiple of the top layer's missing rate (more after one that sent too little). */
  #probeBoost = 1;
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
   * the estimator just cut it (a growing queue or loss); `queueing`: early signs of a queue (delay rising,
   * some loss); `receivedBps`: what arrived lately; `sentBps`: what was sent to it (resends included);
   * `ladderBps`: the sent layers' rates, best first;
   * `canProbe`: the forwarder can send probe copies (RTX negotiated). Congestion while the layer sends
   * over {@link OVERLOAD} times what arrived steps down at once to the best layer the cut estimate carries,
   * again after {@link ESTIMATE_DOWN_HOLD_MS} if it persists. After {@link PROBE_HOLD_MS} without congestion it
   * probes at the top layer's rate for {@link PROBE_MS} (ending early at the first sign of a queue) and goes
   * up to the best layer what arrived meanwhile carries; a probe costs no picture, so it comes sooner than
   * a trial on reports; one that leads nowhere doubles the wait (up to {@link MAX_PROBE_HOLD_MS}). Without
   * probing the step up is a trial one layer up after the same wait.
   */
  onEstimate(
    estimate: {
      estimateBps: number;
      receivedBps: number;
      sentBps: number;
      congestion: boolean;
      queueing: boolean;
    },
    ladderBps: readonly number[],
    canProbe: boolean,
    now: number,
  ): number {
    const maxLevel = Math.max(0, ladderBps.length - 1);
    if (this.level > maxLevel) this.level = maxLevel;
    const probing = this.#probeTargetBps > 0;
    if (probing && now < this.#probeEndsAt && estimate.receivedBps > this.#probeReceivedBps) {
      this.#probeReceivedBps = estimate.receivedBps;
    }
    if (probing && now >= this.#probeEndsAt - PROBE_FEEDBACK_MS) this.probeBps = 0;
    if (estimate.congestion) this.congestions++;
    if (probing && (estimate.congestion || estimate.queueing || now >= this.#probeEndsAt)) {
      // The probe is over, early at the first sign of a queue (before it costs the picture anything).
      // What arrived meanwhile is what the path carried: the viewer goes up as far as that fits.
      const carried = fittingLevel(this.#probeReceivedBps, ladderBps, PROBE_FIT);
      const up = carried < this.level;
      // Ended on time with no sign of a queue, yet short of the top layer: the probe sent too little (the
      // layer it rides on sent less than measured); the next one, after the usual wait, sends more.
      const underSent = !up && !estimate.congestion && !estimate.queueing;
      this.#probeBoost = up
        ? 1
        : underSent
        ? Math.min(this.#probeBoost * 1.5, MAX_PROBE_BOOST)
        : this.#probeBoost;
      this.#endProbe(up, !underSent, now);
      if (up) {
        this.level = carried;
        this.#lastUpAt = now;
      } else {
        this.#lastCongestedAt = now;
      }
      return this.level;
    }
    if (probing) return this.level;
    if (estimate.congestion) {
      // The queue a probe built is still draining: not the layer's doing.
      if (now < this.#probeTailUntil) return this.level;
      // Only a layer sending clearly more than arrived is too much for the path; congestion while all of
      // it arrives came from something passing (a keyframe's burst, a receiver's stall on a loaded
      // machine) and holds nothing back. Then the estimate, a fraction of what arrived, says which layer
      // the path carries.
      const sending = Math.max(ladderBps[this.level] ?? 0, estimate.sentBps);
      if (sending <= OVERLOAD * estimate.receivedBps) return this.level;
      this.#lastCongestedAt = now;
      if (now - this.#lastUpAt < TRIAL_MS) {
        // The last step up failed: wait longer before the next (once per step).
        this.#probeHoldMs = Math.min(this.#probeHoldMs * 2, MAX_PROBE_HOLD_MS);
        this.#lastUpAt = -Infinity;
      }
      if (now - this.#lastDownAt >= ESTIMATE_DOWN_HOLD_MS) {
        const fits = fittingLevel(estimate.estimateBps, ladderBps, 1);
        if (fits > this.level) {
          this.level = Math.min(maxLevel, fits);
          this.#lastDownAt = now;
        }
      }
      return this.level;
    }
    // A step up that held for a while resets the wait.
    if (now - this.#lastUpAt >= TRIAL_MS && this.#lastUpAt > this.#lastCongestedAt) {
      this.#probeHoldMs = PROBE_HOLD_MS;
    }
    const hold = this.#probeHoldMs;
    if (
      this.level > 0 && now - this.#lastCongestedAt >= hold && now - this.#lastDownAt >= hold &&
      now - this.#lastUpAt >= hold
    ) {
      // The estimate cannot tell by itself: it stays near what the viewer receives (an application-limited
      // path shows no more). A probe at the top layer's rate can, and says how far up to go; without one,
      // a trial one layer up.
      const top = ladderBps[0];
      const current = ladderBps[this.level];
      if (canProbe && top > current) {
        this.probeBps = (top - current) * this.#probeBoost;
        this.#probeTargetBps = top;
        this.#probeReceivedBps = 0;
        this.#probeEndsAt = now + PROBE_MS + PROBE_FEEDBACK_MS;
        return this.level;
      }
      this.level--;
      this.#lastUpAt = now;
    }
    return this.level;
  }

  #endProbe(passed: boolean, longerWait: boolean, now: number): void {
    this.probeBps = 0;
    this.#probeTargetBps = 0;
    this.#probeEndsAt = -Infinity;
    this.#probeTailUntil = now + PROBE_TAIL_MS;
    if (passed) {
      this.probesPassed++;
      this.#probeHoldMs = PROBE_HOLD_MS;
    } else {
      this.probesFailed++;
      if (longerWait) this.#probeHoldMs = Math.min(this.#probeHoldMs * 2, MAX_PROBE_HOLD_MS);
    }
  }

  /** How long the viewer waits before probing for a higher layer now (ms; estimate mode). */
  get probeHoldMs(): number {
    return this.#probeHoldMs;
  }

  /** How long the viewer waits before trying a higher layer now (ms). */
  get upHoldMs(): number {
    return this.#upHoldMs;
  }
}

/**
 * The best level (index into `ladderBps`, best first) whose rate times `headroom` fits `estimateBps`; the
 * last when none does.
 */
function fittingLevel(estimateBps: number, ladderBps: readonly number[], headroom: number): number {
  for (let i = 0; i < ladderBps.length; i++) if (ladderBps[i] * headroom <= estimateBps) return i;
  return Math.max(0, ladderBps.length - 1);
}
