/**
 * Simulcast in SDP: reading a publisher's `a=rid` (RFC 8851) and `a=simulcast:send` (RFC 8853) lines, and
 * the answer's `a=rid ... recv` / `a=simulcast:recv` lines. The layers are told apart on the wire by the
 * RTP stream id header extension (RFC 8852) in their first packets, so an offer without it is answered as
 * one encoding (the browser then sends one layer). Pure: offer data in, lines out.
 */
import { type OfferedMedia, SdpError } from "./offer.ts";

/** RFC 9143 §15: the m-line a packet belongs to. */
export const MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid";
/** RFC 8852: the rid of the encoding a packet belongs to. */
export const RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/** RFC 8852: the rid of the encoding an RTX packet repairs. */
export const REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/** Most layers taken from one publisher (OBS sends up to 4, browsers 3); further ones are left out. */
export const MAX_LAYERS = 4;
/** rid-id (RFC 8851 §10), bounded: its value is echoed into the answer and the layer API. */
const RID_ID = /^[A-Za-z0-9_-]{1,16}$/;

/** A publisher's simulcast offer on one m-line, as the server takes it. */
export interface SimulcastOffer {
  /** The layers the server receives, in the offer's order. */
  rids: string[];
  /** Extension id of the rid header extension in this offer. */
  ridExtensionId: number;
  /** The header extensions the answer accepts for simulcast (mid, rid, repaired rid as offered). */
  extensions: { id: number; uri: string }[];
}

/**
 * The simulcast layers an m-line offers to send, or undefined when it offers one encoding (no
 * `a=simulcast`, fewer than two layers, or no rid header extension to tell them apart). Throws
 * {@link SdpError} for a malformed `a=simulcast` or a layer without its `a=rid ... send` line.
 */
export function parseSimulcastOffer(m: OfferedMedia): SimulcastOffer | undefined {
  if (m.simulcast.length === 0) return undefined;
  const declared = new Set<string>();
  for (const line of m.rids) {
    const [id, direction] = line.split(" ");
    if (RID_ID.test(id) && direction === "send") declared.add(id);
  }
  const sendList = sendStreams(m.simulcast[0]);
  const rids: string[] = [];
  for (const stream of sendList) {
    // Alternatives ("a,b") are formats of one stream: the first is taken. "~" marks a paused stream,
    // which the answer may still accept (RFC 8853 §5.3).
    const first = stream.split(",")[0].replace(/^~/, "");
    if (!RID_ID.test(first)) throw new SdpError(`malformed rid "${clip(first)}" in a=simulcast`);
    if (!declared.has(first)) {
      throw new SdpError(`a=simulcast names rid "${first}" without a=rid:${first} send`);
    }
    if (!rids.includes(first) && rids.length < MAX_LAYERS) rids.push(first);
  }
  const rid = m.extensions.find((e) => e.uri === RID_URI);
  if (rids.length < 2 || !rid) return undefined;
  const extensions = m.extensions.filter((e) =>
    e.uri === MID_URI || e.uri === RID_URI || e.uri === REPAIRED_RID_URI
  );
  return { rids, ridExtensionId: rid.id, extensions };
}

/** The answer's lines for a publisher's simulcast: each taken rid to receive, then the simulcast line. */
export function simulcastAnswerLines(rids: readonly string[]): string[] {
  return [...rids.map((rid) => `a=rid:${rid} recv`), `a=simulcast:recv ${rids.join(";")}`];
}

/** The stream list after `send` in an `a=simulcast` value ("send h;m;l" or "recv x send h;m"). */
function sendStreams(value: string): string[] {
  const parts = value.trim().split(/\s+/);
  if (parts.length !== 2 && parts.length !== 4) throw new SdpError(`malformed a=simulcast:${clip(value)}`);
  for (let i = 0; i < parts.length; i += 2) {
    if (parts[i] !== "send" && parts[i] !== "recv") {
      throw new SdpError(`malformed a=simulcast:${clip(value)}`);
    }
    if (parts[i] === "send") return parts[i + 1].split(";");
  }
  throw new SdpError("a=simulcast of a publisher must list streams to send");
}

function clip(s: string): string {
  return s.length > 40 ? s.slice(0, 40) + "…" : s;
}
