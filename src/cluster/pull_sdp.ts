/**
 * The SDP of a server-to-server WHEP pull (pure): the offer this node sends as a receive-only client, and
 * what it needs from the other node's answer (ICE credentials, candidates, fingerprint, the codecs chosen).
 */
import { type ChosenCodec, videoCodecOf } from "../sdp/codecs.ts";

/** What a pull offer is built from. */
export interface PullOfferParams {
  ufrag: string;
  pwd: string;
  /** sha-256 fingerprint of this node's DTLS certificate. */
  fingerprint: string;
  /** H.264 profile (4 hex digits, e.g. "42e0") the room carries, offered first so the origin keeps it. */
  profile?: string;
  /**
   * The room's video codec as the rooms API names it (H264, AV1, VP9, VP8, H265); default H264. For the
   * others the offer lists just that codec, with `profile` as its profile parameter.
   */
  codec?: string;
}

/** The fmtp parameter carrying a non-H.264 codec's profile (RoomInfo.video.profile). */
const PROFILE_PARAMETER: Record<string, string> = { VP9: "profile-id", AV1: "profile", H265: "profile-id" };

/** Offered H.264 payload types: the room's profile first, then the common ones as fallbacks. */
const VIDEO_PAYLOAD_TYPES = [102, 104, 106, 108, 110];
const FALLBACK_PROFILES = ["42e0", "4200", "4d00", "6400"];
const AUDIO_PAYLOAD_TYPE = 111;
const VIDEO_FEEDBACK = ["nack", "nack pli", "ccm fir"];

/**
 * A receive-only BUNDLE offer for the room's video (H.264 in several profiles, or the room's other codec)
 * and Opus, without candidates (the origin is ICE-lite).
 */
export function buildPullOffer(p: PullOfferParams): string {
  const codec = (p.codec ?? "H264").toUpperCase();
  const isH264 = codec === "H264";
  const profiles = isH264
    ? [...new Set([...(p.profile ? [p.profile.toLowerCase()] : []), ...FALLBACK_PROFILES])]
      .slice(0, VIDEO_PAYLOAD_TYPES.length)
    : [p.profile ?? ""];
  const videoTypes = VIDEO_PAYLOAD_TYPES.slice(0, profiles.length);
  const lines = [
    "v=0",
    `o=- ${Date.now()} 2 IN IP4 0.0.0.0`,
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=msid-semantic: WMS",
  ];
  const common = (mid: string) => [
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    `a=ice-ufrag:${p.ufrag}`,
    `a=ice-pwd:${p.pwd}`,
    "a=ice-options:trickle",
    `a=fingerprint:sha-256 ${p.fingerprint}`,
    "a=setup:active",
    `a=mid:${mid}`,
    "a=recvonly",
    "a=rtcp-mux",
    "a=rtcp-rsize",
  ];
  lines.push(`m=video 9 UDP/TLS/RTP/SAVPF ${videoTypes.join(" ")}`, ...common("0"));
  profiles.forEach((profile, i) => {
    const pt = videoTypes[i];
    lines.push(`a=rtpmap:${pt} ${codec}/90000`);
    for (const fb of VIDEO_FEEDBACK) lines.push(`a=rtcp-fb:${pt} ${fb}`);
    if (isH264) {
      lines.push(`a=fmtp:${pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${profile}1f`);
    } else if (PROFILE_PARAMETER[codec] && /^\d{1,2}$/.test(profile)) {
      lines.push(`a=fmtp:${pt} ${PROFILE_PARAMETER[codec]}=${profile}`);
    }
  });
  lines.push(
    `m=audio 9 UDP/TLS/RTP/SAVPF ${AUDIO_PAYLOAD_TYPE}`,
    ...common("1"),
    `a=rtpmap:${AUDIO_PAYLOAD_TYPE} opus/48000/2`,
    `a=fmtp:${AUDIO_PAYLOAD_TYPE} minptime=10;useinbandfec=1`,
  );
  return lines.join("\r\n") + "\r\n";
}

/** What the pull needs from the answer. */
export interface PullAnswer {
  ufrag: string;
  pwd: string;
  fingerprint: { algorithm: string; value: string };
  /** The answerer's DTLS role; a server answers "passive" (this node is the DTLS client). */
  setup: string;
  /** IPv4 UDP host candidates, in the answer's order. */
  candidates: { address: string; port: number }[];
  video: ChosenCodec;
  audio: ChosenCodec | undefined;
}

/** Reads an answer to {@link buildPullOffer}; throws with a one-line reason when it cannot be used. */
export function parsePullAnswer(sdp: string): PullAnswer {
  const lines = sdp.split(/\r?\n/);
  const value = (prefix: string) => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length).trim();
  const ufrag = value("a=ice-ufrag:");
  const pwd = value("a=ice-pwd:");
  const fp = /^(\S+)\s+([0-9A-Fa-f:]+)$/.exec(value("a=fingerprint:") ?? "");
  if (!ufrag || !pwd || !fp) throw new Error("answer lacks ICE credentials or a DTLS fingerprint");
  const candidates: { address: string; port: number }[] = [];
  for (const line of lines) {
    const m = /^a=candidate:\S+ 1 udp \d+ (\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5}) typ host/i.exec(line);
    if (m && Number(m[2]) > 0 && Number(m[2]) < 65536) candidates.push({ address: m[1], port: Number(m[2]) });
  }
  if (candidates.length === 0) throw new Error("answer has no IPv4 UDP host candidate");
  const sections = splitSections(lines);
  const video = chosen(sections.find((s) => s.kind === "video"));
  if (!video || !videoCodecOf(video.name)) {
    throw new Error("answer accepts no video codec this node forwards");
  }
  const audio = chosen(sections.find((s) => s.kind === "audio"));
  return {
    ufrag,
    pwd,
    fingerprint: { algorithm: fp[1].toLowerCase(), value: fp[2].toUpperCase() },
    setup: value("a=setup:") ?? "passive",
    candidates,
    video,
    audio: audio && audio.name.toLowerCase() === "opus" ? audio : undefined,
  };
}

interface Section {
  kind: string;
  port: number;
  payloadType: number;
  lines: string[];
}

function splitSections(lines: string[]): Section[] {
  const sections: Section[] = [];
  for (const line of lines) {
    const m = /^m=(\w+) (\d+) \S+ (\d+)/.exec(line);
    if (m) sections.push({ kind: m[1], port: Number(m[2]), payloadType: Number(m[3]), lines: [] });
    else sections.at(-1)?.lines.push(line);
  }
  return sections;
}

/** The codec an accepted m-line carries (its first payload type), or undefined when rejected. */
function chosen(section: Section | undefined): ChosenCodec | undefined {
  if (!section || section.port === 0 || section.lines.includes("a=inactive")) return undefined;
  const pt = section.payloadType;
  const attr = (name: string) =>
    section.lines.filter((l) => l.startsWith(`a=${name}:${pt} `)).map((l) =>
      l.slice(`a=${name}:${pt} `.length)
    );
  const rtpmap = /^([^/]+)\/(\d+)(?:\/(\d+))?$/.exec(attr("rtpmap")[0] ?? "");
  if (!rtpmap) return undefined;
  return {
    payloadType: pt,
    name: rtpmap[1],
    clockRate: Number(rtpmap[2]),
    channels: rtpmap[3] ? Number(rtpmap[3]) : undefined,
    fmtp: attr("fmtp")[0] ?? "",
    feedback: attr("rtcp-fb"),
  };
}
