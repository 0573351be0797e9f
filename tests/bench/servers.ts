/**
 * The servers the benchmarks compare, each started as its own process so its CPU time can be read from
 * /proc: this server (`main.ts` of a checkout), the Pion anchor (`pion_sfu/`, forwarding the Broadcast Box
 * way) and the werift baseline (`werift_sfu.ts`, one `RTCPeerConnection` per client).
 */
import { join } from "node:path";
import { freePort } from "../helpers/server_process.ts";
import { waitFor } from "../helpers/wait.ts";
import { buildPionSfu } from "./pion_sfu.ts";
import type { NetNamespace } from "../helpers/netns.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A server under test running as its own process. */
export interface ServerUnderTest {
  label: string;
  baseUrl: string;
  pid: number;
  /** WHIP bearer token (empty when the server takes any). */
  token: string;
  /** RTP packets the server has read from publishers so far (its own counter). */
  rtpIn(): Promise<number>;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * The servers a benchmark can measure, by the name its `--servers` flag takes: `ours:DIR` is this server
 * from another checkout (e.g. a copy with one change, to measure that change in the same run);
 * `ours+NAME=VALUE` (one or more `+NAME=VALUE`) is this server with those settings (e.g.
 * `ours+RECEIVE_THREAD=off`, to measure a setting in the same run).
 */
export type ServerName = "ours" | "pion" | "werift" | `ours:${string}` | `ours+${string}`;

/** `ours+A=1+B=2` -> { A: "1", B: "2" }; undefined for other names. */
function settingsOfName(name: string): Record<string, string> | undefined {
  if (!name.startsWith("ours+")) return undefined;
  const env: Record<string, string> = {};
  for (const pair of name.slice("ours+".length).split("+")) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!m) throw new Error(`"${name}": settings are written ours+NAME=VALUE`);
    env[m[1]] = m[2];
  }
  return env;
}

/** Parses a comma-separated `--servers` value. */
export function parseServerNames(list: string): ServerName[] {
  const names = list.split(",").map((n) => n.trim()).filter((n) => n !== "");
  for (const name of names) {
    if (name !== "ours" && name !== "pion" && name !== "werift" && !/^ours:./.test(name)) {
      if (settingsOfName(name) === undefined) {
        throw new Error(`unknown server "${name}" (ours, ours:DIR, ours+NAME=VALUE, pion, werift)`);
      }
    }
  }
  return names as ServerName[];
}

/**
 * Starts a server by name; `sessions` sizes this server's admission limits, `inspectPort` opens its V8
 * inspector (for a CPU profile), `netns` runs it inside a private network namespace (for libnice clients:
 * media on the namespace's 192.0.2.1, HTTP forwarded to the same port on the host's loopback).
 */
export function startServer(
  name: ServerName,
  o: {
    sessions: number;
    serverRoot?: string;
    cacheDir?: string;
    inspectPort?: number;
    netns?: NetNamespace;
    /** More environment for this server (e.g. `FANOUT_WORKERS`); the anchors ignore it. */
    env?: Record<string, string>;
  },
): Promise<ServerUnderTest> {
  const cacheDir = o.cacheDir ?? join(ROOT, "storage/bench-cache");
  const settings = settingsOfName(name);
  if (settings) {
    const label = `this server (${name.slice("ours+".length).replaceAll("+", " ")})`;
    return startOurs(o.serverRoot ?? ROOT, o.sessions, o.inspectPort, o.netns, label, {
      ...o.env,
      ...settings,
    });
  }
  if (name.startsWith("ours:")) {
    const root = name.slice("ours:".length);
    return startOurs(root, o.sessions, o.inspectPort, o.netns, `this server (${root})`, o.env);
  }
  switch (name) {
    case "ours":
      return startOurs(o.serverRoot ?? ROOT, o.sessions, o.inspectPort, o.netns, undefined, o.env);
    case "pion":
      return startPion(cacheDir, o.netns);
    default:
      if (o.netns) throw new Error("the werift baseline does not run in a namespace");
      return startWerift();
  }
}

function collect(
  stream: ReadableStream<Uint8Array>,
  into: { text: string },
  onLine?: (line: string) => void,
) {
  const decoder = new TextDecoder();
  return (async () => {
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      into.text = (into.text + text).slice(-20_000);
      if (onLine) { for (const line of text.split("\n")) onLine(line); }
    }
  })();
}

async function startOurs(
  serverRoot: string,
  sessions: number,
  inspectPort: number | undefined,
  netns: NetNamespace | undefined,
  label = "this server",
  extraEnv: Record<string, string> = {},
): Promise<ServerUnderTest> {
  const dir = await Deno.makeTempDir({ prefix: "bench-server-" });
  const httpPort = netns ? await netns.forwardPort() : freePort("tcp");
  const token = `bench-${crypto.randomUUID()}`;
  const run = (program: string, args: string[]) => netns ? netns.command(program, args) : { program, args };
  const command = run(Deno.execPath(), [
    "run",
    "--unstable-net",
    "--allow-all",
    ...(Deno.env.get("BENCH_SERVER_FLAGS")?.split(" ").filter((f) => f !== "") ?? []),
    ...(inspectPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`]),
    join(serverRoot, "main.ts"),
  ]);
  const child = new Deno.Command(command.program, {
    args: command.args,
    cwd: Deno.env.get("BENCH_SERVER_CWD") ?? serverRoot,
    env: {
      TCP_ADDRESS: "127.0.0.1",
      TCP_PORT: String(httpPort),
      UDP_ADDRESS: netns ? "0.0.0.0" : "127.0.0.1",
      ...(netns ? { PUBLIC_IP: netns.address } : {}),
      UDP_PORT: String(freePort("udp")),
      WHIP_TOKEN: token,
      STORAGE_DIR: join(dir, "storage"),
      CERTS_DIR: join(dir, "certs"),
      // Thumbnails run ffmpeg every few seconds; keep them out of the figures.
      THUMBNAIL_INTERVAL: "3600",
      // Admission limits would turn the clients away; settings a version does not know are ignored.
      RATE_LIMIT_PER_MINUTE: "0",
      // `sessions` publishers (bench:ingest) or `sessions` viewers (bench) fit: MAX_PUBLISHERS is the
      // publishers' share of MAX_SESSIONS, the viewers get the rest.
      MAX_SESSIONS: String(2 * (sessions + 10)),
      MAX_PUBLISHERS: String(sessions + 10),
      MAX_VIEWERS_PER_ROOM: String(sessions + 10),
      // Every bench client comes from 127.0.0.1: the per-address caps would answer a burst of joins 429.
      MAX_PENDING_PER_ADDRESS: String(sessions + 10),
      MAX_VIEWERS_PER_ADDRESS: String(sessions + 10),
      LOG_LEVEL: Deno.env.get("BENCH_LOG_LEVEL") ?? "warn",
      ...extraEnv,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = { text: "" };
  const drained = collect(child.stderr, log);
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  await waitHealthy(baseUrl, child, log);
  return {
    label,
    baseUrl,
    pid: child.pid,
    token,
    rtpIn: async () => (await scrapeMetrics(baseUrl)).get("sfu_rtp_packets_in_total") ?? NaN,
    logs: () => log.text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await drained;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Starts a child that prints `LISTENING <port>` on stdout when its HTTP side is up. */
async function startListening(label: string, command: Deno.Command): Promise<ServerUnderTest> {
  const child = command.spawn();
  const log = { text: "" };
  let resolvePort: (port: number) => void = () => {};
  const port = new Promise<number>((resolve) => resolvePort = resolve);
  const drained = Promise.all([
    collect(child.stdout, log, (line) => {
      const m = /^LISTENING (\d+)/.exec(line);
      if (m) resolvePort(Number(m[1]));
    }),
    collect(child.stderr, log),
  ]);
  const timeout = setTimeout(() => resolvePort(-1), 20_000);
  child.status.then(() => resolvePort(-1));
  const listening = await port;
  clearTimeout(timeout);
  if (listening < 0) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await drained;
    throw new Error(`${label} did not start:\n${log.text}`);
  }
  const baseUrl = `http://127.0.0.1:${listening}`;
  return {
    label,
    baseUrl,
    pid: child.pid,
    token: "",
    async rtpIn() {
      const res = await fetch(`${baseUrl}/stats`);
      return Number(/^rtp_in (\d+)/m.exec(await res.text())?.[1] ?? NaN);
    },
    logs: () => log.text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await drained;
    },
  };
}

async function startPion(cacheDir: string, netns: NetNamespace | undefined): Promise<ServerUnderTest> {
  const binary = await buildPionSfu(cacheDir);
  const http = netns ? `127.0.0.1:${await netns.forwardPort()}` : "127.0.0.1:0";
  const udp = `${netns ? netns.address : "127.0.0.1"}:${freePort("udp")}`;
  const command = netns
    ? netns.command(binary, ["-http", http, "-udp", udp])
    : { program: binary, args: ["-http", http, "-udp", udp] };
  return startListening(
    "Pion v3 (Broadcast Box way)",
    new Deno.Command(command.program, { args: command.args, stdout: "piped", stderr: "piped" }),
  );
}

function startWerift(): Promise<ServerUnderTest> {
  return startListening(
    "werift RTCPeerConnection per client",
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", join(ROOT, "tests/bench/werift_sfu.ts")],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }),
  );
}

async function waitHealthy(baseUrl: string, child: Deno.ChildProcess, log: { text: string }): Promise<void> {
  const healthy = async () => {
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  };
  try {
    await waitFor("the server's /healthz", healthy, (ok) => ok, 30_000);
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`${(e as Error).message}; server log:\n${log.text}`);
  }
}

/** Counters from the server's Prometheus endpoint, summed over labels (empty for the baselines). */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  try {
    const res = await fetch(`${baseUrl}/metrics`);
    if (!res.ok) {
      await res.body?.cancel();
      return values;
    }
    for (const line of (await res.text()).split("\n")) {
      const m = /^(sfu_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (m) values.set(m[1], (values.get(m[1]) ?? 0) + Number(m[2]));
    }
  } catch { /* no metrics */ }
  return values;
}
