/** Building the server's SDP answer: ICE-lite, DTLS passive, BUNDLE over one transport (pure). */
import type { ChosenCodec } from "./codecs.ts";
import type { Direction, OfferedMedia } from "./offer.ts";
import { simulcastAnswerLines } from "./simulcast.ts";

/** An address the server can be reached on over UDP. */
export interface Candidate {
  address: string;
  port: number;
}

/** The stream the server sends on an m-line, announced with `a=ssrc`/`a=msid` (viewers only). */
export interface SentStream {
  ssrc: number;
  /** SSRC of the paired RTX stream (`a=ssrc-group:FID`), when the codec has one. */
  rtxSsrc?: number;
  cname: string;
  streamId: string;
  trackId: string;
}

/** How the server answers one m-line of the offer. */
export type AnswerSection =
  | { offer: OfferedMedia; accepted: false }
  | {
    offer: OfferedMedia;
    accepted: true;
    direction: Direction;
    codec: ChosenCodec;
    /** Header extensions the server accepts on this m-line (ids as offered). */
    extensions?: { id: number; uri: string }[];
    sent?: SentStream;
    /** The publisher's simulcast layers the server receives (`a=rid ... recv`, `a=simulcast:recv`). */
    simulcastRids?: readonly string[];
  };

/** Everything an answer is built from. */
export interface AnswerParams {
  sessionId: string;
  iceUfrag: string;
  icePwd: string;
  /** sha-256 fingerprint of the server certificate, colon-separated upper-case hex. */
  fingerprint: string;
  candidates: Candidate[];
  sections: AnswerSection[];
}

/** Renders an answer; rejected m-lines get port 0 and stay out of the BUNDLE group (RFC 8843 §7.3.3). */
export function buildAnswer(p: AnswerParams): string {
  const bundled = p.sections.filter((s) => s.accepted).map((s) => s.offer.mid);
  const lines = [
    "v=0",
    `o=- ${p.sessionId} 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    `a=group:BUNDLE ${bundled.join(" ")}`,
    "a=ice-lite",
    "a=msid-semantic: WMS *",
  ];
  let candidatesWritten = false;
  for (const section of p.sections) {
    const m = section.offer;
    if (!section.accepted) {
      lines.push(`m=${m.kind} 0 ${m.protocol} ${m.formats.join(" ")}`, "c=IN IP4 0.0.0.0");
      if (m.mid !== "") lines.push(`a=mid:${m.mid}`);
      // Not needed by JSEP for a rejected line, but some clients refuse an answer without them: aiortc 1.4
      // checks every m-line for credentials and for rtcp-mux ("RTCP mux is not enabled").
      lines.push(
        `a=ice-ufrag:${p.iceUfrag}`,
        `a=ice-pwd:${p.icePwd}`,
        `a=fingerprint:sha-256 ${p.fingerprint}`,
        "a=setup:passive",
        "a=inactive",
        "a=rtcp-mux",
      );
      continue;
    }
    const c = section.codec;
    const formats = c.rtxPayloadType === undefined
      ? `${c.payloadType}`
      : `${c.payloadType} ${c.rtxPayloadType}`;
    lines.push(
      `m=${m.kind} 9 UDP/TLS/RTP/SAVPF ${formats}`,
      "c=IN IP4 0.0.0.0",
      "a=rtcp:9 IN IP4 0.0.0.0",
      `a=mid:${m.mid}`,
      `a=ice-ufrag:${p.iceUfrag}`,
      `a=ice-pwd:${p.icePwd}`,
      `a=fingerprint:sha-256 ${p.fingerprint}`,
      "a=setup:passive",
      `a=${section.direction}`,
      "a=rtcp-mux",
      "a=rtcp-rsize",
      `a=rtpmap:${c.payloadType} ${c.name}/${c.clockRate}${c.channels ? `/${c.channels}` : ""}`,
    );
    for (const ext of section.extensions ?? []) lines.push(`a=extmap:${ext.id} ${ext.uri}`);
    if (section.simulcastRids) lines.push(...simulcastAnswerLines(section.simulcastRids));
    if (c.fmtp !== "") lines.push(`a=fmtp:${c.payloadType} ${c.fmtp}`);
    for (const fb of c.feedback) lines.push(`a=rtcp-fb:${c.payloadType} ${fb}`);
    if (c.rtxPayloadType !== undefined) {
      lines.push(
        `a=rtpmap:${c.rtxPayloadType} rtx/${c.clockRate}`,
        `a=fmtp:${c.rtxPayloadType} apt=${c.payloadType}`,
      );
    }
    if (section.sent) {
      const s = section.sent;
      lines.push(`a=msid:${s.streamId} ${s.trackId}`);
      if (s.rtxSsrc !== undefined) lines.push(`a=ssrc-group:FID ${s.ssrc} ${s.rtxSsrc}`);
      for (const ssrc of s.rtxSsrc === undefined ? [s.ssrc] : [s.ssrc, s.rtxSsrc]) {
        lines.push(`a=ssrc:${ssrc} cname:${s.cname}`, `a=ssrc:${ssrc} msid:${s.streamId} ${s.trackId}`);
      }
    }
    // With BUNDLE the candidates belong to the first bundled m-line only; repeating them is harmless but
    // noisy, so they are written once.
    if (!candidatesWritten) {
      p.candidates.forEach((cand, i) => {
        const priority = 2130706431 - i;
        lines.push(`a=candidate:${i + 1} 1 udp ${priority} ${cand.address} ${cand.port} typ host`);
      });
      lines.push("a=end-of-candidates");
      candidatesWritten = true;
    }
  }
  return lines.join("\r\n") + "\r\n";
}
