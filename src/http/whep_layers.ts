/**
 * The WHEP layer and server-sent-events extensions, in the convention Broadcast Box and its players use
 * (draft-ietf-wish-whep core extensions): a WHEP 201 links `/whep/layer/<session>` and
 * `/whep/sse/<session>`. POST `{"mediaId": "<mid>", "encodingId": "<rid>"}` to the first pins the viewer to
 * a simulcast layer (an empty `encodingId` lets the server choose again); the second is an event stream
 * whose `layers` events list each media's layers. The session id in the URL is the credential, as for
 * the session URL itself.
 */
import type { SessionManager } from "../rooms/sessions.ts";
import { HttpError, readTextCapped } from "./body.ts";

/** Largest layer request body accepted (413 beyond). */
export const MAX_LAYER_BODY_BYTES = 1024;
/** How often an open layer event stream looks for changed layers (ms). */
const LAYER_EVENTS_INTERVAL_MS = 1000;
/** Layer event streams one session may hold open at once (429 beyond): a page needs one. */
export const MAX_LAYER_STREAMS_PER_SESSION = 2;
/** Open layer event streams by session id. */
const openStreams = new Map<string, number>();

/** The extension `Link` headers for a new WHEP session. */
export function whepExtensionLinks(sessionId: string): string[] {
  return [
    `</whep/layer/${sessionId}>; rel="urn:ietf:params:whep:ext:core:layer"`,
    `</whep/sse/${sessionId}>; rel="urn:ietf:params:whep:ext:core:server-sent-events"; events="layers"`,
  ];
}

/** `POST /whep/layer/<session>`: pins (or unpins) the session's video layer; 204 on success. */
export async function postLayer(
  req: Request,
  sessionId: string,
  sessions: SessionManager,
): Promise<Response> {
  const text = await readTextCapped(req, MAX_LAYER_BODY_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body must be JSON: {"mediaId": "<mid>", "encodingId": "<rid>"}');
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object: {"mediaId": "<mid>", "encodingId": "<rid>"}');
  }
  const { mediaId, encodingId } = body as Record<string, unknown>;
  if (typeof encodingId !== "string") throw new HttpError(400, "encodingId must be a string");
  if (mediaId !== undefined && typeof mediaId !== "string") {
    throw new HttpError(400, "mediaId must be a string");
  }
  sessions.selectLayer(sessionId, mediaId, encodingId);
  return new Response(null, { status: 204 });
}

/**
 * `GET /whep/sse/<session>`: `layers` events (on connect and whenever a layer's figures change) until the
 * session or the client goes. `POST` with a JSON list of wanted events answers 201 with the stream's URL,
 * as the extension draft has clients do.
 */
export async function layerEvents(
  req: Request,
  sessionId: string,
  sessions: SessionManager,
): Promise<Response> {
  sessions.viewerLayers(sessionId); // 404 for an unknown session
  if (req.method === "POST") {
    await readTextCapped(req, MAX_LAYER_BODY_BYTES);
    return new Response(null, { status: 201, headers: { Location: `/whep/sse/${sessionId}` } });
  }
  const open = openStreams.get(sessionId) ?? 0;
  if (open >= MAX_LAYER_STREAMS_PER_SESSION) {
    throw new HttpError(
      429,
      `this session already has ${MAX_LAYER_STREAMS_PER_SESSION} layer event streams open; close one first`,
    );
  }
  openStreams.set(sessionId, open + 1);
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let last = "";
  let counted = true;
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    if (!counted) return;
    counted = false;
    const left = (openStreams.get(sessionId) ?? 1) - 1;
    if (left > 0) openStreams.set(sessionId, left);
    else openStreams.delete(sessionId);
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = () => {
        let data: string;
        try {
          data = layersEventData(sessions.viewerLayers(sessionId));
        } catch {
          // The session ended.
          stop();
          controller.close();
          return;
        }
        if (data === last) return;
        last = data;
        controller.enqueue(encoder.encode(`event: layers\ndata: ${data}\n\n`));
      };
      send();
      if (last !== "") timer = setInterval(send, LAYER_EVENTS_INTERVAL_MS);
    },
    cancel: stop,
  });
  req.signal.addEventListener("abort", stop, { once: true });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no" },
  });
}

/** `{"<mid>": {"layers": [{encodingId, width, height, bitrate}, ...], "current": "<rid>"}}`. */
function layersEventData(view: ReturnType<SessionManager["viewerLayers"]>): string {
  const layers = view.layers.filter((l) => l.active).map((l) => ({
    encodingId: l.encodingId,
    width: l.width ?? null,
    height: l.height ?? null,
    bitrate: l.bitrateKbps * 1000,
  }));
  return JSON.stringify({ [view.mid]: { layers, current: view.current ?? null } });
}
