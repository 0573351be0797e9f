/**
 * Codec negotiation: which of an offer's payload types the server takes for video (H.264, AV1, VP9, VP8,
 * H.265, in a configurable order of preference) and for Opus audio. Pure: offer sections in, choices out.
 */
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

/** The video codecs the server forwards, by their lower-case short name (as `VIDEO_CODECS` spells them). */
export type VideoCodecName = "h264" | "av1" | "vp9" | "vp8" | "h265";

/** Every video codec the server knows, in the default order of preference for publishers. */
export const DEFAULT_VIDEO_CODEC_ORDER: readonly VideoCodecName[] = ["h264", "av1", "vp9", "vp8", "h265"];

/** RTCP feedback the server answers on video towards viewers: PLI, FIR, and NACKs answered from history. */
export const VIEWER_VIDEO_FEEDBACK = ["nack", "nack pli", "ccm fir"];
/** Towards publishers the server also gives bandwidth feedback (transport-wide CC, or REMB without it). */
export const PUBLISHER_VIDEO_FEEDBACK = ["nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"];

const RTPMAP_NAMES: Record<string, VideoCodecName> = {
  H264: "h264",
  AV1: "av1",
  VP9: "vp9",
  VP8: "vp8",
  H265: "h265",
  // Chromium before M114 and some encoders spell these differently.
  AV1X: "av1",
  HEVC: "h265",
};

/** The video codec an rtpmap encoding name stands for, or undefined when the server cannot forward it. */
export function videoCodecOf(name: string): VideoCodecName | undefined {
  return RTPMAP_NAMES[name.toUpperCase()];
}

/** The codec's name as people write it ("H.264", "VP9"). */
export function codecLabel(codec: VideoCodecName): string {
  return { h264: "H.264", av1: "AV1", vp9: "VP9", vp8: "VP8", h265: "H.265" }[codec];
}

/** Profile part of an H.264 profile-level-id (profile_idc + constraint flags), without the level. */
export function h264Profile(codec: OfferedCodec | ChosenCodec): string {
  const fmtp = "parameters" in codec ? codec.parameters.get("profile-level-id") : undefined;
  const id = fmtp ?? /profile-level-id=([0-9a-fA-F]{6})/.exec(codec.fmtp)?.[1] ?? "42001f";
  return id.slice(0, 4).toLowerCase();
}

/** One `a=fmtp` parameter of a chosen or offered codec (keys compared case-insensitively). */
export function fmtpParameter(codec: OfferedCodec | ChosenCodec, key: string): string | undefined {
  if ("parameters" in codec) return codec.parameters.get(key);
  for (const pair of codec.fmtp.split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === key) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The fmtp parameter that must be equal between the publisher's and a viewer's payload type for the viewer
 * to decode the stream, with its RFC default: VP9 `profile-id` (0, 8-bit 4:2:0), AV1 `profile` (0, Main),
 * H.265 `profile-id` (1, Main). H.264 profiles are ranked instead (see {@link h264DecodeRank}).
 */
const PROFILE_KEYS: Partial<Record<VideoCodecName, { key: string; fallback: string }>> = {
  vp9: { key: "profile-id", fallback: "0" },
  av1: { key: "profile", fallback: "0" },
  h265: { key: "profile-id", fallback: "1" },
};

/** The codec's profile as the rooms API reports it (H.264: 4 hex digits; VP8: none). */
export function videoProfile(codec: ChosenCodec): string | undefined {
  const name = videoCodecOf(codec.name);
  if (name === "h264") return h264Profile(codec);
  const spec = name && PROFILE_KEYS[name];
  return spec ? fmtpParameter(codec, spec.key) ?? spec.fallback : undefined;
}

/**
 * How much of H.264 a decoder of this profile handles, as a rank: a decoder of rank r decodes streams of
 * rank ≤ r (Constrained Baseline < Baseline < Main < Constrained High < High < High 10 < 4:2:2 < 4:4:4).
 */
export function h264DecodeRank(profile: string): number {
  const idc = parseInt(profile.slice(0, 2), 16);
  const flags = parseInt(profile.slice(2, 4), 16);
  switch (idc) {
    case 0x42:
      return flags & 0x40 ? 0 : 1; // constraint_set1: Constrained Baseline
    case 0x4d:
      return flags & 0x80 ? 0 : 2; // constraint_set0 on Main: Constrained Baseline too
    case 0x58:
      return 2;
    case 0x64:
      return (flags & 0x0c) === 0x0c ? 3 : 4; // constraint_set4+5: Constrained High
    case 0x6e:
      return 5;
    case 0x7a:
      return 6;
    default:
      return 7;
  }
}

function isH264Mode1(codec: OfferedCodec): boolean {
  return codec.name.toUpperCase() === "H264" && codec.clockRate === 90000 &&
    codec.parameters.get("packetization-mode") === "1";
}

function chosen(codec: OfferedCodec, feedback: readonly string[]): ChosenCodec {
  return {
    payloadType: codec.payloadType,
    name: codec.name,
    clockRate: 90000,
    fmtp: codec.fmtp,
    feedback: feedback.filter((fb) => codec.feedback.includes(fb)),
  };
}

/**
 * Picks the H.264 (packetization-mode=1) payload type of a video m-line. Without `profile` the offerer's
 * first choice wins (a publisher's preference). With it (a viewer of a room sending that profile), the same
 * profile wins; else the least capable profile that still decodes it; else the most capable one offered
 * (a mismatch: {@link chooseViewerVideo} reports it).
 */
export function chooseH264(
  media: OfferedMedia,
  profile?: string,
  feedback: readonly string[] = VIEWER_VIDEO_FEEDBACK,
): ChosenCodec | undefined {
  const candidates = media.codecs.filter(isH264Mode1);
  if (candidates.length === 0) return undefined;
  if (profile === undefined) return chosen(candidates[0], feedback);
  const same = candidates.find((c) => h264Profile(c) === profile);
  if (same) return chosen(same, feedback);
  const needed = h264DecodeRank(profile);
  let best: OfferedCodec | undefined;
  let bestRank = 0;
  for (const c of candidates) {
    const rank = h264DecodeRank(h264Profile(c));
    const better = best === undefined ||
      (rank >= needed ? bestRank < needed || rank < bestRank : bestRank < needed && rank > bestRank);
    if (better) {
      best = c;
      bestRank = rank;
    }
  }
  return chosen(best!, feedback);
}

/** Whether the server takes this offered payload type as a publisher's video of codec `name`. */
function publishable(codec: OfferedCodec, name: VideoCodecName): boolean {
  if (codec.clockRate !== 90000 || videoCodecOf(codec.name) !== name) return false;
  // Packetization mode 0 (one NAL unit per packet) is not supported for H.264.
  return name !== "h264" || isH264Mode1(codec);
}

/**
 * Picks a publisher's video codec: the first codec of `order` the m-line offers, and within it the
 * offerer's first payload type.
 */
export function choosePublisherVideo(
  media: OfferedMedia,
  order: readonly VideoCodecName[] = DEFAULT_VIDEO_CODEC_ORDER,
  feedback: readonly string[] = PUBLISHER_VIDEO_FEEDBACK,
): ChosenCodec | undefined {
  for (const name of order) {
    const codec = media.codecs.find((c) => publishable(c, name));
    if (codec) return chosen(codec, feedback);
  }
  return undefined;
}

/** A viewer's video choice; `note` says why it is not an exact match of the room's stream (for the log). */
export interface ViewerVideoChoice {
  codec: ChosenCodec;
  note?: string;
}

/**
 * Picks the payload type of a viewer's video m-line that can carry the room's stream `room`: the same codec
 * and, where the codec has profiles, a profile that decodes it. Undefined when the m-line has none.
 */
export function chooseViewerVideo(
  media: OfferedMedia,
  room: ChosenCodec,
  feedback: readonly string[] = VIEWER_VIDEO_FEEDBACK,
): ViewerVideoChoice | undefined {
  const name = videoCodecOf(room.name);
  if (name === undefined) return undefined;
  if (name === "h264") {
    const profile = h264Profile(room);
    const codec = chooseH264(media, profile, feedback);
    if (!codec) return undefined;
    const answered = h264Profile(codec);
    if (answered === profile) return { codec };
    const decodes = h264DecodeRank(answered) >= h264DecodeRank(profile);
    return {
      codec,
      note: decodes
        ? `offers no H.264 profile ${profile}; answered with ${answered}, which decodes it`
        : `offers no H.264 profile able to decode ${profile}; answered with ${answered}, its most capable`,
    };
  }
  const spec = PROFILE_KEYS[name];
  const wanted = spec && (fmtpParameter(room, spec.key) ?? spec.fallback);
  const codec = media.codecs.find((c) =>
    c.clockRate === 90000 && videoCodecOf(c.name) === name &&
    (!spec || (c.parameters.get(spec.key) ?? spec.fallback) === wanted)
  );
  return codec ? { codec: chosen(codec, feedback) } : undefined;
}

/**
 * The room's video as a 406 reason names it, e.g. "VP9 (profile-id=2)"; and the video codecs an offer
 * lists, e.g. "VP8, H264".
 */
export function describeVideo(room: ChosenCodec): string {
  const name = videoCodecOf(room.name);
  if (name === "h264") return `H.264 (profile-level-id ${h264Profile(room)}…, packetization-mode=1)`;
  const spec = name && PROFILE_KEYS[name];
  const label = name ? codecLabel(name) : room.name;
  return spec ? `${label} (${spec.key}=${fmtpParameter(room, spec.key) ?? spec.fallback})` : label;
}

/** The distinct encodings an m-line offers (RTX, RED, FEC left out), for a 406 reason or a log line. */
export function offeredEncodings(media: OfferedMedia): string[] {
  const names = new Set<string>();
  for (const c of media.codecs) {
    const upper = c.name.toUpperCase();
    if (!["RTX", "RED", "ULPFEC", "FLEXFEC-03"].includes(upper)) names.add(upper);
  }
  return [...names];
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

/** Parses `VIDEO_CODECS` ("av1,h264"); throws with a one-line reason naming a codec it does not know. */
export function parseVideoCodecOrder(value: string): VideoCodecName[] {
  const names = value.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  const aliases: Record<string, VideoCodecName> = { hevc: "h265", "h.264": "h264", "h.265": "h265" };
  const order: VideoCodecName[] = [];
  for (const raw of names) {
    const name = aliases[raw] ?? raw;
    if (!(DEFAULT_VIDEO_CODEC_ORDER as readonly string[]).includes(name)) {
      throw new Error(`unknown video codec "${raw}" (known: ${DEFAULT_VIDEO_CODEC_ORDER.join(", ")})`);
    }
    if (!order.includes(name as VideoCodecName)) order.push(name as VideoCodecName);
  }
  if (order.length === 0) throw new Error("names no video codec");
  return order;
}
