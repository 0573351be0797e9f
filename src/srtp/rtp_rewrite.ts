/**
 * The forwarder's per-packet header work: parse a publisher's RTP packet once, copy it without its header
 * extension into a reused buffer, then for each viewer overwrite payload type, SSRC and sequence number in
 * place (payload type, SSRC, sequence number, timestamp) before protecting it. Nothing is allocated per viewer.
 *
 * @example
 * ```ts
 * const rewriter = new RtpRewriter();
 * if (rewriter.load(packet)) {
 *   for (const v of viewers) {
 *     const seq = (rewriter.sequenceNumber + v.seqOffset) & 0xffff;
 *     rewriter.setStream(v.payloadType, v.ssrc, seq, (rewriter.timestamp + v.tsOffset) >>> 0);
 *     v.send(srtp.protectRtp(rewriter.packet, rewriter.headerLength));
 *   }
 * }
 * ```
 */

/** Largest packet accepted; UDP datagrams on any usual path are smaller. */
export const MAX_RTP_PACKET = 1500;

/** Holds one publisher packet, stripped of its header extension, and rewrites its stream fields. */
export class RtpRewriter {
  /** The loaded packet as viewers get it; valid until the next {@link load}. */
  packet: Uint8Array = new Uint8Array(0);
  /** Header length of {@link packet} (12 + 4 × CSRC count). */
  headerLength = 0;
  /** Fields of the loaded packet as the publisher sent them. */
  payloadType = 0;
  sequenceNumber = 0;
  timestamp = 0;
  ssrc = 0;
  marker = false;
  #buffer: Uint8Array;
  #rtxBuffer: Uint8Array;

  constructor(capacity = MAX_RTP_PACKET) {
    this.#buffer = new Uint8Array(capacity);
    this.#rtxBuffer = new Uint8Array(capacity + 2);
  }

  /**
   * Copies `packet` without its header extension (clearing the X bit); false when it is not a well-formed
   * RTP packet or does not fit. Padding stays as it is: it belongs to the payload.
   */
  load(packet: Uint8Array): boolean {
    const n = packet.length;
    if (n < 12 || (packet[0] & 0xc0) !== 0x80) return false;
    const csrcEnd = 12 + (packet[0] & 0x0f) * 4;
    let payloadStart = csrcEnd;
    if (packet[0] & 0x10) {
      if (n < csrcEnd + 4) return false;
      payloadStart += 4 + ((packet[csrcEnd + 2] << 8) | packet[csrcEnd + 3]) * 4;
    }
    if (payloadStart > n) return false;
    const length = csrcEnd + (n - payloadStart);
    if (length > this.#buffer.length) return false;
    const out = this.#buffer;
    for (let i = 0; i < csrcEnd; i++) out[i] = packet[i];
    out[0] &= 0xef;
    out.set(payloadStart === n ? EMPTY : packet.subarray(payloadStart), csrcEnd);
    this.packet = out.subarray(0, length);
    this.headerLength = csrcEnd;
    this.marker = (packet[1] & 0x80) !== 0;
    this.payloadType = packet[1] & 0x7f;
    this.sequenceNumber = (packet[2] << 8) | packet[3];
    this.timestamp = ((packet[4] << 24) | (packet[5] << 16) | (packet[6] << 8) | packet[7]) >>> 0;
    this.ssrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    return true;
  }

  /** Writes one viewer's payload type (marker kept), sequence number, timestamp and SSRC into {@link packet}. */
  setStream(payloadType: number, ssrc: number, sequenceNumber: number, timestamp: number): void {
    const out = this.#buffer;
    out[1] = (out[1] & 0x80) | (payloadType & 0x7f);
    out[2] = sequenceNumber >>> 8;
    out[3] = sequenceNumber;
    out[4] = timestamp >>> 24;
    out[5] = timestamp >>> 16;
    out[6] = timestamp >>> 8;
    out[7] = timestamp;
    out[8] = ssrc >>> 24;
    out[9] = ssrc >>> 16;
    out[10] = ssrc >>> 8;
    out[11] = ssrc;
  }

  /**
   * The loaded packet as an RTX retransmission (RFC 4588 §4): the stream fields last written by
   * {@link setStream} name the original, whose sequence number leads the payload; the RTX stream's payload
   * type, SSRC and sequence number go in the header. Valid until the next call; header length is
   * {@link headerLength} as for the original.
   */
  rtxPacket(payloadType: number, ssrc: number, sequenceNumber: number): Uint8Array {
    const header = this.headerLength;
    const original = this.packet;
    const out = this.#rtxBuffer;
    out.set(original.subarray(0, header));
    out[1] = (out[1] & 0x80) | (payloadType & 0x7f);
    out[2] = sequenceNumber >>> 8;
    out[3] = sequenceNumber;
    out[8] = ssrc >>> 24;
    out[9] = ssrc >>> 16;
    out[10] = ssrc >>> 8;
    out[11] = ssrc;
    out[header] = original[2];
    out[header + 1] = original[3];
    out.set(original.subarray(header), header + 2);
    return out.subarray(0, original.length + 2);
  }
}

const EMPTY = new Uint8Array(0);
