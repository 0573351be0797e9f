/** RTCP building and reading for what the forwarder needs: PLI, FIR, BYE (RFC 3550, 4585, 5104). Pure. */

/** What a compound RTCP packet from a viewer asks of the publisher. */
export interface FeedbackSummary {
  keyframeRequested: boolean;
  nacks: number;
}

const PT_BYE = 203;
const PT_RTPFB = 205;
const PT_PSFB = 206;

/** Walks a compound RTCP packet and reports keyframe requests (PLI, FIR) and NACK count. */
export function readFeedback(packet: Uint8Array): FeedbackSummary {
  const summary: FeedbackSummary = { keyframeRequested: false, nacks: 0 };
  let offset = 0;
  while (offset + 4 <= packet.length) {
    if (packet[offset] >> 6 !== 2) break;
    const fmt = packet[offset] & 0x1f;
    const type = packet[offset + 1];
    const length = ((packet[offset + 2] << 8) | packet[offset + 3]) * 4 + 4;
    if (offset + length > packet.length) break;
    if (type === PT_PSFB && (fmt === 1 || fmt === 4)) summary.keyframeRequested = true;
    if (type === PT_RTPFB && fmt === 1) summary.nacks += (length - 12) / 4;
    offset += length;
  }
  return summary;
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

/**
 * A minimal receiver report with no report blocks (RFC 3550 §6.4.2). SRTCP needs a leading SR or RR in
 * every compound packet, so feedback is sent after one.
 */
export function buildEmptyReceiverReport(senderSsrc: number): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = 0x80;
  out[1] = 201;
  out[3] = 1;
  new DataView(out.buffer).setUint32(4, senderSsrc >>> 0);
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
