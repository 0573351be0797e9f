import assert from "node:assert/strict";
import { ReceiveRing } from "./receive_ring.ts";

function datagram(first: number, length = 20): Uint8Array {
  return new Uint8Array(length).fill(first);
}

/** Writes `count` datagrams as the producer would, one `writable`/`publish` per call. */
function produce(ring: ReceiveRing, firsts: number[]): number {
  const room = ring.writable(firsts.length);
  for (let i = 0; i < room.count; i++) {
    ring.writeDatagram(room.start + i, datagram(firsts[i]), [10, 0, 0, 1], 5000 + i);
  }
  ring.publish(room.count);
  return room.count;
}

/** Reads everything filled, releases it, returns the first byte of each datagram. */
function consume(ring: ReceiveRing): number[] {
  const filled = ring.filled();
  const seen: number[] = [];
  for (let i = 0; i < filled; i++) seen.push(ring.datagram(ring.slotAt(i))[0]);
  ring.release(filled);
  return seen;
}

Deno.test("datagrams come out in the order they went in, with their source", () => {
  const ring = new ReceiveRing(8, 64);
  assert.equal(produce(ring, [1, 2, 3]), 3);
  assert.equal(ring.filled(), 3);
  const slot = ring.slotAt(1);
  assert.deepEqual([...ring.datagram(slot)], [...datagram(2)]);
  assert.ok(ring.sourceIsIPv4(slot));
  assert.equal(ring.sourceIPv4(slot), (10 << 24 | 1) >>> 0);
  assert.equal(ring.sourcePort(slot), 5001);
  assert.equal(ring.sourceHostname(slot), "10.0.0.1");
  assert.deepEqual(consume(ring), [1, 2, 3]);
  assert.equal(ring.filled(), 0);
});

Deno.test("the producer's room stops at the ring's end and at the consumer's tail", () => {
  const ring = new ReceiveRing(4, 64);
  assert.equal(produce(ring, [1, 2, 3]), 3);
  // One slot left before the end of the ring: a write does not wrap within one call.
  assert.deepEqual(ring.writable(10), { start: 3, count: 1 });
  assert.equal(produce(ring, [4, 5]), 1);
  // Full: nothing until the consumer releases.
  assert.equal(ring.writable(10).count, 0);
  assert.deepEqual(consume(ring), [1, 2, 3, 4]);
  // Wrapped around to slot 0.
  assert.deepEqual(ring.writable(10), { start: 0, count: 4 });
  assert.equal(produce(ring, [5, 6]), 2);
  assert.deepEqual(consume(ring), [5, 6]);
});

Deno.test("counters wrap past 2^32 and the slots follow on", () => {
  const ring = new ReceiveRing(4, 64);
  ring.control[0] = -2; // head 0xfffffffe: slot 2
  ring.control[1] = -2; // tail
  assert.equal(ring.filled(), 0);
  assert.equal(produce(ring, [7, 8, 9]), 2, "slots 2 and 3, up to the ring's end");
  assert.equal(ring.control[0], 0, "the head wrapped to 0");
  assert.equal(produce(ring, [9]), 1);
  assert.equal(ring.slotAt(2), 0, "the third datagram is in slot 0");
  assert.equal(ring.filled(), 3);
  assert.deepEqual(consume(ring), [7, 8, 9]);
  assert.throws(() => new ReceiveRing(6, 64), RangeError, "slots must divide 2^32");
});

Deno.test("a datagram longer than its slot is marked truncated", () => {
  const ring = new ReceiveRing(2, 16);
  const room = ring.writable(2);
  ring.writeDatagram(room.start, datagram(9, 40), [127, 0, 0, 1], 1);
  ring.writeDatagram(room.start + 1, datagram(9, 16), [127, 0, 0, 1], 1);
  ring.publish(2);
  assert.ok(ring.truncated(ring.slotAt(0)));
  assert.equal(ring.datagram(ring.slotAt(0)).length, 16);
  assert.ok(!ring.truncated(ring.slotAt(1)));
});

Deno.test("a second view over the same shared buffer sees the first one's datagrams (the two threads)", () => {
  const producer = new ReceiveRing(4, 32);
  const consumer = new ReceiveRing(4, 32, producer.buffer);
  produce(producer, [4, 5]);
  assert.deepEqual(consume(consumer), [4, 5]);
  assert.equal(producer.filled(), 0);
  assert.throws(() => new ReceiveRing(8, 32, producer.buffer), RangeError);
  consumer.stop();
  assert.ok(producer.stopped);
});

Deno.test("the producer's header pointers address the slots inside the shared buffer", () => {
  const ring = new ReceiveRing(2, 100);
  ring.writePointers(0x1000n);
  const view = new DataView(ring.buffer);
  const header = ring.headers.byteOffset;
  const name0 = view.getBigUint64(header, true);
  const iov0 = view.getBigUint64(header + 16, true);
  const data0 = view.getBigUint64(Number(iov0 - 0x1000n), true);
  const data1 = view.getBigUint64(Number(view.getBigUint64(header + 64 + 16, true) - 0x1000n), true);
  assert.equal(view.getUint32(header + 8, true), 32, "msg_namelen");
  assert.equal(view.getBigUint64(header + 24, true), 1n, "msg_iovlen");
  assert.equal(view.getBigUint64(Number(iov0 - 0x1000n) + 8, true), 100n, "iov_len");
  assert.equal(data1 - data0, 100n);
  assert.ok(name0 > 0x1000n && data0 + 200n === 0x1000n + BigInt(ring.buffer.byteLength));
});

Deno.test("one thread filling and draining resets the ring to slot 0 after each batch", () => {
  const ring = new ReceiveRing(4, 32);
  produce(ring, [1, 2, 3]);
  consume(ring);
  ring.reset();
  assert.deepEqual(ring.writable(4), { start: 0, count: 4 });
  assert.equal(ring.filled(), 0);
});
