/// <reference lib="deno.worker" />
/**
 * The worker side of worker_transport_bench.ts: receives decrypted RTP packets from the main thread over one
 * transport and does what a fan-out worker would do first with each (read the header, copy the packet into
 * an outbox slot), checking that sequence numbers arrive in order; or, in the `sendmmsg` mode, sends
 * datagrams through the main thread's UDP socket with libc `sendmmsg` (src/net/udp_sendto.ts).
 */
import { SendTo } from "../../src/net/udp_sendto.ts";

/** What the main thread starts a worker with. */
export type WorkerTask =
  | { mode: "broadcast"; channel: string; packets: number }
  | { mode: "transfer"; packets: number }
  | { mode: "ring"; packets: number; ring: SharedArrayBuffer; slots: number; slotBytes: number }
  | {
    mode: "sendmmsg";
    socketPort: number;
    to: { hostname: string; port: number };
    batches: number;
    batch: number;
  };

/** Ring layout (Int32 indexes into the control words at the start of the SharedArrayBuffer). */
export const RING_WRITE = 0;
export const RING_READ = 1;
export const RING_CONTROL_BYTES = 64;

const outbox = new Uint8Array(2048);
let expectedSeq = -1;
let received = 0;
let outOfOrder = 0;
let startedAt = 0;

/** The per-packet work every transport is followed by. */
function consume(bytes: Uint8Array, offset: number, length: number): void {
  if (received === 0) startedAt = performance.now();
  const seq = (bytes[offset + 2] << 8) | bytes[offset + 3];
  if (expectedSeq >= 0 && seq !== expectedSeq) outOfOrder++;
  expectedSeq = (seq + 1) & 0xffff;
  outbox.set(bytes.subarray(offset, offset + length));
  received++;
}

/** A batch message: [count, length, length, ...] as Uint16 words after the packet bytes. */
function consumeBatch(buffer: ArrayBuffer): void {
  const view = new DataView(buffer);
  const count = view.getUint16(buffer.byteLength - 2, true);
  const bytes = new Uint8Array(buffer);
  let offset = 0;
  const lengthsAt = buffer.byteLength - 2 - count * 2;
  for (let i = 0; i < count; i++) {
    const length = view.getUint16(lengthsAt + i * 2, true);
    consume(bytes, offset, length);
    offset += length;
  }
}

function done(): void {
  self.postMessage({ received, outOfOrder, workerMs: performance.now() - startedAt });
}

self.onmessage = (e: MessageEvent) => {
  const task = e.data as WorkerTask;
  if (task.mode === "broadcast") {
    const channel = new BroadcastChannel(task.channel);
    channel.onmessage = (m: MessageEvent<ArrayBuffer>) => {
      // An empty message ends the run: Deno's BroadcastChannel drops messages a lagging receiver has not
      // read yet (a bounded queue), so counting up to `packets` could wait forever.
      if (m.data.byteLength === 0) {
        channel.close();
        done();
        return;
      }
      consumeBatch(m.data);
    };
    self.postMessage({ ready: true });
  } else if (task.mode === "transfer") {
    self.onmessage = (m: MessageEvent<ArrayBuffer>) => {
      consumeBatch(m.data);
      // Hand the buffer back so the main thread reuses it instead of allocating.
      self.postMessage(m.data, [m.data]);
      if (received >= task.packets) done();
    };
    self.postMessage({ ready: true });
  } else if (task.mode === "ring") {
    self.postMessage({ ready: true });
    drainRing(task.ring, task.slots, task.slotBytes, task.packets);
    done();
  } else sendThroughMainSocket(task);
};

/** Reads the ring until `packets` were consumed, sleeping on the write index when it is empty. */
function drainRing(ring: SharedArrayBuffer, slots: number, slotBytes: number, packets: number): void {
  const control = new Int32Array(ring, 0, RING_CONTROL_BYTES / 4);
  const lengths = new Uint16Array(ring, RING_CONTROL_BYTES, slots);
  const data = new Uint8Array(ring, RING_CONTROL_BYTES + slots * 2);
  let read = Atomics.load(control, RING_READ);
  while (received < packets) {
    const write = Atomics.load(control, RING_WRITE);
    if (write === read) {
      Atomics.wait(control, RING_WRITE, write, 100);
      continue;
    }
    // Indexes count up without wrapping (2^31 packets is hours of a busy room); slots are index % slots.
    while (read !== write) {
      const slot = read % slots;
      consume(data, slot * slotBytes, lengths[slot]);
      read++;
    }
    Atomics.store(control, RING_READ, read);
  }
}

function sendThroughMainSocket(task: Extract<WorkerTask, { mode: "sendmmsg" }>): void {
  const sender = SendTo.open(task.socketPort);
  if (!sender) {
    self.postMessage({ error: `no socket: ${SendTo.unavailableReason}` });
    return;
  }
  const datagram = new Uint8Array(1216);
  let sent = 0;
  let sendMs = 0;
  const batch = () => {
    const t0 = performance.now();
    for (let i = 0; i < task.batch; i++) {
      datagram[0] = 0x80;
      datagram[2] = (sent >> 8) & 0xff;
      datagram[3] = sent & 0xff;
      sender.queue(datagram, task.to);
      sent++;
    }
    sender.flush();
    sendMs += performance.now() - t0;
    if (sent < task.batches * task.batch) setTimeout(batch, 2);
    else {
      self.postMessage({ sent, sendMs, dropped: sender.dropped, fd: sender.fd });
      sender.close();
    }
  };
  batch();
}
