/**
 * A bounds check to run before werift's `RtpHeader.deSerialize` sees network bytes. That parser walks the
 * header-extension block by its claimed length without looking at the packet's end, appending one extension
 * per byte by copying the list: a 50-byte packet claiming a 256 KiB extension keeps the event loop busy for
 * minutes. werift's SRTP decrypt runs it before authenticating, so any packet from a validated address would
 * do. Pure.
 */

/** Whether the fixed header, the CSRC list and the extension block (RFC 3550 §5.3.1) fit in `packet`. */
export function rtpHeaderFits(packet: Uint8Array): boolean {
  if (packet.length < 12) return false;
  let end = 12 + (packet[0] & 0x0f) * 4;
  if ((packet[0] & 0x10) !== 0) {
    if (end + 4 > packet.length) return false;
    end += 4 + ((packet[end + 2] << 8) | packet[end + 3]) * 4;
  }
  return end <= packet.length;
}
