import assert from "node:assert/strict";
import { GopIndex } from "./gop_index.ts";
import { RateMeter } from "./rate_meter.ts";
import { PacketCache } from "./packet_cache.ts";

Deno.test("GOP index: the latest keyframe's first packet and the live edge, across the wrap", () => {
  const gop = new GopIndex();
  gop.push(65530, 100, false);
  assert.equal(gop.keyframeSequence, -1);
  assert.equal(gop.length, 0);
  gop.push(65531, 200, true); // SPS
  gop.push(65532, 200, true); // IDR of the same frame
  gop.push(65535, 300, false);
  gop.push(65534, 300, false); // late
  gop.push(2, 400, false);
  assert.equal(gop.keyframeSequence, 65531);
  assert.equal(gop.newest, 2);
  assert.equal(gop.length, 8);
  gop.push(3, 500, true);
  assert.equal(gop.keyframeSequence, 3);
  assert.equal(gop.length, 1);
  gop.clear();
  assert.equal(gop.newest, -1);
});

Deno.test("rate meter: bytes per millisecond over half-second windows, smoothed", () => {
  const meter = new RateMeter();
  for (let t = 0; t <= 500; t += 10) meter.add(1000, t);
  assert.equal(meter.bytesPerMs, 100);
  for (let t = 510; t <= 1000; t += 10) meter.add(3000, t);
  // The second window: 1,000 + 49 x 3,000 bytes in 500 ms = 296 bytes/ms; the estimate moves halfway.
  assert.equal(meter.bytesPerMs, 198);
  meter.reset();
  assert.equal(meter.bytesPerMs, 0);
});

Deno.test("packet cache grows without losing what it holds", () => {
  const cache = new PacketCache(4);
  for (const seq of [65534, 65535, 0, 1]) cache.store(seq, new Uint8Array([seq & 0xff]));
  cache.grow(16);
  assert.equal(cache.capacity, 16);
  for (const seq of [65534, 65535, 0, 1]) assert.deepEqual([...cache.get(seq)!], [seq & 0xff]);
  assert.equal(cache.lengthOf(2), -1);
  for (let seq = 2; seq < 14; seq++) cache.store(seq, new Uint8Array(3));
  assert.equal(cache.lengthOf(65534), 1, "still there: 16 slots now");
  assert.throws(() => cache.grow(24));
});
