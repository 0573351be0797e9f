/**
 * Sending on the media socket through libc via FFI: `sendto` for single datagrams and `sendmmsg` for the
 * burst one publisher packet fans out into. The kernel copies each datagram before the call returns, so
 * callers may reuse their buffer, and no promise or op is created per packet (measured: ~6 us instead of
 * ~10 us of server CPU per forwarded packet with Deno's send). The descriptor is found by socket_fd.ts. IPv4 on Linux only; `send`/`queue` return false when they cannot (IPv6, oversize),
 * and `open` returns undefined without --allow-ffi, so the caller falls back to Deno's send.
 */
import { socketFd, socketFdUnavailableReason } from "./socket_fd.ts";

const SYMBOLS = {
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
} as const;
const MSG_DONTWAIT = 0x40;
const IPV4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/;

/** Datagrams one batch can hold, and the largest datagram queued (bigger ones are sent alone). */
const BATCH_SIZE = 128;
const SLOT_BYTES = 2048;
/** struct sockaddr_in, struct iovec and struct mmsghdr sizes on 64-bit Linux. */
const SOCKADDR_BYTES = 16;
const IOVEC_BYTES = 16;
const MMSGHDR_BYTES = 64;

/** The destinations' sockaddr_in bytes, cached per address object (peers keep theirs). */
interface Destination {
  hostname: string;
  port: number;
  sockaddr: Uint8Array;
}

/** FFI `sendto`/`sendmmsg` bound to the media socket's descriptor. */
export class SendTo {
  #fd: number;
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #destinations = new WeakMap<object, Destination>();
  // The batch: datagram slots, sockaddrs, iovecs and mmsghdrs in fixed buffers whose addresses are written
  // into the headers once. ArrayBuffer backing stores do not move, so the pointers stay valid.
  #data = new Uint8Array(BATCH_SIZE * SLOT_BYTES);
  #names = new Uint8Array(BATCH_SIZE * SOCKADDR_BYTES);
  #iovecs = new DataView(new ArrayBuffer(BATCH_SIZE * IOVEC_BYTES));
  #headers = new Uint8Array(BATCH_SIZE * MMSGHDR_BYTES);
  /** One view per slot, made once: a datagram can be written straight into its slot (see {@link reserve}). */
  #slots: Uint8Array[] = [];
  #queued = 0;
  /** Datagrams the kernel did not take at flush (EAGAIN); counted as send errors by the caller. */
  dropped = 0;
  /** `sendmmsg` calls made, including the flush {@link reserve} makes when the batch is full. */
  batches = 0;

  private constructor(fd: number, lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.#fd = fd;
    this.#lib = lib;
    const address = (view: ArrayBufferView) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
    const data = address(this.#data);
    const names = address(this.#names);
    const iovecs = address(this.#iovecs);
    const headers = new DataView(this.#headers.buffer);
    for (let i = 0; i < BATCH_SIZE; i++) {
      this.#iovecs.setBigUint64(i * IOVEC_BYTES, data + BigInt(i * SLOT_BYTES), true);
      const h = i * MMSGHDR_BYTES;
      headers.setBigUint64(h, names + BigInt(i * SOCKADDR_BYTES), true); // msg_name
      headers.setUint32(h + 8, SOCKADDR_BYTES, true); // msg_namelen
      headers.setBigUint64(h + 16, iovecs + BigInt(i * IOVEC_BYTES), true); // msg_iov
      headers.setBigUint64(h + 24, 1n, true); // msg_iovlen
      this.#slots.push(this.#data.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES));
    }
  }

  /** Why the last {@link open} returned undefined. */
  static unavailableReason: string | undefined;

  /** Finds the UDP socket bound to `port` in this process; undefined when FFI is unavailable. */
  static open(port: number): SendTo | undefined {
    const fd = socketFd(port);
    if (fd === undefined) {
      SendTo.unavailableReason = socketFdUnavailableReason;
      return undefined;
    }
    try {
      return new SendTo(fd, Deno.dlopen("libc.so.6", SYMBOLS));
    } catch (e) {
      SendTo.unavailableReason = `libc through FFI: ${(e as Error).message.split("\n")[0]}`;
      return undefined;
    }
  }

  /** Sends on a descriptor found earlier (a fan-out worker uses the main thread's media socket). */
  static onDescriptor(fd: number): SendTo {
    return new SendTo(fd, Deno.dlopen("libc.so.6", SYMBOLS));
  }

  /** The descriptor datagrams are sent from. */
  get fd(): number {
    return this.#fd;
  }

  /** Sends one datagram now; false when it was not sent (the caller then uses Deno's send). */
  send(data: Uint8Array, to: { hostname: string; port: number }): boolean {
    const destination = this.#destination(to);
    if (!destination) return false;
    return this.#lib.symbols.sendto(
      this.#fd,
      data,
      BigInt(data.length),
      MSG_DONTWAIT,
      destination.sockaddr,
      16,
    ) >=
      0;
  }

  /** Copies a datagram into the batch (sent by {@link flush}); false when it cannot be batched. */
  queue(data: Uint8Array, to: { hostname: string; port: number }): boolean {
    if (data.length > SLOT_BYTES) return false;
    const slot = this.reserve(to);
    if (!slot) return false;
    slot.set(data);
    this.commit(data.length);
    return true;
  }

  /**
   * The next slot of the batch (2048 bytes), addressed to `to`, for the caller to write a datagram into and
   * then {@link commit}; undefined when `to` cannot be batched (IPv6). Nothing is queued until the commit.
   */
  reserve(to: { hostname: string; port: number }): Uint8Array | undefined {
    const destination = this.#destination(to);
    if (!destination) return undefined;
    if (this.#queued === BATCH_SIZE) this.flush();
    this.#names.set(destination.sockaddr, this.#queued * SOCKADDR_BYTES);
    return this.#slots[this.#queued];
  }

  /** Queues the datagram of `length` bytes written into the slot {@link reserve} returned. */
  commit(length: number): void {
    // iov_len is 64 bits; its high half stays 0 (no BigInt per datagram).
    this.#iovecs.setUint32(this.#queued * IOVEC_BYTES + 8, length, true);
    this.#queued++;
  }

  /** Sends everything queued with one `sendmmsg` (more if the kernel takes only part). */
  flush(): void {
    let sent = 0;
    while (sent < this.#queued) {
      const n = this.#lib.symbols.sendmmsg(
        this.#fd,
        this.#headers.subarray(sent * MMSGHDR_BYTES),
        this.#queued - sent,
        MSG_DONTWAIT,
      );
      this.batches++;
      if (n <= 0) {
        // EAGAIN with a full send buffer, or an error on the first message: skip it and go on, so one bad
        // destination never holds back the others.
        this.dropped++;
        sent++;
        continue;
      }
      sent += n;
    }
    this.#queued = 0;
  }

  close(): void {
    this.#lib.close();
  }

  #destination(to: { hostname: string; port: number }): Destination | undefined {
    let destination = this.#destinations.get(to);
    if (!destination || destination.hostname !== to.hostname || destination.port !== to.port) {
      const m = IPV4.exec(to.hostname);
      if (!m) return undefined;
      const sockaddr = new Uint8Array(SOCKADDR_BYTES);
      sockaddr[0] = 2; // AF_INET, little-endian sa_family_t
      sockaddr[2] = to.port >> 8;
      sockaddr[3] = to.port & 0xff;
      for (let i = 0; i < 4; i++) sockaddr[4 + i] = Number(m[i + 1]);
      destination = { hostname: to.hostname, port: to.port, sockaddr };
      this.#destinations.set(to, destination);
    }
    return destination;
  }
}
