/**
 * The ring a receive thread fills and the main thread drains: one SharedArrayBuffer holding a fixed number of
 * datagram slots, laid out so that Linux `recvmmsg` writes straight into it (an `mmsghdr`, a source address
 * and an `iovec` per slot, each slot's bytes in one data area). One producer (the thread) and one consumer
 * (the main thread) share two counters: `head` (slots written) and `tail` (slots released); both only grow
 * (modulo 2^32), so `head - tail` is the number of filled slots. Pure: no FFI, no clock; the thread writes
 * the pointers with {@link ReceiveRing.writePointers} given the buffer's address.
 */

/** struct mmsghdr and its fields on 64-bit Linux. */
const MMSGHDR_BYTES = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_FLAGS = 48;
const MSG_LEN = 56;
/** Room for a sockaddr_in6 (28 bytes). */
const NAME_BYTES = 32;
const IOVEC_BYTES = 16;
/** MSG_TRUNC in msg_flags: the datagram was longer than its slot. */
const MSG_TRUNC = 0x20;
const AF_INET = 2;

/** Hostnames remembered for sources (cleared when full, so spoofed sources cannot grow it without end). */
const MAX_HOSTNAMES = 4096;

/** Indexes of the shared counters (Int32). */
const HEAD = 0;
const TAIL = 1;
const STOP = 2;
/** Set by the producer while it waits for the consumer to release slots (the ring was full). */
const WAITING = 3;
const CONTROL_BYTES = 64;

/** Where {@link ReceiveRing.deliver} hands the datagrams of a batch. */
export interface RingDatagramHandlers {
  /** One datagram; `data` and `from` are valid only during the call. */
  datagram(data: Uint8Array, from: { hostname: string; port: number }, now: number): void;
  /** A datagram longer than a slot (or from a source this ring does not read), dropped. */
  oversize(): void;
}

/** A datagram ring in shared memory (see the module comment). */
export class ReceiveRing {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  readonly slotBytes: number;
  /** Counters: head, tail, stop (Atomics on these). */
  readonly control: Int32Array;
  readonly headers: Uint8Array;
  #headerView: DataView;
  #names: Uint8Array;
  #data: Uint8Array;
  /** One view per slot, made once. */
  #slotViews: Uint8Array[] = [];
  /** Source hostnames by IPv4 address, so a datagram's source costs no string once its host was seen. */
  #hostnames = new Map<number, string>();
  #headersOffset: number;
  #namesOffset: number;
  #iovecsOffset: number;
  #dataOffset: number;

  /** A new ring of `slots` slots of `slotBytes` each, or a view of an existing one's `buffer`. */
  constructor(slots: number, slotBytes: number, buffer?: SharedArrayBuffer) {
    // A power of two, so the slot index (counter modulo slots) carries on when the counters wrap at 2^32.
    if (!Number.isInteger(slots) || slots < 1 || (slots & (slots - 1)) !== 0) {
      throw new RangeError("a receive ring's slot count must be a power of two");
    }
    if (!Number.isInteger(slotBytes) || slotBytes < 1) {
      throw new RangeError("bytes per slot must be positive");
    }
    this.slots = slots;
    this.slotBytes = slotBytes;
    this.#headersOffset = CONTROL_BYTES;
    this.#namesOffset = this.#headersOffset + slots * MMSGHDR_BYTES;
    this.#iovecsOffset = this.#namesOffset + slots * NAME_BYTES;
    this.#dataOffset = this.#iovecsOffset + slots * IOVEC_BYTES;
    const bytes = this.#dataOffset + slots * slotBytes;
    if (buffer && buffer.byteLength !== bytes) {
      throw new RangeError("the shared buffer does not fit this ring");
    }
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
    this.control = new Int32Array(this.buffer, 0, CONTROL_BYTES / 4);
    this.headers = new Uint8Array(this.buffer, this.#headersOffset, slots * MMSGHDR_BYTES);
    this.#headerView = new DataView(this.buffer, this.#headersOffset, slots * MMSGHDR_BYTES);
    this.#names = new Uint8Array(this.buffer, this.#namesOffset, slots * NAME_BYTES);
    this.#data = new Uint8Array(this.buffer, this.#dataOffset, slots * slotBytes);
    for (let i = 0; i < slots; i++) {
      this.#slotViews.push(this.#data.subarray(i * slotBytes, (i + 1) * slotBytes));
    }
  }

  /**
   * Writes each slot's pointers (source address, iovec, data) given the address of {@link buffer} in this
   * process. Shared memory has one address for every thread, so the producer does this once.
   */
  writePointers(base: bigint): void {
    const view = new DataView(this.buffer);
    for (let i = 0; i < this.slots; i++) {
      const h = this.#headersOffset + i * MMSGHDR_BYTES;
      const iovec = this.#iovecsOffset + i * IOVEC_BYTES;
      view.setBigUint64(h + MSG_NAME, base + BigInt(this.#namesOffset + i * NAME_BYTES), true);
      view.setUint32(h + MSG_NAMELEN, NAME_BYTES, true);
      view.setBigUint64(h + MSG_IOV, base + BigInt(iovec), true);
      view.setBigUint64(h + MSG_IOVLEN, 1n, true);
      view.setBigUint64(iovec, base + BigInt(this.#dataOffset + i * this.slotBytes), true);
      view.setBigUint64(iovec + 8, BigInt(this.slotBytes), true);
    }
  }

  // --- producer side ---

  /**
   * Where the producer may write next: the first free slot's index and how many free slots (at most `limit`)
   * follow it without wrapping (0 when the ring is full). Resets those slots' address lengths, which the
   * kernel overwrites.
   */
  writable(limit: number): { start: number; count: number } {
    const head = Atomics.load(this.control, HEAD);
    const filled = (head - Atomics.load(this.control, TAIL)) >>> 0;
    const start = (head >>> 0) % this.slots;
    const count = Math.min(this.slots - filled, this.slots - start, limit);
    for (let i = 0; i < count; i++) {
      this.#headerView.setUint32((start + i) * MMSGHDR_BYTES + MSG_NAMELEN, NAME_BYTES, true);
    }
    return { start, count };
  }

  /** Byte offset of slot `index`'s mmsghdr within {@link headers} (where `recvmmsg` starts writing). */
  headerOffset(index: number): number {
    return index * MMSGHDR_BYTES;
  }

  /** Makes `count` more slots visible to the consumer; returns the new head. */
  publish(count: number): number {
    return Atomics.add(this.control, HEAD, count) + count;
  }

  /** Records a datagram in slot `index` without `recvmmsg` (tests, and a fallback writer). */
  writeDatagram(index: number, data: Uint8Array, ipv4: [number, number, number, number], port: number): void {
    const length = Math.min(data.length, this.slotBytes);
    this.#slotViews[index].set(data.subarray(0, length));
    const h = index * MMSGHDR_BYTES;
    this.#headerView.setUint32(h + MSG_LEN, length, true);
    this.#headerView.setUint32(h + MSG_FLAGS, data.length > this.slotBytes ? MSG_TRUNC : 0, true);
    const n = index * NAME_BYTES;
    this.#names[n] = AF_INET;
    this.#names[n + 1] = 0;
    this.#names[n + 2] = port >> 8;
    this.#names[n + 3] = port & 0xff;
    this.#names.set(ipv4, n + 4);
  }

  // --- consumer side ---

  /** Slots written and not yet released. */
  filled(): number {
    return (Atomics.load(this.control, HEAD) - Atomics.load(this.control, TAIL)) >>> 0;
  }

  /** The head the consumer last saw is `head`; the value to wait on. */
  head(): number {
    return Atomics.load(this.control, HEAD);
  }

  /** Index of the `offset`-th filled slot (0 = oldest). */
  slotAt(offset: number): number {
    return ((Atomics.load(this.control, TAIL) >>> 0) + offset) % this.slots;
  }

  /** The datagram in slot `index`, a view valid until the slot is released. */
  datagram(index: number): Uint8Array {
    return this.#slotViews[index].subarray(
      0,
      this.#headerView.getUint32(index * MMSGHDR_BYTES + MSG_LEN, true),
    );
  }

  /** Whether slot `index`'s datagram was cut to the slot size. */
  truncated(index: number): boolean {
    return (this.#headerView.getUint32(index * MMSGHDR_BYTES + MSG_FLAGS, true) & MSG_TRUNC) !== 0;
  }

  /** Whether slot `index`'s source is IPv4 (otherwise its address is not read here). */
  sourceIsIPv4(index: number): boolean {
    const n = index * NAME_BYTES;
    return this.#names[n] === AF_INET && this.#names[n + 1] === 0;
  }

  /** Slot `index`'s IPv4 source address as one unsigned number (a.b.c.d = a << 24 | …). */
  sourceIPv4(index: number): number {
    const n = index * NAME_BYTES;
    const names = this.#names;
    return ((names[n + 4] << 24) | (names[n + 5] << 16) | (names[n + 6] << 8) | names[n + 7]) >>> 0;
  }

  /** Slot `index`'s IPv4 source as Deno writes it (`a.b.c.d`), from a bounded cache. */
  sourceHostname(index: number): string {
    const ipv4 = this.sourceIPv4(index);
    let hostname = this.#hostnames.get(ipv4);
    if (hostname === undefined) {
      if (this.#hostnames.size >= MAX_HOSTNAMES) this.#hostnames.clear();
      hostname = `${ipv4 >>> 24}.${(ipv4 >>> 16) & 0xff}.${(ipv4 >>> 8) & 0xff}.${ipv4 & 0xff}`;
      this.#hostnames.set(ipv4, hostname);
    }
    return hostname;
  }

  /** Slot `index`'s source port. */
  sourcePort(index: number): number {
    const n = index * NAME_BYTES;
    return (this.#names[n + 2] << 8) | this.#names[n + 3];
  }

  /**
   * Hands the `count` oldest filled slots to `handlers` in order, rewriting `from` for each; a datagram cut to
   * the slot size or from a non-IPv4 source is counted as oversize instead. Stops early once `stopped()` is
   * true (checked before each datagram). The caller releases the slots.
   */
  deliver(
    count: number,
    from: { hostname: string; port: number },
    now: number,
    handlers: RingDatagramHandlers,
    stopped?: () => boolean,
  ): void {
    for (let i = 0; i < count && !stopped?.(); i++) {
      const slot = this.slotAt(i);
      if (this.truncated(slot) || !this.sourceIsIPv4(slot)) {
        handlers.oversize();
        continue;
      }
      from.hostname = this.sourceHostname(slot);
      from.port = this.sourcePort(slot);
      handlers.datagram(this.datagram(slot), from, now);
    }
  }

  /** Returns `count` slots to the producer. */
  release(count: number): void {
    Atomics.add(this.control, TAIL, count);
    // The producer waits on the tail only when the ring was full.
    if (Atomics.load(this.control, WAITING) !== 0) Atomics.notify(this.control, TAIL, 1);
  }

  /**
   * For the producer when {@link writable} found no room: blocks (a worker thread may) until the consumer
   * releases a slot or `timeoutMs` passes.
   */
  waitForRoom(timeoutMs: number): void {
    const tail = Atomics.load(this.control, TAIL);
    Atomics.store(this.control, WAITING, 1);
    if (this.filled() === this.slots && !this.stopped) Atomics.wait(this.control, TAIL, tail, timeoutMs);
    Atomics.store(this.control, WAITING, 0);
  }

  /** Empties the ring and starts again at slot 0 (when one thread both fills and drains it). */
  reset(): void {
    Atomics.store(this.control, HEAD, 0);
    Atomics.store(this.control, TAIL, 0);
  }

  // --- stopping ---

  /** Asks the producer to stop. */
  stop(): void {
    Atomics.store(this.control, STOP, 1);
    Atomics.notify(this.control, TAIL, 1);
  }

  get stopped(): boolean {
    return Atomics.load(this.control, STOP) !== 0;
  }
}

/** Index of the head counter in {@link ReceiveRing.control} (for `Atomics.wait`/`waitAsync`). */
export const RING_HEAD = HEAD;
/** Index of the tail counter in {@link ReceiveRing.control}. */
export const RING_TAIL = TAIL;
