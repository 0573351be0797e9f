/**
 * A ring of recent RTP packets of one stream, indexed by sequence number, for answering NACKs. Each slot's
 * buffer is allocated the first time it is used and reused afterwards: storing a packet copies it into its
 * slot, nothing is allocated per packet once the ring has filled, and an idle session costs almost nothing.
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
    if ((size & (size - 1)) !== 0) throw new RangeError("PacketCache size must be a power of two");
    this.#size = size;
    this.#slots = new Array(size);
    this.#lengths = new Int32Array(size);
    this.#seqs = new Int32Array(size).fill(-1);
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

  /** Forgets everything (a new stream). */
  clear(): void {
    this.#seqs.fill(-1);
  }
}
