import assert from "node:assert/strict";
import { PacketCache } from "../rtp/packet_cache.ts";
import { CAUGHT_UP, JoinReplay, LOST, NOT_DUE, REPLAY_BURST_BYTES, REPLAY_SPEED } from "./join_replay.ts";

function historyOf(first: number, count: number, bytes = 1000, size = 4096): PacketCache {
  const history = new PacketCache(size);
  for (let i = 0; i < count; i++) history.store((first + i) & 0xffff, new Uint8Array(bytes));
  return history;
}

/** Polls until not due; returns the sequence numbers taken and the last result. */
function drain(replay: JoinReplay, history: PacketCache, newest: number, now: number) {
  const taken: number[] = [];
  for (;;) {
    const r = replay.poll(history, newest, now);
    if (r < 0) return { taken, result: r };
    taken.push(r);
  }
}

Deno.test("join replay: a first burst, then paced at a multiple of the stream rate, in order", () => {
  const history = historyOf(65500, 200); // wraps past 65535
  const newest = (65500 + 199) & 0xffff;
  const replay = new JoinReplay({
    start: 65500,
    streamBytesPerMs: 125,
    clockRate: 90000,
    timestampOffset: 0,
    now: 0,
  });
  const first = drain(replay, history, newest, 0);
  assert.equal(first.result, NOT_DUE);
  assert.equal(first.taken.length, Math.floor(REPLAY_BURST_BYTES / 1000), "the first burst");
  assert.deepEqual(first.taken.slice(0, 3), [65500, 65501, 65502]);
  const due = replay.dueAt(history, 0);
  assert.ok(due > 0 && due < 10, `next packet due soon: ${due}`);
  // 100 ms later: 100 ms of tokens at REPLAY_SPEED x 125 bytes/ms.
  const later = drain(replay, history, newest, 100);
  assert.equal(
    later.taken.length,
    Math.floor((100 * REPLAY_SPEED * 125 + (REPLAY_BURST_BYTES % 1000)) / 1000),
  );
  assert.equal(later.taken[0], (first.taken[first.taken.length - 1] + 1) & 0xffff, "continues in order");
  const rest: number[] = [];
  let now = 100;
  for (let result = NOT_DUE; result === NOT_DUE; now += 50) {
    const step = drain(replay, history, newest, now);
    assert.ok(step.taken.length <= REPLAY_BURST_BYTES / 1000, "a late wake-up never sends more than a burst");
    rest.push(...step.taken);
    result = step.result;
    if (result !== NOT_DUE) assert.equal(result, CAUGHT_UP);
  }
  const all = [...first.taken, ...later.taken, ...rest];
  assert.equal(all.length, 200);
  for (let i = 1; i < all.length; i++) assert.equal(all[i], (all[i - 1] + 1) & 0xffff);
});

Deno.test("join replay: missing packets are skipped, overwritten history ends the replay", () => {
  const history = historyOf(10, 5);
  history.clear();
  history.store(10, new Uint8Array(100));
  history.store(13, new Uint8Array(100));
  const replay = new JoinReplay({
    start: 10,
    streamBytesPerMs: 0,
    clockRate: 90000,
    timestampOffset: 0,
    now: 0,
  });
  assert.deepEqual(drain(replay, history, 13, 0), { taken: [10, 13], result: CAUGHT_UP });

  const small = historyOf(0, 8, 100, 8);
  const behind = new JoinReplay({
    start: 0,
    streamBytesPerMs: 0,
    clockRate: 90000,
    timestampOffset: 0,
    now: 0,
  });
  for (let seq = 8; seq < 12; seq++) small.store(seq, new Uint8Array(100)); // the ring wrapped past the cursor
  assert.equal(behind.poll(small, 11, 0), LOST);
});

Deno.test("join replay: timestamps follow the sending clock, keyframe unchanged, never past the original", () => {
  const replay = new JoinReplay({
    start: 0,
    streamBytesPerMs: 0,
    clockRate: 90000,
    timestampOffset: 7,
    now: 0,
  });
  assert.equal(replay.timestampFor(1000, 50), 1000, "the keyframe keeps its timestamp");
  assert.equal(replay.timestampFor(1000, 51), 1000, "same frame, same timestamp");
  assert.equal(replay.timestampFor(4000, 50), 1001, "sent at once: one tick later");
  assert.equal(replay.timestampFor(7000, 60), 1000 + 900, "10 ms after the keyframe went");
  assert.equal(replay.timestampFor(10000, 200), 10000, "never later than its own timestamp");
  assert.equal(replay.timestampShift, 0);
  assert.equal(replay.timestamps.get(4000), 1001);
  assert.equal(replay.timestampOffset, 7);
  const wrapped = new JoinReplay({
    start: 0,
    streamBytesPerMs: 0,
    clockRate: 90000,
    timestampOffset: 0,
    now: 0,
  });
  wrapped.timestampFor(0xffffff00, 0);
  assert.equal(wrapped.timestampFor(0x00000a00, 10), (0xffffff00 + 900) >>> 0, "across the 32-bit wrap");
  assert.equal(wrapped.timestampShift, (0xffffff00 + 900 - 0xffffffff - 1 - 0xa00) | 0);
});
