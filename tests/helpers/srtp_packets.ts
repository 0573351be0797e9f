/** Helpers for the SRTP tests: hex conversion and RTP/RTCP packets to feed the contexts. */

/** Bytes from hex, ignoring whitespace. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@link rtpPacket}. */
export interface RtpOptions {
  seq: number;
  ssrc?: number;
  payloadType?: number;
  timestamp?: number;
  marker?: boolean;
  csrcs?: number[];
  /** One-byte header extension elements (RFC 8285). */
  extensions?: { id: number; data: number[] }[];
  payloadLength?: number;
  /** Number of padding bytes (sets P). */
  padding?: number;
}

/** An RTP packet with a payload derived from the sequence number. */
export function rtpPacket(o: RtpOptions): Uint8Array {
  const csrcs = o.csrcs ?? [];
  let ext: number[] = [];
  if (o.extensions) {
    for (const e of o.extensions) ext.push((e.id << 4) | (e.data.length - 1), ...e.data);
    while (ext.length % 4) ext.push(0);
    const words = ext.length / 4;
    ext = [0xbe, 0xde, words >> 8, words & 0xff, ...ext];
  }
  const payloadLength = o.payloadLength ?? 100;
  const padding = o.padding ?? 0;
  const out = new Uint8Array(12 + csrcs.length * 4 + ext.length + payloadLength + padding);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | (padding ? 0x20 : 0) | (o.extensions ? 0x10 : 0) | csrcs.length;
  out[1] = (o.marker ? 0x80 : 0) | (o.payloadType ?? 96);
  view.setUint16(2, o.seq & 0xffff);
  view.setUint32(4, o.timestamp ?? o.seq * 3000);
  view.setUint32(8, o.ssrc ?? 0x11223344);
  csrcs.forEach((c, i) => view.setUint32(12 + i * 4, c));
  out.set(ext, 12 + csrcs.length * 4);
  const start = 12 + csrcs.length * 4 + ext.length;
  for (let i = 0; i < payloadLength; i++) out[start + i] = (o.seq + i * 7) & 0xff;
  if (padding) out[out.length - 1] = padding;
  return out;
}

/** A receiver report with one report block plus a PLI: a typical compound RTCP packet. */
export function rtcpPacket(senderSsrc = 0x55667788, mediaSsrc = 0x11223344): Uint8Array {
  const out = new Uint8Array(32 + 12);
  const view = new DataView(out.buffer);
  out[0] = 0x81;
  out[1] = 201;
  view.setUint16(2, 7);
  view.setUint32(4, senderSsrc);
  view.setUint32(8, mediaSsrc);
  for (let i = 12; i < 32; i++) out[i] = i;
  out[32] = 0x81;
  out[33] = 206;
  view.setUint16(34, 2);
  view.setUint32(36, senderSsrc);
  view.setUint32(40, mediaSsrc);
  return out;
}
