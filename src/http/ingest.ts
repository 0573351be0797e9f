/**
 * WHIP (RFC 9725) and WHEP endpoints: offers in, answers and session URLs out; trickle ICE and ICE restarts
 * over PATCH (§4.3); STUN/TURN servers in `Link` headers (§4.6).
 */
import type { SessionManager } from "../rooms/sessions.ts";
import type { IceServer } from "../config.ts";
import { parseIceFragment } from "../sdp/sdpfrag.ts";
import { SdpError } from "../sdp/offer.ts";
import { HttpError, readTextCapped, requireContentType } from "./body.ts";
import { type AccessPolicy, bearerToken } from "./auth.ts";
import { asHttpError } from "./session_status.ts";
import type { RequestClient } from "./rate_limit.ts";
import { whepExtensionLinks } from "./whep_layers.ts";

/** What the WHIP/WHEP handlers need. */
export interface IngestDeps {
  sessions: SessionManager;
  /** Who may publish and watch (master key, stream keys, private rooms, webhook). */
  access: AccessPolicy;
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

/**
 * `POST /whip[?room=<name>]`: a publisher's offer; creates the room (or takes it over). Without `?room=` a
 * stream key publishes to its own room, the master key to a room named by the server.
 */
export async function postWhip(
  req: Request,
  url: URL,
  deps: IngestDeps,
  client: RequestClient,
): Promise<Response> {
  const asked = url.searchParams.get("room") ?? url.searchParams.get("id") ?? undefined;
  const { room, owner } = await deps.access.authorizePublish(req, asked, client, performance.now());
  requireContentType(req, "application/sdp");
  const offer = await readTextCapped(req);
  if (room !== undefined) deps.cluster?.checkPublish(room);
  const created = limited(() => deps.sessions.publish(offer, room, { owner }));
  return sdpCreated(created.answer, `/whip/${created.sessionId}`, created.etag, created.roomId, deps);
}

/** `POST /whep?target_id=<room>` or `POST /whep/<room>`: a viewer's offer. */
export async function postWhep(
  req: Request,
  roomId: string | undefined,
  deps: IngestDeps,
  url: URL,
  client: RequestClient,
): Promise<Response> {
  if (!roomId) {
    throw new HttpError(400, "missing room: use POST /whep?target_id=<room id> or /whep/<room id>");
  }
  // Another node of the cluster pulling the room carries the cluster token instead of a viewer's.
  const node = deps.cluster?.isNodeRequest(req) ?? false;
  if (!node) await deps.access.authorizeWatch(req, url, roomId, client, performance.now());
  requireContentType(req, "application/sdp");
  const offer = await readTextCapped(req);
  const relay = (await deps.cluster?.prepareWatch(req, roomId)) ?? false;
  const created = limited(() =>
    deps.sessions.watch(roomId, offer, { relay, address: node ? undefined : client.key })
  );
  const response = sdpCreated(
    created.answer,
    `/whep/${created.sessionId}`,
    created.etag,
    created.roomId,
    deps,
  );
  for (const link of whepExtensionLinks(created.sessionId)) response.headers.append("Link", link);
  return response;
}

/** Runs `create`; the session layer's refusals become the HTTP errors the client gets (429 with Retry-After). */
function limited<T>(create: () => T): T {
  try {
    return create();
  } catch (e) {
    throw asHttpError(e);
  }
}

/** `DELETE /whip/<session>` (token required) or `DELETE /whep/<session>` (the URL is the capability). */
export function deleteSession(
  req: Request,
  kind: "whip" | "whep",
  sessionId: string,
  deps: IngestDeps,
): Response {
  if (kind === "whip") deps.access.mayManage(req, deps.sessions.ownerOf("whip", sessionId));
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
  if (kind === "whip") deps.access.mayManage(req, deps.sessions.ownerOf("whip", sessionId));
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
 * TURN credentials go only where a session could be made anyway: on WHEP, and on WHIP with the master key
 * or a stream key. Returns false when a WHIP request carried a token that is neither (a failed attempt).
 */
export function addOptionsLinks(headers: Headers, req: Request, path: string, deps: IngestDeps): boolean {
  const [first, ...rest] = path.split("/").filter((s) => s !== "");
  if ((first !== "whip" && first !== "whep") || rest.length > 1) return true;
  let withCredentials = first === "whep";
  let tokenOk = true;
  if (!withCredentials) {
    const token = bearerToken(req);
    withCredentials = token !== undefined && deps.access.mayPublishSomewhere(token);
    tokenOk = token === undefined || withCredentials;
  }
  for (const link of iceServerLinks(deps.iceServers ?? [], withCredentials)) headers.append("Link", link);
  return tokenOk;
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
