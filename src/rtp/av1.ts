/**
 * AV1 over RTP (AOMedia "RTP Payload Format for AV1" v1.0): the aggregation header, OBU elements
 * fragmented across packets, keyframe detection (N bit or a sequence header OBU), and a depacketizer that
 * rebuilds temporal units in the low-overhead bitstream format (every OBU with its size field, a temporal
 * delimiter first) that decoders and IVF files take.
 */
import { BitReader, Truncated } from "./bit_reader.ts";
import { FrameBuffer, type VideoDepacketizer, type VideoFrame } from "./frame_buffer.ts";

const OBU_SEQUENCE_HEADER = 1;
const OBU_TEMPORAL_DELIMITER = 2;

/** Reads a LEB128 value at `off`; returns [value, bytes read] or undefined when it runs off the end. */
function readLeb128(p: Uint8Array, off: number, out: { value: number; length: number }): boolean {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    if (off + i >= p.length) return false;
    const b = p[off + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) {
      out.value = value;
      out.length = i + 1;
      return true;
    }
  }
  return false;
}

const leb = { value: 0, length: 0 };

/**
 * True when the packet begins a temporal unit a decoder can start from: the aggregation header's N bit
 * (first packet of a coded video sequence), or a first OBU that is a sequence header.
 */
export function av1StartsKeyframe(payload: Uint8Array): boolean {
  if (payload.length < 2) return false;
  const agg = payload[0];
  if (agg & 0x80) return false; // Z: continues an OBU from the previous packet
  if (agg & 0x08) return true;
  let off = 1;
  if (((agg >> 4) & 0x03) !== 1) {
    if (!readLeb128(payload, off, leb)) return false;
    off += leb.length;
  }
  return off < payload.length && ((payload[off] >> 3) & 0x0f) === OBU_SEQUENCE_HEADER;
}

/** Maximum frame size from a sequence header OBU's payload (AV1 spec §5.5), or undefined if unreadable. */
export function av1SequenceSize(payload: Uint8Array): { width: number; height: number } | undefined {
  try {
    const r = new BitReader(payload);
    r.bits(3); // seq_profile
    r.bit(); // still_picture
    const reduced = r.bit();
    if (reduced) {
      r.bits(5);
    } else {
      let decoderModel = 0;
      let delayLength = 0;
      if (r.bit()) { // timing_info_present_flag
        r.bits(32);
        r.bits(32);
        if (r.bit()) { // equal_picture_interval: num_ticks_per_picture_minus_1 as uvlc
          let zeros = 0;
          while (r.bit() === 0) if (++zeros >= 32) return undefined;
          r.bits(zeros);
        }
        decoderModel = r.bit();
        if (decoderModel) {
          delayLength = r.bits(5) + 1;
          r.bits(32);
          r.bits(10);
        }
      }
      const initialDelay = r.bit();
      const points = r.bits(5) + 1;
      for (let i = 0; i < points; i++) {
        r.bits(12);
        if (r.bits(5) > 7) r.bit(); // seq_tier
        if (decoderModel && r.bit()) {
          r.bits(delayLength);
          r.bits(delayLength);
          r.bit();
        }
        if (initialDelay && r.bit()) r.bits(4);
      }
    }
    const widthBits = r.bits(4) + 1;
    const heightBits = r.bits(4) + 1;
    return { width: r.bits(widthBits) + 1, height: r.bits(heightBits) + 1 };
  } catch (e) {
    if (e instanceof Truncated) return undefined;
    throw e;
  }
}

/** Reassembles AV1 temporal units; one ends at the marker bit. */
export class Av1Depacketizer implements VideoDepacketizer {
  #frame = new FrameBuffer();
  /** The OBU being rebuilt (its elements may span packets). */
  #obu = new FrameBuffer();
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
    const obu = this.#obu;
    const order = frame.sequence(sequenceNumber);
    if (order === "late") return undefined;
    if (payload.length < 1) {
      if (frame.active) frame.broken = true;
      return undefined;
    }
    const agg = payload[0];
    const continues = (agg & 0x80) !== 0;
    const count = (agg >> 4) & 0x03;
    if (!frame.active || frame.timestamp !== timestamp) {
      obu.close();
      if (continues) {
        frame.close(); // the temporal unit's first packet is lost
        return undefined;
      }
      frame.open(timestamp);
      this.#isKeyframe = false;
      frame.writeByte((OBU_TEMPORAL_DELIMITER << 3) | 0x02);
      frame.writeByte(0);
    } else if (order === "gap") {
      frame.broken = true;
    }

    let off = 1;
    for (let i = 0; off < payload.length && !frame.broken; i++) {
      let length: number;
      if (count === 0 || i < count - 1) {
        if (!readLeb128(payload, off, leb)) {
          frame.broken = true;
          break;
        }
        off += leb.length;
        length = leb.value;
      } else {
        length = payload.length - off;
      }
      if (off + length > payload.length) {
        frame.broken = true;
        break;
      }
      if (i === 0 && continues) {
        if (!obu.active) frame.broken = true;
      } else {
        if (obu.active) frame.broken = true; // the previous OBU said it would continue, and did not
        obu.open(0);
      }
      obu.write(payload, off, off + length);
      off += length;
      const last = off >= payload.length || (count !== 0 && i === count - 1);
      if (!last || (agg & 0x40) === 0) this.#finishObu();
      if (count !== 0 && i === count - 1) break;
    }
    if (!marker) return undefined;
    if (obu.active) frame.broken = true; // Y on the last packet of a temporal unit
    const complete = !frame.broken;
    const out = this.#out;
    out.data = frame.view();
    out.timestamp = frame.timestamp;
    out.isKeyframe = this.#isKeyframe;
    out.width = this.#width || undefined;
    out.height = this.#height || undefined;
    frame.close();
    obu.close();
    return complete ? out : undefined;
  }

  reset(): void {
    this.#frame.reset();
    this.#obu.reset();
  }

  /** Writes the completed OBU into the temporal unit with obu_has_size_field set. */
  #finishObu(): void {
    const obu = this.#obu;
    const frame = this.#frame;
    const bytes = obu.view();
    obu.close();
    if (bytes.length < 1) return;
    const header = bytes[0];
    const type = (header >> 3) & 0x0f;
    const headerLength = header & 0x04 ? 2 : 1;
    if (bytes.length < headerLength || header & 0x80) {
      frame.broken = true;
      return;
    }
    if (type === OBU_TEMPORAL_DELIMITER) return; // one is written at the start of the unit
    let body = headerLength;
    if (header & 0x02) {
      if (!readLeb128(bytes, headerLength, leb)) {
        frame.broken = true;
        return;
      }
      body += leb.length;
    }
    if (type === OBU_SEQUENCE_HEADER) {
      this.#isKeyframe = true;
      const size = av1SequenceSize(bytes.subarray(body));
      if (size) {
        this.#width = size.width;
        this.#height = size.height;
      }
    }
    if (header & 0x02) {
      frame.write(bytes);
      return;
    }
    frame.writeByte(header | 0x02);
    if (headerLength === 2) frame.writeByte(bytes[1]);
    let size = bytes.length - headerLength;
    do {
      frame.writeByte((size & 0x7f) | (size > 0x7f ? 0x80 : 0));
      size = Math.floor(size / 128);
    } while (size > 0);
    frame.write(bytes, headerLength);
  }
}
