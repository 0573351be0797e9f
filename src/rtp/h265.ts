/**
 * H.265 over RTP (RFC 7798, without DONL: sprop-max-don-diff=0 as WebRTC senders use it): keyframe
 * detection (IRAP pictures and parameter sets, alone, in aggregation packets or as the first fragment of a
 * fragmentation unit) and a depacketizer that rebuilds access units in Annex B form for ffmpeg.
 */
import { BitReader, Truncated, unescapeRbsp } from "./bit_reader.ts";
import { FrameBuffer, type VideoDepacketizer, type VideoFrame } from "./frame_buffer.ts";

// VPS, SPS and PPS are types 32, 33 and 34.
const VPS = 32;
const SPS = 33;
const AP = 48;
const FU = 49;
const MAX_PARAMETER_SET_BYTES = 4096;

/** IRAP pictures (BLA, IDR, CRA: types 16-21) are where a decoder can start. */
function isIrap(type: number): boolean {
  return type >= 16 && type <= 21;
}

function startsPicture(type: number): boolean {
  return isIrap(type) || type === VPS || type === SPS;
}

/** True when the payload carries the start of a keyframe: an IRAP NAL unit or the VPS/SPS before one. */
export function h265StartsKeyframe(payload: Uint8Array): boolean {
  if (payload.length < 3) return false;
  const type = (payload[0] >> 1) & 0x3f;
  if (type === FU) return (payload[2] & 0x80) !== 0 && isIrap(payload[2] & 0x3f);
  if (type === AP) {
    let off = 2;
    while (off + 2 < payload.length) {
      const size = (payload[off] << 8) | payload[off + 1];
      if (size < 2 || off + 2 + size > payload.length) return false;
      if (startsPicture((payload[off + 2] >> 1) & 0x3f)) return true;
      off += 2 + size;
    }
    return false;
  }
  return startsPicture(type);
}

/** Cropped picture size from an SPS NAL unit (H.265 §7.3.2.2), or undefined when unreadable. */
export function h265SpsSize(nal: Uint8Array): { width: number; height: number } | undefined {
  try {
    const r = new BitReader(unescapeRbsp(nal, 2));
    r.bits(4); // sps_video_parameter_set_id
    const subLayers = r.bits(3);
    r.bit();
    // profile_tier_level(1, subLayers): general part is 88 bits of profile + 8 of level.
    r.bits(32);
    r.bits(32);
    r.bits(24);
    r.bits(8);
    const profilePresent: number[] = [];
    const levelPresent: number[] = [];
    for (let i = 0; i < subLayers; i++) {
      profilePresent.push(r.bit());
      levelPresent.push(r.bit());
    }
    if (subLayers > 0) { for (let i = subLayers; i < 8; i++) r.bits(2); }
    for (let i = 0; i < subLayers; i++) {
      if (profilePresent[i]) {
        r.bits(32);
        r.bits(32);
        r.bits(24);
      }
      if (levelPresent[i]) r.bits(8);
    }
    r.ue(); // sps_seq_parameter_set_id
    const chroma = r.ue();
    if (chroma === 3) r.bit();
    let width = r.ue();
    let height = r.ue();
    if (r.bit()) { // conformance_window_flag
      const subWidth = chroma === 1 || chroma === 2 ? 2 : 1;
      const subHeight = chroma === 1 ? 2 : 1;
      width -= subWidth * (r.ue() + r.ue());
      height -= subHeight * (r.ue() + r.ue());
    }
    return width > 0 && height > 0 && width <= 16384 && height <= 16384 ? { width, height } : undefined;
  } catch (e) {
    if (e instanceof Truncated) return undefined;
    throw e;
  }
}

/** Reassembles H.265 access units (Annex B); one ends at the marker bit. */
export class H265Depacketizer implements VideoDepacketizer {
  #frame = new FrameBuffer();
  #out: VideoFrame = { data: new Uint8Array(0), timestamp: 0, isKeyframe: false };
  #fuOpen = false;
  #hasIrap = false;
  #params = 0; // bit 0 VPS, 1 SPS, 2 PPS seen in this unit
  #saved: (Uint8Array | undefined)[] = [undefined, undefined, undefined];
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
    if (!frame.active || frame.timestamp !== timestamp) {
      frame.open(timestamp);
      this.#fuOpen = false;
      this.#hasIrap = false;
      this.#params = 0;
      // Lost packets before this one may have belonged to this unit: there is no way to tell.
      if (order === "gap") frame.broken = true;
    } else if (order === "gap") {
      frame.broken = true;
    }
    if (!frame.broken) this.#take(payload);
    if (!marker) return undefined;
    const complete = !frame.broken && !this.#fuOpen;
    let data = frame.view();
    let isKeyframe = this.#hasIrap;
    if (complete && isKeyframe && this.#params !== 7) {
      // A keyframe without its parameter sets in-band: put the last ones seen in front (keyframes only).
      const missing = this.#saved.filter((s, i) => s && !(this.#params & (1 << i))) as Uint8Array[];
      if (missing.length + popcount(this.#params) < 3) isKeyframe = false;
      else data = concatAnnexB(missing, data);
    }
    const out = this.#out;
    out.data = data;
    out.timestamp = frame.timestamp;
    out.isKeyframe = isKeyframe;
    out.width = this.#width || undefined;
    out.height = this.#height || undefined;
    frame.close();
    return complete ? out : undefined;
  }

  reset(): void {
    this.#frame.reset();
    this.#fuOpen = false;
  }

  #take(p: Uint8Array): void {
    const frame = this.#frame;
    if (p.length < 3) {
      frame.broken = true;
      return;
    }
    const type = (p[0] >> 1) & 0x3f;
    if (type === FU) {
      const fu = p[2];
      const inner = fu & 0x3f;
      if (fu & 0x80) {
        if (this.#fuOpen) frame.broken = true;
        this.#fuOpen = true;
        this.#note(inner, undefined);
        frame.write(START_CODE);
        frame.writeByte((p[0] & 0x81) | (inner << 1));
        frame.writeByte(p[1]);
      } else if (!this.#fuOpen) {
        frame.broken = true;
        return;
      }
      frame.write(p, 3);
      if (fu & 0x40) this.#fuOpen = false;
      return;
    }
    if (this.#fuOpen) {
      frame.broken = true;
      return;
    }
    if (type === AP) {
      let off = 2;
      while (off < p.length) {
        if (off + 2 > p.length) return void (frame.broken = true);
        const size = (p[off] << 8) | p[off + 1];
        if (size < 2 || off + 2 + size > p.length) return void (frame.broken = true);
        this.#nal(p.subarray(off + 2, off + 2 + size));
        off += 2 + size;
      }
      return;
    }
    if (type === 50) return; // PACI: not used by WebRTC senders
    this.#nal(p);
  }

  #nal(nal: Uint8Array): void {
    this.#note((nal[0] >> 1) & 0x3f, nal);
    this.#frame.write(START_CODE);
    this.#frame.write(nal);
  }

  #note(type: number, nal: Uint8Array | undefined): void {
    if (isIrap(type)) this.#hasIrap = true;
    const index = type - VPS;
    if (index < 0 || index > 2) return;
    this.#params |= 1 << index;
    // Fragmented parameter sets (never seen in practice) are not remembered.
    if (!nal || nal.length > MAX_PARAMETER_SET_BYTES) return;
    this.#saved[index] = nal.slice();
    if (type === SPS) {
      const size = h265SpsSize(nal);
      if (size) {
        this.#width = size.width;
        this.#height = size.height;
      }
    }
  }
}

const START_CODE = new Uint8Array([0, 0, 0, 1]);

function popcount(bits: number): number {
  return (bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1);
}

function concatAnnexB(nals: Uint8Array[], unit: Uint8Array): Uint8Array {
  const total = nals.reduce((n, nal) => n + 4 + nal.length, unit.length);
  const out = new Uint8Array(total);
  let off = 0;
  for (const nal of nals) {
    out.set(START_CODE, off);
    out.set(nal, off + 4);
    off += 4 + nal.length;
  }
  out.set(unit, off);
  return out;
}
