/**
 * A WHEP viewer as a room sees it: per kind of media, the track its packets are renumbered onto, and what
 * its receiver reports say. Plain records; the forwarder and the viewer feedback change them.
 */
import type { Peer } from "../peer/peer.ts";
import type { JoinReplay } from "./join_replay.ts";
import type { ResendBudget } from "./resend_budget.ts";
import type { ViewerBandwidth } from "./viewer_bandwidth.ts";

/** What a viewer receives on one kind of media and how the publisher's stream is mapped onto it. */
export interface ViewerTrack {
  payloadType: number;
  ssrc: number;
  /** Added to the publisher's sequence numbers (mod 2^16). */
  sequenceOffset: number;
  /** Added to the publisher's RTP timestamps (mod 2^32). */
  timestampOffset: number;
  /** Video waits for a keyframe before anything is forwarded, so a decoder never starts mid-GOP. */
  started: boolean;
  /** The publisher's stream changed: map the next packet sent onto this track's numbering (continuing it). */
  remap: boolean;
  lastSequence: number;
  lastTimestamp: number;
  lastSentAt: number;
  /** The last packet sent ended a frame (its marker bit): a simulcast switch may happen after it. */
  frameEnded: boolean;
  /** Simulcast: the viewer leaves this layer at the end of the current frame (see layers.ts). */
  leaving: boolean;
  /** Resends of packets sent before this sequence number are refused (they came from another stream). */
  resendFloor: number;
  packetsSent: number;
  octetsSent: number;
  /** The RTX stream (RFC 4588) resends go out on, when the viewer negotiated one. */
  rtx?: RtxStream;
  /**
   * The join replay: while `active`, video reaches the viewer only through it (in sequence order, paced);
   * afterwards its timestamps still serve resends of replayed packets until `until` (ms; by then they have
   * left the packet history). Dropped when the numbering is remapped.
   */
  replay?: { cursor: JoinReplay; active: boolean; until: number };
  /** What this viewer may still make the server resend. */
  resends?: ResendBudget;
}

/** A viewer's retransmission stream: its own payload type, SSRC and sequence numbers. */
export interface RtxStream {
  payloadType: number;
  ssrc: number;
  nextSequence: number;
}

/** What a viewer's receiver reports say about its reception. */
export interface ViewerReception {
  fractionLost: number;
  cumulativeLost: number;
  jitterMs: number;
  rttMs: number | undefined;
  nacksReceived: number;
  packetsResent: number;
  /** Report blocks about the viewer's streams received so far (the layer choice reacts to new ones). */
  reports: number;
}

/** One WHEP viewer of a room. */
export interface Viewer {
  sessionId: string;
  peer: Peer;
  video?: ViewerTrack;
  audio?: ViewerTrack;
  reception: ViewerReception;
  /** Middle 32 bits of the NTP time of SRs sent to this viewer -> when they were sent (for RTT). */
  sentReports: Map<number, number>;
  /** Another cluster node pulling the room for its own viewers: served like a viewer, not counted as one. */
  relay?: boolean;
  /** The mid of the viewer's video m-line (the WHEP layer API names media by it). */
  videoMid?: string;
  /** Transport-wide congestion control, when the viewer negotiated it: numbering, send record, estimate. */
  bandwidth?: ViewerBandwidth;
}

/**
 * Creates a viewer's track mapping for a publisher stream; offsets start at random points. With
 * `rtxPayloadType` resends go out on an RTX stream of their own.
 */
export function newViewerTrack(
  payloadType: number,
  ssrc: number,
  isVideo: boolean,
  rtxPayloadType?: number,
): ViewerTrack {
  const random = crypto.getRandomValues(new Uint32Array(3));
  const rtx = rtxPayloadType === undefined
    ? undefined
    : { payloadType: rtxPayloadType, ssrc: randomSsrc(), nextSequence: random[2] & 0xffff };
  return {
    ...(rtx ? { rtx } : {}),
    payloadType,
    ssrc,
    sequenceOffset: random[0] & 0xffff,
    timestampOffset: random[1],
    started: !isVideo,
    remap: false,
    lastSequence: -1,
    lastTimestamp: 0,
    lastSentAt: 0,
    frameEnded: false,
    leaving: false,
    resendFloor: -1,
    packetsSent: 0,
    octetsSent: 0,
  };
}

/** A fresh reception record for a viewer. */
export function newReception(): ViewerReception {
  return {
    fractionLost: 0,
    cumulativeLost: 0,
    jitterMs: 0,
    rttMs: undefined,
    nacksReceived: 0,
    packetsResent: 0,
    reports: 0,
  };
}

/** A random non-zero 32-bit SSRC. */
export function randomSsrc(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
}
