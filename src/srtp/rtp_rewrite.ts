/**
 * The forwarder's per-packet header work: parse a publisher's RTP packet once, copy it without its header
 * extension into a reused buffer, then for each viewer overwrite payload type, SSRC and sequence number in
 * place (payload type, SSRC, sequence number, timestamp) before protecting it. A viewer that negotiated
 * transport-wide congestion control gets the packet with one header extension of the server's own: its
 * transport-wide sequence number (one-byte form, RFC 8285 §4.2). The payload sits at a fixed offset with room
 * for that extension before it, so either form is a header write, not a copy of the payload. Nothing is
 * allocated per viewer.
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
/** The transport-wide sequence number extension: a one-byte-form block of one word, one 2-byte element. */
const TRANSPORT_EXTENSION_BYTES = 8;
/** Longest header: 12 bytes and 15 CSRCs. */
const MAX_HEADER = 12 + 15 * 4;

/** Holds one publisher packet, stripped of its header extension, and rewrites its stream fields. */
export class RtpRewriter {
  /** The loaded packet as the last {@link setStream} made it (or as loaded); valid until the next {@link load}. */
  packet: Uint8Array = new Uint8Array(0);
  /** Header length of {@link packet} (12 + 4 × CSRC count, plus the extension when it has one). */
  headerLength = 0;
  /** Fields of the loaded packet as the publisher sent them. */
  payloadType = 0;
  sequenceNumber = 0;
  timestamp = 0;
  ssrc = 0;
  marker = false;
  /** Payload from {@link TRANSPORT_EXTENSION_BYTES} + {@link #csrcEnd}: headers of both forms end there. */
  #buffer: Uint8Array;
  #rtxBuffer: Uint8Array;
  /** The loaded packet's fixed header and CSRCs (X bit clear), copied back for each viewer's form. */
  readonly #header = new Uint8Array(MAX_HEADER);
  #csrcEnd = 0;
  #length = 0;
  #withExtension = false;

  constructor(capacity = MAX_RTP_PACKET) {
    this.#buffer = new Uint8Array(capacity + TRANSPORT_EXTENSION_BYTES);
    this.#rtxBuffer = new Uint8Array(capacity + TRANSPORT_EXTENSION_BYTES + 2);
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
    if (length + TRANSPORT_EXTENSION_BYTES > this.#buffer.length) return false;
    const out = this.#buffer;
    const header = this.#header;
    const start = TRANSPORT_EXTENSION_BYTES;
    for (let i = 0; i < csrcEnd; i++) out[start + i] = header[i] = packet[i];
    out[start] = header[0] &= 0xef;
    out.set(payloadStart === n ? EMPTY : packet.subarray(payloadStart), start + csrcEnd);
    this.#csrcEnd = csrcEnd;
    this.#length = length;
    this.#withExtension = false;
    this.packet = out.subarray(start, start + length);
    this.headerLength = csrcEnd;
    this.marker = (packet[1] & 0x80) !== 0;
    this.payloadType = packet[1] & 0x7f;
    this.sequenceNumber = (packet[2] << 8) | packet[3];
    this.timestamp = ((packet[4] << 24) | (packet[5] << 16) | (packet[6] << 8) | packet[7]) >>> 0;
    this.ssrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    return true;
  }

  /**
   * Writes one viewer's payload type (marker kept), sequence number, timestamp and SSRC into {@link packet};
   * with `transportExtensionId` (1-14) and `transportSequence` the packet also carries that transport-wide
   * sequence number in a header extension of its own (and {@link headerLength} includes it).
   */
  setStream(
    payloadType: number,
    ssrc: number,
    sequenceNumber: number,
    timestamp: number,
    transportExtensionId = 0,
    transportSequence = 0,
  ): void {
    const out = this.#buffer;
    const csrcEnd = this.#csrcEnd;
    const withExtension = transportExtensionId > 0;
    const at = withExtension ? 0 : TRANSPORT_EXTENSION_BYTES;
    if (withExtension !== this.#withExtension) {
      // The other form's header occupies these bytes: the loaded header goes back in first.
      const header = this.#header;
      for (let i = 0; i < csrcEnd; i++) out[at + i] = header[i];
      this.#withExtension = withExtension;
      if (withExtension) {
        out[0] |= 0x10;
        out[csrcEnd] = 0xbe;
        out[csrcEnd + 1] = 0xde;
        out[csrcEnd + 2] = 0;
        out[csrcEnd + 3] = 1;
        out[csrcEnd + 7] = 0;
      }
      this.packet = out.subarray(at, TRANSPORT_EXTENSION_BYTES + this.#length);
      this.headerLength = withExtension ? csrcEnd + TRANSPORT_EXTENSION_BYTES : csrcEnd;
    }
    out[at + 1] = (out[at + 1] & 0x80) | (payloadType & 0x7f);
    out[at + 2] = sequenceNumber >>> 8;
    out[at + 3] = sequenceNumber;
    out[at + 4] = timestamp >>> 24;
    out[at + 5] = timestamp >>> 16;
    out[at + 6] = timestamp >>> 8;
    out[at + 7] = timestamp;
    out[at + 8] = ssrc >>> 24;
    out[at + 9] = ssrc >>> 16;
    out[at + 10] = ssrc >>> 8;
    out[at + 11] = ssrc;
    if (withExtension) {
      out[csrcEnd + 4] = (transportExtensionId << 4) | 1;
      out[csrcEnd + 5] = transportSequence >>> 8;
      out[csrcEnd + 6] = transportSequence;
    }
  }

  /**
   * Replaces the transport-wide sequence number in {@link packet} (written by the last {@link setStream}
   * with an extension): each copy sent, such as a probe's, needs a number of its own.
   */
  setTransportSequence(transportSequence: number): void {
    if (!this.#withExtension) return;
    const at = this.#csrcEnd;
    this.#buffer[at + 5] = transportSequence >>> 8;
    this.#buffer[at + 6] = transportSequence;
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
