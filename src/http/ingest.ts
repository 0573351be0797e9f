/** WHIP (RFC 9725) and WHEP endpoints: offers in, answers and session URLs out. */
import type { SessionManager } from "../rooms/sessions.ts";
import { HttpError, readTextCapped, requireContentType } from "./body.ts";
import { requireBearer } from "./auth.ts";

/** What the WHIP/WHEP handlers need. */
export interface IngestDeps {
  sessions: SessionManager;
  whipToken: string;
}

/** `POST /whip[?room=<name>]`: a publisher's offer; creates the room. */
export async function postWhip(req: Request, url: URL, deps: IngestDeps): Promise<Response> {
  requireBearer(req, deps.whipToken);
  requireContentType(req, "application/sdp");
  const offer = await readTextCapped(req);
  const room = url.searchParams.get("room") ?? url.searchParams.get("id") ?? undefined;
  const created = deps.sessions.publish(offer, room);
  return sdpCreated(created.answer, `/whip/${created.sessionId}`, created.etag, {
    "X-Room-Id": created.roomId,
  });
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
  const created = deps.sessions.watch(roomId, offer);
  return sdpCreated(created.answer, `/whep/${created.sessionId}`, created.etag, {
    "X-Room-Id": created.roomId,
  });
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
 * `PATCH` with trickled candidates (RFC 8840). The server is ICE-lite and learns the client's addresses
 * from its checks, so candidates need no action; an ICE restart is not supported yet.
 */
export async function patchSession(
  req: Request,
  kind: "whip" | "whep",
  sessionId: string,
  deps: IngestDeps,
): Promise<Response> {
  if (kind === "whip") requireBearer(req, deps.whipToken);
  if (!deps.sessions.has(kind, sessionId)) throw new HttpError(404, `no ${kind.toUpperCase()} session`);
  requireContentType(req, "application/trickle-ice-sdpfrag");
  const fragment = await readTextCapped(req);
  if (/^a=ice-pwd:/m.test(fragment)) {
    throw new HttpError(501, "ICE restart is not supported; start a new session");
  }
  return new Response(null, { status: 204 });
}

function sdpCreated(answer: string, location: string, etag: string, extra: Record<string, string>): Response {
  return new Response(answer, {
    status: 201,
    headers: { "Content-Type": "application/sdp", Location: location, ETag: etag, ...extra },
  });
}
