/** Codec negotiation: which of an offer's payload types the server takes for H.264 video and Opus audio. */
import type { OfferedCodec, OfferedMedia } from "./offer.ts";

/** The codec the server answers with on one m-line. */
export interface ChosenCodec {
  payloadType: number;
  name: string;
  clockRate: number;
  channels?: number;
  fmtp: string;
  feedback: string[];
  /** Payload type of the RTX stream (RFC 4588) paired with this codec, when negotiated. */
  rtxPayloadType?: number;
}

/** RTCP feedback the server answers on video towards viewers: PLI, FIR, and NACKs answered from history. */
export const VIEWER_VIDEO_FEEDBACK = ["nack", "nack pli", "ccm fir"];
/** Towards publishers the server also gives bandwidth feedback (transport-wide CC, or REMB without it). */
export const PUBLISHER_VIDEO_FEEDBACK = ["nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"];

/** Profile part of an H.264 profile-level-id (profile_idc + constraint flags), without the level. */
export function h264Profile(codec: OfferedCodec | ChosenCodec): string {
  const fmtp = "parameters" in codec ? codec.parameters.get("profile-level-id") : undefined;
  const id = fmtp ?? /profile-level-id=([0-9a-fA-F]{6})/.exec(codec.fmtp)?.[1] ?? "42001f";
  return id.slice(0, 4).toLowerCase();
}

function isH264Mode1(codec: OfferedCodec): boolean {
  return codec.name.toUpperCase() === "H264" && codec.clockRate === 90000 &&
    codec.parameters.get("packetization-mode") === "1";
}

/**
 * Picks the H.264 (packetization-mode=1) payload type of a video m-line. Without `profile` the offerer's
 * first choice wins (a publisher's preference); with it, one of the same profile is preferred (a viewer
 * of a room) and any H.264 is the fallback, since decoders accept lower constraint sets.
 */
export function chooseH264(
  media: OfferedMedia,
  profile?: string,
  feedback: readonly string[] = VIEWER_VIDEO_FEEDBACK,
): ChosenCodec | undefined {
  const candidates = media.codecs.filter(isH264Mode1);
  const same = profile === undefined ? undefined : candidates.find((c) => h264Profile(c) === profile);
  const codec = same ?? candidates[0];
  if (!codec) return undefined;
  return {
    payloadType: codec.payloadType,
    name: codec.name,
    clockRate: 90000,
    fmtp: codec.fmtp,
    feedback: feedback.filter((fb) => codec.feedback.includes(fb)),
  };
}

/**
 * The offer's RTX payload type (RFC 4588) for `payloadType` (`a=fmtp:<rtx> apt=<payloadType>`), so lost
 * packets can be resent on their own stream; undefined when the offerer has none for it.
 */
export function chooseRtx(media: OfferedMedia, payloadType: number): number | undefined {
  const rtx = media.codecs.find((c) =>
    c.name.toLowerCase() === "rtx" && c.clockRate === 90000 && c.parameters.get("apt") === String(payloadType)
  );
  return rtx?.payloadType;
}

/** Picks the Opus payload type of an audio m-line. */
export function chooseOpus(media: OfferedMedia, feedback: readonly string[] = []): ChosenCodec | undefined {
  const codec = media.codecs.find((c) => c.name.toLowerCase() === "opus" && c.clockRate === 48000);
  if (!codec) return undefined;
  return {
    payloadType: codec.payloadType,
    name: codec.name,
    clockRate: 48000,
    channels: codec.channels ?? 2,
    fmtp: codec.fmtp || "minptime=10;useinbandfec=1",
    feedback: feedback.filter((fb) => codec.feedback.includes(fb)),
  };
}
