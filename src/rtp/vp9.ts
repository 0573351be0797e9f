/**
 * VP9 over RTP (RFC 9628): the payload descriptor (flexible and non-flexible mode, scalability structure),
 * keyframe detection, and a depacketizer that rebuilds the base spatial layer's frames.
 */
import { BitReader, Truncated } from "./bit_reader.ts";
import { FrameBuffer, type VideoDepacketizer, type VideoFrame } from "./frame_buffer.ts";

/** The descriptor fields the server uses. */
export interface Vp9Descriptor {
  /** Bytes before the VP9 frame data. */
  length: number;
  /** P: inter-picture predicted (not a keyframe). */
  predicted: boolean;
  /** B / E: first / last packet of a layer frame. */
  begins: boolean;
  ends: boolean;
  /** Spatial layer id (0 without layer indices). */
  spatialId: number;
  /** Largest layer's size from a scalability structure with resolutions, else 0. */
  width: number;
  height: number;
}

/** Reads the descriptor into `out`; false when the payload is too short or malformed. */
export function readVp9Descriptor(p: Uint8Array, out: Vp9Descriptor): boolean {
  if (p.length < 1) return false;
  const b = p[0];
  let off = 1;
  if (b & 0x80) off += off < p.length && p[off] & 0x80 ? 2 : 1; // picture id, 7 or 15 bits
  out.spatialId = 0;
  if (b & 0x20) {
    if (off >= p.length) return false;
    out.spatialId = (p[off] >> 1) & 0x07;
    off += b & 0x10 ? 1 : 2; // non-flexible mode adds TL0PICIDX
  }
  if ((b & 0x50) === 0x50) {
    // Flexible mode with P: up to three P_DIFF bytes, N (lowest bit) says another follows.
    for (let i = 0; i < 3; i++) {
      if (off >= p.length) return false;
      if ((p[off++] & 0x01) === 0) break;
    }
  }
  out.width = 0;
  out.height = 0;
  if (b & 0x02) {
    if (off >= p.length) return false;
    const ss = p[off++];
    const layers = (ss >> 5) + 1;
    if (ss & 0x10) {
      if (off + 4 * layers > p.length) return false;
      const last = off + 4 * (layers - 1);
      out.width = (p[last] << 8) | p[last + 1];
      out.height = (p[last + 2] << 8) | p[last + 3];
      off += 4 * layers;
    }
    if (ss & 0x08) {
      if (off >= p.length) return false;
      let groups = p[off++];
      while (groups-- > 0) {
        if (off >= p.length) return false;
        off += 1 + ((p[off] >> 2) & 0x03);
      }
    }
  }
  if (off > p.length) return false;
  out.length = off;
  out.predicted = (b & 0x40) !== 0;
  out.begins = (b & 0x08) !== 0;
  out.ends = (b & 0x04) !== 0;
  return true;
}

/**
 * What a VP9 frame's uncompressed header (VP9 spec §6.2) says: "key" with the size, "inter", or
 * "unknown" (not a VP9 header, e.g. end-to-end encrypted). Reads a handful of bytes, no allocation.
 */
export function vp9FrameKind(
  frame: Uint8Array,
  size?: { width: number; height: number },
): "key" | "inter" | "unknown" {
  if (frame.length < 1 || (frame[0] >> 6) !== 2) return "unknown";
  try {
    const r = new BitReader(frame);
    r.bits(2);
    const profile = r.bit() | (r.bit() << 1);
    if (profile === 3) r.bit();
    if (r.bit()) return "inter"; // show_existing_frame
    if (r.bit()) return "inter"; // frame_type 1 = NON_KEY_FRAME
    r.bits(2); // show_frame, error_resilient_mode
    if (r.bits(24) !== 0x498342) return "unknown";
    if (size) {
      if (profile >= 2) r.bit();
      const colorSpace = r.bits(3);
      if (colorSpace !== 7) {
        r.bit();
        if (profile === 1 || profile === 3) r.bits(3);
      } else if (profile === 1 || profile === 3) r.bit();
      size.width = r.bits(16) + 1;
      size.height = r.bits(16) + 1;
    }
    return "key";
  } catch (e) {
    if (e instanceof Truncated) return "unknown";
    throw e;
  }
}

const scratch: Vp9Descriptor = {
  length: 0,
  predicted: false,
  begins: false,
  ends: false,
  spatialId: 0,
  width: 0,
  height: 0,
};

/**
 * True when the packet begins a base-layer keyframe: B set, P clear, spatial layer 0, and (when the
 * payload is readable) a key frame header. The header check matters: some packetizers (ffmpeg) never set P.
 */
export function vp9StartsKeyframe(payload: Uint8Array): boolean {
  if (!readVp9Descriptor(payload, scratch)) return false;
  if (!scratch.begins || scratch.predicted || scratch.spatialId !== 0) return false;
  return vp9FrameKind(payload.subarray(scratch.length)) !== "inter";
}

/**
 * Reassembles the base spatial layer's frames (B to E of spatial layer 0): enough for the frame rate,
 * the picture size and a thumbnail; higher layers are forwarded, not rebuilt.
 */
export class Vp9Depacketizer implements VideoDepacketizer {
  #frame = new FrameBuffer();
  #descriptor: Vp9Descriptor = { ...scratch };
  #out: VideoFrame = { data: new Uint8Array(0), timestamp: 0, isKeyframe: false };
  #size = { width: 0, height: 0 };
  #isKeyframe = false;

  push(
    payload: Uint8Array,
    sequenceNumber: number,
    timestamp: number,
    _marker: boolean,
  ): VideoFrame | undefined {
    const frame = this.#frame;
    const order = frame.sequence(sequenceNumber);
    if (order === "late") return undefined;
    const d = this.#descriptor;
    if (!readVp9Descriptor(payload, d)) {
      if (frame.active) frame.broken = true;
      return undefined;
    }
    if (d.spatialId !== 0) {
      if (order === "gap" && frame.active) frame.broken = true;
      return undefined;
    }
    if (d.begins) {
      frame.open(timestamp);
      const data = payload.subarray(d.length);
      this.#isKeyframe = !d.predicted && vp9FrameKind(data, this.#size) === "key";
      if (d.width > 0) {
        this.#size.width = d.width;
        this.#size.height = d.height;
      }
    } else if (!frame.active || frame.timestamp !== timestamp) {
      frame.close();
      return undefined;
    } else if (order === "gap") {
      frame.broken = true;
    }
    frame.write(payload, d.length);
    if (!d.ends) return undefined;
    const complete = !frame.broken;
    const out = this.#out;
    out.data = frame.view();
    out.timestamp = frame.timestamp;
    out.isKeyframe = this.#isKeyframe;
    out.width = this.#size.width || undefined;
    out.height = this.#size.height || undefined;
    frame.close();
    return complete ? out : undefined;
  }

  reset(): void {
    this.#frame.reset();
  }
}
