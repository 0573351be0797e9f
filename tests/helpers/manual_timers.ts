/** A manual clock for code that takes its timers as a parameter: tests advance time instead of sleeping. */

interface Timer {
  at: number;
  fn: () => void;
  /** Repeat period for intervals. */
  every?: number;
}

/** setTimeout/setInterval on a clock that moves only when {@link ManualTimers.advance} is called. */
export class ManualTimers {
  /** Milliseconds since the clock was made. */
  now = 0;
  #timers = new Map<number, Timer>();
  #nextId = 1;

  setTimeout(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id: number): void {
    this.#timers.delete(id);
  }

  setInterval(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    const every = Math.max(1, ms);
    this.#timers.set(id, { at: this.now + every, fn, every });
    return id;
  }

  clearInterval(id: number): void {
    this.#timers.delete(id);
  }

  /** How many timers are set. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock `ms` forward, running every timer that falls due on the way, in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let dueId: number | undefined;
      let due: Timer | undefined;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= end && (!due || timer.at < due.at)) [dueId, due] = [id, timer];
      }
      if (!due || dueId === undefined) break;
      this.now = due.at;
      if (due.every) due.at += due.every;
      else this.#timers.delete(dueId);
      due.fn();
    }
    this.now = end;
  }
}
