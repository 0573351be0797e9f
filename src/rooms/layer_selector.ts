/**
 * The automatic layer choice for one viewer, from its receiver reports: how many steps below the top layer
 * it should be. A link that cannot carry the layer shows as loss (a full queue drops) or as a round-trip
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

  /** How long the viewer waits before trying a higher layer now (ms). */
  get upHoldMs(): number {
    return this.#upHoldMs;
  }
}
