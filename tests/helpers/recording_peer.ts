/** A stand-in `Peer` for room unit tests: it records the RTP header fields and payload, and the RTCP, it is sent. */
import type { Peer } from "../../src/peer/peer.ts";

/** One RTP packet as the stand-in received it. */
export interface SentRtp {
  ssrc: number;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payload: number[];
}

/** A peer that records what a room sends it (`sent`: RTP, `rtcp`: RTCP datagrams). */
export type RecordingPeer = Peer & { sent: SentRtp[]; rtcp: Uint8Array[] };

/** A stand-in peer whose sends are recorded instead of sealed and transmitted. */
export function recordingPeer(): RecordingPeer {
  const sent: SentRtp[] = [];
  const rtcp: Uint8Array[] = [];
  return {
    sent,
    rtcp,
    sendRtpPacket(packet: Uint8Array, headerLength: number) {
      const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
      sent.push({
        ssrc: view.getUint32(8),
        payloadType: packet[1] & 0x7f,
        sequenceNumber: view.getUint16(2),
        timestamp: view.getUint32(4),
        marker: (packet[1] & 0x80) !== 0,
        payload: [...packet.subarray(headerLength)],
      });
    },
    sendRtcp(packet: Uint8Array) {
      rtcp.push(packet);
    },
  } as unknown as RecordingPeer;
}
