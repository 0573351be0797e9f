/**
 * WHIP (RFC 9725) and WHEP endpoints: offers in, answers and session URLs out; trickle ICE and ICE restarts
 * over PATCH (§4.3); STUN/TURN servers in `Link` headers (§4.6).
 */
import type { SessionManager } from "../rooms/sessions.ts";
import type { IceServer } from "../config.ts";
import { parseIceFragment } from "../sdp/sdpfrag.ts";
import { SdpError } from "../sdp/offer.ts";
import { HttpError, readTextCapped, requireContentType } from "./body.ts";
import { requireBearer, tokensEqual } from "./auth.ts";

/** What the WHIP/WHEP handlers need. */
export interface IngestDeps {
  sessions: SessionManager;
  whipToken: string;
  /** STUN/TURN servers offered to clients (ICE_SERVERS); none when absent. */
  iceServers?: IceServer[];
  /** Cluster mode (REDIS_URL); absent on a single node. */
  cluster?: ClusterHooks;
}

/** What cluster mode adds to the WHIP/WHEP endpoints (implemented in src/cluster/). */
export interface ClusterHooks {
  /** Throws 409 when another node of the cluster already publishes `roomId`. */
  checkPublish(roomId: string): void;
  /**
   * Runs before a WHEP offer is answered: a room published on another node is pulled here first (or the
   * pull already running is joined). Resolves to true when the request is itself another node's pull.
   */
  prepareWatch(req: Request, roomId: string): Promise<boolean>;
  /** Whether the request carries the cluster token (another node): such requests skip the rate limit. */
  isNodeRequest(req: Request): boolean;
}

const SDPFRAG = "application/trickle-ice-sdpfrag";

/** `POST /whip[?room=<name>]`: a publisher's offer; creates the room. */
export async function postWhip(req: Request, url: URL, deps: IngestDeps): Promise<Response> {
  requireBearer(req, deps.whipToken);
  requireContentType(req, "application/sdp");
  const offer = await readTextCapped(req);
  const room = url.searchParams.get("room") ?? url.searchParams.get("id") ?? undefined;
  if (room !== undefined) deps.cluster?.checkPublish(room);
  const created = deps.sessions.publish(offer, room);
  return sdpCreated(created.answer, `/whip/${created.sessionId}`, created.etag, created.roomId, deps);
}

/** `POST /whep?target_id=<room>` or `POST /whep/<room>`: a viewer's offer. */
export async function postWhep(
  req: Request,
  roomId: string | undefined,
  deps: IngestDeps,
): Promise<Response> {
  if (!roomId) {
    throw new HttpError(400, "missing room: use POST /whep?target_id=<room id> or /whep/<room id>");
  }
  requireContentType(req, "application/sdp");
  const offer = await readTextCapped(req);
  const relay = (await deps.cluster?.prepareWatch(req, roomId)) ?? false;
  const created = deps.sessions.watch(roomId, offer, { relay });
  return sdpCreated(created.answer, `/whep/${created.sessionId}`, created.etag, created.roomId, deps);
}

/** `DELETE /whip/<session>` (token required) or `DELETE /whep/<session>` (the URL is the capability). */
export function deleteSession(
  req: Request,
  kind: "whip" | "whep",
  sessionId: string,
  deps: IngestDeps,
): Response {
  if (kind === "whip") requireBearer(req, deps.whipToken);
  deps.sessions.end(kind, sessionId);
  return new Response(null, { status: 200 });
}

/**
 * `PATCH` with an SDP fragment (RFC 8840, RFC 9725 §4.3). The ufrag says which ICE session the fragment
 * is for: the current one means trickled candidates (204; an ICE-lite server learns the client's addresses
 * from its checks, so they need no action), a new one with a password means an ICE restart (200 with the
 * server's new credentials and candidates, and a new ETag).
 */
export async function patchSession(
  req: Request,
  kind: "whip" | "whep",
  sessionId: string,
  deps: IngestDeps,
): Promise<Response> {
  if (kind === "whip") requireBearer(req, deps.whipToken);
  const ice = deps.sessions.iceSession(kind, sessionId);
  if (!ice) throw new HttpError(404, `no ${kind.toUpperCase()} session`);
  requireContentType(req, SDPFRAG);
  if (!ifMatch(req.headers.get("if-match"), ice.etag)) {
    throw new HttpError(412, `If-Match does not name the current ICE session (ETag ${ice.etag})`, {
      ETag: ice.etag,
    });
  }
  const text = await readTextCapped(req);
  let fragment;
  try {
    fragment = parseIceFragment(text);
  } catch (e) {
    if (e instanceof SdpError) throw new HttpError(400, `malformed SDP fragment: ${e.message}`);
    throw e;
  }
  const ufrag = fragment.iceUfrag;
  if (ufrag === undefined || ufrag === ice.remoteUfrag) {
    return new Response(null, { status: 204, headers: { ETag: ice.etag } });
  }
  if (ice.earlierRemoteUfrags.includes(ufrag)) {
    throw new HttpError(422, "the fragment is for an earlier ICE session of this resource");
  }
  if (fragment.icePwd === undefined) {
    throw new HttpError(422, "a=ice-ufrag does not match the session; an ICE restart needs a=ice-pwd too");
  }
  const restarted = deps.sessions.restartIce(kind, sessionId, ufrag, fragment.icePwd);
  return new Response(restarted.fragment, {
    status: 200,
    headers: { "Content-Type": SDPFRAG, ETag: restarted.etag },
  });
}

/**
 * Adds `Link: <uri>; rel="ice-server"` headers to an `OPTIONS` response of a WHIP or WHEP endpoint.
 * TURN credentials go only where a session could be made anyway: on WHEP, and on WHIP with the token.
 */
export function addOptionsLinks(headers: Headers, req: Request, path: string, deps: IngestDeps): void {
  const [first, ...rest] = path.split("/").filter((s) => s !== "");
  if ((first !== "whip" && first !== "whep") || rest.length > 1) return;
  let withCredentials = first === "whep";
  if (!withCredentials) {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.get("authorization")?.trim() ?? "");
    withCredentials = match !== null && tokensEqual(match[1], deps.whipToken);
  }
  for (const link of iceServerLinks(deps.iceServers ?? [], withCredentials)) headers.append("Link", link);
}

/** `Link` header values for the ICE servers (RFC 9725 §4.6); credentialled ones only when asked. */
export function iceServerLinks(servers: IceServer[], withCredentials: boolean): string[] {
  const links: string[] = [];
  for (const server of servers) {
    if (server.username === undefined) {
      links.push(`<${server.url}>; rel="ice-server"`);
    } else if (withCredentials) {
      links.push(
        `<${server.url}>; rel="ice-server"; username=${quote(server.username)}; ` +
          `credential=${quote(server.credential ?? "")}; credential-type="password"`,
      );
    }
  }
  return links;
}

/** RFC 9110 §13.1.1 with strong comparison: absent or `*` matches; else one of the listed tags must. */
function ifMatch(header: string | null, etag: string): boolean {
  if (header === null) return true;
  const tags = header.split(",").map((t) => t.trim());
  return tags.includes("*") || tags.includes(etag);
}

function quote(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

function sdpCreated(
  answer: string,
  location: string,
  etag: string,
  roomId: string,
  deps: IngestDeps,
): Response {
  const headers = new Headers({
    "Content-Type": "application/sdp",
    Location: location,
    ETag: etag,
    "X-Room-Id": roomId,
  });
  for (const link of iceServerLinks(deps.iceServers ?? [], true)) headers.append("Link", link);
  return new Response(answer, { status: 201, headers });
}
