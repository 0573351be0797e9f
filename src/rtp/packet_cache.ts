/**
 * A ring of recent RTP packets of one stream, indexed by sequence number: answers NACKs and holds the GOP a
 * joining viewer is replayed from. Each slot's buffer is allocated the first time it is used and reused
 * afterwards: storing a packet copies it into its slot, nothing is allocated per packet once the ring has
 * filled, and an idle session costs almost nothing. The ring can grow (a longer GOP) but never shrinks.
 */

const SLOT_BYTES = 1500;

/** Recent packets of one RTP stream. */
export class PacketCache {
  #size: number;
  #slots: (Uint8Array | undefined)[];
  #lengths: Int32Array;
  #seqs: Int32Array;

  /** `size` must be a power of two (slot = seq & (size - 1)). */
  constructor(size = 512) {
    checkSize(size);
    this.#size = size;
    this.#slots = new Array(size);
    this.#lengths = new Int32Array(size);
    this.#seqs = new Int32Array(size).fill(-1);
  }

  /** How many packets the ring holds. */
  get capacity(): number {
    return this.#size;
  }

  /** Keeps a copy of `packet` under `seq`; packets larger than a slot are not kept. */
  store(seq: number, packet: Uint8Array): void {
    const slot = seq & (this.#size - 1);
    if (packet.length > SLOT_BYTES) {
      this.#seqs[slot] = -1;
      return;
    }
    (this.#slots[slot] ??= new Uint8Array(SLOT_BYTES)).set(packet);
    this.#lengths[slot] = packet.length;
    this.#seqs[slot] = seq;
  }

  /** The packet stored under `seq` (a view valid until the slot is reused), or undefined. */
  get(seq: number): Uint8Array | undefined {
    const slot = seq & (this.#size - 1);
    if (this.#seqs[slot] !== seq) return undefined;
    return this.#slots[slot]!.subarray(0, this.#lengths[slot]);
  }

  /** Length of the packet stored under `seq`, or -1. */
  lengthOf(seq: number): number {
    const slot = seq & (this.#size - 1);
    return this.#seqs[slot] === seq ? this.#lengths[slot] : -1;
  }

  /** Makes the ring hold `size` packets (a power of two), keeping what it holds; never shrinks. */
  grow(size: number): void {
    checkSize(size);
    if (size <= this.#size) return;
    const slots: (Uint8Array | undefined)[] = new Array(size);
    const lengths = new Int32Array(size);
    const seqs = new Int32Array(size).fill(-1);
    for (let i = 0; i < this.#size; i++) {
      const seq = this.#seqs[i];
      if (seq < 0) continue;
      // Distinct in the low bits of the old size, so distinct in the low bits of the new one too.
      const slot = seq & (size - 1);
      slots[slot] = this.#slots[i];
      lengths[slot] = this.#lengths[i];
      seqs[slot] = seq;
    }
    this.#size = size;
    this.#slots = slots;
    this.#lengths = lengths;
    this.#seqs = seqs;
  }

  /** Forgets everything (a new stream). */
  clear(): void {
    this.#seqs.fill(-1);
  }
}

function checkSize(size: number): void {
  if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError("PacketCache size must be a power of two");
}
