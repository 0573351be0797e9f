/**
 * Parsing of a WHIP/WHEP SDP offer (RFC 8866 syntax, JSEP conventions) into what the server needs:
 * ICE credentials, the DTLS fingerprint and, per m-line, its codecs. Pure: text in, data out.
 */

/** The offer cannot be used; the message is a one-line reason for a 400 response. */
export class SdpError extends Error {
  override name = "SdpError";
}

/** Media direction attribute of an m-line. */
export type Direction = "sendrecv" | "sendonly" | "recvonly" | "inactive";

/** One `a=rtpmap` entry with its `a=fmtp` and `a=rtcp-fb` lines. */
export interface OfferedCodec {
  payloadType: number;
  /** Encoding name as written (compare case-insensitively). */
  name: string;
  clockRate: number;
  channels?: number;
  /** Parameters from `a=fmtp`, keys lower-cased. */
  parameters: Map<string, string>;
  /** Raw `a=fmtp` value, empty when absent. */
  fmtp: string;
  feedback: string[];
}

/** One m-line of the offer. */
export interface OfferedMedia {
  kind: string;
  port: number;
  protocol: string;
  formats: string[];
  mid: string;
  direction: Direction;
  codecs: OfferedCodec[];
  extensions: { id: number; uri: string }[];
  rtcpMux: boolean;
  /** `a=bundle-only` (RFC 8843 §6): port 0 then means "bundled", not "rejected". */
  bundleOnly: boolean;
  /** Raw `a=rid` values (RFC 8851) and `a=simulcast` values (RFC 8853), read by simulcast.ts. */
  rids: string[];
  simulcast: string[];
}

/** The parts of an offer the server answers. */
export interface ParsedOffer {
  iceUfrag: string;
  icePwd: string;
  fingerprint: { algorithm: string; value: string };
  setup: string;
  media: OfferedMedia[];
}

const MAX_MEDIA = 16;
const MAX_LINES = 4000;

/** Parses an SDP offer; throws {@link SdpError} with a one-line reason when it is unusable. */
export function parseOffer(sdp: string): ParsedOffer {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0 || lines[0] !== "v=0") throw new SdpError("SDP must start with v=0");
  if (lines.length > MAX_LINES) throw new SdpError(`SDP has more than ${MAX_LINES} lines`);

  const session: SectionAttrs = newAttrs();
  const media: { attrs: SectionAttrs; m: OfferedMedia }[] = [];
  let current = session;
  for (const line of lines) {
    if (line.length < 2 || line[1] !== "=") throw new SdpError(`malformed SDP line "${clip(line)}"`);
    // RFC 8866 §9 byte-string excludes NUL, CR and LF; values are echoed into the answer (mid, fmtp, m-line).
    if (/[\0\r]/.test(line)) throw new SdpError("SDP has a NUL or a stray CR inside a line");
    const type = line[0];
    const value = line.slice(2);
    if (type === "m") {
      if (media.length >= MAX_MEDIA) throw new SdpError(`SDP has more than ${MAX_MEDIA} m-lines`);
      const parts = value.split(" ");
      const port = Number(parts[1]);
      if (parts.length < 4 || !Number.isInteger(port) || port < 0 || port > 65535) {
        throw new SdpError(`malformed m-line "${clip(line)}"`);
      }
      current = newAttrs();
      media.push({
        attrs: current,
        m: {
          kind: parts[0],
          port,
          protocol: parts[2],
          formats: parts.slice(3),
          mid: "",
          direction: "sendrecv",
          codecs: [],
          extensions: [],
          rtcpMux: false,
          bundleOnly: false,
          rids: [],
          simulcast: [],
        },
      });
    } else if (type === "a") {
      const colon = value.indexOf(":");
      const name = colon < 0 ? value : value.slice(0, colon);
      const arg = colon < 0 ? "" : value.slice(colon + 1);
      const list = current.get(name);
      if (list) list.push(arg);
      else current.set(name, [arg]);
    }
  }
  if (media.length === 0) throw new SdpError("SDP has no m-lines");

  const first = (name: string, attrs: SectionAttrs): string | undefined =>
    attrs.get(name)?.[0] ?? session.get(name)?.[0];

  const parsed: OfferedMedia[] = [];
  for (const { attrs, m } of media) {
    m.mid = attrs.get("mid")?.[0] ?? "";
    for (const d of ["sendrecv", "sendonly", "recvonly", "inactive"] as const) {
      if (attrs.has(d) || (!hasDirection(attrs) && session.has(d))) m.direction = d;
    }
    m.rtcpMux = attrs.has("rtcp-mux");
    m.bundleOnly = attrs.has("bundle-only");
    m.rids = attrs.get("rid") ?? [];
    m.simulcast = attrs.get("simulcast") ?? [];
    m.codecs = parseCodecs(m, attrs);
    for (const ext of attrs.get("extmap") ?? []) {
      const match = /^(\d+)(?:\/\w+)? (\S+)/.exec(ext);
      if (match) m.extensions.push({ id: Number(match[1]), uri: match[2] });
    }
    parsed.push(m);
  }

  // With BUNDLE every m-line shares the first one's transport; take credentials from the first m-line
  // that has them (or the session level).
  const withIce = media.find(({ attrs }) => first("ice-ufrag", attrs) !== undefined)?.attrs ?? session;
  const iceUfrag = first("ice-ufrag", withIce);
  const icePwd = first("ice-pwd", withIce);
  if (!iceUfrag || !/^[A-Za-z0-9+/]{4,256}$/.test(iceUfrag)) {
    throw new SdpError("SDP has no valid a=ice-ufrag");
  }
  if (!icePwd || !/^[A-Za-z0-9+/]{22,256}$/.test(icePwd)) throw new SdpError("SDP has no valid a=ice-pwd");
  const fingerprintLine = first("fingerprint", withIce);
  const fp = fingerprintLine ? /^(\S+) ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+)$/.exec(fingerprintLine) : null;
  if (!fp) throw new SdpError("SDP has no valid a=fingerprint");
  const algorithm = fp[1].toLowerCase();
  if (!["sha-256", "sha-384", "sha-512"].includes(algorithm)) {
    throw new SdpError(`unsupported fingerprint algorithm "${clip(fp[1])}" (use sha-256)`);
  }
  const setup = first("setup", withIce) ?? "actpass";
  if (setup !== "actpass" && setup !== "active") {
    throw new SdpError(`a=setup:${clip(setup)} is not supported (the server is DTLS passive)`);
  }
  return {
    iceUfrag,
    icePwd,
    fingerprint: { algorithm, value: fp[2].toUpperCase() },
    setup,
    media: parsed,
  };
}

type SectionAttrs = Map<string, string[]>;

function newAttrs(): SectionAttrs {
  return new Map();
}

function hasDirection(attrs: SectionAttrs): boolean {
  return attrs.has("sendrecv") || attrs.has("sendonly") || attrs.has("recvonly") || attrs.has("inactive");
}

function parseCodecs(m: OfferedMedia, attrs: SectionAttrs): OfferedCodec[] {
  const byPt = new Map<number, OfferedCodec>();
  for (const rtpmap of attrs.get("rtpmap") ?? []) {
    const match = /^(\d+) ([\w.-]+)\/(\d+)(?:\/(\d+))?$/.exec(rtpmap);
    if (!match) throw new SdpError(`malformed a=rtpmap:${clip(rtpmap)}`);
    const payloadType = Number(match[1]);
    if (payloadType > 127) throw new SdpError(`payload type ${payloadType} out of range`);
    byPt.set(payloadType, {
      payloadType,
      name: match[2],
      clockRate: Number(match[3]),
      channels: match[4] ? Number(match[4]) : undefined,
      parameters: new Map(),
      fmtp: "",
      feedback: [],
    });
  }
  for (const fmtp of attrs.get("fmtp") ?? []) {
    const space = fmtp.indexOf(" ");
    const codec = byPt.get(Number(fmtp.slice(0, space)));
    if (!codec || space < 0) continue;
    codec.fmtp = fmtp.slice(space + 1);
    for (const pair of codec.fmtp.split(";")) {
      const eq = pair.indexOf("=");
      if (eq > 0) codec.parameters.set(pair.slice(0, eq).trim().toLowerCase(), pair.slice(eq + 1).trim());
    }
  }
  for (const fb of attrs.get("rtcp-fb") ?? []) {
    const space = fb.indexOf(" ");
    const codec = byPt.get(Number(fb.slice(0, space)));
    // Pion writes a trailing space after a feedback type without parameter ("transport-cc ").
    if (codec && space > 0) codec.feedback.push(fb.slice(space + 1).trim());
  }
  // Keep the m-line's format order: it is the offerer's preference.
  const ordered: OfferedCodec[] = [];
  for (const f of m.formats) {
    const codec = byPt.get(Number(f));
    if (codec) ordered.push(codec);
  }
  return ordered;
}

function clip(s: string): string {
  return s.length > 60 ? s.slice(0, 60) + "…" : s;
}
