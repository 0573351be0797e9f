/**
 * Environment -> typed configuration. Every setting has a default so `deno task start` works with no
 * configuration at all; a bad value throws a {@link ConfigError} naming the variable.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { DEFAULT_VIDEO_CODEC_ORDER, parseVideoCodecOrder, type VideoCodecName } from "./sdp/codecs.ts";

/** A configuration value that cannot be used; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The server's settings after validation. */
export interface Config {
  tcpAddress: string;
  tcpPort: number;
  udpAddress: string;
  udpPort: number;
  /** Bearer token for publishing; generated at start when unset. */
  whipToken: string;
  whipTokenGenerated: boolean;
  frontendUrl: string;
  storageDir: string;
  certsDir: string;
  /** Addresses to advertise as ICE candidates; empty means "derive from the bound address". */
  publicIps: string[];
  consentTimeoutMs: number;
  thumbnailIntervalMs: number;
  /** Replay the latest GOP to joining viewers. */
  keyframeCache: boolean;
  /** Answer viewers' NACKs from history and NACK the publisher's losses. */
  retransmissions: boolean;
  /** Transport-wide congestion-control feedback to publishers (else REMB). */
  transportCc: boolean;
  /** Video codecs accepted from publishers, most preferred first. */
  videoCodecs: VideoCodecName[];
  /** REMB ceiling for publishers without transport-wide CC, bit/s. */
  maxPublisherBitrate: number;
  /** WHIP + WHEP sessions in total, connecting or connected. */
  maxSessions: number;
  maxViewersPerRoom: number;
  /** WHIP/WHEP POSTs per client address per minute; 0 turns the limit off. */
  rateLimitPerMinute: number;
  /** Reverse proxies whose `X-Forwarded-For` names the client (for the rate limit). */
  trustedProxies: string[];
  /** Open `GET /notifications` streams. */
  maxSseClients: number;
  /** A request's headers must arrive within this long of its first byte (a new connection: of opening). */
  httpHeaderTimeoutMs: number;
  /** A request's body must arrive within this long of its headers (408 otherwise). */
  httpBodyTimeoutMs: number;
  /** A connection with no traffic for this long is closed (event streams excepted). */
  httpIdleTimeoutMs: number;
  /** Open HTTP connections in total; 0 means "derive from the open-file limit". */
  maxHttpConnections: number;
  /** Open HTTP connections per client address (IPv6: per /64); TRUSTED_PROXIES are exempt. */
  maxHttpConnectionsPerAddress: number;
  /** Bearer token required by `/metrics` and `/rooms/<id>/stats`; undefined leaves them open. */
  metricsToken: string | undefined;
  /** Origins the built-in pages may be pointed at with `?api=` (besides their own). */
  apiOrigins: string[];
  /** Access control and per-address limits (stream keys, webhook, private rooms; see src/http/auth.ts). */
  access: AccessConfig;
  /** STUN/TURN servers offered to clients in `Link` headers (RFC 9725 §4.6). */
  iceServers: IceServer[];
  logLevel: "debug" | "info" | "warn" | "error";
  logFormat: "text" | "json";
  /** HTTPS for the API and pages, from TLS_CERT/TLS_KEY (PEM text); undefined serves plain HTTP. */
  tls: TlsFiles | undefined;
  /** Redis of the cluster's room directory; undefined runs a single node (no Redis, no relays). */
  redisUrl: string | undefined;
  /** This node's HTTP base URL as other nodes reach it (no trailing slash); required with REDIS_URL. */
  publicUrl: string | undefined;
  /** This node's name in the cluster. */
  nodeId: string;
  nodeIdGenerated: boolean;
  /** Shared secret nodes show each other when pulling a room (Bearer); undefined trusts any caller. */
  clusterToken: string | undefined;
}

/** Stream keys, the auth webhook, private rooms and the per-address limits. */
export interface AccessConfig {
  /** `room key` lines, reread on change and SIGHUP; undefined: only WHIP_TOKEN publishes. */
  streamKeysFile: string | undefined;
  authWebhookUrl: string | undefined;
  authWebhookTimeoutMs: number;
  /** What a webhook time-out or error means. */
  authWebhookOnError: "deny" | "allow";
  /** How long a webhook allow is remembered (0: ask every time). */
  authWebhookCacheMs: number;
  /** HS256 secret of viewer tokens (JWT) for private rooms. */
  viewerTokenSecret: string | undefined;
  /** Rooms that need a viewer token and are left out of public room lists. */
  privateRooms: string[];
  /** Places of MAX_SESSIONS kept for publishers. */
  maxPublishers: number;
  /** WHEP sessions one address may hold before they finish ICE + DTLS. */
  maxPendingPerAddress: number;
  /** WHEP sessions one address may hold in all. */
  maxViewersPerAddress: number;
  /** Open `/notifications` streams per address. */
  maxSsePerAddress: number;
  /** Sessions that have not finished ICE + DTLS by then are dropped. */
  connectTimeoutMs: number;
}

/** The HTTPS certificate chain and key, read and checked at start-up. */
export interface TlsFiles {
  certPath: string;
  keyPath: string;
  /** PEM certificate chain (leaf first). */
  cert: string;
  /** PEM private key matching the leaf certificate. */
  key: string;
}

/** A STUN or TURN server from ICE_SERVERS. */
export interface IceServer {
  /** `stun:`, `stuns:`, `turn:` or `turns:` URI without credentials, e.g. `turn:turn.example.org:3478?transport=udp`. */
  url: string;
  /** TURN long-term credentials (RFC 8489 §9.2). */
  username?: string;
  credential?: string;
}

/** One documented setting: the name users set, its default and what it does (used by `--help`). */
export interface SettingDoc {
  name: string;
  defaultValue: string;
  description: string;
}

/** Every environment variable the server reads, for `--help` and the README. */
export const SETTINGS: readonly SettingDoc[] = [
  { name: "TCP_ADDRESS", defaultValue: "0.0.0.0", description: "address the HTTP API listens on" },
  { name: "TCP_PORT", defaultValue: "8080", description: "HTTP API port" },
  { name: "UDP_ADDRESS", defaultValue: "0.0.0.0", description: "address of the one UDP media socket" },
  { name: "UDP_PORT", defaultValue: "8443", description: "UDP media port (open it in the firewall)" },
  {
    name: "WHIP_TOKEN",
    defaultValue: "(random, printed at start)",
    description: "bearer token required to publish",
  },
  { name: "FRONTEND_URL", defaultValue: "*", description: "value of Access-Control-Allow-Origin" },
  { name: "STORAGE_DIR", defaultValue: "./storage", description: "where thumbnails are written" },
  {
    name: "CERTS_DIR",
    defaultValue: "./certs",
    description: "DTLS key.pem/cert.pem (self-signed ECDSA generated when absent)",
  },
  {
    name: "PUBLIC_IP",
    defaultValue: "(interface addresses)",
    description: "comma-separated addresses to advertise as ICE candidates (NAT, cloud VM)",
  },
  {
    name: "CONSENT_TIMEOUT",
    defaultValue: "15",
    description: "seconds of silence after which a peer is dropped",
  },
  {
    name: "THUMBNAIL_INTERVAL",
    defaultValue: "10",
    description: "seconds between thumbnail refreshes of a room",
  },
  {
    name: "KEYFRAME_CACHE",
    defaultValue: "on",
    description: "start new viewers from the cached latest keyframe (instant join)",
  },
  {
    name: "RETRANSMISSIONS",
    defaultValue: "on",
    description: "answer viewers' NACKs from history and NACK the publisher's losses",
  },
  {
    name: "VIDEO_CODECS",
    defaultValue: DEFAULT_VIDEO_CODEC_ORDER.join(","),
    description: "video codecs taken from publishers, most preferred first (h264, av1, vp9, vp8, h265)",
  },
  {
    name: "TRANSPORT_CC",
    defaultValue: "on",
    description: "transport-wide congestion feedback so browser publishers ramp up (off: REMB only)",
  },
  {
    name: "MAX_PUBLISHER_BITRATE",
    defaultValue: "8000",
    description: "kbit/s ceiling announced with REMB to publishers without transport-wide CC",
  },
  { name: "LOG_LEVEL", defaultValue: "info", description: "debug, info, warn or error" },
  {
    name: "LOG_FORMAT",
    defaultValue: "text",
    description: "text (time LEVEL message) or json (one object per line: time, level, msg, fields)",
  },
  {
    name: "TLS_CERT",
    defaultValue: "(none: plain HTTP)",
    description: "PEM certificate chain file; with TLS_KEY the HTTP port serves HTTPS",
  },
  { name: "TLS_KEY", defaultValue: "(none)", description: "PEM private key file of TLS_CERT" },
  { name: "MAX_SESSIONS", defaultValue: "500", description: "WHIP + WHEP sessions in total (503 beyond)" },
  {
    name: "MAX_PUBLISHERS",
    defaultValue: "MAX_SESSIONS/10 (50)",
    description: "places of MAX_SESSIONS kept for WHIP sessions; viewers get the rest (503 beyond)",
  },
  { name: "MAX_VIEWERS_PER_ROOM", defaultValue: "200", description: "WHEP sessions per room (503 beyond)" },
  {
    name: "MAX_PENDING_PER_ADDRESS",
    defaultValue: "20",
    description: "WHEP sessions one client address holds before they connect (429 beyond)",
  },
  {
    name: "MAX_VIEWERS_PER_ADDRESS",
    defaultValue: "100",
    description: "WHEP sessions one client address holds, connecting or connected (429 beyond)",
  },
  {
    name: "CONNECT_TIMEOUT",
    defaultValue: "10",
    description: "seconds a session may take to finish ICE + DTLS before it is dropped",
  },
  {
    name: "RATE_LIMIT_PER_MINUTE",
    defaultValue: "30",
    description: "failed WHIP/WHEP POSTs (400, 401, 403, 413, 415) per client address (IPv6: per /64) per " +
      "minute; past it every POST from the address gets 429 until the budget refills; 0 = off",
  },
  {
    name: "TRUSTED_PROXIES",
    defaultValue: "(none)",
    description: "comma-separated addresses of reverse proxies whose X-Forwarded-For names the client for " +
      "RATE_LIMIT_PER_MINUTE (anyone else's X-Forwarded-For is ignored)",
  },
  { name: "MAX_SSE_CLIENTS", defaultValue: "1000", description: "open /notifications streams (503 beyond)" },
  {
    name: "HTTP_HEADER_TIMEOUT",
    defaultValue: "10",
    description:
      "seconds a request's headers may take from its first byte (or a new connection's opening); " +
      "the connection is closed beyond",
  },
  {
    name: "HTTP_BODY_TIMEOUT",
    defaultValue: "30",
    description: "seconds a request body may take after its headers (408 and close beyond)",
  },
  {
    name: "HTTP_IDLE_TIMEOUT",
    defaultValue: "60",
    description:
      "seconds a connection may stay silent in both directions (event streams exempt); closed beyond",
  },
  {
    name: "MAX_HTTP_CONNECTIONS",
    defaultValue: "(from the open-file limit)",
    description: "open HTTP connections in total; (limit - 128) / 3 by default (each takes up to 3 " +
      "descriptors), and never more when the limit is known; beyond, new connections get 503 and are closed",
  },
  {
    name: "MAX_HTTP_CONNECTIONS_PER_ADDRESS",
    defaultValue: "256",
    description: "open HTTP connections per client address (IPv6: per /64; at most half of " +
      "MAX_HTTP_CONNECTIONS; TRUSTED_PROXIES exempt), 503 and close beyond",
  },
  {
    name: "API_ORIGINS",
    defaultValue: "(none)",
    description: "comma-separated origins (https://host[:port]) the built-in pages may use as API with " +
      "?api=; any other ?api= is refused with 400 (the page's own origin is always allowed)",
  },
  {
    name: "METRICS_TOKEN",
    defaultValue: "(none: open)",
    description:
      "bearer token (at least 8 characters) required by /metrics and /rooms/<id>/stats (401 without)",
  },
  {
    name: "MAX_SSE_PER_ADDRESS",
    defaultValue: "100",
    description: "open /notifications streams per client address (429 beyond)",
  },
  {
    name: "STREAM_KEYS_FILE",
    defaultValue: "(none: only WHIP_TOKEN publishes)",
    description: "file of 'room key' lines (key may be sha256:<hex>); a key publishes to its room only; " +
      "reread when it changes and on SIGHUP",
  },
  {
    name: "PRIVATE_ROOMS",
    defaultValue: "(none)",
    description: "comma-separated rooms that need a viewer token and are left out of /rooms and " +
      "/notifications (needs VIEWER_TOKEN_SECRET)",
  },
  {
    name: "VIEWER_TOKEN_SECRET",
    defaultValue: "(none)",
    description: "secret (16+ characters) of the HS256 JWT viewer tokens for PRIVATE_ROOMS",
  },
  {
    name: "AUTH_WEBHOOK_URL",
    defaultValue: "(none)",
    description: "http(s) URL asked before each WHIP/WHEP offer (JSON action, room, token, ip, " +
      "user_agent); 2xx allows, anything else is 403",
  },
  { name: "AUTH_WEBHOOK_TIMEOUT", defaultValue: "2", description: "seconds to wait for the webhook" },
  {
    name: "AUTH_WEBHOOK_ON_ERROR",
    defaultValue: "deny",
    description: "deny or allow when the webhook times out or cannot be reached",
  },
  {
    name: "AUTH_WEBHOOK_CACHE",
    defaultValue: "10",
    description: "seconds a webhook allow is remembered per action, room, token and address (0: ask always)",
  },
  {
    name: "ICE_SERVERS",
    defaultValue: "(none)",
    description: "comma-separated STUN/TURN URIs handed to clients in Link headers, e.g. " +
      "stun:stun.example.org:3478,turn:user:pass@turn.example.org:3478?transport=udp " +
      "(percent-encode ':' '@' ',' in TURN user and password)",
  },
  {
    name: "REDIS_URL",
    defaultValue: "(none: single node)",
    description: "redis:// or rediss:// URL of the cluster's room directory; set it to join a cluster",
  },
  {
    name: "PUBLIC_URL",
    defaultValue: "(none; required with REDIS_URL)",
    description: "this node's HTTP base URL as other nodes reach it, e.g. http://10.0.0.5:8080",
  },
  {
    name: "NODE_ID",
    defaultValue: "(random, printed at start)",
    description: "this node's name in the cluster",
  },
  {
    name: "CLUSTER_TOKEN",
    defaultValue: "(none)",
    description:
      "shared secret nodes send when pulling rooms from each other (exempt from RATE_LIMIT_PER_MINUTE)",
  },
];

type Env = (name: string) => string | undefined;

const denoEnv: Env = (name) => Deno.env.get(name);

/**
 * A setting's default as its parser reads it, taken from {@link SETTINGS} so that each default is written
 * once (settings whose documented default carries a description in parentheses compute theirs in code).
 */
function literalDefault(name: string): string {
  const value = SETTINGS.find((setting) => setting.name === name)?.defaultValue;
  if (value === undefined || value.includes("(")) throw new Error(`${name} has no literal default`);
  return value;
}

/** Reads and validates the configuration from the environment (or a lookup function, for tests). */
export function loadConfig(env: Env = denoEnv): Config {
  const get = (name: string): string | undefined => {
    const value = env(name)?.trim();
    return value === "" ? undefined : value;
  };
  const token = get("WHIP_TOKEN");
  const logLevel = get("LOG_LEVEL") ?? literalDefault("LOG_LEVEL");
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of debug, info, warn, error (got "${logLevel}")`);
  }
  const logFormat = get("LOG_FORMAT") ?? literalDefault("LOG_FORMAT");
  if (logFormat !== "text" && logFormat !== "json") {
    throw new ConfigError(`LOG_FORMAT must be text or json (got "${logFormat}")`);
  }
  if (token !== undefined && token.length < 8) {
    throw new ConfigError("WHIP_TOKEN must be at least 8 characters long");
  }
  return {
    tcpAddress: parseAddress("TCP_ADDRESS", get("TCP_ADDRESS") ?? literalDefault("TCP_ADDRESS")),
    tcpPort: parsePort("TCP_PORT", get("TCP_PORT") ?? literalDefault("TCP_PORT")),
    udpAddress: parseAddress("UDP_ADDRESS", get("UDP_ADDRESS") ?? literalDefault("UDP_ADDRESS")),
    udpPort: parsePort("UDP_PORT", get("UDP_PORT") ?? literalDefault("UDP_PORT")),
    whipToken: token ?? randomToken(),
    whipTokenGenerated: token === undefined,
    frontendUrl: get("FRONTEND_URL") ?? literalDefault("FRONTEND_URL"),
    storageDir: get("STORAGE_DIR") ?? literalDefault("STORAGE_DIR"),
    certsDir: get("CERTS_DIR") ?? literalDefault("CERTS_DIR"),
    publicIps: (get("PUBLIC_IP") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
      .map((ip) => parseAddress("PUBLIC_IP", ip)),
    consentTimeoutMs:
      parseSeconds("CONSENT_TIMEOUT", get("CONSENT_TIMEOUT") ?? literalDefault("CONSENT_TIMEOUT")) * 1000,
    thumbnailIntervalMs:
      parseSeconds("THUMBNAIL_INTERVAL", get("THUMBNAIL_INTERVAL") ?? literalDefault("THUMBNAIL_INTERVAL")) *
      1000,
    keyframeCache: parseSwitch("KEYFRAME_CACHE", get("KEYFRAME_CACHE") ?? literalDefault("KEYFRAME_CACHE")),
    retransmissions: parseSwitch(
      "RETRANSMISSIONS",
      get("RETRANSMISSIONS") ?? literalDefault("RETRANSMISSIONS"),
    ),
    transportCc: parseSwitch("TRANSPORT_CC", get("TRANSPORT_CC") ?? literalDefault("TRANSPORT_CC")),
    videoCodecs: parseCodecs(get("VIDEO_CODECS")),
    maxPublisherBitrate: parseCount(
      "MAX_PUBLISHER_BITRATE",
      get("MAX_PUBLISHER_BITRATE") ?? literalDefault("MAX_PUBLISHER_BITRATE"),
      100,
    ) *
      1000,
    maxSessions: parseCount("MAX_SESSIONS", get("MAX_SESSIONS") ?? literalDefault("MAX_SESSIONS"), 1),
    maxViewersPerRoom: parseCount(
      "MAX_VIEWERS_PER_ROOM",
      get("MAX_VIEWERS_PER_ROOM") ?? literalDefault("MAX_VIEWERS_PER_ROOM"),
      1,
    ),
    rateLimitPerMinute: parseCount(
      "RATE_LIMIT_PER_MINUTE",
      get("RATE_LIMIT_PER_MINUTE") ?? literalDefault("RATE_LIMIT_PER_MINUTE"),
      0,
    ),
    trustedProxies: (get("TRUSTED_PROXIES") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
      .map((address) => parseAddress("TRUSTED_PROXIES", address)),
    maxSseClients: parseCount(
      "MAX_SSE_CLIENTS",
      get("MAX_SSE_CLIENTS") ?? literalDefault("MAX_SSE_CLIENTS"),
      1,
    ),
    httpHeaderTimeoutMs: parseSeconds(
      "HTTP_HEADER_TIMEOUT",
      get("HTTP_HEADER_TIMEOUT") ?? literalDefault("HTTP_HEADER_TIMEOUT"),
    ) * 1000,
    httpBodyTimeoutMs:
      parseSeconds("HTTP_BODY_TIMEOUT", get("HTTP_BODY_TIMEOUT") ?? literalDefault("HTTP_BODY_TIMEOUT")) *
      1000,
    httpIdleTimeoutMs:
      parseSeconds("HTTP_IDLE_TIMEOUT", get("HTTP_IDLE_TIMEOUT") ?? literalDefault("HTTP_IDLE_TIMEOUT")) *
      1000,
    maxHttpConnections: parseCount("MAX_HTTP_CONNECTIONS", get("MAX_HTTP_CONNECTIONS") ?? "0", 0),
    maxHttpConnectionsPerAddress: parseCount(
      "MAX_HTTP_CONNECTIONS_PER_ADDRESS",
      get("MAX_HTTP_CONNECTIONS_PER_ADDRESS") ?? literalDefault("MAX_HTTP_CONNECTIONS_PER_ADDRESS"),
      1,
    ),
    metricsToken: parseSecret("METRICS_TOKEN", get("METRICS_TOKEN"), 8),
    apiOrigins: (get("API_ORIGINS") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
      .map((origin) => parseOrigin("API_ORIGINS", origin)),
    access: loadAccess(get),
    iceServers: (get("ICE_SERVERS") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
      .map(parseIceServer),
    logLevel: logLevel as Config["logLevel"],
    logFormat,
    tls: loadTls(get("TLS_CERT"), get("TLS_KEY")),
    ...loadCluster(get),
  };
}

/**
 * REDIS_URL, PUBLIC_URL, NODE_ID and CLUSTER_TOKEN. PUBLIC_URL is what other nodes pull from and is checked
 * against the registry before any pull, so it must be a plain http(s) base URL.
 */
function loadCluster(
  get: (name: string) => string | undefined,
): Pick<Config, "redisUrl" | "publicUrl" | "nodeId" | "nodeIdGenerated" | "clusterToken"> {
  const redisUrl = get("REDIS_URL");
  if (redisUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(redisUrl);
    } catch { /* reported below */ }
    if (!url || (url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "") {
      throw new ConfigError(`REDIS_URL must be a redis:// or rediss:// URL (got "${redisUrl}")`);
    }
  }
  let publicUrl = get("PUBLIC_URL");
  if (publicUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(publicUrl);
    } catch { /* reported below */ }
    if (
      !url || (url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" ||
      url.hash !== "" || url.username !== "" || url.pathname !== "/"
    ) {
      throw new ConfigError(`PUBLIC_URL must be an http(s)://host[:port] base URL (got "${publicUrl}")`);
    }
    publicUrl = url.origin;
  } else if (redisUrl !== undefined) {
    throw new ConfigError("PUBLIC_URL must be set with REDIS_URL: other nodes pull rooms from it");
  }
  const nodeId = get("NODE_ID");
  if (nodeId !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(nodeId)) {
    throw new ConfigError(`NODE_ID must be 1-64 characters of A-Z a-z 0-9 _ . - (got "${nodeId}")`);
  }
  const clusterToken = get("CLUSTER_TOKEN");
  if (clusterToken !== undefined && clusterToken.length < 16) {
    throw new ConfigError("CLUSTER_TOKEN must be at least 16 characters long");
  }
  return {
    redisUrl,
    publicUrl,
    nodeId: nodeId ?? `node-${randomToken(6)}`,
    nodeIdGenerated: nodeId === undefined,
    clusterToken,
  };
}

/** The access-control settings and per-address limits (see {@link AccessConfig}). */
function loadAccess(get: (name: string) => string | undefined): AccessConfig {
  const maxSessions = parseCount("MAX_SESSIONS", get("MAX_SESSIONS") ?? literalDefault("MAX_SESSIONS"), 1);
  const publishers = get("MAX_PUBLISHERS");
  const maxPublishers = publishers === undefined
    ? Math.max(1, Math.floor(maxSessions / 10))
    : parseCount("MAX_PUBLISHERS", publishers, 1);
  if (maxPublishers > maxSessions) {
    throw new ConfigError(`MAX_PUBLISHERS must not exceed MAX_SESSIONS (${maxPublishers} > ${maxSessions})`);
  }
  const webhook = get("AUTH_WEBHOOK_URL");
  if (webhook !== undefined && !/^https?:\/\/[^\s/]+/i.test(webhook)) {
    throw new ConfigError(`AUTH_WEBHOOK_URL must be an http:// or https:// URL (got "${webhook}")`);
  }
  const onError = get("AUTH_WEBHOOK_ON_ERROR") ?? literalDefault("AUTH_WEBHOOK_ON_ERROR");
  if (onError !== "deny" && onError !== "allow") {
    throw new ConfigError(`AUTH_WEBHOOK_ON_ERROR must be deny or allow (got "${onError}")`);
  }
  const cache = Number(get("AUTH_WEBHOOK_CACHE") ?? literalDefault("AUTH_WEBHOOK_CACHE"));
  if (!Number.isFinite(cache) || cache < 0 || cache > 3600) {
    throw new ConfigError(`AUTH_WEBHOOK_CACHE must be a number of seconds from 0 to 3600 (got "${cache}")`);
  }
  const secret = get("VIEWER_TOKEN_SECRET");
  if (secret !== undefined && secret.length < 16) {
    throw new ConfigError("VIEWER_TOKEN_SECRET must be at least 16 characters long");
  }
  const privateRooms = (get("PRIVATE_ROOMS") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const room of privateRooms) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(room)) {
      throw new ConfigError(`PRIVATE_ROOMS: "${room}" is not a room name (1-64 of A-Z a-z 0-9 _ -)`);
    }
  }
  if (privateRooms.length > 0 && secret === undefined) {
    throw new ConfigError("PRIVATE_ROOMS needs VIEWER_TOKEN_SECRET to sign viewer tokens with");
  }
  return {
    streamKeysFile: get("STREAM_KEYS_FILE"),
    authWebhookUrl: webhook,
    authWebhookTimeoutMs: parseSeconds(
      "AUTH_WEBHOOK_TIMEOUT",
      get("AUTH_WEBHOOK_TIMEOUT") ?? literalDefault("AUTH_WEBHOOK_TIMEOUT"),
    ) * 1000,
    authWebhookOnError: onError,
    authWebhookCacheMs: cache * 1000,
    viewerTokenSecret: secret,
    privateRooms,
    maxPublishers,
    maxPendingPerAddress: parseCount(
      "MAX_PENDING_PER_ADDRESS",
      get("MAX_PENDING_PER_ADDRESS") ?? literalDefault("MAX_PENDING_PER_ADDRESS"),
      1,
    ),
    maxViewersPerAddress: parseCount(
      "MAX_VIEWERS_PER_ADDRESS",
      get("MAX_VIEWERS_PER_ADDRESS") ?? literalDefault("MAX_VIEWERS_PER_ADDRESS"),
      1,
    ),
    maxSsePerAddress: parseCount(
      "MAX_SSE_PER_ADDRESS",
      get("MAX_SSE_PER_ADDRESS") ?? literalDefault("MAX_SSE_PER_ADDRESS"),
      1,
    ),
    connectTimeoutMs:
      parseSeconds("CONNECT_TIMEOUT", get("CONNECT_TIMEOUT") ?? literalDefault("CONNECT_TIMEOUT")) * 1000,
  };
}

/**
 * TLS_CERT and TLS_KEY: both or neither; readable PEM files; the key must belong to the (first, leaf)
 * certificate, because `Deno.serve` would otherwise fail with a message that names neither variable.
 */
function loadTls(certPath: string | undefined, keyPath: string | undefined): TlsFiles | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined) throw new ConfigError("TLS_CERT must be set together with TLS_KEY");
  if (keyPath === undefined) throw new ConfigError("TLS_KEY must be set together with TLS_CERT");
  const cert = readPem("TLS_CERT", certPath);
  const key = readPem("TLS_KEY", keyPath);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new ConfigError(`TLS_CERT: ${certPath} holds no readable PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(`TLS_KEY: ${keyPath} holds no readable unencrypted PEM private key`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(`TLS_KEY: ${keyPath} is not the key of the certificate in TLS_CERT (${certPath})`);
  }
  return { certPath, keyPath, cert, key };
}

function readPem(name: string, path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(`${name}: cannot read ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!text.includes("-----BEGIN ")) throw new ConfigError(`${name}: ${path} is not a PEM file`);
  return text;
}

function parseSwitch(name: string, value: string): boolean {
  if (/^(on|true|1|yes)$/i.test(value)) return true;
  if (/^(off|false|0|no)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be on or off (got "${value}")`);
}

function parsePort(name: string, value: string): number {
  const port = Number(value);
  // Port 0 is allowed: the OS picks a free port (used by tests).
  if (!/^\d+$/.test(value) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${name} must be a port number 0-65535 (got "${value}")`);
  }
  return port;
}

function parseCount(name: string, value: string, min: number): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(count) || count < min || count > 1_000_000) {
    throw new ConfigError(`${name} must be a whole number from ${min} to 1000000 (got "${value}")`);
  }
  return count;
}

function parseSeconds(name: string, value: string): number {
  const seconds = Number(value);
  if (value === "" || !Number.isFinite(seconds) || seconds <= 0 || seconds > 86400) {
    throw new ConfigError(
      `${name} must be a number of seconds greater than 0 and at most 86400, e.g. 0.5 or 15 (got "${value}")`,
    );
  }
  return seconds;
}

function parseOrigin(name: string, value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch { /* reported below */ }
  if (
    !url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== value.replace(/\/$/, "")
  ) {
    throw new ConfigError(
      `${name}: each entry must be an origin like https://media.example.com (got "${value}")`,
    );
  }
  return url.origin;
}

function parseSecret(name: string, value: string | undefined, minLength: number): string | undefined {
  if (value !== undefined && value.length < minLength) {
    throw new ConfigError(`${name} must be at least ${minLength} characters long`);
  }
  return value;
}

/**
 * One ICE_SERVERS entry: `stun:host[:port]`, `stuns:...`, or `turn[s]:user:password@host[:port][?transport=udp|tcp]`
 * (RFC 7064/7065 URIs; TURN credentials in the userinfo, percent-encoded; a `//` after the scheme is tolerated).
 */
function parseIceServer(entry: string): IceServer {
  const fail = (why: string): never => {
    throw new ConfigError(`ICE_SERVERS: ${why} (got "${entry.replace(/:[^:@]*@/, ":***@")}")`);
  };
  const match = /^(stuns?|turns?):(?:\/\/)?(.*)$/i.exec(entry);
  if (!match) return fail("each entry must start with stun:, stuns:, turn: or turns:");
  const scheme = match[1].toLowerCase();
  let rest = match[2];
  let username: string | undefined;
  let credential: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(":");
    if (colon <= 0 || colon === userinfo.length - 1) return fail("credentials must be user:password@");
    try {
      username = decodeURIComponent(userinfo.slice(0, colon));
      credential = decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      return fail("bad percent-encoding in the credentials");
    }
  }
  const isTurn = scheme.startsWith("turn");
  if (!isTurn && username !== undefined) return fail("stun: URIs take no credentials");
  if (isTurn && username === undefined) return fail("turn: URIs need user:password@ before the host");
  const [hostPort, query, ...more] = rest.split("?");
  if (more.length > 0) return fail("more than one '?'");
  if (query !== undefined && (!isTurn || !/^transport=(udp|tcp)$/i.test(query))) {
    return fail("the only query allowed is ?transport=udp or ?transport=tcp on turn: URIs");
  }
  const hp = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(hostPort);
  if (!hp || (hp[2] !== undefined && (Number(hp[2]) < 1 || Number(hp[2]) > 65535))) {
    return fail("expected host or host:port after the scheme");
  }
  const url = `${scheme}:${hostPort}${query !== undefined ? `?${query.toLowerCase()}` : ""}`;
  return username === undefined ? { url } : { url, username, credential };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function parseAddress(name: string, value: string): string {
  if (IPV4.test(value) || (value.includes(":") && /^[0-9a-fA-F:.]+$/.test(value))) return value;
  if (value === "localhost") return "127.0.0.1";
  throw new ConfigError(`${name} must be an IPv4 or IPv6 address (got "${value}")`);
}

/** A random URL-safe token with `bytes` bytes of entropy. */
export function randomToken(bytes = 18): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  let binary = "";
  for (const b of raw) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function parseCodecs(value: string | undefined): VideoCodecName[] {
  if (value === undefined) return [...DEFAULT_VIDEO_CODEC_ORDER];
  try {
    return parseVideoCodecOrder(value);
  } catch (e) {
    throw new ConfigError(`VIDEO_CODECS ${(e as Error).message}`);
  }
}
