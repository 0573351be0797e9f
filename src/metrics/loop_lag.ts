/**
 * Event-loop lag from timer drift: a timer asks to run every `intervalMs`; how late it actually runs is time
 * the loop spent on something else (a long decrypt burst, a sync file read, GC). Lag on this loop delays
 * every packet, so it is the first figure to look at when viewers stutter but the network is fine.
 */

/** Samples kept for {@link LoopLagSampler.max}: at the default interval, the last 10 s. */
const WINDOW = 20;

/** Records how late a periodic timer fires. */
export class LoopLagSampler {
  readonly intervalMs: number;
  #expected: number | undefined;
  #samples = new Float64Array(WINDOW);
  #next = 0;
  #count = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(intervalMs = 500) {
    this.intervalMs = intervalMs;
  }

  /** Starts sampling with `performance.now()`; the timer does not keep the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#expected = performance.now() + this.intervalMs;
    this.#timer = setInterval(() => this.record(performance.now()), this.intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One tick of the timer at time `now` (ms); exposed so tests can drive it without a clock. */
  record(now: number): void {
    if (this.#expected === undefined) {
      this.#expected = now + this.intervalMs;
      return;
    }
    const lag = Math.max(0, now - this.#expected);
    this.#expected = now + this.intervalMs;
    this.#samples[this.#next] = lag;
    this.#next = (this.#next + 1) % WINDOW;
    if (this.#count < WINDOW) this.#count++;
  }

  /** The latest lag in milliseconds (0 before the first sample). */
  get last(): number {
    return this.#count === 0 ? 0 : this.#samples[(this.#next + WINDOW - 1) % WINDOW];
  }

  /** The largest lag among the recent samples, in milliseconds. */
  get max(): number {
    let max = 0;
    for (let i = 0; i < this.#count; i++) max = Math.max(max, this.#samples[i]);
    return max;
  }
}
