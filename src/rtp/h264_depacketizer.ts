/**
 * Reassembles H.264 RTP payloads (RFC 6184, packetization-mode 0 and 1) into Annex-B access units.
 *
 * Built for a network-facing path: it never throws on malformed input, keeps at most two access-unit
 * buffers (each capped at {@link MAX_ACCESS_UNIT_BYTES}) and allocates nothing per packet. An access unit
 * that saw a sequence gap, a broken FU-A or an oversize payload is dropped whole rather than emitted corrupt.
 *
 * @module
 */

import { parseSpsDimensions } from "./h264_sps.ts";

/** One reassembled picture in Annex-B form (00 00 00 01 before every NAL unit). */
export interface AccessUnit {
  /**
   * Annex-B bytes. This may be a view into the depacketizer's reusable buffer: it stays valid until the
   * next call to {@link H264Depacketizer.push}; copy it to keep it.
   */
  data: Uint8Array;
  /** RTP timestamp shared by the access unit's packets. */
  timestamp: number;
  /** True when the unit holds an IDR slice (NAL type 5); SPS and PPS are then always present. */
  isKeyframe: boolean;
  /** Picture size from the latest SPS, when one has been seen and parsed. */
  width?: number;
  /** Picture size from the latest SPS, when one has been seen and parsed. */
  height?: number;
}

/** Largest access unit kept; bigger ones are dropped (a 4K IDR frame at high quality is ~1-2 MiB). */
export const MAX_ACCESS_UNIT_BYTES = 4 * 1024 * 1024;

const INITIAL_BUFFER_BYTES = 64 * 1024;
// Real SPS/PPS are tens of bytes; a huge one is not worth remembering for the life of the stream.
const MAX_PARAMETER_SET_BYTES = 4096;
const NAL_SLICE_IDR = 5;
const NAL_SPS = 7;
const NAL_PPS = 8;
const STAP_A = 24;
const MAX_LATE_RUN = 16;
const FU_A = 28;

/** Reassembles one RTP stream's H.264 payloads into access units; see {@link AccessUnit}. */
export class H264Depacketizer {
  // Two buffers so an access unit returned when the timestamp changes survives the packet that ended it.
  #buf = new Uint8Array(INITIAL_BUFFER_BYTES);
  #spare = new Uint8Array(INITIAL_BUFFER_BYTES);
  #len = 0;
  #active = false; // a packet of the current access unit has been taken
  #broken = false; // the current access unit will be dropped
  #timestamp = 0;
  #fuStart = -1; // offset of the open FU-A NAL's start code, -1 when none is open
  #hasIdr = false;
  #hasSps = false;
  #hasPps = false;
  #lastSeq = -1;
  #lateRun = 0;
  #sps: Uint8Array | undefined;
  #pps: Uint8Array | undefined;
  #width = 0;
  #height = 0;
  #dropped = 0;

  /** Access units dropped so far because of loss, malformed payloads or the size cap. */
  get droppedCount(): number {
    return this.#dropped;
  }

  /**
   * Takes one RTP payload. Returns an access unit when this packet completes one: on the marker bit, or
   * when the timestamp moves on from an unfinished unit (senders that omit the marker, or a lost last packet).
   */
  push(
    payload: Uint8Array,
    sequenceNumber: number,
    timestamp: number,
    marker: boolean,
  ): AccessUnit | undefined {
    const seq = sequenceNumber & 0xffff;
    let gap = false;
    if (this.#lastSeq >= 0) {
      const delta = (seq - this.#lastSeq) & 0xffff;
      if (delta === 0) return undefined; // duplicate
      // Late (reordered) packets are dropped; a long run of them means the sender's numbering jumped back
      // (e.g. a restarted encoder), so resynchronize instead of waiting up to 32768 packets.
      if (delta >= 0x8000 && ++this.#lateRun < MAX_LATE_RUN) return undefined;
      gap = delta !== 1;
    }
    this.#lateRun = 0;
    this.#lastSeq = seq;

    let done: AccessUnit | undefined;
    if (this.#active && timestamp !== this.#timestamp) {
      done = this.#finish();
    } else if (this.#active && gap) {
      this.#broken = true;
    }
    if (!this.#active) {
      this.#active = true;
      this.#timestamp = timestamp;
      // Lost packets before this one may have belonged to this unit too: there is no way to tell.
      this.#broken = gap;
    }

    if (!this.#broken) this.#take(payload);

    // One unit per call: if the timestamp change already produced one, this unit is returned when the next
    // timestamp arrives instead. Only senders that sometimes omit the marker bit ever hit this.
    if (marker && done === undefined) return this.#finish();
    return done;
  }

  /** Forgets any partial access unit and the sequence history (e.g. when the publisher changes). */
  reset(): void {
    this.#clear();
    this.#lastSeq = -1;
    this.#lateRun = 0;
  }

  #take(p: Uint8Array): void {
    if (p.length === 0) return;
    const type = p[0] & 0x1f;
    if (type >= 1 && type <= 23) {
      if (this.#fuStart >= 0) this.#broken = true; // FU-A interrupted by another NAL
      else this.#appendNal(p, 0, p.length);
    } else if (type === STAP_A) {
      this.#takeStapA(p);
    } else if (type === FU_A) {
      this.#takeFuA(p);
    }
    // STAP-B, MTAP and FU-B (interleaved mode) and the reserved types 0, 30, 31 are skipped (RFC 6184 5.4).
  }

  #takeStapA(p: Uint8Array): void {
    if (this.#fuStart >= 0) {
      this.#broken = true;
      return;
    }
    // Validate the whole packet first so a bad length never leaves half of it in the unit.
    let off = 1;
    while (off < p.length) {
      if (off + 2 > p.length) return this.#markBroken();
      const size = (p[off] << 8) | p[off + 1];
      off += 2;
      if (size === 0 || off + size > p.length) return this.#markBroken();
      off += size;
    }
    off = 1;
    while (off < p.length && !this.#broken) {
      const size = (p[off] << 8) | p[off + 1];
      off += 2;
      this.#appendNal(p, off, off + size);
      off += size;
    }
  }

  #takeFuA(p: Uint8Array): void {
    if (p.length < 2) return this.#markBroken();
    const header = p[1];
    const start = (header & 0x80) !== 0;
    const end = (header & 0x40) !== 0;
    if (start) {
      if (this.#fuStart >= 0 || !this.#reserve(5)) return this.#markBroken();
      this.#fuStart = this.#len;
      this.#writeStartCode();
      this.#buf[this.#len++] = (p[0] & 0xe0) | (header & 0x1f);
    } else if (this.#fuStart < 0) {
      return this.#markBroken(); // continuation of a fragment whose start we never saw
    }
    if (!this.#reserve(p.length - 2)) return this.#markBroken();
    this.#buf.set(p.subarray(2), this.#len);
    this.#len += p.length - 2;
    if (end) {
      const nalStart = this.#fuStart + 4;
      this.#fuStart = -1;
      this.#noteNal(nalStart, this.#len);
    }
  }

  #appendNal(p: Uint8Array, from: number, to: number): void {
    if (!this.#reserve(4 + to - from)) return this.#markBroken();
    this.#writeStartCode();
    const nalStart = this.#len;
    this.#buf.set(p.subarray(from, to), nalStart);
    this.#len += to - from;
    this.#noteNal(nalStart, this.#len);
  }

  /** Records what a just-completed NAL unit (at buf[from, to)) means for the access unit. */
  #noteNal(from: number, to: number): void {
    if (to <= from) return;
    const type = this.#buf[from] & 0x1f;
    if (type === NAL_SLICE_IDR) {
      this.#hasIdr = true;
    } else if (type === NAL_SPS) {
      this.#hasSps = true;
      const nal = this.#buf.subarray(from, to);
      if (nal.length <= MAX_PARAMETER_SET_BYTES && !sameBytes(this.#sps, nal)) {
        this.#sps = nal.slice();
        const dims = parseSpsDimensions(this.#sps);
        this.#width = dims?.width ?? 0;
        this.#height = dims?.height ?? 0;
      }
    } else if (type === NAL_PPS) {
      this.#hasPps = true;
      const nal = this.#buf.subarray(from, to);
      if (nal.length <= MAX_PARAMETER_SET_BYTES && !sameBytes(this.#pps, nal)) this.#pps = nal.slice();
    }
  }

  #writeStartCode(): void {
    const b = this.#buf;
    const n = this.#len;
    b[n] = 0;
    b[n + 1] = 0;
    b[n + 2] = 0;
    b[n + 3] = 1;
    this.#len = n + 4;
  }

  /** Makes room for n more bytes; false when that would pass the cap. */
  #reserve(n: number): boolean {
    const need = this.#len + n;
    if (need > MAX_ACCESS_UNIT_BYTES) return false;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.min(MAX_ACCESS_UNIT_BYTES, Math.max(need, this.#buf.length * 2)));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    return true;
  }

  #markBroken(): void {
    this.#broken = true;
  }

  /** Ends the current access unit; returns it unless it is broken, incomplete or empty. */
  #finish(): AccessUnit | undefined {
    const ok = this.#active && !this.#broken && this.#fuStart < 0 && this.#len > 0;
    if (!ok) {
      if (this.#active && (this.#broken || this.#fuStart >= 0)) this.#dropped++;
      this.#clear();
      return undefined;
    }
    let data: Uint8Array = this.#buf.subarray(0, this.#len);
    if (this.#hasIdr && !(this.#hasSps && this.#hasPps) && this.#sps && this.#pps) {
      // A keyframe must decode alone (thumbnails, late joiners): put the remembered parameter sets first.
      // Both are prepended even if one is present, since a PPS is only parsed after its SPS.
      data = prependParameterSets(this.#sps, this.#pps, data);
    }
    const unit: AccessUnit = { data, timestamp: this.#timestamp, isKeyframe: this.#hasIdr };
    if (this.#width > 0) {
      unit.width = this.#width;
      unit.height = this.#height;
    }
    const used = this.#buf;
    this.#buf = this.#spare;
    this.#spare = used;
    this.#clear();
    return unit;
  }

  #clear(): void {
    this.#len = 0;
    this.#active = false;
    this.#broken = false;
    this.#fuStart = -1;
    this.#hasIdr = false;
    this.#hasSps = false;
    this.#hasPps = false;
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function prependParameterSets(sps: Uint8Array, pps: Uint8Array, au: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + sps.length + pps.length + au.length);
  let n = 0;
  out[n + 3] = 1;
  out.set(sps, n + 4);
  n += 4 + sps.length;
  out[n + 3] = 1;
  out.set(pps, n + 4);
  n += 4 + pps.length;
  out.set(au, n);
  return out;
}
