/**
 * Environment -> typed configuration, from one table of settings ({@link SETTINGS}): each row is a variable's
 * name, group, default, parser and description, and yields both its field of {@link Config} and its line of
 * `--help` and of the README (src/config_doc.ts). Every setting has a default or is optional, so
 * `deno task start` works with no configuration at all; a bad value throws a {@link ConfigError} naming the
 * variable.
 *
 * To add a setting: add a row (`setting`, `optional` or `computed`) to {@link SERVER_SETTINGS} (a field of
 * `Config`) or {@link ACCESS_SETTINGS} (a field of `config.access`), regenerate the README table
 * (`deno run -R=README.md -W=README.md src/config_doc.ts`), and use `config.<key>`.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { DEFAULT_VIDEO_CODEC_ORDER, parseVideoCodecOrder, type VideoCodecName } from "./sdp/codecs.ts";
import {
  address,
  bool,
  count,
  integer,
  InvalidValue,
  list,
  matching,
  oneOf,
  origin,
  type Parser,
  path,
  port,
  quoted,
  scaled,
  seconds,
  text,
  url,
} from "./config_parsers.ts";

/** A configuration value that cannot be used; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Sections of `--help` and of the README's settings table, in the order they are shown. */
export const SETTING_GROUPS = {
  network: "Network and HTTPS",
  media: "Media",
  access: "Access control",
  limits: "Limits",
  cluster: "Cluster",
  logging: "Logging",
} as const;

/** The key of a {@link SETTING_GROUPS} section. */
export type SettingGroup = keyof typeof SETTING_GROUPS;

/** One documented setting: the name users set, its group, its default and what it does. */
export interface SettingDoc {
  readonly name: string;
  readonly group: SettingGroup;
  /** The default as `--help` shows it: the literal text read when unset, or a note in parentheses. */
  readonly defaultValue: string;
  /** Markdown (`code` spans); `--help` prints it without the backticks. */
  readonly description: string;
}

/** A row of the settings table: its documentation and how its value is read. */
export interface Setting<T> extends SettingDoc {
  /** The value of the variable's text (undefined: unset or empty); throws {@link ConfigError}. */
  read(value: string | undefined): T;
}

interface RowFields<T> {
  name: string;
  group: SettingGroup;
  parse: Parser<T>;
  description: string;
}

/** A setting with a literal default, parsed like any other value (so the default is written once). */
function setting<T>(row: RowFields<T> & { default: string; shownDefault?: string }): Setting<T> {
  const { name, group, parse, description } = row;
  const fallback = row.default;
  return {
    name,
    group,
    description,
    defaultValue: row.shownDefault ?? fallback,
    read: (value) => parseNamed(name, parse, value ?? fallback),
  };
}

/** A setting that may be left unset (undefined); `shownDefault` says what unset means, in parentheses. */
function optional<T>(row: RowFields<T> & { shownDefault: string }): Setting<T | undefined> {
  const { name, group, parse, description } = row;
  return {
    name,
    group,
    description,
    defaultValue: row.shownDefault,
    read: (value) => value === undefined ? undefined : parseNamed(name, parse, value),
  };
}

/** A setting whose default is computed at start (e.g. from the number of cores); `shownDefault` says how. */
function computed<T>(row: RowFields<T> & { shownDefault: string; compute: () => T }): Setting<T> {
  const { name, group, parse, description, compute } = row;
  return {
    name,
    group,
    description,
    defaultValue: row.shownDefault,
    read: (value) => value === undefined ? compute() : parseNamed(name, parse, value),
  };
}

function parseNamed<T>(name: string, parse: Parser<T>, value: string): T {
  try {
    return parse(value);
  } catch (e) {
    if (!(e instanceof InvalidValue)) throw e;
    throw new ConfigError(`${name}${e.message.startsWith(":") ? "" : " "}${e.message}`);
  }
}

const videoCodecs: Parser<VideoCodecName[]> = (value) => {
  try {
    return parseVideoCodecOrder(value);
  } catch (e) {
    throw new InvalidValue((e as Error).message);
  }
};

const roomName = matching(/^[A-Za-z0-9_-]{1,64}$/, "room names of 1-64 A-Z a-z 0-9 _ -");

/** Settings that are fields of {@link Config}, keyed by the field. */
export const SERVER_SETTINGS = {
  tcpAddress: setting({
    name: "TCP_ADDRESS",
    group: "network",
    default: "0.0.0.0",
    parse: address,
    description: "address the HTTP API listens on",
  }),
  tcpPort: setting({
    name: "TCP_PORT",
    group: "network",
    default: "8080",
    parse: port,
    description: "HTTP API port",
  }),
  udpAddress: setting({
    name: "UDP_ADDRESS",
    group: "network",
    default: "0.0.0.0",
    parse: address,
    description: "address of the one UDP media socket",
  }),
  udpPort: setting({
    name: "UDP_PORT",
    group: "network",
    default: "8443",
    parse: port,
    description: "UDP media port (open it in the firewall)",
  }),
  receiveThread: setting({
    name: "RECEIVE_THREAD",
    group: "network",
    default: "off",
    parse: bool,
    description: "on: read the UDP media socket on a thread of its own (libc `poll`/`recvmmsg` through FFI " +
      "into a shared ring): 25-40 % less main-thread CPU per received datagram, but more in total (two " +
      "threads wake per datagram; see Performance); needs --allow-ffi, Linux and an IPv4 socket, otherwise " +
      "Deno's receive",
  }),
  publicIps: setting({
    name: "PUBLIC_IP",
    group: "network",
    default: "",
    shownDefault: "(interface addresses)",
    parse: list(address),
    description: "comma-separated addresses to advertise as ICE candidates (NAT, cloud VM)",
  }),
  iceServers: setting({
    name: "ICE_SERVERS",
    group: "network",
    default: "",
    shownDefault: "(none)",
    parse: list(iceServer, 20),
    description: "comma-separated STUN/TURN URIs handed to clients in Link headers, e.g. " +
      "stun:stun.example.org:3478,turn:user:pass@turn.example.org:3478?transport=udp " +
      "(percent-encode ':' '@' ',' in TURN user and password)",
  }),
  tlsCert: optional({
    name: "TLS_CERT",
    group: "network",
    shownDefault: "(none: plain HTTP)",
    parse: path,
    description: "PEM certificate chain file; with `TLS_KEY` the HTTP port serves HTTPS",
  }),
  tlsKey: optional({
    name: "TLS_KEY",
    group: "network",
    shownDefault: "(none)",
    parse: path,
    description: "PEM private key file of `TLS_CERT`",
  }),
  frontendUrl: setting({
    name: "FRONTEND_URL",
    group: "network",
    default: "*",
    parse: text(),
    description: "value of Access-Control-Allow-Origin",
  }),
  apiOrigins: setting({
    name: "API_ORIGINS",
    group: "network",
    default: "",
    shownDefault: "(none)",
    parse: list(origin),
    description:
      "comma-separated origins (`https://host[:port]`) the built-in pages may be pointed at with " +
      "`?api=`; any other `?api=` gets 400 (the page's own origin is always allowed)",
  }),
  storageDir: setting({
    name: "STORAGE_DIR",
    group: "media",
    default: "./storage",
    parse: path,
    description: "where thumbnails are written",
  }),
  certsDir: setting({
    name: "CERTS_DIR",
    group: "media",
    default: "./certs",
    parse: path,
    description: "DTLS key.pem/cert.pem (self-signed ECDSA generated when absent)",
  }),
  consentTimeoutMs: setting({
    name: "CONSENT_TIMEOUT",
    group: "media",
    default: "15",
    parse: seconds(86400),
    description: "seconds without an answer to the server's consent requests (RFC 7675) after which a peer " +
      "is dropped",
  }),
  thumbnailIntervalMs: setting({
    name: "THUMBNAIL_INTERVAL",
    group: "media",
    default: "10",
    parse: seconds(86400),
    description:
      "seconds between thumbnail refreshes of a room; when one is due the publisher is asked for " +
      "a keyframe (browsers send one only when asked)",
  }),
  keyframeCache: setting({
    name: "KEYFRAME_CACHE",
    group: "media",
    default: "on",
    parse: bool,
    description: "start new viewers from the cached latest keyframe (instant join)",
  }),
  retransmissions: setting({
    name: "RETRANSMISSIONS",
    group: "media",
    default: "on",
    parse: bool,
    description: "answer viewers' NACKs from history and NACK the publisher's losses",
  }),
  transportCc: setting({
    name: "TRANSPORT_CC",
    group: "media",
    default: "on",
    parse: bool,
    description:
      "transport-wide congestion control: feedback so browser publishers ramp up, and viewers' estimates that pick their simulcast layer (off: REMB and receiver reports only)",
  }),
  videoCodecs: setting({
    name: "VIDEO_CODECS",
    group: "media",
    default: DEFAULT_VIDEO_CODEC_ORDER.join(","),
    parse: videoCodecs,
    description: "video codecs taken from publishers, most preferred first; a publisher offering none gets " +
      "406 naming what it offered (see Codecs)",
  }),
  maxPublisherBitrate: setting({
    name: "MAX_PUBLISHER_BITRATE",
    group: "media",
    default: "8000",
    parse: scaled(count(100), 1000),
    description: "kbit/s ceiling announced with REMB to publishers without transport-wide CC",
  }),
  whipToken: optional({
    name: "WHIP_TOKEN",
    group: "access",
    shownDefault: "(random, printed at start)",
    parse: text(8, true),
    description: "the master key (at least 8 characters): publishes to any room, manages any session, sees " +
      "private rooms (see Access control)",
  }),
  metricsToken: optional({
    name: "METRICS_TOKEN",
    group: "access",
    shownDefault: "(none: open)",
    parse: text(8, true),
    description:
      "bearer token (at least 8 characters) `/metrics` and `/rooms/<id>/stats` require; 401 without",
  }),
  fanoutWorkers: computed({
    name: "FANOUT_WORKERS",
    group: "media",
    shownDefault: "(cores − 1, at least 1)",
    // Unset: one per core but one (the main thread keeps receiving, ICE/DTLS and the rooms), at least one.
    compute: () => Math.max(1, (navigator.hardwareConcurrency ?? 1) - 1),
    parse: integer(0, 64),
    description:
      "worker threads that seal (SRTP) and send (`sendmmsg`) viewers' RTP, at most 64; 0 keeps it " +
      "all on the main thread, as does a start without the FFI send path (logged)",
  }),
  maxSessions: setting({
    name: "MAX_SESSIONS",
    group: "limits",
    default: "500",
    parse: count(1),
    description: "WHIP + WHEP sessions in total (503 beyond)",
  }),
  maxViewersPerRoom: setting({
    name: "MAX_VIEWERS_PER_ROOM",
    group: "limits",
    default: "200",
    parse: count(1),
    description: "WHEP sessions per room (503 beyond)",
  }),
  rateLimitPerMinute: setting({
    name: "RATE_LIMIT_PER_MINUTE",
    group: "limits",
    default: "30",
    parse: count(0),
    description: "failed WHIP/WHEP POSTs (400, 401, 403, 413, 415) per client address (IPv6: per /64) per " +
      "minute; past it every POST from the address gets 429 until the budget refills; 0 = off",
  }),
  trustedProxies: setting({
    name: "TRUSTED_PROXIES",
    group: "limits",
    default: "",
    shownDefault: "(none)",
    parse: list(address),
    description: "comma-separated reverse-proxy addresses whose `X-Forwarded-For` names the client for " +
      "`RATE_LIMIT_PER_MINUTE`; anyone else's header is ignored",
  }),
  maxSseClients: setting({
    name: "MAX_SSE_CLIENTS",
    group: "limits",
    default: "1000",
    parse: count(1),
    description: "open /notifications streams (503 beyond)",
  }),
  httpHeaderTimeoutMs: setting({
    name: "HTTP_HEADER_TIMEOUT",
    group: "limits",
    default: "10",
    parse: seconds(86400),
    description: "seconds a request's headers may take from its first byte (a new connection: from its " +
      "opening); the connection is closed beyond",
  }),
  httpBodyTimeoutMs: setting({
    name: "HTTP_BODY_TIMEOUT",
    group: "limits",
    default: "30",
    parse: seconds(86400),
    description: "seconds a request body may take after its headers; 408 and close beyond",
  }),
  httpIdleTimeoutMs: setting({
    name: "HTTP_IDLE_TIMEOUT",
    group: "limits",
    default: "60",
    parse: seconds(86400),
    description: "seconds a connection may stay silent in both directions (`/notifications` streams " +
      "exempt); closed beyond",
  }),
  maxHttpConnections: setting({
    name: "MAX_HTTP_CONNECTIONS",
    group: "limits",
    default: "0",
    shownDefault: "(from the open-file limit)",
    parse: count(0),
    description: "open HTTP connections in total; default (limit − 128) / 3, e.g. 298 at 1024, 6624 at " +
      "20000 (a larger value is lowered to that when the limit is known); beyond, new connections get 503 " +
      "and are closed",
  }),
  maxHttpConnectionsPerAddress: setting({
    name: "MAX_HTTP_CONNECTIONS_PER_ADDRESS",
    group: "limits",
    default: "256",
    parse: count(1),
    description: "open HTTP connections per client address (IPv6: per /64), at most half of " +
      "`MAX_HTTP_CONNECTIONS`; `TRUSTED_PROXIES` exempt; 503 and close beyond",
  }),
  redisUrl: optional({
    name: "REDIS_URL",
    group: "cluster",
    shownDefault: "(none: single node)",
    parse: url(["redis:", "rediss:"]),
    description: "redis:// or rediss:// URL of the cluster's room directory; set it to join a cluster",
  }),
  publicUrl: optional({
    name: "PUBLIC_URL",
    group: "cluster",
    shownDefault: "(none; required with REDIS_URL)",
    parse: url(["http:", "https:"], { baseOnly: true }),
    description: "this node's HTTP base URL as other nodes reach it, e.g. http://10.0.0.5:8080",
  }),
  nodeId: optional({
    name: "NODE_ID",
    group: "cluster",
    shownDefault: "(random, printed at start)",
    parse: matching(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 _ . -"),
    description: "this node's name in the cluster",
  }),
  clusterToken: optional({
    name: "CLUSTER_TOKEN",
    group: "cluster",
    shownDefault: "(none)",
    parse: text(16, true),
    description: "shared secret nodes send when pulling rooms from each other (exempt from " +
      "`RATE_LIMIT_PER_MINUTE`); at least 16 characters; set without `REDIS_URL` it does nothing and " +
      "start-up warns",
  }),
  logLevel: setting({
    name: "LOG_LEVEL",
    group: "logging",
    default: "info",
    parse: oneOf(["debug", "info", "warn", "error"]),
    description: "debug, info, warn or error",
  }),
  logFormat: setting({
    name: "LOG_FORMAT",
    group: "logging",
    default: "text",
    parse: oneOf(["text", "json"]),
    description: "text (time LEVEL message) or json (one object per line: time, level, msg, fields)",
  }),
};

/** Settings that are fields of {@link AccessConfig} (`config.access`), keyed by the field. */
export const ACCESS_SETTINGS = {
  streamKeysFile: optional({
    name: "STREAM_KEYS_FILE",
    group: "access",
    shownDefault: "(none: only `WHIP_TOKEN` publishes)",
    parse: path,
    description: "file of `room key` lines (a key may be `sha256:<hex>`); a key publishes to its own room " +
      "only; reread when it changes and on SIGHUP",
  }),
  privateRooms: setting({
    name: "PRIVATE_ROOMS",
    group: "access",
    default: "",
    shownDefault: "(none)",
    parse: list(roomName, 10_000),
    description: "comma-separated rooms that need a viewer token and are left out of `/rooms` and " +
      "`/notifications` (needs `VIEWER_TOKEN_SECRET`)",
  }),
  viewerTokenSecret: optional({
    name: "VIEWER_TOKEN_SECRET",
    group: "access",
    shownDefault: "(none)",
    parse: text(16, true),
    description: "secret (16+ characters) of the HS256 JWT viewer tokens for `PRIVATE_ROOMS`",
  }),
  authWebhookUrl: optional({
    name: "AUTH_WEBHOOK_URL",
    group: "access",
    shownDefault: "(none)",
    parse: url(["http:", "https:"]),
    description: "http(s) URL asked before each WHIP/WHEP offer (JSON `action`, `room`, `token`, `ip`, " +
      "`user_agent`); 2xx allows, anything else is 403",
  }),
  authWebhookTimeoutMs: setting({
    name: "AUTH_WEBHOOK_TIMEOUT",
    group: "access",
    default: "2",
    parse: seconds(86400),
    description: "seconds to wait for the webhook",
  }),
  authWebhookOnError: setting({
    name: "AUTH_WEBHOOK_ON_ERROR",
    group: "access",
    default: "deny",
    parse: oneOf(["deny", "allow"]),
    description: "`deny` or `allow` when the webhook times out or cannot be reached",
  }),
  authWebhookCacheMs: setting({
    name: "AUTH_WEBHOOK_CACHE",
    group: "access",
    default: "10",
    parse: seconds(3600, true),
    description: "seconds a webhook allow is remembered per action, room, token and address (0: ask always)",
  }),
  maxPublishers: optional({
    name: "MAX_PUBLISHERS",
    group: "limits",
    shownDefault: "MAX_SESSIONS/10 (50)",
    parse: count(1),
    description: "places of `MAX_SESSIONS` kept for WHIP sessions; viewers get the rest (503 beyond)",
  }),
  maxPendingPerAddress: setting({
    name: "MAX_PENDING_PER_ADDRESS",
    group: "limits",
    default: "20",
    parse: count(1),
    description: "WHEP sessions one client address holds before they finish ICE + DTLS (429 beyond)",
  }),
  maxViewersPerAddress: setting({
    name: "MAX_VIEWERS_PER_ADDRESS",
    group: "limits",
    default: "100",
    parse: count(1),
    description: "WHEP sessions one client address holds, connecting or connected (429 beyond)",
  }),
  maxSsePerAddress: setting({
    name: "MAX_SSE_PER_ADDRESS",
    group: "limits",
    default: "100",
    parse: count(1),
    description: "open /notifications streams per client address (429 beyond)",
  }),
  connectTimeoutMs: setting({
    name: "CONNECT_TIMEOUT",
    group: "limits",
    default: "10",
    parse: seconds(86400),
    description: "seconds a session may take to finish ICE + DTLS before it is dropped",
  }),
};

/** The values a table of settings yields, keyed like the table. */
export type SettingValues<T> = { -readonly [K in keyof T]: T[K] extends Setting<infer V> ? V : never };

/** Every environment variable the server reads, grouped as `--help` and the README show them. */
export const SETTINGS: readonly SettingDoc[] = (() => {
  const rows: SettingDoc[] = [...Object.values(SERVER_SETTINGS), ...Object.values(ACCESS_SETTINGS)];
  const order = Object.keys(SETTING_GROUPS);
  return rows.map((row, i) => ({ row, i }))
    .sort((a, b) => order.indexOf(a.row.group) - order.indexOf(b.row.group) || a.i - b.i)
    .map(({ row }) => ({
      name: row.name,
      group: row.group,
      defaultValue: row.defaultValue,
      description: row.description,
    }));
})();

/** The server's settings after validation: one field per row of {@link SERVER_SETTINGS}, plus what they imply. */
export interface Config
  extends Omit<SettingValues<typeof SERVER_SETTINGS>, "whipToken" | "nodeId" | "tlsCert" | "tlsKey"> {
  /** Bearer token for publishing; generated at start when unset. */
  whipToken: string;
  whipTokenGenerated: boolean;
  /** This node's name in the cluster; generated at start when unset. */
  nodeId: string;
  nodeIdGenerated: boolean;
  /** Access control and per-address limits (stream keys, webhook, private rooms; see src/http/auth.ts). */
  access: AccessConfig;
  /** HTTPS for the API and pages, from TLS_CERT/TLS_KEY (PEM text); undefined serves plain HTTP. */
  tls: TlsFiles | undefined;
}

/** Stream keys, the auth webhook, private rooms and the per-address limits: the rows of {@link ACCESS_SETTINGS}. */
export interface AccessConfig extends Omit<SettingValues<typeof ACCESS_SETTINGS>, "maxPublishers"> {
  /** Places of MAX_SESSIONS kept for publishers (MAX_SESSIONS/10 when unset). */
  maxPublishers: number;
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

type Env = (name: string) => string | undefined;

const denoEnv: Env = (name) => Deno.env.get(name);

/** Reads every row of `table` through `get`; the first bad value throws its {@link ConfigError}. */
function readTable<T extends Record<string, Setting<unknown>>>(table: T, get: Env): SettingValues<T> {
  const values: Record<string, unknown> = {};
  for (const [key, row] of Object.entries(table)) values[key] = row.read(get(row.name));
  return values as SettingValues<T>;
}

/** Reads and validates the configuration from the environment (or a lookup function, for tests). */
export function loadConfig(env: Env = denoEnv): Config {
  const get = (name: string): string | undefined => {
    const value = env(name)?.trim();
    return value === "" ? undefined : value;
  };
  const { whipToken, nodeId, tlsCert, tlsKey, ...server } = readTable(SERVER_SETTINGS, get);
  const { maxPublishers, ...access } = readTable(ACCESS_SETTINGS, get);
  // Rules between settings, each naming the variable to change.
  const publishers = maxPublishers ?? Math.max(1, Math.floor(server.maxSessions / 10));
  if (publishers > server.maxSessions) {
    throw new ConfigError(
      `MAX_PUBLISHERS must not exceed MAX_SESSIONS (${publishers} > ${server.maxSessions})`,
    );
  }
  if (access.privateRooms.length > 0 && access.viewerTokenSecret === undefined) {
    throw new ConfigError("PRIVATE_ROOMS needs VIEWER_TOKEN_SECRET to sign viewer tokens with");
  }
  if (server.redisUrl !== undefined && server.publicUrl === undefined) {
    throw new ConfigError("PUBLIC_URL must be set with REDIS_URL: other nodes pull rooms from it");
  }
  return {
    ...server,
    whipToken: whipToken ?? randomToken(),
    whipTokenGenerated: whipToken === undefined,
    nodeId: nodeId ?? `node-${randomToken(6)}`,
    nodeIdGenerated: nodeId === undefined,
    access: { ...access, maxPublishers: publishers },
    tls: loadTls(tlsCert, tlsKey),
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

/**
 * One ICE_SERVERS entry: `stun:host[:port]`, `stuns:...`, or `turn[s]:user:password@host[:port][?transport=udp|tcp]`
 * (RFC 7064/7065 URIs; TURN credentials in the userinfo, percent-encoded; a `//` after the scheme is tolerated).
 */
function iceServer(entry: string): IceServer {
  const fail = (why: string): never => {
    throw new InvalidValue(`: ${why} (got ${quoted(entry.replace(/:[^:@]*@/, ":***@"))})`);
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

/** A random URL-safe token with `bytes` bytes of entropy. */
export function randomToken(bytes = 18): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  let binary = "";
  for (const b of raw) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}
