import assert from "node:assert/strict";
import { Deadlines, Scheduler, type Wakeable } from "./scheduler.ts";
import { waitFor } from "../../tests/helpers/wait.ts";

/** A target that records its wake-ups and asks to run again `every` ms later, `times` times. */
function ticker(every: number, times: number): Wakeable & { woken: number[] } {
  const woken: number[] = [];
  return {
    woken,
    wake(now) {
      woken.push(now);
      return woken.length < times ? now + every : undefined;
    },
  };
}

const rethrow = (e: unknown) => {
  throw e;
};

Deno.test("deadlines: the earliest request stands; due targets run and re-arm at what they return", () => {
  const deadlines = new Deadlines();
  const a = ticker(250, 3);
  const b = ticker(10, 1);
  deadlines.wakeAt(a, 250);
  deadlines.wakeAt(a, 400); // later: the 250 ms deadline stands
  deadlines.wakeAt(b, 100);
  assert.equal(deadlines.next, 100);
  deadlines.runDue(99, rethrow);
  assert.deepEqual([a.woken, b.woken], [[], []]);
  deadlines.runDue(100, rethrow);
  assert.deepEqual(b.woken, [100]);
  assert.equal(deadlines.size, 1, "b asked for nothing more");
  for (let now = 100; now <= 1000; now += 50) deadlines.runDue(now, rethrow);
  assert.deepEqual(a.woken, [250, 500, 750]);
  assert.equal(deadlines.next, Infinity);
});

Deno.test("deadlines: a late wake-up runs every overdue target in deadline order", () => {
  const deadlines = new Deadlines();
  const order: string[] = [];
  const named = (name: string): Wakeable => ({
    wake() {
      order.push(name);
      return undefined;
    },
  });
  deadlines.wakeAt(named("late"), 40);
  deadlines.wakeAt(named("middle"), 20);
  deadlines.wakeAt(named("early"), 5);
  deadlines.runDue(100, rethrow);
  assert.deepEqual(order, ["early", "middle", "late"]);
});

Deno.test("deadlines: a target that throws is reported and dropped; the others still run", () => {
  const deadlines = new Deadlines();
  const errors: unknown[] = [];
  const fine = ticker(10, 2);
  deadlines.wakeAt({
    wake: () => {
      throw new Error("bug");
    },
  }, 5);
  deadlines.wakeAt(fine, 5);
  deadlines.runDue(5, (e) => errors.push(e));
  assert.equal(errors.length, 1);
  assert.deepEqual(fine.woken, [5]);
  assert.equal(deadlines.size, 1);
  deadlines.cancel(fine);
  assert.equal(deadlines.size, 0);
});

Deno.test("scheduler: one platform timer wakes targets in deadline order and flushes after each run", async () => {
  const order: string[] = [];
  const flushedAfter: number[] = [];
  const scheduler = new Scheduler({ afterRun: () => flushedAfter.push(order.length) });
  const target = (name: string): Wakeable => ({
    wake() {
      order.push(name);
      return undefined;
    },
  });
  const now = performance.now();
  scheduler.wakeAt(target("late"), now + 40);
  scheduler.wakeAt(target("early"), now + 5); // re-arms the timer earlier
  await waitFor("both woken", () => order.length, (n) => n === 2, 2000, 5);
  assert.deepEqual(order, ["early", "late"]);
  assert.equal(flushedAfter.at(-1), 2, "the outbox is flushed after the wake-up that ran the last target");
  assert.equal(scheduler.pending, 0);
  scheduler.wakeAt(target("never"), performance.now() + 5);
  // Closing clears the armed timer: Deno's test sanitizer fails the test if a timer is left pending.
  scheduler.close();
  scheduler.wakeAt(target("after close"), 0);
  assert.deepEqual(order, ["early", "late"]);
});
