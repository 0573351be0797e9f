/**
 * An allocation-free RTP header reader (RFC 3550 §5.1) with header-extension lookup by id (RFC 8285: one-byte
 * and two-byte forms). One reader is reused for every packet: {@link RtpHeaderReader.read} checks the bounds
 * and fills numeric fields; extension elements are found by walking the block in place, so nothing is
 * allocated per packet (werift's `RtpHeader.deSerialize` allocates a Buffer, an object and an extension
 * array per packet). Pure.
 *
 * @example
 * ```ts
 * const header = new RtpHeaderReader();
 * if (header.read(packet)) {
 *   const twccSequence = header.extensionValue(twccId); // -1 when absent
 *   const payload = packet.subarray(header.payloadStart, header.payloadEnd); // only if it must be a view
 * }
 * ```
 */

/** `defined by profile` value of the one-byte form (RFC 8285 §4.2). */
export const ONE_BYTE_PROFILE = 0xbede;
/** The two-byte form's profile is 0x100 followed by 4 application bits (RFC 8285 §4.3). */
const TWO_BYTE_PROFILE_MASK = 0xfff0;
const TWO_BYTE_PROFILE = 0x1000;

/** Reads one RTP header at a time; fields are valid after {@link read} returned true, until the next call. */
export class RtpHeaderReader {
  /** The packet last read (kept for extension lookups; not copied). */
  packet: Uint8Array = new Uint8Array(0);
  padding = false;
  marker = false;
  payloadType = 0;
  sequenceNumber = 0;
  timestamp = 0;
  ssrc = 0;
  csrcCount = 0;
  /** The header extension's profile value, or -1 without an extension. */
  extensionProfile = -1;
  /** Where the extension elements start and end (both 0 without an extension). */
  extensionStart = 0;
  extensionEnd = 0;
  /** Where the payload starts (after fixed header, CSRCs and extension) and ends (before padding). */
  payloadStart = 0;
  payloadEnd = 0;
  /** Data length of the element the last {@link findExtension} found. */
  extensionLength = 0;

  /**
   * Reads `packet`'s header; false when it is not RTP version 2 or any part (CSRC list, extension block,
   * padding count) does not fit in it. On false the fields are unspecified.
   */
  read(packet: Uint8Array): boolean {
    const n = packet.length;
    if (n < 12) return false;
    const first = packet[0];
    if ((first & 0xc0) !== 0x80) return false;
    this.packet = packet;
    this.padding = (first & 0x20) !== 0;
    this.csrcCount = first & 0x0f;
    this.marker = (packet[1] & 0x80) !== 0;
    this.payloadType = packet[1] & 0x7f;
    this.sequenceNumber = (packet[2] << 8) | packet[3];
    this.timestamp = ((packet[4] << 24) | (packet[5] << 16) | (packet[6] << 8) | packet[7]) >>> 0;
    this.ssrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    let offset = 12 + this.csrcCount * 4;
    if (offset > n) return false;
    if ((first & 0x10) !== 0) {
      if (offset + 4 > n) return false;
      this.extensionProfile = (packet[offset] << 8) | packet[offset + 1];
      const words = (packet[offset + 2] << 8) | packet[offset + 3];
      this.extensionStart = offset + 4;
      this.extensionEnd = this.extensionStart + words * 4;
      if (this.extensionEnd > n) return false;
      offset = this.extensionEnd;
    } else {
      this.extensionProfile = -1;
      this.extensionStart = 0;
      this.extensionEnd = 0;
    }
    this.payloadStart = offset;
    this.payloadEnd = n;
    if (this.padding) {
      // RFC 3550 §5.1: the last octet counts the padding, itself included.
      const count = packet[n - 1];
      if (count === 0 || offset + count > n) return false;
      this.payloadEnd = n - count;
    }
    return true;
  }

  /** The `index`th CSRC (0-based; the caller keeps `index` below {@link csrcCount}). */
  csrc(index: number): number {
    const p = this.packet;
    const at = 12 + index * 4;
    return ((p[at] << 24) | (p[at + 1] << 16) | (p[at + 2] << 8) | p[at + 3]) >>> 0;
  }

  /**
   * Offset in {@link packet} of the data of extension element `id`, or -1 when the packet has none (or an
   * extension form other than RFC 8285's); sets {@link extensionLength}. Malformed elements end the search.
   */
  findExtension(id: number): number {
    const p = this.packet;
    const end = this.extensionEnd;
    let at = this.extensionStart;
    if (this.extensionProfile === ONE_BYTE_PROFILE) {
      while (at < end) {
        const elementId = p[at] >> 4;
        if (elementId === 0) { // a padding byte
          at++;
          continue;
        }
        if (elementId === 15) return -1; // RFC 8285 §4.2: stop processing
        const length = (p[at] & 0x0f) + 1;
        if (at + 1 + length > end) return -1;
        if (elementId === id) {
          this.extensionLength = length;
          return at + 1;
        }
        at += 1 + length;
      }
      return -1;
    }
    if ((this.extensionProfile & TWO_BYTE_PROFILE_MASK) === TWO_BYTE_PROFILE) {
      while (at < end) {
        const elementId = p[at];
        if (elementId === 0) { // a padding byte
          at++;
          continue;
        }
        if (at + 2 > end) return -1;
        const length = p[at + 1];
        if (at + 2 + length > end) return -1;
        if (elementId === id) {
          this.extensionLength = length;
          return at + 2;
        }
        at += 2 + length;
      }
    }
    return -1;
  }

  /**
   * Element `id`'s data as a big-endian unsigned integer (transport-cc sequence, abs-send-time, audio level),
   * or -1 when absent, empty or longer than 4 bytes.
   */
  extensionValue(id: number): number {
    const at = this.findExtension(id);
    const length = this.extensionLength;
    if (at < 0 || length === 0 || length > 4) return -1;
    const p = this.packet;
    let value = 0;
    for (let i = 0; i < length; i++) value = value * 256 + p[at + i];
    return value;
  }
}
