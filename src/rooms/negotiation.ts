/**
 * SDP negotiation for WHIP and WHEP, pure: a parsed offer (and for a viewer, the room it wants) in, the
 * answer's sections and what was chosen out. Refusals are {@link SessionError}s with a one-line reason:
 * "invalid" for malformed SDP, "unacceptable" for an offer with no codec the server takes or the room sends.
 */
import {
  chooseOpus,
  choosePublisherVideo,
  chooseRtx,
  chooseViewerVideo,
  type ChosenCodec,
  codecLabel,
  describeVideo,
  offeredEncodings,
  PUBLISHER_VIDEO_FEEDBACK,
  type VideoCodecName,
  VIEWER_VIDEO_FEEDBACK,
} from "../sdp/codecs.ts";
import { TWCC_URI } from "../rtp/twcc.ts";
import type { AnswerSection } from "../sdp/answer.ts";
import type { BundleHead } from "../sdp/sdpfrag.ts";
import { type OfferedMedia, type ParsedOffer, parseOffer, SdpError } from "../sdp/offer.ts";
import { parseSimulcastOffer, type SimulcastOffer } from "../sdp/simulcast.ts";
import { SessionError } from "./errors.ts";
import { newViewerTrack, randomSsrc, type ViewerTrack } from "./viewer.ts";

/** What a publisher negotiated: the room's media, kept until the publisher takes over a live room. */
export interface PublisherMedia {
  video: ChosenCodec;
  audio: ChosenCodec | undefined;
  twccExtensionId: number | undefined;
  /** The video's simulcast layers, when the publisher sends several (rooms/layers.ts). */
  simulcast: SimulcastOffer | undefined;
}

/** A negotiated WHIP offer. */
export interface PublisherNegotiation {
  sections: AnswerSection[];
  media: PublisherMedia;
  /** The offer's audio had no Opus (its encodings): the room is video-only. */
  audioWithoutOpus: string[] | undefined;
}

/** A negotiated WHEP offer: the viewer's tracks, numbered afresh. */
export interface ViewerNegotiation {
  sections: AnswerSection[];
  video: ViewerTrack;
  /** The mid of the viewer's video m-line (the WHEP layer API names media by it). */
  videoMid: string;
  audio: ViewerTrack | undefined;
  /**
   * The transport-wide sequence number extension id written into the viewer's video, when transport-cc was
   * negotiated: its feedback drives the viewer's bandwidth estimate (viewer_bandwidth.ts).
   */
  transportCcExtensionId: number | undefined;
  /** Lines worth a log entry: what the viewer gets instead of what it offered. */
  notes: string[];
}

/** The room a viewer's offer is matched against. */
export interface OfferedRoom {
  id: string;
  video: ChosenCodec;
  audio: ChosenCodec | undefined;
}

/** Parses an offer; malformed SDP is refused as "invalid". */
export function parseOfferOrRefuse(sdp: string): ParsedOffer {
  try {
    return parseOffer(sdp);
  } catch (e) {
    if (e instanceof SdpError) throw new SessionError("invalid", `malformed SDP: ${e.message}`);
    throw e;
  }
}

/**
 * Answers a publisher's offer: the first video line gets the first codec of `codecOrder` it offers (the
 * room's codec first when `roomCodec` is given: a publisher taking over keeps the viewers' codec), the first
 * audio line Opus; transport-wide congestion control and simulcast layers are taken when offered.
 */
export function negotiatePublisher(
  offer: ParsedOffer,
  options: { codecOrder: readonly VideoCodecName[]; roomCodec?: VideoCodecName; transportCc: boolean },
): PublisherNegotiation {
  const order = options.codecOrder;
  const roomCodec = options.roomCodec;
  const preferred = roomCodec ? [roomCodec, ...order.filter((c) => c !== roomCodec)] : order;
  const sections: AnswerSection[] = [];
  let video: ChosenCodec | undefined;
  let audio: ChosenCodec | undefined;
  let audioOffered: string[] | undefined;
  let twccExtensionId: number | undefined;
  let simulcast: SimulcastOffer | undefined;
  for (const m of offer.media) {
    const codec = !usable(m) || (m.direction !== "sendonly" && m.direction !== "sendrecv")
      ? undefined
      : m.kind === "video" && !video
      ? (video = choosePublisherVideo(
        m,
        preferred,
        PUBLISHER_VIDEO_FEEDBACK.filter((fb) => fb !== "transport-cc" || options.transportCc),
      ))
      : m.kind === "audio" && !audio
      ? (audio = chooseOpus(m, options.transportCc ? ["transport-cc"] : []))
      : undefined;
    if (m.kind === "audio" && usable(m) && !audio) audioOffered ??= offeredEncodings(m);
    // Transport-wide sequence numbers let the server give the publisher congestion feedback.
    const twcc = options.transportCc ? m.extensions.find((e) => e.uri === TWCC_URI) : undefined;
    if (twcc && codec) twccExtensionId ??= twcc.id;
    // The video line's simulcast layers are each received (rooms/layers.ts); other lines get one stream.
    const layers = codec && codec === video ? simulcastOf(m) : undefined;
    if (layers) simulcast = layers;
    sections.push(
      codec
        ? {
          offer: m,
          accepted: true,
          direction: "recvonly",
          codec,
          extensions: [
            ...(twcc && twcc.id === twccExtensionId ? [twcc] : []),
            ...(layers?.extensions ?? []),
          ],
          ...(layers ? { simulcastRids: layers.rids } : {}),
        }
        : { offer: m, accepted: false },
    );
  }
  if (!video) {
    const accepted = order.map((c) => codecLabel(c)).join(", ");
    const offered = offer.media.filter((m) => m.kind === "video" && usable(m)).flatMap(offeredEncodings);
    throw new SessionError(
      "unacceptable",
      offered.length > 0
        ? `the offer's video (${[...new Set(offered)].join(", ")}) has none of the codecs this server ` +
          `takes (${accepted}; H.264 with packetization-mode=1)`
        : `the offer has no video; this server needs video (${accepted}); audio-only is not supported`,
    );
  }
  return {
    sections,
    media: { video, audio, twccExtensionId, simulcast },
    audioWithoutOpus: audioOffered,
  };
}

/**
 * Answers a viewer's offer for `room`: its first receiving video line gets the room's codec (with RTX when
 * `retransmissions` and the viewer offers it, and transport-cc with `transportCc`), its first audio line
 * Opus when the room has audio; an audio line of a room without audio is accepted as inactive (aiortc 1.4
 * cannot take a rejected one).
 */
export function negotiateViewer(
  offer: ParsedOffer,
  room: OfferedRoom,
  options: { retransmissions: boolean; transportCc: boolean },
): ViewerNegotiation {
  const sections: AnswerSection[] = [];
  const notes: string[] = [];
  let video: ViewerTrack | undefined;
  let videoMid = "";
  let audio: ViewerTrack | undefined;
  let transportCcExtensionId: number | undefined;
  const cname = `sfu-${room.id}`;
  let silentAudio = false;
  for (const m of offer.media) {
    const wantsMedia = usable(m) && (m.direction === "recvonly" || m.direction === "sendrecv");
    if (m.kind === "video" && wantsMedia && !video) {
      // Transport-wide congestion control towards the viewer: its feedback drives the estimate that picks
      // its simulcast layer (viewer_bandwidth.ts). The server writes the one-byte form: ids 1-14.
      const twcc = options.transportCc
        ? m.extensions.find((e) => e.uri === TWCC_URI && e.id >= 1 && e.id <= 14)
        : undefined;
      const choice = chooseViewerVideo(
        m,
        room.video,
        twcc ? [...VIEWER_VIDEO_FEEDBACK, "transport-cc"] : VIEWER_VIDEO_FEEDBACK,
      );
      if (choice?.note) notes.push(`viewer of room ${room.id} ${choice.note}`);
      const codec = choice?.codec;
      if (codec) {
        if (options.retransmissions && codec.feedback.includes("nack")) {
          codec.rtxPayloadType = chooseRtx(m, codec.payloadType);
        }
        video = newViewerTrack(codec.payloadType, randomSsrc(), true, codec.rtxPayloadType);
        videoMid = m.mid;
        const transportCc = twcc && codec.feedback.includes("transport-cc") ? twcc : undefined;
        transportCcExtensionId = transportCc?.id;
        sections.push({
          offer: m,
          accepted: true,
          direction: "sendonly",
          codec,
          ...(transportCc ? { extensions: [transportCc] } : {}),
          sent: { ssrc: video.ssrc, rtxSsrc: video.rtx?.ssrc, cname, streamId: room.id, trackId: "video" },
        });
        continue;
      }
    }
    if (m.kind === "audio" && wantsMedia && room.audio && !audio) {
      const codec = chooseOpus(m);
      if (!codec) {
        notes.push(
          `viewer of room ${room.id}: its audio (${offeredEncodings(m).join(", ") || "no codec"}) has no ` +
            "Opus, the only audio codec the server forwards: video only",
        );
      }
      if (codec) {
        audio = newViewerTrack(codec.payloadType, randomSsrc(), false);
        sections.push({
          offer: m,
          accepted: true,
          direction: "sendonly",
          codec,
          sent: { ssrc: audio.ssrc, cname, streamId: room.id, trackId: "audio" },
        });
        continue;
      }
    }
    if (m.kind === "audio" && wantsMedia && !room.audio && !silentAudio) {
      // A room without audio: the viewer's audio line is accepted as inactive rather than rejected, since
      // aiortc 1.4 cannot take a rejected m-line (it insists on a common codec and its own transport).
      const codec = chooseOpus(m);
      if (codec) {
        silentAudio = true;
        sections.push({ offer: m, accepted: true, direction: "inactive", codec });
        continue;
      }
    }
    sections.push({ offer: m, accepted: false });
  }
  if (!video) {
    const offered = offer.media.filter((m) => m.kind === "video" && usable(m)).flatMap(offeredEncodings);
    throw new SessionError(
      "unacceptable",
      `room "${room.id}" sends ${describeVideo(room.video)} video; the offer can receive ` +
        (offered.length > 0 ? [...new Set(offered)].join(", ") : "no video"),
    );
  }
  return { sections, video, videoMid, audio, transportCcExtensionId, notes };
}

/** The first accepted m-line, which carries the bundle's ICE attributes (both negotiations ensure one). */
export function bundleHead(sections: AnswerSection[]): BundleHead {
  const accepted = sections.filter((s) => s.accepted);
  const first = accepted[0];
  return {
    kind: first.offer.kind,
    mid: first.offer.mid,
    payloadType: first.codec.payloadType,
    mids: accepted.map((s) => s.offer.mid),
  };
}

function simulcastOf(m: OfferedMedia): SimulcastOffer | undefined {
  try {
    return parseSimulcastOffer(m);
  } catch (e) {
    if (e instanceof SdpError) throw new SessionError("invalid", `malformed SDP: ${e.message}`);
    throw e;
  }
}

function usable(m: OfferedMedia): boolean {
  // GStreamer's webrtcbin (max-bundle) offers every m-line but the first with port 0 and a=bundle-only.
  return (m.port !== 0 || m.bundleOnly) && m.protocol.includes("SAVPF") && m.direction !== "inactive";
}
