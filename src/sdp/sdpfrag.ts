/**
 * SDP fragments for trickle ICE and ICE restarts over HTTP PATCH (`application/trickle-ice-sdpfrag`,
 * RFC 8840 §9, RFC 9725 §4.3): reading the client's fragment and writing the server's answer to a
 * restart. Pure: text in, data out.
 */
import type { Candidate } from "./answer.ts";
import { SdpError } from "./offer.ts";

/** What a client's fragment says. */
export interface IceFragment {
  /** `a=ice-ufrag`, when present (session or media level). */
  iceUfrag?: string;
  /** `a=ice-pwd`, when present. */
  icePwd?: string;
  /** Number of `a=candidate` lines. */
  candidates: number;
  endOfCandidates: boolean;
}

/** The first bundled m-line of a session, which carries the transport's ICE attributes. */
export interface BundleHead {
  kind: string;
  mid: string;
  payloadType: number;
  /** Every bundled mid, for `a=group:BUNDLE`. */
  mids: string[];
}

const MAX_LINES = 1000;
// RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/"; ufrag 4-256, pwd 22-256 characters.
const UFRAG = /^[A-Za-z0-9+/]{4,256}$/;
const PWD = /^[A-Za-z0-9+/]{22,256}$/;

/**
 * Reads a trickle/restart fragment. Throws {@link SdpError} for text that is not SDP lines, malformed
 * or conflicting credentials, or a password without a ufrag.
 *
 * @example
 * ```ts
 * const f = parseIceFragment("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n");
 * // f.iceUfrag === "abcd", f.candidates === 1
 * ```
 */
export function parseIceFragment(text: string): IceFragment {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length > MAX_LINES) throw new SdpError(`fragment has more than ${MAX_LINES} lines`);
  const fragment: IceFragment = { candidates: 0, endOfCandidates: false };
  for (const line of lines) {
    if (line.length < 2 || line[1] !== "=" || !/^[a-z]$/.test(line[0])) {
      throw new SdpError(`malformed fragment line "${clip(line)}"`);
    }
    if (line[0] !== "a") continue;
    const value = line.slice(2);
    const colon = value.indexOf(":");
    const name = colon < 0 ? value : value.slice(0, colon);
    const arg = colon < 0 ? "" : value.slice(colon + 1).trim();
    if (name === "ice-ufrag") {
      if (!UFRAG.test(arg)) throw new SdpError("fragment has a malformed a=ice-ufrag");
      if (fragment.iceUfrag !== undefined && fragment.iceUfrag !== arg) {
        throw new SdpError("fragment has two different a=ice-ufrag values");
      }
      fragment.iceUfrag = arg;
    } else if (name === "ice-pwd") {
      if (!PWD.test(arg)) throw new SdpError("fragment has a malformed a=ice-pwd");
      if (fragment.icePwd !== undefined && fragment.icePwd !== arg) {
        throw new SdpError("fragment has two different a=ice-pwd values");
      }
      fragment.icePwd = arg;
    } else if (name === "candidate") {
      fragment.candidates++;
    } else if (name === "end-of-candidates") {
      fragment.endOfCandidates = true;
    }
  }
  if (fragment.icePwd !== undefined && fragment.iceUfrag === undefined) {
    throw new SdpError("fragment has a=ice-pwd without a=ice-ufrag");
  }
  return fragment;
}

/**
 * The server's answer to an ICE restart: its new credentials and candidates on the first bundled m-line,
 * in the shape of RFC 9725's example (CRLF line ends, which some clients' parsers require).
 */
export function buildIceFragment(p: {
  iceUfrag: string;
  icePwd: string;
  candidates: Candidate[];
  bundle: BundleHead;
}): string {
  const lines = [
    "a=ice-lite",
    `a=group:BUNDLE ${p.bundle.mids.join(" ")}`,
    `m=${p.bundle.kind} 9 UDP/TLS/RTP/SAVPF ${p.bundle.payloadType}`,
    `a=mid:${p.bundle.mid}`,
    `a=ice-ufrag:${p.iceUfrag}`,
    `a=ice-pwd:${p.icePwd}`,
  ];
  // Same foundations and priorities as the answer's candidates (src/sdp/answer.ts).
  p.candidates.forEach((c, i) => {
    lines.push(`a=candidate:${i + 1} 1 udp ${2130706431 - i} ${c.address} ${c.port} typ host`);
  });
  lines.push("a=end-of-candidates");
  return lines.join("\r\n") + "\r\n";
}

function clip(s: string): string {
  return s.length > 60 ? s.slice(0, 60) + "…" : s;
}
