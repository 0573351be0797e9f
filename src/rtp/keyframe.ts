/** Packet-level H.264 keyframe detection (RFC 6184): does this RTP payload start an IDR access unit? */

const NAL_IDR = 5;
const NAL_SPS = 7;
const STAP_A = 24;
const FU_A = 28;

/**
 * True when the payload carries the start of a keyframe: an SPS or IDR NAL unit, alone, inside a STAP-A,
 * or as the first fragment of an FU-A. Encoders send SPS/PPS right before the IDR slice, so either marks the
 * start of the access unit a new viewer can decode from.
 */
export function startsKeyframe(payload: Uint8Array): boolean {
  if (payload.length < 2) return false;
  const type = payload[0] & 0x1f;
  if (type === NAL_IDR || type === NAL_SPS) return true;
  if (type === FU_A) return (payload[1] & 0x80) !== 0 && (payload[1] & 0x1f) === NAL_IDR;
  if (type === STAP_A) {
    let offset = 1;
    while (offset + 2 < payload.length) {
      const size = (payload[offset] << 8) | payload[offset + 1];
      if (size === 0 || offset + 2 + size > payload.length) return false;
      const inner = payload[offset + 2] & 0x1f;
      if (inner === NAL_IDR || inner === NAL_SPS) return true;
      offset += 2 + size;
    }
  }
  return false;
}
