/**
 * Reading whatever else is queued on the media socket after Deno's receive woke the main thread: one libc
 * `recvmmsg(MSG_DONTWAIT)` through FFI reads up to a batch of datagrams into a ring (receive_ring.ts, here
 * used by one thread), so a burst costs one wake-up instead of one per datagram, and the outbox is flushed
 * once for all of it. Linux, IPv4 sockets and --allow-ffi only; {@link ReceiveDrain.open} says why not
 * otherwise.
 */
import { ReceiveRing } from "./receive_ring.ts";
import { socketFd, socketFdUnavailableReason } from "./socket_fd.ts";
import type { ReceivedFrom, ReceiveHandlers } from "./receive_thread.ts";

const SYMBOLS = {
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
} as const;
const MSG_DONTWAIT = 0x40;
/** Datagrams one call reads (a power of two: the ring's size). */
const BATCH = 64;
/** Calls per {@link ReceiveDrain.drain}, so one drain is bounded (1,024 datagrams) under a flood. */
const CALLS = 16;
/** Largest datagram kept whole; longer ones are counted and dropped (media and DTLS stay near the MTU). */
const SLOT_BYTES = 4096;

/** Non-blocking batch reads on the media socket's descriptor. */
export class ReceiveDrain {
  #fd: number;
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #ring = new ReceiveRing(BATCH, SLOT_BYTES);
  #headers: Uint8Array;
  #from: ReceivedFrom = { hostname: "", port: 0 };

  private constructor(fd: number, lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.#fd = fd;
    this.#lib = lib;
    this.#ring.writePointers(
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(this.#ring.buffer)))),
    );
    this.#headers = this.#ring.headers;
  }

  /** The most datagrams one {@link drain} reads. */
  readonly capacity = BATCH * CALLS;

  /** Why the last {@link open} returned undefined. */
  static unavailableReason: string | undefined;

  /** Batch reads on `conn`'s descriptor, or undefined (see {@link unavailableReason}). */
  static open(conn: Deno.DatagramConn): ReceiveDrain | undefined {
    const address = conn.addr as Deno.NetAddr;
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(address.hostname)) {
      ReceiveDrain.unavailableReason = "the socket is not IPv4";
      return undefined;
    }
    const fd = socketFd(address.port);
    if (fd === undefined) {
      ReceiveDrain.unavailableReason = socketFdUnavailableReason;
      return undefined;
    }
    try {
      return new ReceiveDrain(fd, Deno.dlopen("libc.so.6", SYMBOLS));
    } catch (e) {
      ReceiveDrain.unavailableReason = `libc through FFI: ${(e as Error).message.split("\n")[0]}`;
      return undefined;
    }
  }

  /**
   * Hands every datagram queued now (up to {@link capacity}) to `handlers.datagram`, in order; returns how
   * many were read. Call it only while the socket is open.
   */
  drain(handlers: ReceiveHandlers, now: number): number {
    const ring = this.#ring;
    const from = this.#from;
    let total = 0;
    for (let call = 0; call < CALLS; call++) {
      // Each call fills slots 0.. (the ring is emptied after each batch).
      ring.reset();
      ring.writable(BATCH);
      const n = this.#lib.symbols.recvmmsg(this.#fd, this.#headers, BATCH, MSG_DONTWAIT, null);
      if (n <= 0) break; // empty (EAGAIN), or a pending ICMP error this call consumed
      ring.publish(n);
      try {
        ring.deliver(n, from, now, handlers);
      } finally {
        ring.release(n);
      }
      total += n;
      if (n < BATCH) break;
    }
    return total;
  }

  close(): void {
    this.#lib.close();
  }
}
