/** The HTTP API: routing, CORS and turning errors into one status plus a one-line reason. */
import { asHttpError } from "./session_status.ts";
import type { SessionManager } from "../rooms/sessions.ts";
import { HttpError } from "./body.ts";
import { roomStatsJson } from "./room_stats.ts";
import { layerEvents, postLayer } from "./whep_layers.ts";
import {
  addOptionsLinks,
  type ClusterHooks,
  deleteSession,
  patchSession,
  postWhep,
  postWhip,
} from "./ingest.ts";
import type { IceServer } from "../config.ts";
import { roomJson, roomsJson, type ThumbnailFiles } from "./rooms.ts";
import type { RoomDirectory } from "../rooms/directory.ts";
import type { RoomFeed } from "./notifications.ts";
import { type RateLimiter, type RequestClient, requestClient } from "./rate_limit.ts";
import { type AccessPolicy, requireBearer } from "./auth.ts";

/** What the router needs. */
export interface RouterDeps {
  sessions: SessionManager;
  directory: RoomDirectory;
  feed: RoomFeed;
  thumbnails: ThumbnailFiles;
  /** Who may publish, watch and see which rooms. */
  access: AccessPolicy;
  frontendUrl: string;
  log: (level: "debug" | "info" | "warn" | "error", message: string) => void;
  /** Extra handlers tried before the API routes (web UI, SSE, thumbnails); undefined means "not mine". */
  extra?: ((req: Request, url: URL) => Response | Promise<Response> | undefined)[];
  /** The page a browser gets for an unknown path (undefined: the one-line text, as for API clients). */
  notFoundPage?: (req: Request) => Response | Promise<Response> | undefined;
  /** Budget of failed WHIP/WHEP POSTs per client address; absent means unlimited. */
  rateLimiter?: RateLimiter;
  /** Reverse proxies (normalised addresses) whose `X-Forwarded-For` is believed (see `clientAddress` in client_address.ts). */
  trustedProxies?: ReadonlySet<string>;
  /** STUN/TURN servers for `Link: rel="ice-server"` headers on WHIP/WHEP POST and OPTIONS. */
  iceServers?: IceServer[];
  /** Cluster mode: remote rooms relayed on WHEP, cross-node checks on WHIP. */
  cluster?: ClusterHooks;
  /** Bearer token `/metrics` and `/rooms/<id>/stats` require (METRICS_TOKEN); absent leaves them open. */
  metricsToken?: string;
  /** Origins a page may name in `?api=` besides its own (API_ORIGINS). */
  apiOrigins?: ReadonlySet<string>;
}

/** The part of `Deno.ServeHandlerInfo` the router uses: who is asking. */
export interface ClientInfo {
  remoteAddr: { hostname: string };
}

const SESSION_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** Builds the `Deno.serve` handler. */
export function createRouter(deps: RouterDeps): (req: Request, info?: ClientInfo) => Promise<Response> {
  const cors = corsHeaders(deps.frontendUrl);
  return async (req: Request, info?: ClientInfo): Promise<Response> => {
    let response: Response;
    try {
      response = await route(req, deps, info);
    } catch (e) {
      response = errorResponse(e, deps);
    }
    for (const [name, value] of Object.entries(cors)) {
      if (!response.headers.has(name)) response.headers.set(name, value);
    }
    // No browser may guess a type for what we send, error text included (it can echo client input).
    response.headers.set("X-Content-Type-Options", "nosniff");
    return response;
  };
}

async function route(req: Request, deps: RouterDeps, info: ClientInfo | undefined): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const client = requestClient(
    req,
    info?.remoteAddr.hostname ?? "unknown",
    deps.trustedProxies ?? NO_PROXIES,
  );
  if (req.method === "OPTIONS") {
    const response = preflight(path);
    if (!addOptionsLinks(response.headers, req, path, deps)) {
      return failureBudget(deps, client, req, () => {
        throw new HttpError(401, "invalid bearer token");
      });
    }
    return response;
  }
  const segments = path.split("/").filter((s) => s !== "");
  const [first, second] = segments;
  if (
    deps.metricsToken !== undefined && (path === "/metrics" || (first === "rooms" && segments[2] === "stats"))
  ) {
    requireBearer(req, deps.metricsToken);
  }
  const api = url.searchParams.get("api");
  if (api !== null && !apiOriginAllowed(api, req, deps.apiOrigins)) {
    throw new HttpError(
      400,
      "the api parameter names an origin this server does not allow (see API_ORIGINS)",
    );
  }
  for (const handler of deps.extra ?? []) {
    const response = await handler(req, url);
    if (response) return response;
  }
  if (first === "whep" && (second === "layer" || second === "sse") && segments.length === 3) {
    // The WHEP layer and event-stream extensions (whep_layers.ts); the session id is the credential.
    if (!SESSION_ID.test(segments[2])) throw new HttpError(404, "no WHEP session");
    allow(req, second === "layer" ? ["POST", "OPTIONS"] : ["GET", "POST", "OPTIONS"]);
    return second === "layer"
      ? await postLayer(req, segments[2], deps.sessions)
      : await layerEvents(req, segments[2], deps.sessions);
  }
  if ((first === "whip" || first === "whep") && segments.length <= 2) {
    const kind = first;
    if (second === undefined) {
      allow(req, ["POST", "OPTIONS"]);
      return await failureBudget(
        deps,
        client,
        req,
        () =>
          kind === "whip"
            ? postWhip(req, url, deps, client)
            : postWhep(req, url.searchParams.get("target_id") ?? undefined, deps, url, client),
      );
    }
    if (kind === "whep" && req.method === "POST") {
      return await failureBudget(
        deps,
        client,
        req,
        () => postWhep(req, decodeSegment(second), deps, url, client),
      );
    }
    allow(req, kind === "whep" ? ["POST", "PATCH", "DELETE", "OPTIONS"] : ["PATCH", "DELETE", "OPTIONS"]);
    if (!SESSION_ID.test(second)) throw new HttpError(404, `no ${kind.toUpperCase()} session`);
    if (req.method === "DELETE") return deleteSession(req, kind, second, deps);
    return await patchSession(req, kind, second, deps);
  }
  if (path === "/rooms") {
    allow(req, ["GET", "HEAD", "OPTIONS"]);
    const filter = await failureBudget(deps, client, req, () => deps.access.roomFilter(req, url));
    return Response.json(roomsJson(deps.directory, filter));
  }
  // A private room's details are hidden (404) unless the request carries its viewer token or the master key.
  if (first === "rooms" && segments.length >= 2 && !deps.access.mayList(req, url, decodeSegment(second))) {
    throw new HttpError(404, `room "${second}" is not live`);
  }
  if (first === "rooms" && segments.length === 2) {
    allow(req, ["GET", "HEAD", "OPTIONS"]);
    const room = deps.directory.get(decodeSegment(second));
    if (!room) throw new HttpError(404, `room "${second}" is not live`);
    return Response.json(roomJson(room));
  }
  if (first === "rooms" && segments.length === 3 && segments[2] === "stats") {
    allow(req, ["GET", "HEAD", "OPTIONS"]);
    const id = decodeSegment(second);
    const room = deps.sessions.rooms.get(id);
    if (!room?.live) throw new HttpError(404, `room "${second}" is not live on this node`);
    return Response.json(roomStatsJson(room));
  }
  if (first === "rooms" && segments.length === 3 && segments[2] === "thumbnail.jpg") {
    allow(req, ["GET", "HEAD", "OPTIONS"]);
    return await deps.thumbnails.serve(req, decodeSegment(second), url);
  }
  if (path === "/notifications") {
    allow(req, ["GET", "OPTIONS"]);
    // The stream ends when the client leaves (its body is cancelled), so `req.signal` is not needed: on
    // Deno 2 it also aborts when a response completes and printed a plain-text warning into JSON logs.
    const filter = await failureBudget(deps, client, req, () => deps.access.roomFilter(req, url));
    return deps.feed.connect({ address: client.key, filter });
  }
  if (path === "/healthz") {
    allow(req, ["GET", "HEAD"]);
    return new Response("ok\n", { headers: { "Content-Type": "text/plain" } });
  }
  const page = await deps.notFoundPage?.(req);
  if (page) return page;
  throw new HttpError(404, `no such endpoint: ${path}`);
}

/**
 * Whether `?api=<url>` may point a built-in page at that API. The pages would send the WHIP token and the
 * viewer's traffic there, so a link with someone else's origin is refused unless API_ORIGINS lists it; the
 * page's own origin (either scheme, for TLS-terminating proxies) is always fine.
 */
function apiOriginAllowed(api: string, req: Request, allowed: ReadonlySet<string> | undefined): boolean {
  let origin: string;
  try {
    origin = new URL(api, req.url).origin;
  } catch {
    return false;
  }
  if (allowed?.has(origin)) return true;
  const host = req.headers.get("host");
  return host !== null && (origin === `http://${host}` || origin === `https://${host}`);
}

/** Throws 405 with an `Allow` header unless the method is one of `methods`. */
export function allow(req: Request, methods: string[]): void {
  if (!methods.includes(req.method)) {
    throw new HttpError(405, `method ${req.method} not allowed`, { Allow: methods.join(", ") });
  }
}

/** A percent-decoded path segment; a malformed escape (`%zz`, a cut UTF-8 sequence) is the client's error. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "malformed percent-encoding in the path");
  }
}

const NO_PROXIES: ReadonlySet<string> = new Set();

/** Statuses that spend the client's failure budget: malformed or unauthenticated attempts. */
const FAILURES = new Set([400, 401, 403, 413, 415]);

/**
 * Runs `handle` unless the client's budget of failed attempts is used up (429 with `Retry-After`); a
 * failure it throws spends one. Cluster nodes are exempt.
 */
async function failureBudget<T>(
  deps: RouterDeps,
  client: RequestClient,
  req: Request,
  handle: () => T | Promise<T>,
): Promise<T> {
  const limiter = deps.rateLimiter;
  if (!limiter || deps.cluster?.isNodeRequest(req)) return await handle();
  const decision = limiter.check(client.key, performance.now());
  if (!decision.allowed) {
    throw new HttpError(
      429,
      `too many failed requests from your address (${limiter.perMinute} per minute)`,
      { "Retry-After": String(decision.retryAfterSeconds) },
    );
  }
  try {
    return await handle();
  } catch (caught) {
    const e = asHttpError(caught);
    if (e instanceof HttpError && FAILURES.has(e.status)) limiter.take(client.key, performance.now());
    throw e;
  }
}

function preflight(path: string): Response {
  const [first, second, ...rest] = path.split("/").filter((s) => s !== "");
  const ingest = (first === "whip" || first === "whep") && rest.length === 0;
  // The endpoints take POST; a session URL takes PATCH and DELETE (and /whep/<room> is also an endpoint).
  const extension = first === "whep" && (second === "layer" || second === "sse") && rest.length === 1;
  const methods = extension
    ? (second === "layer" ? "POST, OPTIONS" : "GET, POST, OPTIONS")
    : !ingest
    ? "GET, HEAD, OPTIONS"
    : second === undefined
    ? "POST, OPTIONS"
    : first === "whep"
    ? "POST, PATCH, DELETE, OPTIONS"
    : "PATCH, DELETE, OPTIONS";
  const headers: Record<string, string> = {
    "Access-Control-Allow-Methods": methods,
    "Access-Control-Allow-Headers": "Authorization, Content-Type, ETag, If-Match",
    "Access-Control-Max-Age": "600",
    Allow: methods,
  };
  if (methods.startsWith("POST")) headers["Accept-Post"] = "application/sdp";
  return new Response(null, { status: 204, headers });
}

function corsHeaders(frontendUrl: string): Record<string, string> {
  const headers: Record<string, string> = {
    "Access-Control-Allow-Origin": frontendUrl,
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Post, X-Room-Id",
  };
  if (frontendUrl !== "*") headers["Vary"] = "Origin";
  return headers;
}

function errorResponse(caught: unknown, deps: RouterDeps): Response {
  const e = asHttpError(caught);
  if (e instanceof HttpError) {
    const headers = new Headers({
      "Content-Type": "text/plain; charset=utf-8",
      "X-Content-Type-Options": "nosniff",
    });
    for (const [k, v] of Object.entries(e.headers)) headers.set(k, v);
    if (e.status === 503 && !headers.has("Retry-After")) headers.set("Retry-After", "10");
    return new Response(e.message + "\n", { status: e.status, headers });
  }
  deps.log("error", `request failed: ${(e as Error)?.stack ?? e}`);
  return new Response("internal error\n", {
    status: 500,
    headers: { "Content-Type": "text/plain", "X-Content-Type-Options": "nosniff" },
  });
}
