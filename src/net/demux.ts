/** What a datagram on the shared media port carries, decided by its first bytes (RFC 7983 §7, RFC 5761). */
export type DatagramKind = "stun" | "dtls" | "rtp" | "rtcp" | "unknown";

/** Classifies a datagram without parsing it. */
export function classifyDatagram(data: Uint8Array): DatagramKind {
  if (data.length < 2) return "unknown";
  const first = data[0];
  if (first <= 3) return data.length >= 20 ? "stun" : "unknown";
  if (first >= 20 && first <= 63) return data.length >= 13 ? "dtls" : "unknown";
  if (first >= 128 && first <= 191) {
    if (data.length < 12 && data.length < 8) return "unknown";
    // RTCP packet types 192-223 occupy the RTP marker+payload-type byte range RTP must not use.
    const type = data[1];
    if (type >= 192 && type <= 223) return data.length >= 8 ? "rtcp" : "unknown";
    return data.length >= 12 ? "rtp" : "unknown";
  }
  return "unknown";
}
