/**
 * Which of a run of repeated errors to log: the first of each burst, where a burst ends after `quietMs`
 * without the error. Out of descriptors, an accept loop fails thousands of times a minute; one line per
 * burst says it without flooding the log. Pure: `now` is passed in.
 */
export class ErrorBurst {
  readonly quietMs: number;
  #lastAt = -Infinity;
  #suppressed = 0;

  constructor(quietMs: number) {
    this.quietMs = quietMs;
  }

  /**
   * The error happened at `now`. Returns undefined to stay quiet, or (when a new burst starts) how many
   * errors the previous burst had after its logged first one.
   */
  occurred(now: number): number | undefined {
    const startsBurst = now - this.#lastAt >= this.quietMs;
    this.#lastAt = now;
    if (!startsBurst) {
      this.#suppressed++;
      return undefined;
    }
    const previous = this.#suppressed;
    this.#suppressed = 0;
    return previous;
  }
}
