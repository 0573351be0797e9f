/**
 * Environment -> typed configuration. Every setting has a default so `deno task start` works with no
 * configuration at all; a bad value throws a {@link ConfigError} naming the variable.
 */

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
  logLevel: "debug" | "info" | "warn" | "error";
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
  { name: "LOG_LEVEL", defaultValue: "info", description: "debug, info, warn or error" },
];

type Env = (name: string) => string | undefined;

const denoEnv: Env = (name) => Deno.env.get(name);

/** Reads and validates the configuration from the environment (or a lookup function, for tests). */
export function loadConfig(env: Env = denoEnv): Config {
  const get = (name: string): string | undefined => {
    const value = env(name)?.trim();
    return value === "" ? undefined : value;
  };
  const token = get("WHIP_TOKEN");
  const logLevel = get("LOG_LEVEL") ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of debug, info, warn, error (got "${logLevel}")`);
  }
  if (token !== undefined && token.length < 8) {
    throw new ConfigError("WHIP_TOKEN must be at least 8 characters long");
  }
  return {
    tcpAddress: parseAddress("TCP_ADDRESS", get("TCP_ADDRESS") ?? "0.0.0.0"),
    tcpPort: parsePort("TCP_PORT", get("TCP_PORT") ?? "8080"),
    udpAddress: parseAddress("UDP_ADDRESS", get("UDP_ADDRESS") ?? "0.0.0.0"),
    udpPort: parsePort("UDP_PORT", get("UDP_PORT") ?? "8443"),
    whipToken: token ?? randomToken(),
    whipTokenGenerated: token === undefined,
    frontendUrl: get("FRONTEND_URL") ?? "*",
    storageDir: get("STORAGE_DIR") ?? "./storage",
    certsDir: get("CERTS_DIR") ?? "./certs",
    publicIps: (get("PUBLIC_IP") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
      .map((ip) => parseAddress("PUBLIC_IP", ip)),
    consentTimeoutMs: parseSeconds("CONSENT_TIMEOUT", get("CONSENT_TIMEOUT") ?? "15") * 1000,
    thumbnailIntervalMs: parseSeconds("THUMBNAIL_INTERVAL", get("THUMBNAIL_INTERVAL") ?? "10") * 1000,
    logLevel: logLevel as Config["logLevel"],
  };
}

function parsePort(name: string, value: string): number {
  const port = Number(value);
  // Port 0 is allowed: the OS picks a free port (used by tests).
  if (!/^\d+$/.test(value) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${name} must be a port number 0-65535 (got "${value}")`);
  }
  return port;
}

function parseSeconds(name: string, value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86400) {
    throw new ConfigError(`${name} must be a number of seconds between 0 and 86400 (got "${value}")`);
  }
  return seconds;
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
