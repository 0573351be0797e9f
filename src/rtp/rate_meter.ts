/**
 * A stream's byte rate, measured over half-second windows and smoothed, for the budgets that scale with it
 * (join-replay pacing, the resend budget). Pure: the caller passes `now` (milliseconds).
 */

const WINDOW_MS = 500;

/** Byte rate of one stream. */
export class RateMeter {
  #windowStart = -1;
  #windowBytes = 0;
  #bytesPerMs = 0;

  /** Counts `bytes` received at `now`. */
  add(bytes: number, now: number): void {
    if (this.#windowStart < 0) this.#windowStart = now;
    const elapsed = now - this.#windowStart;
    if (elapsed >= WINDOW_MS) {
      const rate = this.#windowBytes / elapsed;
      // The first full window sets the rate; later ones move it halfway (a keyframe's burst is smoothed).
      this.#bytesPerMs = this.#bytesPerMs === 0 ? rate : (this.#bytesPerMs + rate) / 2;
      this.#windowStart = now;
      this.#windowBytes = 0;
    }
    this.#windowBytes += bytes;
  }

  /** Bytes per millisecond; 0 until a first window has passed. */
  get bytesPerMs(): number {
    return this.#bytesPerMs;
  }

  /** Starts over (a new stream). */
  reset(): void {
    this.#windowStart = -1;
    this.#windowBytes = 0;
    this.#bytesPerMs = 0;
  }
}
