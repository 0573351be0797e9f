import { deepEqual, ok, throws } from "node:assert/strict";
import { estimateIndex, ReplayWindow, StreamTable } from "./replay.ts";

Deno.test("estimateIndex follows the sequence number across a rollover and back", () => {
  deepEqual(estimateIndex(-1, 65000), 65000);
  deepEqual(estimateIndex(65535, 0), 65536);
  deepEqual(estimateIndex(65535, 10), 65546);
  // A late packet from before the wrap keeps the old ROC.
  deepEqual(estimateIndex(65536 + 5, 65530), 65530);
  // Far ahead in the same ROC, no wrap.
  deepEqual(estimateIndex(100, 30000), 30000);
  // Just below ROC 0 is not a valid index.
  ok(estimateIndex(5, 65530) < 0);
  deepEqual(estimateIndex(3 * 65536 + 40000, 1000), 4 * 65536 + 1000);
});

Deno.test("ReplayWindow rejects duplicates and packets older than the window", () => {
  const w = new ReplayWindow(64);
  for (const i of [10, 12, 11]) {
    ok(w.accepts(i), `index ${i} is new`);
    w.commit(i);
  }
  ok(!w.accepts(11));
  ok(!w.accepts(12));
  ok(w.accepts(9));
  w.commit(200);
  ok(!w.accepts(200));
  ok(w.accepts(199));
  ok(w.accepts(137), "200 - 137 = 63 is inside a 64-packet window");
  ok(!w.accepts(136), "200 - 136 = 64 is outside");
  // Advancing past old slots clears them.
  w.commit(201);
  w.commit(265);
  ok(w.accepts(264));
  ok(!w.accepts(201));
  ok(!w.accepts(-1));
});

Deno.test("ReplayWindow keeps exact bits when advancing by less than its size", () => {
  const w = new ReplayWindow(128);
  for (let i = 0; i < 1000; i += 2) w.commit(i);
  for (let i = 1000 - 127; i < 1000; i++) deepEqual(w.accepts(i), i % 2 === 1, `index ${i}`);
  throws(() => new ReplayWindow(48), RangeError);
});

Deno.test("StreamTable creates at most maxStreams states", () => {
  const t = new StreamTable(64, 2);
  ok(t.getOrCreate(1, true));
  ok(t.getOrCreate(2, true));
  deepEqual(t.getOrCreate(3, true), undefined);
  deepEqual(t.get(3), undefined);
  ok(t.get(1)?.window);
});
