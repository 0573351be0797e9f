/**
 * The bookkeeping every video depacketizer shares: one reusable, capped buffer for the frame being
 * rebuilt, its timestamp, and sequence-number continuity (a gap breaks the frame; late packets are ignored).
 * Allocates only when a frame outgrows the buffer.
 */

/** One rebuilt picture. `data` may be a view into a reused buffer: valid until the next `push`. */
export interface VideoFrame {
  data: Uint8Array;
  /** RTP timestamp of the frame's packets. */
  timestamp: number;
  /** A picture a decoder can start from (with its sequence header / parameter sets where the codec has them). */
  isKeyframe: boolean;
  /** Picture size from the bitstream, when the codec's headers carried it. */
  width?: number;
  height?: number;
}

/** What the room needs of a depacketizer, whatever the codec. */
export interface VideoDepacketizer {
  /** Takes one RTP payload; returns a frame when this packet completes one. */
  push(
    payload: Uint8Array,
    sequenceNumber: number,
    timestamp: number,
    marker: boolean,
  ): VideoFrame | undefined;
  /** Forgets any partial frame and the sequence history (the publisher's stream changed). */
  reset(): void;
}

/** Largest frame kept; bigger ones are dropped (a 4K keyframe at high quality is ~1-2 MiB). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
const INITIAL_BYTES = 64 * 1024;
const MAX_LATE_RUN = 16;

/** A frame under construction; see the module comment. */
export class FrameBuffer {
  #buf = new Uint8Array(INITIAL_BYTES);
  length = 0;
  /** A frame is open (its first packet was seen). */
  active = false;
  /** The open frame lost a packet, overflowed or was malformed: it will be dropped. */
  broken = false;
  timestamp = 0;
  #lastSeq = -1;
  #lateRun = 0;

  /**
   * Sequence bookkeeping for one packet: "late" for a duplicate or reordered packet (ignore it), "gap" when
   * packets are missing before it, "next" otherwise. A long run of late packets means the sender's numbering
   * jumped back (a restarted encoder), so the reader resynchronizes.
   */
  sequence(sequenceNumber: number): "next" | "gap" | "late" {
    const seq = sequenceNumber & 0xffff;
    if (this.#lastSeq < 0) {
      this.#lastSeq = seq;
      return "next";
    }
    const delta = (seq - this.#lastSeq) & 0xffff;
    if (delta === 0) return "late";
    if (delta >= 0x8000 && ++this.#lateRun < MAX_LATE_RUN) return "late";
    this.#lateRun = 0;
    this.#lastSeq = seq;
    return delta === 1 ? "next" : "gap";
  }

  /** Opens a new frame (dropping any open one). */
  open(timestamp: number): void {
    this.active = true;
    this.broken = false;
    this.timestamp = timestamp;
    this.length = 0;
  }

  close(): void {
    this.active = false;
    this.broken = false;
    this.length = 0;
  }

  /** Forgets the open frame and the sequence history. */
  reset(): void {
    this.close();
    this.#lastSeq = -1;
    this.#lateRun = 0;
  }

  /** Appends bytes, marking the frame broken when it would exceed {@link MAX_FRAME_BYTES}. */
  write(bytes: Uint8Array, start = 0, end = bytes.length): void {
    const n = end - start;
    if (n <= 0 || this.broken) return;
    if (!this.#reserve(n)) return;
    this.#buf.set(bytes.subarray(start, end), this.length);
    this.length += n;
  }

  writeByte(value: number): void {
    if (this.broken || !this.#reserve(1)) return;
    this.#buf[this.length++] = value;
  }

  /** The bytes written so far (a view, valid until the next write). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }

  #reserve(n: number): boolean {
    const needed = this.length + n;
    if (needed > MAX_FRAME_BYTES) {
      this.broken = true;
      return false;
    }
    if (needed > this.#buf.length) {
      const grown = new Uint8Array(Math.min(MAX_FRAME_BYTES, Math.max(needed, this.#buf.length * 2)));
      grown.set(this.#buf.subarray(0, this.length));
      this.#buf = grown;
    }
    return true;
  }
}
