/**
 * VP8 over RTP (RFC 7741): the payload descriptor, packet-level keyframe detection, and a depacketizer that
 * rebuilds frames (for the frame rate, the picture size and thumbnails).
 */
import { FrameBuffer, type VideoDepacketizer, type VideoFrame } from "./frame_buffer.ts";

/** Length of the payload descriptor (RFC 7741 §4.2), or -1 when the payload is too short for it. */
export function vp8DescriptorLength(payload: Uint8Array): number {
  if (payload.length < 1) return -1;
  let off = 1;
  if (payload[0] & 0x80) {
    if (payload.length < 2) return -1;
    const x = payload[1];
    off = 2;
    if (x & 0x80) off += off < payload.length && payload[off] & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) off++; // TL0PICIDX
    if (x & 0x30) off++; // TID/Y/KEYIDX
  }
  return off <= payload.length ? off : -1;
}

/** True when the packet starts a VP8 partition 0 (S=1, PID=0) of a key frame (P bit of the frame tag 0). */
export function vp8StartsKeyframe(payload: Uint8Array): boolean {
  const off = vp8DescriptorLength(payload);
  if (off < 0 || off >= payload.length) return false;
  return (payload[0] & 0x17) === 0x10 && (payload[off] & 0x01) === 0;
}

/** Reassembles VP8 frames from RTP payloads; the frame ends at the marker bit. */
export class Vp8Depacketizer implements VideoDepacketizer {
  #frame = new FrameBuffer();
  #out: VideoFrame = { data: new Uint8Array(0), timestamp: 0, isKeyframe: false };
  #isKeyframe = false;
  #width = 0;
  #height = 0;

  push(
    payload: Uint8Array,
    sequenceNumber: number,
    timestamp: number,
    marker: boolean,
  ): VideoFrame | undefined {
    const frame = this.#frame;
    const order = frame.sequence(sequenceNumber);
    if (order === "late") return undefined;
    const off = vp8DescriptorLength(payload);
    const starts = off >= 0 && off < payload.length && (payload[0] & 0x17) === 0x10;
    if (starts) {
      frame.open(timestamp);
      this.#isKeyframe = (payload[off] & 0x01) === 0;
      // Key frame header (RFC 6386 §9.1): 3-byte tag, start code 9d 01 2a, 14-bit width and height.
      if (this.#isKeyframe && payload.length >= off + 10 && payload[off + 3] === 0x9d) {
        this.#width = (payload[off + 6] | (payload[off + 7] << 8)) & 0x3fff;
        this.#height = (payload[off + 8] | (payload[off + 9] << 8)) & 0x3fff;
      }
    } else if (!frame.active || frame.timestamp !== timestamp) {
      frame.close(); // the frame's first packet is lost: nothing to decode until the next one
      return undefined;
    } else if (order === "gap" || off < 0) {
      frame.broken = true;
    }
    if (off >= 0) frame.write(payload, off);
    if (!marker) return undefined;
    const complete = !frame.broken;
    const out = this.#out;
    out.data = frame.view();
    out.timestamp = frame.timestamp;
    out.isKeyframe = this.#isKeyframe;
    out.width = this.#width || undefined;
    out.height = this.#height || undefined;
    frame.close();
    return complete ? out : undefined;
  }

  reset(): void {
    this.#frame.reset();
  }
}
