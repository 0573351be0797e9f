/**
 * Packet-index bookkeeping shared by both SRTP backends: RTP index estimation with the rollover counter
 * (RFC 3711 §3.3.1) and the receiver's sliding replay window (RFC 3711 §3.3.2). Pure, no crypto.
 */

/**
 * Default replay window: 1024 packets (RFC 3711 asks for at least 64). A publisher without RTX resends a
 * NACKed packet under its original index, which may arrive well after newer ones; libwebrtc sizes its own
 * window at 1024 for that reason. About 3 s of a 2.5 Mbit/s stream.
 */
export const DEFAULT_REPLAY_WINDOW = 1024;

/**
 * The 48-bit packet index (ROC·2^16 + SEQ) a sequence number most likely belongs to, given the highest index
 * seen so far (-1 when none): the one of ROC-1, ROC, ROC+1 closest to the highest sequence number. Returns
 * a negative number for a packet that would precede index 0.
 */
export function estimateIndex(highestIndex: number, seq: number): number {
  if (highestIndex < 0) return seq;
  const roc = Math.floor(highestIndex / 65536);
  const highestSeq = highestIndex - roc * 65536;
  let v = roc;
  if (highestSeq < 32768) {
    if (seq - highestSeq > 32768) v = roc - 1;
  } else if (highestSeq - 32768 > seq) {
    v = roc + 1;
  }
  return v * 65536 + seq;
}

/** The receiver's record of which recent indices were accepted. */
export class ReplayWindow {
  readonly size: number;
  /** Highest accepted index, -1 before the first packet. */
  highest = -1;
  #bits: Uint32Array;

  constructor(size = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < 64 || size % 32 !== 0) {
      throw new RangeError(`replay window must be a multiple of 32 and at least 64 (got ${size})`);
    }
    this.size = size;
    this.#bits = new Uint32Array(size / 32);
  }

  /** Whether a packet with this index may be accepted: new, or inside the window and not seen yet. */
  accepts(index: number): boolean {
    if (index < 0) return false;
    if (index > this.highest) return true;
    if (this.highest - index >= this.size) return false;
    const slot = index % this.size;
    return (this.#bits[slot >>> 5] & (1 << (slot & 31))) === 0;
  }

  /** Records an index after the packet authenticated. */
  commit(index: number): void {
    if (index > this.highest) {
      const advance = this.highest < 0 ? this.size : index - this.highest;
      if (advance >= this.size) {
        this.#bits.fill(0);
      } else {
        for (let i = this.highest + 1; i < index; i++) {
          const slot = i % this.size;
          this.#bits[slot >>> 5] &= ~(1 << (slot & 31));
        }
      }
      this.highest = index;
    }
    const slot = index % this.size;
    this.#bits[slot >>> 5] |= 1 << (slot & 31);
  }
}

/** Per-SSRC state of one direction: the highest index (which carries the ROC) and, on receive, the window. */
export interface StreamState {
  highestIndex: number;
  window: ReplayWindow | undefined;
}

/** A bounded SSRC → state table; states are only created for packets that authenticated. */
export class StreamTable {
  readonly maxStreams: number;
  #windowSize: number;
  #streams = new Map<number, StreamState>();
  // One-entry cache: a sender or receiver usually sees runs of the same SSRC.
  #lastSsrc = -1;
  #last: StreamState | undefined;

  constructor(windowSize: number, maxStreams = 64) {
    this.#windowSize = windowSize;
    this.maxStreams = maxStreams;
  }

  /** The state of `ssrc`, or undefined when the SSRC was never committed. */
  get(ssrc: number): StreamState | undefined {
    if (ssrc === this.#lastSsrc) return this.#last;
    const state = this.#streams.get(ssrc);
    if (state) {
      this.#lastSsrc = ssrc;
      this.#last = state;
    }
    return state;
  }

  /** The state of `ssrc`, created when there is room; undefined when the table is full. */
  getOrCreate(ssrc: number, withWindow: boolean): StreamState | undefined {
    const existing = this.get(ssrc);
    if (existing) return existing;
    if (this.#streams.size >= this.maxStreams) return undefined;
    const state: StreamState = {
      highestIndex: -1,
      window: withWindow ? new ReplayWindow(this.#windowSize) : undefined,
    };
    this.#streams.set(ssrc, state);
    this.#lastSsrc = ssrc;
    this.#last = state;
    return state;
  }
}
