/**
 * RTCP reading and building for what the forwarder needs (RFC 3550 SR/RR/BYE, RFC 4585 NACK/PLI, RFC 5104
 * FIR, draft-alvestrand-rmcat-remb). Pure: bytes in, bytes out.
 */

import { seqDiff } from "./sequence.ts";

const PT_SR = 200;
const PT_RR = 201;
const PT_BYE = 203;
const PT_RTPFB = 205;
const PT_PSFB = 206;
/** RTPFB format of transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-01). */
const FMT_TRANSPORT_FEEDBACK = 15;

/** One report block of an SR or RR (RFC 3550 §6.4.1). */
export interface ReportBlock {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  highestSequence: number;
  jitter: number;
  lastSenderReport: number;
  delaySinceLastSenderReport: number;
}

/** The sender-info part of an SR. */
export interface SenderReport {
  ssrc: number;
  ntpSeconds: number;
  ntpFraction: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

/** Everything the forwarder reads from one compound RTCP packet. */
export interface RtcpSummary {
  keyframeRequested: boolean;
  /** Sequence numbers asked for by generic NACKs, per media SSRC. */
  nacks: { mediaSsrc: number; sequenceNumbers: number[] }[];
  senderReports: SenderReport[];
  reportBlocks: ReportBlock[];
  /** Transport-wide congestion control feedback packets (views into the compound; transport_feedback.ts). */
  transportFeedback: Uint8Array[];
  bye: boolean;
}

/** Walks a compound RTCP packet; malformed trailing data ends the walk without throwing. */
export function readRtcp(packet: Uint8Array): RtcpSummary {
  const summary: RtcpSummary = {
    keyframeRequested: false,
    nacks: [],
    senderReports: [],
    reportBlocks: [],
    transportFeedback: [],
    bye: false,
  };
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  let offset = 0;
  while (offset + 4 <= packet.length) {
    if (packet[offset] >> 6 !== 2) break;
    const count = packet[offset] & 0x1f;
    const type = packet[offset + 1];
    const length = view.getUint16(offset + 2) * 4 + 4;
    if (offset + length > packet.length) break;
    if (type === PT_SR && length >= 28) {
      summary.senderReports.push({
        ssrc: view.getUint32(offset + 4),
        ntpSeconds: view.getUint32(offset + 8),
        ntpFraction: view.getUint32(offset + 12),
        rtpTimestamp: view.getUint32(offset + 16),
        packetCount: view.getUint32(offset + 20),
        octetCount: view.getUint32(offset + 24),
      });
      readBlocks(view, offset + 28, count, offset + length, summary.reportBlocks);
    } else if (type === PT_RR && length >= 8) {
      readBlocks(view, offset + 8, count, offset + length, summary.reportBlocks);
    } else if (type === PT_PSFB && (count === 1 || count === 4)) {
      summary.keyframeRequested = true;
    } else if (type === PT_RTPFB && count === 1 && length >= 16) {
      const sequenceNumbers: number[] = [];
      for (let fci = offset + 12; fci + 4 <= offset + length; fci += 4) {
        const pid = view.getUint16(fci);
        const blp = view.getUint16(fci + 2);
        sequenceNumbers.push(pid);
        for (let bit = 0; bit < 16; bit++) {
          if (blp & (1 << bit)) sequenceNumbers.push((pid + bit + 1) & 0xffff);
        }
      }
      summary.nacks.push({ mediaSsrc: view.getUint32(offset + 8), sequenceNumbers });
    } else if (type === PT_RTPFB && count === FMT_TRANSPORT_FEEDBACK && length >= 20) {
      // At most a few per compound are kept: more would only be a client making work.
      if (summary.transportFeedback.length < 4) {
        summary.transportFeedback.push(packet.subarray(offset, offset + length));
      }
    } else if (type === PT_BYE) {
      summary.bye = true;
    }
    offset += length;
  }
  return summary;
}

function readBlocks(view: DataView, start: number, count: number, end: number, out: ReportBlock[]): void {
  for (let i = 0, at = start; i < count && at + 24 <= end; i++, at += 24) {
    const lost = view.getUint32(at + 4) & 0xffffff;
    out.push({
      ssrc: view.getUint32(at),
      fractionLost: view.getUint8(at + 4),
      cumulativeLost: lost & 0x800000 ? lost - 0x1000000 : lost,
      highestSequence: view.getUint32(at + 8),
      jitter: view.getUint32(at + 12),
      lastSenderReport: view.getUint32(at + 16),
      delaySinceLastSenderReport: view.getUint32(at + 20),
    });
  }
}

/** A Picture Loss Indication from `senderSsrc` about `mediaSsrc` (RFC 4585 §6.3.1). */
export function buildPli(senderSsrc: number, mediaSsrc: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | 1;
  out[1] = PT_PSFB;
  view.setUint16(2, 2);
  view.setUint32(4, senderSsrc >>> 0);
  view.setUint32(8, mediaSsrc >>> 0);
  return out;
}

/** Generic NACKs for `sequenceNumbers` of `mediaSsrc` (RFC 4585 §6.2.1), packed into PID+BLP pairs. */
export function buildNack(
  senderSsrc: number,
  mediaSsrc: number,
  sequenceNumbers: readonly number[],
): Uint8Array {
  const pairs: [number, number][] = [];
  const first = sequenceNumbers[0];
  const sorted = [...sequenceNumbers].sort((a, b) => seqDiff(a, first) - seqDiff(b, first));
  for (const seq of sorted) {
    const last = pairs[pairs.length - 1];
    const distance = last ? (seq - last[0]) & 0xffff : 0;
    if (last && distance >= 1 && distance <= 16) last[1] |= 1 << (distance - 1);
    else if (!last || distance !== 0) pairs.push([seq, 0]);
  }
  const out = new Uint8Array(12 + pairs.length * 4);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | 1;
  out[1] = PT_RTPFB;
  view.setUint16(2, 2 + pairs.length);
  view.setUint32(4, senderSsrc >>> 0);
  view.setUint32(8, mediaSsrc >>> 0);
  pairs.forEach(([pid, blp], i) => {
    view.setUint16(12 + i * 4, pid);
    view.setUint16(14 + i * 4, blp);
  });
  return out;
}

/** A receiver report with the given blocks (at most 31). */
export function buildReceiverReport(senderSsrc: number, blocks: readonly ReportBlock[] = []): Uint8Array {
  const count = Math.min(blocks.length, 31);
  const out = new Uint8Array(8 + count * 24);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | count;
  out[1] = PT_RR;
  view.setUint16(2, 1 + count * 6);
  view.setUint32(4, senderSsrc >>> 0);
  for (let i = 0; i < count; i++) {
    const b = blocks[i];
    const at = 8 + i * 24;
    view.setUint32(at, b.ssrc >>> 0);
    view.setUint32(at + 4, ((b.fractionLost & 0xff) << 24 | (b.cumulativeLost & 0xffffff)) >>> 0);
    view.setUint32(at + 8, b.highestSequence >>> 0);
    view.setUint32(at + 12, b.jitter >>> 0);
    view.setUint32(at + 16, b.lastSenderReport >>> 0);
    view.setUint32(at + 20, b.delaySinceLastSenderReport >>> 0);
  }
  return out;
}

/** A minimal receiver report with no blocks: SRTCP needs an SR or RR first in every compound packet. */
export function buildEmptyReceiverReport(senderSsrc: number): Uint8Array {
  return buildReceiverReport(senderSsrc);
}

/** A sender report with no report blocks. */
export function buildSenderReport(report: SenderReport): Uint8Array {
  const out = new Uint8Array(28);
  const view = new DataView(out.buffer);
  out[0] = 0x80;
  out[1] = PT_SR;
  view.setUint16(2, 6);
  view.setUint32(4, report.ssrc >>> 0);
  view.setUint32(8, report.ntpSeconds >>> 0);
  view.setUint32(12, report.ntpFraction >>> 0);
  view.setUint32(16, report.rtpTimestamp >>> 0);
  view.setUint32(20, report.packetCount >>> 0);
  view.setUint32(24, report.octetCount >>> 0);
  return out;
}

/** Receiver Estimated Maximum Bitrate for `ssrcs` (draft-alvestrand-rmcat-remb §2.2). */
export function buildRemb(senderSsrc: number, bitrate: number, ssrcs: readonly number[]): Uint8Array {
  let exponent = 0;
  let mantissa = Math.max(0, Math.floor(bitrate));
  while (mantissa > 0x3ffff) {
    mantissa = Math.floor(mantissa / 2);
    exponent++;
  }
  const out = new Uint8Array(20 + ssrcs.length * 4);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | 15;
  out[1] = PT_PSFB;
  view.setUint16(2, 4 + ssrcs.length);
  view.setUint32(4, senderSsrc >>> 0);
  view.setUint32(8, 0);
  out.set([0x52, 0x45, 0x4d, 0x42], 12); // "REMB"
  out[16] = ssrcs.length;
  out[17] = (exponent << 2) | (mantissa >> 16);
  view.setUint16(18, mantissa & 0xffff);
  ssrcs.forEach((ssrc, i) => view.setUint32(20 + i * 4, ssrc >>> 0));
  return out;
}

/** A BYE for the given sources (RFC 3550 §6.6). */
export function buildBye(ssrcs: number[]): Uint8Array {
  const count = Math.min(ssrcs.length, 31);
  const out = new Uint8Array(4 + count * 4);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | count;
  out[1] = PT_BYE;
  view.setUint16(2, count);
  for (let i = 0; i < count; i++) view.setUint32(4 + i * 4, ssrcs[i] >>> 0);
  return out;
}

/** Concatenates RTCP packets into one compound packet. */
export function compound(...packets: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(packets.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of packets) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
