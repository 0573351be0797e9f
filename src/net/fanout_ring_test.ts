import assert from "node:assert/strict";
import { FanoutRing } from "./fanout_ring.ts";

/** Writes a record of `type` whose body is `length` bytes of `fill`; false when the ring refused it. */
function put(ring: FanoutRing, type: number, length: number, fill: number, reserve = 0): boolean {
  const at = ring.claim(type, length, reserve);
  if (at < 0) return false;
  ring.data.fill(fill, at, at + length);
  ring.commit();
  ring.publish();
  return true;
}

/** Takes the next record as [type, length, first byte, every byte equal]; undefined when empty. */
function get(ring: FanoutRing): [number, number, number, boolean] | undefined {
  const type = ring.take();
  if (type === 0) return undefined;
  const body = ring.data.subarray(ring.bodyOffset, ring.bodyOffset + ring.bodyLength);
  const result: [number, number, number, boolean] = [
    type,
    body.length,
    body.length > 0 ? body[0] : -1,
    body.every((b) => b === body[0]),
  ];
  ring.release();
  return result;
}

Deno.test("ring: records come out in order, across the wrap, on a second view of the same memory", () => {
  const producer = FanoutRing.create(1024);
  const consumer = new FanoutRing(producer.buffer);
  let written = 0;
  let read = 0;
  // Odd lengths so records straddle the end in every alignment; the ring is drained half the time.
  for (let round = 0; round < 500; round++) {
    const length = (round * 37) % 300;
    assert.ok(put(producer, 1 + (round % 5), length, round & 0xff), `round ${round} fits`);
    written++;
    if (round % 2 === 1) {
      for (let r = get(consumer); r; r = get(consumer)) {
        const length = (read * 37) % 300;
        assert.deepEqual(r, [1 + (read % 5), length, length > 0 ? read & 0xff : -1, true]);
        read++;
      }
    }
  }
  assert.equal(read, written);
  assert.equal(consumer.used, 0);
});

Deno.test("ring: a full ring refuses a record whole, and keeps the reserve for records that must pass", () => {
  const ring = FanoutRing.create(1024);
  let accepted = 0;
  while (put(ring, 4, 100, 7, 256)) accepted++;
  // 104 bytes a record: everything up to the reserve is used, not more.
  assert.equal(accepted, Math.floor((1024 - 256) / 104));
  assert.ok(put(ring, 1, 100, 9), "a record without reserve still fits");
  const consumer = new FanoutRing(ring.buffer);
  for (let i = 0; i < accepted; i++) assert.deepEqual(get(consumer), [4, 100, 7, true]);
  assert.deepEqual(get(consumer), [1, 100, 9, true]);
  assert.equal(get(consumer), undefined);
  assert.equal(ring.claim(1, 0x10000), -1, "a body longer than a u16 is refused");
});

Deno.test("ring: a worker on the other side reads everything a burst wrote and sleeps until woken", async () => {
  const ring = FanoutRing.create(4096);
  const source = `
    import { FanoutRing } from ${JSON.stringify(new URL("./fanout_ring.ts", import.meta.url).href)};
    self.onmessage = (e) => {
      const ring = new FanoutRing(e.data);
      let count = 0, sum = 0;
      for (;;) {
        const signal = ring.signal;
        let type;
        while ((type = ring.take()) !== 0) {
          if (type === 2) { self.postMessage({ count, sum }); return; }
          count++; sum += ring.data[ring.bodyOffset]; ring.release();
        }
        ring.sleep(signal, 1000);
      }
    };`;
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    const result = new Promise<{ count: number; sum: number }>((resolve) =>
      worker.onmessage = (e) => resolve(e.data)
    );
    worker.postMessage(ring.buffer);
    let expected = 0;
    for (let i = 0; i < 20_000; i++) {
      // The producer never overruns the consumer: it waits (a test may spin; the server drops instead).
      while (!put(ring, 1, 1 + (i % 200), i & 0x7f)) ring.wake();
      expected += i & 0x7f;
      if (i % 64 === 0) ring.wake();
    }
    while (!put(ring, 2, 0, 0)) ring.wake();
    ring.wake();
    assert.deepEqual(await result, { count: 20_000, sum: expected });
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
});
