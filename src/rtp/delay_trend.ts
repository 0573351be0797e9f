/**
 * Whether a path's queue is growing, from one-way delay variation between packet groups (the delay-based
 * half of Google congestion control, draft-ietf-rmcat-gcc-02 §5): each group's arrival gap minus its send
 * gap is accumulated into a delay curve; the slope of a least-squares line over the last groups, scaled,
 * is compared with a threshold that adapts to the path's own noise. Above it for long enough: overuse (a
 * queue building); below its negative: underuse (a queue draining). Pure; times in ms.
 */

/** The delay curve's state. */
export const NORMAL = 0;
export const OVERUSE = 1;
export const UNDERUSE = 2;
export type DelaySignal = typeof NORMAL | typeof OVERUSE | typeof UNDERUSE;

/** Groups in the regression window. */
const WINDOW = 20;
/** Exponential smoothing of the accumulated delay. */
const SMOOTHING = 0.9;
/** The slope is scaled by this and by the number of deltas seen (up to {@link MAX_DELTAS_SCALE}). */
const TREND_GAIN = 4;
const MAX_DELTAS_SCALE = 60;
/** The adaptive threshold: start, bounds, and how fast it follows the trend up and down (per ms). */
const THRESHOLD_START = 12.5;
const THRESHOLD_MIN = 6;
const THRESHOLD_MAX = 600;
const THRESHOLD_UP = 0.0087;
const THRESHOLD_DOWN = 0.039;
/** A trend this far above the threshold is a spike, not noise to adapt to. */
const THRESHOLD_OUTLIER = 15;
/** The trend must stay above the threshold this long (ms of send time) to count as overuse. */
const OVERUSE_TIME_MS = 10;

/** The delay-based overuse detector of one path. */
export class DelayTrend {
  /** The latest state. */
  signal: DelaySignal = NORMAL;
  /** The threshold in use (for stats and tests). */
  threshold = THRESHOLD_START;
  /** The latest scaled trend (for stats and tests). */
  trend = 0;
  readonly #x = new Float64Array(WINDOW);
  readonly #y = new Float64Array(WINDOW);
  #points = 0;
  #next = 0;
  #deltas = 0;
  #accumulated = 0;
  #smoothed = 0;
  #firstArrival = NaN;
  #slope = 0;
  #previousSlope = 0;
  #overuseTime = -1;
  #overuseCount = 0;
  #thresholdAt = NaN;

  /**
   * Takes one group's delay variation (arrival gap − send gap, ms), its send gap (ms) and its arrival
   * time (ms on the receiver's clock); returns the state.
   */
  update(delayVariationMs: number, sendGapMs: number, arrivalMs: number): DelaySignal {
    if (this.#deltas < 1000) this.#deltas++;
    if (Number.isNaN(this.#firstArrival)) this.#firstArrival = arrivalMs;
    this.#accumulated += delayVariationMs;
    this.#smoothed = SMOOTHING * this.#smoothed + (1 - SMOOTHING) * this.#accumulated;
    this.#x[this.#next] = arrivalMs - this.#firstArrival;
    this.#y[this.#next] = this.#smoothed;
    this.#next = (this.#next + 1) % WINDOW;
    if (this.#points < WINDOW) this.#points++;
    if (this.#points === WINDOW) this.#slope = this.#regressionSlope();
    this.trend = Math.min(this.#deltas, MAX_DELTAS_SCALE) * this.#slope * TREND_GAIN;
    this.#detect(sendGapMs);
    this.#adaptThreshold(arrivalMs);
    return this.signal;
  }

  #regressionSlope(): number {
    let sx = 0;
    let sy = 0;
    for (let i = 0; i < WINDOW; i++) {
      sx += this.#x[i];
      sy += this.#y[i];
    }
    const mx = sx / WINDOW;
    const my = sy / WINDOW;
    let num = 0;
    let den = 0;
    for (let i = 0; i < WINDOW; i++) {
      const dx = this.#x[i] - mx;
      num += dx * (this.#y[i] - my);
      den += dx * dx;
    }
    return den === 0 ? this.#slope : num / den;
  }

  #detect(sendGapMs: number): void {
    const trend = this.trend;
    if (this.#deltas < 2) return;
    if (trend > this.threshold) {
      this.#overuseTime = this.#overuseTime < 0 ? sendGapMs / 2 : this.#overuseTime + sendGapMs;
      this.#overuseCount++;
      // A queue that keeps growing (the slope not falling): a single late group does not make overuse.
      if (
        this.#overuseTime > OVERUSE_TIME_MS && this.#overuseCount > 1 && this.#slope >= this.#previousSlope
      ) {
        this.#overuseTime = 0;
        this.#overuseCount = 0;
        this.signal = OVERUSE;
      }
    } else {
      this.#overuseTime = -1;
      this.#overuseCount = 0;
      this.signal = trend < -this.threshold ? UNDERUSE : NORMAL;
    }
    this.#previousSlope = this.#slope;
  }

  #adaptThreshold(arrivalMs: number): void {
    if (Number.isNaN(this.#thresholdAt)) this.#thresholdAt = arrivalMs;
    const size = Math.abs(this.trend);
    if (size > this.threshold + THRESHOLD_OUTLIER) {
      this.#thresholdAt = arrivalMs;
      return;
    }
    const rate = size < this.threshold ? THRESHOLD_DOWN : THRESHOLD_UP;
    const elapsed = Math.min(Math.max(arrivalMs - this.#thresholdAt, 0), 100);
    this.threshold += rate * (size - this.threshold) * elapsed;
    this.threshold = Math.min(THRESHOLD_MAX, Math.max(THRESHOLD_MIN, this.threshold));
    this.#thresholdAt = arrivalMs;
  }
}
