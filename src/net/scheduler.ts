/**
 * One timer for the media path. Components (the peers' sweep, rooms' join replays, room statistics) say
 * when they next want to run; the socket owner keeps one platform timer armed for the earliest of those
 * deadlines, wakes what is due with `now`, and flushes the outbox once after the lot. The core reads no
 * clock and sets no timer of its own: it returns its next deadline from {@link Wakeable.wake}.
 */

/** Something the scheduler wakes: it runs what is due at `now` and returns its next deadline, if any. */
export interface Wakeable {
  wake(now: number): number | undefined;
}

/** Deadlines by target, earliest first on demand. Pure: the caller passes `now`. */
export class Deadlines {
  readonly #at = new Map<Wakeable, number>();

  /** Wants `target` woken at `at` (ms); an earlier pending deadline of the same target stands. */
  wakeAt(target: Wakeable, at: number): void {
    const pending = this.#at.get(target);
    if (pending === undefined || at < pending) this.#at.set(target, at);
  }

  /** Forgets `target`'s deadline. */
  cancel(target: Wakeable): void {
    this.#at.delete(target);
  }

  /** The earliest deadline; Infinity when none is pending. */
  get next(): number {
    let next = Infinity;
    for (const at of this.#at.values()) if (at < next) next = at;
    return next;
  }

  /** Number of pending deadlines. */
  get size(): number {
    return this.#at.size;
  }

  /**
   * Wakes every target whose deadline is due at `now` and re-arms each at the deadline it returns. A target
   * that throws is reported to `onError` and not re-armed; the others still run.
   */
  runDue(now: number, onError: (e: unknown) => void): void {
    const due: Wakeable[] = [];
    for (const [target, at] of this.#at) if (at <= now) due.push(target);
    // Overdue targets (a late wake-up) still run in deadline order, not in the order they were added.
    if (due.length > 1) due.sort((a, b) => this.#at.get(a)! - this.#at.get(b)!);
    for (const target of due) {
      this.#at.delete(target);
      let next: number | undefined;
      try {
        next = target.wake(now);
      } catch (e) {
        onError(e);
        continue;
      }
      if (next !== undefined) this.wakeAt(target, next);
    }
  }
}

/** The socket owner's timer: {@link Deadlines} with one platform timer armed for the earliest deadline. */
export class Scheduler {
  readonly #deadlines = new Deadlines();
  readonly #clock: () => number;
  readonly #afterRun: () => void;
  readonly #onError: (e: unknown) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;
  #closed = false;

  constructor(options: {
    clock?: () => number;
    /** Runs after each wake-up (the outbox flush: everything the wake-up sent leaves in one batch). */
    afterRun?: () => void;
    /** A target threw (a bug): counted and logged by the owner. */
    onError?: (e: unknown) => void;
  } = {}) {
    this.#clock = options.clock ?? (() => performance.now());
    this.#afterRun = options.afterRun ?? (() => {});
    this.#onError = options.onError ?? ((e) => console.error(e));
  }

  /** Wants `target` woken at `at` (ms on the scheduler's clock); an earlier pending deadline stands. */
  wakeAt(target: Wakeable, at: number): void {
    if (this.#closed) return;
    this.#deadlines.wakeAt(target, at);
    if (at < this.#armedAt) this.#arm(at);
  }

  /** Forgets `target`'s deadline. */
  cancel(target: Wakeable): void {
    this.#deadlines.cancel(target);
  }

  /** Number of pending deadlines. */
  get pending(): number {
    return this.#deadlines.size;
  }

  /** Stops the timer; nothing is woken afterwards. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    // Platform timers count whole milliseconds: rounding up keeps a wake-up from coming before its deadline.
    this.#timer = setTimeout(() => this.#run(), Math.max(0, Math.ceil(at - this.#clock())));
  }

  #run(): void {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    try {
      this.#deadlines.runDue(this.#clock(), this.#onError);
    } finally {
      this.#afterRun();
      const next = this.#deadlines.next;
      if (!this.#closed && next !== Infinity) this.#arm(next);
    }
  }
}
