/**
 * The receive thread's body (a Worker): blocks in libc `poll` on the media socket (its own duplicate of the
 * descriptor) and a wake-up eventfd, reads every queued datagram with `recvmmsg(MSG_DONTWAIT)` straight into
 * the shared ring (receive_ring.ts), publishes them and wakes the main thread with `Atomics.notify`. The FFI
 * calls are synchronous, so only this thread blocks. It stops when the ring's stop flag is set (the eventfd
 * wakes it), then closes the socket descriptor it was given (the eventfd belongs to the main thread). Messages: in `{ buffer, slots, slotBytes, fd,
 * wakeFd }`; out `"ready"` once running, `"stopped"` at the end, or `{ error }`.
 */
import { ReceiveRing, RING_HEAD } from "./receive_ring.ts";

const SYMBOLS = {
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;
const MSG_DONTWAIT = 0x40;
const POLLIN = 0x1;
const POLLNVAL = 0x20;
/** Largest number of datagrams one `recvmmsg` reads. */
const BATCH = 64;
/** How long a full ring waits for the main thread before looking at the stop flag again. */
const FULL_WAIT_MS = 100;

interface Start {
  buffer: SharedArrayBuffer;
  slots: number;
  slotBytes: number;
  fd: number;
  wakeFd: number;
}

function run({ buffer, slots, slotBytes, fd, wakeFd }: Start): void {
  const lib = Deno.dlopen("libc.so.6", SYMBOLS);
  try {
    const ring = new ReceiveRing(slots, slotBytes, buffer);
    ring.writePointers(BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(buffer)))));
    // One view per slot's header, so no view is made per call.
    const headers: Uint8Array[] = [];
    for (let i = 0; i < slots; i++) headers.push(ring.headers.subarray(ring.headerOffset(i)));
    // struct pollfd { int fd; short events; short revents; } for the socket and the eventfd.
    const pollFds = new Uint8Array(16);
    const pollView = new DataView(pollFds.buffer);
    pollView.setInt32(0, fd, true);
    pollView.setInt16(4, POLLIN, true);
    pollView.setInt32(8, wakeFd, true);
    pollView.setInt16(12, POLLIN, true);
    self.postMessage("ready");
    const { recvmmsg, poll } = lib.symbols;
    // Reads until a call returns less than it asked for (the socket is then empty, so the next step is
    // poll, not a call that would only say EAGAIN): one poll and one recvmmsg per wake-up when idle.
    let drained = true;
    while (!ring.stopped) {
      if (drained) {
        if (poll(pollFds, 2n, -1) < 0) continue; // EINTR
        if ((pollView.getInt16(6, true) & POLLNVAL) !== 0) {
          throw new Error("the socket descriptor is invalid");
        }
        if (ring.stopped) break;
      }
      const room = ring.writable(BATCH);
      if (room.count === 0) {
        ring.waitForRoom(FULL_WAIT_MS);
        drained = false;
        continue;
      }
      const asked = room.count;
      const n = recvmmsg(fd, headers[room.start], asked, MSG_DONTWAIT, null);
      if (n > 0) {
        ring.publish(n);
        Atomics.notify(ring.control, RING_HEAD, 1);
      }
      // Fewer than asked: empty now (or a pending ICMP error this call consumed); as many: maybe more.
      drained = n < asked;
    }
  } finally {
    lib.symbols.close(fd);
    lib.close();
  }
}

self.onmessage = (event: MessageEvent<Start>) => {
  try {
    run(event.data);
    self.postMessage("stopped");
  } catch (e) {
    self.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
  self.close();
};
