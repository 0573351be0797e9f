/**
 * Cluster mode (REDIS_URL set): the Redis link, the bridge between Redis and the room bus, the relays, and
 * what the HTTP layer gets from them (WHIP/WHEP hooks, thumbnails of rooms published on other nodes).
 */
import type { Config } from "../config.ts";
import type { ServerCertificate } from "../peer/certificate.ts";
import { clusterBusName } from "../rooms/bus.ts";
import type { SessionManager } from "../rooms/sessions.ts";
import type { ClusterHooks } from "../http/ingest.ts";
import type { ClusterFigures } from "../http/metrics.ts";
import { HttpError } from "../http/body.ts";
import { tokensEqual } from "../http/auth.ts";
import type { Log } from "../log.ts";
import { ClusterBridge } from "./bridge.ts";
import { isId } from "./messages.ts";
import { redactUrl, RedisDirectory } from "./redis_directory.ts";
import { RelayManager } from "./relay.ts";

/** Registrations live this long without a refresh; a dead node's rooms leave every list within TTL + refresh. */
export const CLUSTER_TTL_SECONDS = 6;
/** Registrations are refreshed and the cluster read again this often. */
export const CLUSTER_REFRESH_MS = 2000;
/** A relay without viewers stays up this long. */
export const RELAY_GRACE_MS = 10_000;

/** What {@link startCluster} needs from the server. */
export interface ClusterDeps {
  config: Config;
  busName: string;
  sessions: SessionManager;
  certificate: ServerCertificate;
  log: Log;
}

/** A node's running cluster mode. */
export interface Cluster {
  /** The channel the directory must listen on instead of the room bus. */
  directoryBusName: string;
  hooks: ClusterHooks;
  /** Extra HTTP handler: thumbnails of rooms published on other nodes, fetched from their origin. */
  handle: (req: Request, url: URL) => Promise<Response> | undefined;
  relays: RelayManager;
  bridge: ClusterBridge;
  /** This node's view of the cluster for `/metrics`, read now (counts and flags only, nothing from Redis). */
  metrics(): ClusterFigures;
  /** Ends relays and deregisters the node; call before the sessions close. */
  close(): Promise<void>;
}

/** Joins the cluster in the background: a Redis that is down now is retried, the node serves meanwhile. */
export function startCluster(deps: ClusterDeps): Cluster {
  const { config, log } = deps;
  const nodeId = config.nodeId;
  // The three parts call each other through closures that run only after all exist (Redis connects later).
  const redis = new RedisDirectory({
    url: config.redisUrl!,
    nodeId,
    publicUrl: config.publicUrl!,
    ttlSeconds: CLUSTER_TTL_SECONDS,
    log,
    onMessage: (message) => bridge.onRedisMessage(message),
    onReady: () => bridge.onRedisReady(),
  });
  const bridge: ClusterBridge = new ClusterBridge({
    nodeId,
    busName: deps.busName,
    redis,
    ttlMs: CLUSTER_TTL_SECONDS * 1000,
    refreshMs: CLUSTER_REFRESH_MS,
    log,
    isRelayed: (roomId) => relays.isRelayed(roomId),
  });
  const relays: RelayManager = new RelayManager({
    nodeId,
    sessions: deps.sessions,
    table: bridge.table,
    certificate: deps.certificate,
    bindAddress: config.udpAddress,
    clusterToken: config.clusterToken,
    media: {
      keyframeCache: config.keyframeCache,
      retransmissions: config.retransmissions,
      maxPublisherBitrate: config.maxPublisherBitrate,
    },
    graceMs: RELAY_GRACE_MS,
    log,
  });
  bridge.onRoomClosed((roomId) => relays.roomClosed(roomId));
  redis.start();
  log("info", `cluster: node ${nodeId} at ${config.publicUrl}, directory ${redactUrl(config.redisUrl!)}`);

  const table = bridge.table;
  const isNodeRequest = (req: Request): boolean => {
    if (!config.clusterToken) return false;
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.get("authorization")?.trim() ?? "");
    return match !== null && tokensEqual(match[1], config.clusterToken);
  };
  const hooks: ClusterHooks = {
    checkPublish(roomId) {
      const remote = table.remoteRoom(roomId);
      if (remote) {
        throw new HttpError(409, `room "${roomId}" is already published on node ${remote.entry.nodeId}`);
      }
    },
    async prepareWatch(req, roomId) {
      const header = req.headers.get("x-relay-path");
      let path: string[] = [];
      if (header !== null) {
        // The header changes how the session is counted and which nodes may be pulled from: with a cluster
        // token configured only nodes may send it.
        if (config.clusterToken && !isNodeRequest(req)) {
          throw new HttpError(401, "X-Relay-Path needs the cluster token", { "WWW-Authenticate": "Bearer" });
        }
        path = header.split(",").map((s) => s.trim());
        if (path.length > 16 || !path.every(isId)) throw new HttpError(400, "malformed X-Relay-Path");
      }
      await relays.prepare(roomId, path);
      return header !== null;
    },
    isNodeRequest,
  };

  const handle = (req: Request, url: URL): Promise<Response> | undefined => {
    const m = /^\/rooms\/([^/]+)\/thumbnail\.jpg$/.exec(url.pathname);
    if (!m || (req.method !== "GET" && req.method !== "HEAD")) return undefined;
    let roomId: string;
    try {
      roomId = decodeURIComponent(m[1]);
    } catch {
      return undefined;
    }
    const remote = table.remoteRoom(roomId);
    if (!remote) return undefined;
    return proxyThumbnail(
      req,
      `${remote.url}/rooms/${encodeURIComponent(roomId)}/thumbnail.jpg${url.search}`,
    );
  };

  return {
    directoryBusName: clusterBusName(deps.busName),
    hooks,
    handle,
    relays,
    bridge,
    metrics: () => ({
      redisConnected: redis.connected,
      redisReconnects: redis.reconnects,
      nodes: bridge.nodeCount,
      rooms: table.roomCount(),
      relays: relays.count,
      relayPulls: relays.counters.pulls,
      relayFailures: relays.counters.failures,
      relayInternalErrors: relays.counters.internalErrors,
    }),
    async close() {
      relays.closeAll();
      await bridge.close();
    },
  };
}

/** Headers passed through from the origin's thumbnail response. */
const THUMBNAIL_HEADERS = ["content-type", "content-length", "etag", "last-modified", "cache-control"];

/** Fetches a thumbnail from the room's origin node (a registered PUBLIC_URL) and passes it on. */
async function proxyThumbnail(req: Request, upstream: string): Promise<Response> {
  const headers: Record<string, string> = {};
  const ifNoneMatch = req.headers.get("if-none-match");
  if (ifNoneMatch) headers["If-None-Match"] = ifNoneMatch;
  let res: Response;
  try {
    res = await fetch(upstream, { method: req.method, headers, signal: AbortSignal.timeout(3000) });
  } catch {
    throw new HttpError(502, "the room's origin node did not answer for its thumbnail");
  }
  const out = new Headers();
  for (const name of THUMBNAIL_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) out.set(name, value);
  }
  return new Response(req.method === "HEAD" ? null : res.body, { status: res.status, headers: out });
}
