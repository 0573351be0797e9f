/**
 * Receiving the media socket on a thread of its own. A Deno `receive` costs one async op and one wake-up of
 * the main thread per datagram (20–24 µs of CPU per paced datagram measured here, more than the rest of the
 * receive path). Instead a Worker (receive_thread_worker.ts) blocks in libc `poll`/`recvmmsg` on a duplicate
 * of the socket's descriptor and fills a shared ring (receive_ring.ts); the main thread sleeps in
 * `Atomics.waitAsync` and, per wake-up, handles every datagram in the ring, then calls `batchDone` once (the
 * socket flushes its outbox there). Datagrams are handed over as views of the ring, valid only during the
 * call, with the source in one reused address object. Linux, IPv4 sockets and --allow-ffi only: {@link
 * ReceiveThread.open} says why not otherwise, and the caller keeps Deno's receive.
 */
import { ReceiveRing, RING_HEAD } from "./receive_ring.ts";
import { socketFd, socketFdUnavailableReason } from "./socket_fd.ts";

const SYMBOLS = {
  dup: { parameters: ["i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;
const EFD_CLOEXEC = 0o2000000;

/** Slots in the ring (the kernel's default receive buffer holds ~90–180 datagrams). */
const RING_SLOTS = 512;
/** Largest datagram kept whole; longer ones are counted and dropped (media and DTLS stay near the MTU). */
const SLOT_BYTES = 4096;

/** The source of the datagram being handled: one object, rewritten for each datagram. */
export interface ReceivedFrom {
  hostname: string;
  port: number;
}

/** What the thread hands the socket. */
export interface ReceiveHandlers {
  /** One datagram; `data` and `from` are valid only during the call. */
  datagram(data: Uint8Array, from: ReceivedFrom, now: number): void;
  /** After each drained batch. */
  batchDone(): void;
  /** A datagram longer than a slot, dropped. */
  oversize(): void;
}

/** A receive thread bound to one socket. */
export class ReceiveThread {
  #ring = new ReceiveRing(RING_SLOTS, SLOT_BYTES);
  #worker: Worker;
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #wakeFd: number;
  #closed = false;
  /** For {@link ReceiveRing.deliver}: a close during a datagram's handling stops the batch. */
  #isClosed = (): boolean => this.#closed;
  /** Why the thread ended before {@link close}, once it did. */
  #failure: string | undefined;
  #threadDone = false;
  #stopped: Promise<void>;
  #ready: Promise<string | undefined>;
  #from: ReceivedFrom = { hostname: "", port: 0 };

  private constructor(fd: number, wakeFd: number, lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.#lib = lib;
    this.#wakeFd = wakeFd;
    this.#worker = new Worker(new URL("./receive_thread_worker.ts", import.meta.url), { type: "module" });
    let ready: (failure: string | undefined) => void = () => {};
    let stopped: () => void = () => {};
    this.#ready = new Promise((resolve) => ready = resolve);
    this.#stopped = new Promise((resolve) => stopped = resolve);
    const done = (failure: string) => {
      if (this.#threadDone) return;
      this.#threadDone = true;
      this.#failure = failure;
      ready(failure);
      this.#worker.terminate();
      this.#lib.symbols.close(this.#wakeFd);
      this.#lib.close();
      // Wakes run() so it sees the thread is gone.
      Atomics.notify(this.#ring.control, RING_HEAD);
      stopped();
    };
    this.#worker.onmessage = (event: MessageEvent<string | { error: string }>) => {
      if (event.data === "ready") ready(undefined);
      else {done(
          typeof event.data === "object" ? `the receive thread failed: ${event.data.error}` : "stopped",
        );}
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      done(`the receive thread failed: ${event.message}`);
    };
    this.#worker.postMessage({
      buffer: this.#ring.buffer,
      slots: RING_SLOTS,
      slotBytes: SLOT_BYTES,
      fd,
      wakeFd,
    });
  }

  /** Why the last {@link open} returned undefined. */
  static unavailableReason: string | undefined;

  /**
   * Starts a thread reading the UDP socket bound to `port`, or returns undefined (see
   * {@link unavailableReason}). The thread reads a duplicate descriptor, so closing the socket's Deno handle
   * never leaves it reading a reused descriptor number.
   */
  static open(conn: Deno.DatagramConn): ReceiveThread | undefined {
    const address = conn.addr as Deno.NetAddr;
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(address.hostname)) {
      ReceiveThread.unavailableReason = "the socket is not IPv4";
      return undefined;
    }
    if (typeof SharedArrayBuffer !== "function" || typeof Atomics.waitAsync !== "function") {
      ReceiveThread.unavailableReason = "no SharedArrayBuffer or Atomics.waitAsync";
      return undefined;
    }
    const fd = socketFd(address.port);
    if (fd === undefined) {
      ReceiveThread.unavailableReason = socketFdUnavailableReason;
      return undefined;
    }
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen("libc.so.6", SYMBOLS);
    } catch (e) {
      ReceiveThread.unavailableReason = `libc through FFI: ${(e as Error).message.split("\n")[0]}`;
      return undefined;
    }
    const copy = lib.symbols.dup(fd);
    const wakeFd = lib.symbols.eventfd(0, EFD_CLOEXEC);
    if (copy < 0 || wakeFd < 0) {
      if (copy >= 0) lib.symbols.close(copy);
      if (wakeFd >= 0) lib.symbols.close(wakeFd);
      lib.close();
      ReceiveThread.unavailableReason = "dup or eventfd failed";
      return undefined;
    }
    try {
      return new ReceiveThread(copy, wakeFd, lib);
    } catch (e) {
      lib.symbols.close(copy);
      lib.symbols.close(wakeFd);
      lib.close();
      ReceiveThread.unavailableReason = `no worker: ${(e as Error).message.split("\n")[0]}`;
      return undefined;
    }
  }

  /**
   * Resolves undefined once the thread is reading, or the reason it is not (then nothing was read, and the
   * caller reads the socket itself).
   */
  ready(): Promise<string | undefined> {
    return this.#ready;
  }

  /** Hands datagrams to `handlers` until {@link close}; throws if the thread ends on its own. */
  async run(handlers: ReceiveHandlers): Promise<void> {
    const ring = this.#ring;
    const control = ring.control;
    const from = this.#from;
    while (!this.#closed) {
      const filled = ring.filled();
      if (filled === 0) {
        if (this.#threadDone) throw new Error(this.#failure);
        const wait = Atomics.waitAsync(control, RING_HEAD, ring.head());
        if (wait.async) await wait.value;
        continue;
      }
      const now = performance.now();
      try {
        ring.deliver(filled, from, now, handlers, this.#isClosed);
      } finally {
        ring.release(filled);
        handlers.batchDone();
      }
    }
  }

  /** Stops the thread (it closes its descriptors when it wakes, within microseconds). */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#ring.stop();
      // Wakes a waiting run() so it sees the flag.
      Atomics.notify(this.#ring.control, RING_HEAD);
      if (!this.#threadDone) this.#lib.symbols.write(this.#wakeFd, new BigUint64Array([1n]), 8n);
    }
    return this.#stopped;
  }
}
