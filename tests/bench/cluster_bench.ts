/**
 * Cluster benchmark (`deno task bench:cluster`): the same publisher (a 720p H.264 + Opus clip at ~2.5
 * Mbit/s from a light client) and the same number of light viewers, first on one node, then on an origin
 * with two edges (redis-server, three processes) with the viewers split across the edges. Prints delivered
 * viewers, each node's CPU time per RTP packet it forwarded (from /proc/<pid>/stat and its /metrics), and
 * the join time (offer to first decrypted packet) through an edge: the first viewer of an edge (the edge
 * pulls the room then) and the others, against the single node.
 *
 * Everything runs on one machine, so the nodes share its cores with each other and with the viewers.
 *
 * Options (flags or environment): --viewers N (BENCH_VIEWERS, default 60), --seconds S (BENCH_SECONDS,
 * measured window, default 15).
 */
import { join } from "node:path";
import { type ClientCertificate, createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { freePort, type ServerProcess, startServerProcess } from "../helpers/server_process.ts";
import { redisServerPath, startRedis } from "../helpers/redis.ts";
import { cpuModel, processCpu } from "./proc_stats.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function option(name: string, envName: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return Number(i >= 0 ? Deno.args[i + 1] : Deno.env.get(envName) ?? fallback);
}

const VIEWERS = option("viewers", "BENCH_VIEWERS", 60);
const SECONDS = option("seconds", "BENCH_SECONDS", 15);
/** A viewer counts as served when it got at least this share of what was published in the window. */
const DELIVERED = 0.95;

/** Settings that keep admission limits and thumbnails out of the figures. */
function benchEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    THUMBNAIL_INTERVAL: "3600",
    RATE_LIMIT_PER_MINUTE: "0",
    MAX_SESSIONS: String(VIEWERS + 20),
    MAX_VIEWERS_PER_ROOM: String(VIEWERS + 20),
    LOG_LEVEL: "warn",
    ...extra,
  };
}

/** utime + stime of a process (all threads) in microseconds. */
function cpuMicros(pid: number): number {
  const { user, system } = processCpu(pid);
  return user + system;
}

async function rtpOut(node: ServerProcess): Promise<number> {
  const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("sfu_rtp_packets_out_total "));
  return Number(line?.split(" ")[1] ?? NaN);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Connects `count` viewers to `node`, 8 at a time; returns those that connected. */
async function connectViewers(
  node: ServerProcess,
  count: number,
  certificate: ClientCertificate,
  errors: string[],
): Promise<LightClient[]> {
  const viewers: LightClient[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        viewers.push(
          await LightClient.connect({ baseUrl: node.baseUrl, role: "viewer", room: "bench", certificate }),
        );
      } catch (e) {
        if (errors.length < 5) errors.push(`${node.baseUrl}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return viewers;
}

/** Offer to first decrypted packet of one viewer, in ms; the viewer is closed afterwards. */
async function joinTime(node: ServerProcess, certificate: ClientCertificate): Promise<number> {
  const viewer = await LightClient.connect({
    baseUrl: node.baseUrl,
    role: "viewer",
    room: "bench",
    certificate,
  });
  const deadline = performance.now() + 5000;
  while (viewer.stats.firstRtpAt === 0 && performance.now() < deadline) await sleep(2);
  const ms = viewer.stats.firstRtpAt > 0 ? viewer.stats.firstRtpAt - viewer.stats.startedAt : NaN;
  await viewer.close();
  return ms;
}

interface NodeFigures {
  label: string;
  viewers: number;
  forwardedPerSecond: number;
  cpuPercent: number;
  microsPerPacket: number;
}

interface Scenario {
  label: string;
  asked: number;
  delivered: number;
  connected: number;
  nodes: NodeFigures[];
  joinColdMs: number[];
  joinWarmMs: number[];
  errors: string[];
}

/** Publishes to `origin`, joins viewers to `edges` (round robin), measures the window. */
async function run(
  label: string,
  origin: ServerProcess,
  edges: ServerProcess[],
  clip: Clip,
  certificate: ClientCertificate,
): Promise<Scenario> {
  const errors: string[] = [];
  const publisher = await LightClient.connect({
    baseUrl: origin.baseUrl,
    role: "publisher",
    room: "bench",
    token: origin.token,
    certificate,
  });
  const sender = publishClip(publisher, clip);
  // Let the room reach the other nodes' lists (a Redis write and a pub/sub message).
  await sleep(1500);
  // The first viewer of each node: for an edge, this one makes it pull the room.
  const joinColdMs: number[] = [];
  for (const edge of edges) joinColdMs.push(await joinTime(edge, certificate));
  const joinWarmMs: number[] = [];
  for (let i = 0; i < 10; i++) joinWarmMs.push(await joinTime(edges[i % edges.length], certificate));

  const perEdge = edges.map((_, i) =>
    Math.floor(VIEWERS / edges.length) + (i < VIEWERS % edges.length ? 1 : 0)
  );
  const viewers = await Promise.all(
    edges.map((edge, i) => connectViewers(edge, perEdge[i], certificate, errors)),
  );
  await sleep(2000);
  const nodes = [origin, ...edges.filter((e) => e !== origin)];
  const measure = async () => ({
    at: performance.now(),
    sent: sender.sent(),
    received: viewers.flat().map((v) => v.stats.rtpPackets),
    cpu: nodes.map((n) => cpuMicros(n.pid)),
    out: await Promise.all(nodes.map(rtpOut)),
  });
  const before = await measure();
  await sleep(SECONDS * 1000);
  const after = await measure();
  sender.stop();
  await Promise.all(viewers.flat().map((v) => v.close()));
  await publisher.close();

  const seconds = (after.at - before.at) / 1000;
  const published = after.sent - before.sent;
  const delivered = after.received.filter((n, i) => (n - before.received[i]) / published >= DELIVERED).length;
  return {
    label,
    asked: VIEWERS,
    connected: viewers.flat().length,
    delivered,
    nodes: nodes.map((node, i) => {
      const forwarded = after.out[i] - before.out[i];
      const cpu = after.cpu[i] - before.cpu[i];
      const isOrigin = node === origin && edges.length > 1;
      return {
        label: isOrigin ? "origin" : edges.length > 1 ? `edge ${i}` : "single node",
        viewers: isOrigin ? 0 : viewers[edges.indexOf(node)]?.length ?? 0,
        forwardedPerSecond: forwarded / seconds,
        cpuPercent: cpu / 1e6 / seconds * 100,
        microsPerPacket: forwarded > 0 ? cpu / forwarded : NaN,
      };
    }),
    joinColdMs,
    joinWarmMs,
    errors,
  };
}

function report(scenarios: Scenario[]): string {
  const lines: string[] = [];
  lines.push(
    `${navigator.hardwareConcurrency} cores (${cpuModel()}), ${VIEWERS} viewers, ${SECONDS} s window`,
  );
  lines.push("");
  lines.push("| setup | node | viewers | fwd pkt/s | CPU | CPU µs per forwarded packet |");
  lines.push("| --- | --- | --- | --- | --- | --- |");
  for (const s of scenarios) {
    for (const n of s.nodes) {
      lines.push(
        `| ${s.label} | ${n.label} | ${n.viewers} | ${
          Math.round(n.forwardedPerSecond).toLocaleString("en")
        } | ` +
          `${n.cpuPercent.toFixed(0)}% | ${n.microsPerPacket.toFixed(1)} |`,
      );
    }
  }
  lines.push("");
  lines.push(
    "| setup | delivered viewers (≥95 % of packets) | join, first viewer of a node | join, median of 10 more |",
  );
  lines.push("| --- | --- | --- | --- |");
  for (const s of scenarios) {
    lines.push(
      `| ${s.label} | ${s.delivered}/${s.asked} (${s.connected} connected) | ` +
        `${s.joinColdMs.map((ms) => `${ms.toFixed(0)} ms`).join(", ")} | ${
          median(s.joinWarmMs).toFixed(0)
        } ms |`,
    );
  }
  const [single, cluster] = scenarios;
  if (single && cluster) {
    lines.push("");
    lines.push(
      `extra join latency through an edge: ${
        (median(cluster.joinWarmMs) - median(single.joinWarmMs)).toFixed(0)
      } ms ` +
        `(relay running), ${(median(cluster.joinColdMs) - median(single.joinColdMs)).toFixed(0)} ms ` +
        "(first viewer: the edge pulls the room first)",
    );
  }
  for (const s of scenarios) for (const e of s.errors) lines.push(`${s.label}: ${e}`);
  return lines.join("\n");
}

async function main(): Promise<void> {
  if (!redisServerPath()) {
    console.error("redis-server is not installed (apt-get install redis-server)");
    Deno.exit(2);
  }
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const certificate = await createClientCertificate();
  const scenarios: Scenario[] = [];

  const single = await startServerProcess(benchEnv());
  try {
    scenarios.push(await run("one node", single, [single], clip, certificate));
  } finally {
    await single.stop();
  }

  const redis = await startRedis();
  const nodes: ServerProcess[] = [];
  try {
    for (const id of ["origin", "edge-1", "edge-2"]) {
      const port = freePort("tcp");
      nodes.push(
        await startServerProcess(benchEnv({
          TCP_PORT: String(port),
          REDIS_URL: redis.url,
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          NODE_ID: id,
        })),
      );
    }
    scenarios.push(await run("origin + 2 edges", nodes[0], nodes.slice(1), clip, certificate));
  } finally {
    for (const node of nodes) await node.stop();
    await redis.stop();
  }
  console.log(report(scenarios));
}

if (import.meta.main) await main();
