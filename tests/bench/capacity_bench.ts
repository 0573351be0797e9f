/**
 * Capacity benchmark (`deno task bench:capacity`): one publisher sends the 720p H.264 + Opus clip at ~2.5
 * Mbit/s and viewers are added in steps. A step passes when, over its window, every viewer's delivery is at
 * least 99.9 % and every viewer that joined got media, and when each of 3 probe viewers, joined one at a
 * time after the window, gets its first packet (offer to first decrypted RTP) within 1 s. The ceiling is the
 * last step before the first failure; the ramp goes on past a join failure until delivery fails, so the
 * delivery-alone ceiling is printed too. The same run measures this server (for each `--workers` value,
 * passed as FANOUT_WORKERS) and the Pion anchor (Pion v3 forwarding the Broadcast Box way).
 *
 * The viewers live in `--swarms` separate processes (viewer_swarm.ts): each connects with the light client
 * (ICE, DTLS, SRTP), then its socket goes to a counter that drains it with `recvmmsg`, reads only the RTP
 * header and decrypts one packet in 100 (datagram_counter.ts), so a viewer costs the client side far less
 * than the server spends on it. Delivery is received ÷ the span of sequence numbers seen in the window, per
 * SSRC; and received ÷ what the publisher sent while the viewer was counted (the "rate" column, ≥ 98 %: below
 * it the viewer's lag behind the publisher grew over the window, i.e. the server is queueing, not keeping
 * up). "Socket drops" are datagrams the kernel dropped at the clients' sockets (4 MiB buffers) and at the
 * server's (a server that falls behind loses publisher media and handshakes there once its buffer is full).
 * Clients and server share the machine's cores: the table prints what the clients used.
 *
 * Options (flags or environment): --steps LIST (BENCH_STEPS, viewer counts, default
 * 25,50,100,150,200,300,400,500,600,800), --seconds S (BENCH_SECONDS, window per step, default 8),
 * --servers LIST (BENCH_SERVERS, default `ours,pion`), --workers LIST (BENCH_WORKERS, FANOUT_WORKERS values
 * for this server, default `0,1,2`), --swarms N (BENCH_SWARMS, client processes, default 2), --server-root DIR.
 */
import { join } from "node:path";
import { createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { cpuModel, processCpu, processUdpSockets, threadCpuMicros } from "./proc_stats.ts";
import { parseServerNames, type ServerName, type ServerUnderTest, startServer } from "./servers.ts";
import { type AddResult, type SwarmCounts, ViewerSwarm } from "./viewer_swarm.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DELIVERY_FLOOR = 0.999;
/**
 * A viewer must receive this share of what was published while it was counted: below it, its lag behind
 * the publisher grew by more than 2 % of the window (160 ms over 8 s), i.e. the server is falling behind.
 */
const RATE_FLOOR = 0.98;
const FIRST_PACKET_LIMIT_MS = 1000;
/** Viewers joining at once per swarm process. */
const JOIN_CONCURRENCY = 4;
/** Viewers joined one at a time after each step's window, for the first-packet criterion. */
const PROBES = 3;

interface Settings {
  steps: number[];
  seconds: number;
  servers: ServerName[];
  workers: number[];
  swarms: number;
  serverRoot: string;
}

function settings(): Settings {
  const flag = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const list = (text: string) => text.split(",").filter((x) => x !== "").map(Number);
  const steps = list(flag("steps") ?? Deno.env.get("BENCH_STEPS") ?? "25,50,100,150,200,300,400,500,600,800");
  if (steps.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= steps[i - 1]))) {
    throw new Error("--steps takes rising viewer counts, e.g. 25,50,100");
  }
  return {
    steps,
    seconds: Number(flag("seconds") ?? Deno.env.get("BENCH_SECONDS") ?? 8),
    servers: parseServerNames(flag("servers") ?? Deno.env.get("BENCH_SERVERS") ?? "ours,pion"),
    workers: list(flag("workers") ?? Deno.env.get("BENCH_WORKERS") ?? "0,1,2"),
    swarms: Number(flag("swarms") ?? Deno.env.get("BENCH_SWARMS") ?? 2),
    serverRoot: flag("server-root") ?? Deno.env.get("BENCH_SERVER_ROOT") ?? ROOT,
  };
}

/** One step's figures. */
export interface StepResult {
  viewers: number;
  connected: number;
  forwardedPerSecond: number;
  serverCpuPercent: number;
  serverMicrosPerPacket: number;
  /** This server only: the JavaScript main thread's CPU per forwarded packet (the rest is fan-out workers). */
  mainThreadMicrosPerPacket: number;
  clientCpuPercent: number;
  deliveryMin: number;
  deliveryMedian: number;
  rateMin: number;
  /** Offer to first packet of the viewers the step added at once. */
  burstFirstPacketP50: number;
  burstFirstPacketMax: number;
  /** The slowest of the probe viewers joined one at a time after the window. */
  probeFirstPacketMax: number;
  kernelDrops: number;
  /** Datagrams the server's own sockets dropped (publisher media, joins' handshakes) over the window. */
  serverDrops: number;
  /** Bytes waiting in the server's socket receive queues at the window's end (it is behind in reading). */
  serverQueueKb: number;
  verified: number;
  verifyFailures: number;
  /** Why delivery failed (empty: every viewer got ≥ 99.9 %). */
  deliveryFailures: string[];
  /** Why joining failed (empty: the probes' first packets came within 1 s). */
  joinFailures: string[];
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuMicros(pid: number): number {
  const { user, system } = processCpu(pid);
  return user + system;
}

/** Joins `count` viewers to `room`, split over the swarms; first-packet times of all of them. */
export async function joinViewers(
  swarms: ViewerSwarm[],
  baseUrl: string,
  room: string,
  count: number,
): Promise<AddResult> {
  const shares = swarms.map((_, i) =>
    Math.floor(count / swarms.length) + (i < count % swarms.length ? 1 : 0)
  );
  const results = await Promise.all(
    swarms.map((s, i) => shares[i] > 0 ? s.add(baseUrl, room, shares[i], JOIN_CONCURRENCY) : undefined),
  );
  return {
    firstPacketMs: results.flatMap((r) => r?.firstPacketMs ?? []),
    errors: results.flatMap((r) => r?.errors ?? []),
  };
}

/** Every swarm's counts, in swarm order, with when each viewer's count was read. */
export async function swarmCounts(swarms: ViewerSwarm[]): Promise<SwarmCounts & { readAt: number[] }> {
  const all = await Promise.all(swarms.map((s) => s.counts()));
  return {
    at: all[0]?.at ?? 0,
    readAt: all.flatMap((a) => a.counts.map(() => a.at)),
    counts: all.flatMap((a) => a.counts),
    kernelDrops: all.reduce((sum, a) => sum + a.kernelDrops, 0),
    calls: all.reduce((sum, a) => sum + a.calls, 0),
    failureReasons: all.reduce((sum, a) => {
      for (const [k, v] of Object.entries(a.failureReasons ?? {})) sum[k] = (sum[k] ?? 0) + v;
      return sum;
    }, {} as Record<string, number>),
  };
}

/**
 * A publisher's sent count sampled every few ms against the clock the swarms stamp their counts with, so a
 * viewer's count is compared with what had been sent when it was read, not when the answer arrived.
 */
export class SentLog {
  #times: number[] = [];
  #counts: number[] = [];
  #timer: ReturnType<typeof setInterval>;

  constructor(sent: () => number) {
    this.#timer = setInterval(() => {
      this.#times.push(performance.timeOrigin + performance.now());
      this.#counts.push(sent());
    }, 5);
  }

  /** Packets sent by `epochMs` (the last sample at or before it). */
  at(epochMs: number): number {
    let lo = 0;
    let hi = this.#times.length - 1;
    if (hi < 0 || this.#times[0] > epochMs) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#times[mid] <= epochMs) lo = mid;
      else hi = mid - 1;
    }
    return this.#counts[lo];
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Per-viewer delivery between two snapshots: received ÷ sequence span, and received ÷ published (`published`
 * per viewer, or one figure for all).
 */
export function deliveries(
  before: SwarmCounts,
  after: SwarmCounts,
  published: number | number[],
): { delivery: number[]; rate: number[]; forwarded: number; verified: number; verifyFailures: number } {
  const delivery: number[] = [];
  const rate: number[] = [];
  let forwarded = 0;
  let verified = 0;
  let verifyFailures = 0;
  after.counts.forEach((a, i) => {
    const b = before.counts[i] ?? { received: 0, span: 0, verified: 0, verifyFailures: 0 };
    const received = a.received - b.received;
    const span = a.span - b.span;
    forwarded += received;
    verified += a.verified - b.verified;
    verifyFailures += a.verifyFailures - b.verifyFailures;
    delivery.push(span > 0 ? Math.min(1, received / span) : 0);
    const sent = typeof published === "number" ? published : published[i];
    rate.push(sent > 0 ? Math.min(1, received / sent) : 0);
  });
  return { delivery, rate, forwarded, verified, verifyFailures };
}

/** Runs the steps against one server until one fails; returns every measured step. */
async function rampUp(
  server: ServerUnderTest,
  clip: Clip,
  s: Settings,
  mainThread: boolean,
): Promise<StepResult[]> {
  const certificate = await createClientCertificate();
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "capacity",
    token: server.token,
    certificate,
  });
  const sender = publishClip(publisher, clip);
  const sentLog = new SentLog(sender.sent);
  const swarms = Array.from({ length: s.swarms }, () => ViewerSwarm.start());
  const results: StepResult[] = [];
  try {
    await sleep(1500);
    let connected = 0;
    for (const target of s.steps) {
      const joined = await joinViewers(swarms, server.baseUrl, "capacity", target - connected - PROBES);
      const started = joined.firstPacketMs.filter((t): t is number => t !== null);
      connected += started.length;
      const deliveryFailures = joined.errors.map((e) => `join: ${e}`);
      const notStarted = joined.firstPacketMs.length - started.length;
      if (notStarted > 0) deliveryFailures.unshift(`${notStarted} viewers got no media`);
      await sleep(1000);

      const before = {
        at: performance.now(),
        counts: await swarmCounts(swarms),
        sent: sender.sent(),
        server: cpuMicros(server.pid),
        mainThread: threadCpuMicros(server.pid, server.pid),
        serverSockets: processUdpSockets(server.pid),
        clients: swarms.reduce((sum, w) => sum + cpuMicros(w.pid), cpuMicros(Deno.pid)),
      };
      await sleep(s.seconds * 1000);
      const after = {
        at: performance.now(),
        counts: await swarmCounts(swarms),
        sent: sender.sent(),
        server: cpuMicros(server.pid),
        mainThread: threadCpuMicros(server.pid, server.pid),
        serverSockets: processUdpSockets(server.pid),
        clients: swarms.reduce((sum, w) => sum + cpuMicros(w.pid), cpuMicros(Deno.pid)),
      };
      // Probe joins: one viewer at a time into the loaded server (the step's burst above measures a crowd).
      const probeTimes: number[] = [];
      for (let i = 0; i < PROBES; i++) {
        const probe = await swarms[i % swarms.length].add(server.baseUrl, "capacity", 1, 1);
        const t = probe.firstPacketMs[0];
        probeTimes.push(t ?? Infinity);
        if (t !== null) connected++;
      }
      const seconds = (after.at - before.at) / 1000;
      const d = deliveries(
        before.counts,
        after.counts,
        after.counts.readAt.map((t, i) => sentLog.at(t) - sentLog.at(before.counts.readAt[i] ?? t)),
      );
      const step: StepResult = {
        viewers: target,
        connected,
        forwardedPerSecond: d.forwarded / seconds,
        serverCpuPercent: (after.server - before.server) / 1e4 / seconds,
        serverMicrosPerPacket: d.forwarded > 0 ? (after.server - before.server) / d.forwarded : NaN,
        mainThreadMicrosPerPacket: mainThread && d.forwarded > 0
          ? (after.mainThread - before.mainThread) / d.forwarded
          : NaN,
        clientCpuPercent: (after.clients - before.clients) / 1e4 / seconds,
        deliveryMin: Math.min(...d.delivery),
        deliveryMedian: percentile(d.delivery, 0.5),
        rateMin: Math.min(...d.rate),
        burstFirstPacketP50: percentile(started, 0.5),
        burstFirstPacketMax: Math.max(...started),
        probeFirstPacketMax: Math.max(...probeTimes),
        kernelDrops: after.counts.kernelDrops - before.counts.kernelDrops,
        serverDrops: after.serverSockets.drops - before.serverSockets.drops,
        serverQueueKb: after.serverSockets.receiveQueueBytes / 1024,
        verified: d.verified,
        verifyFailures: d.verifyFailures,
        deliveryFailures,
        joinFailures: [],
      };
      if (step.deliveryMin < DELIVERY_FLOOR) {
        deliveryFailures.push(
          `delivery ${(step.deliveryMin * 100).toFixed(2)} % < ${DELIVERY_FLOOR * 100} %`,
        );
      }
      if (step.rateMin < RATE_FLOOR) {
        deliveryFailures.push(
          `a viewer fell behind (got ${(step.rateMin * 100).toFixed(1)} % of the packets)`,
        );
      }
      if (step.verifyFailures > 0) {
        const reasons = JSON.stringify(after.counts.failureReasons);
        deliveryFailures.push(`${step.verifyFailures} sampled packets failed SRTP (since start: ${reasons})`);
      }
      if (!(step.probeFirstPacketMax <= FIRST_PACKET_LIMIT_MS)) {
        step.joinFailures.push(
          `first packet ${step.probeFirstPacketMax.toFixed(0)} ms > ${FIRST_PACKET_LIMIT_MS} ms`,
        );
      }
      results.push(step);
      console.error(`  ${server.label}: ${formatStep(step).join(" | ")}`);
      // Past a join failure the ramp goes on to find where delivery fails too.
      if (deliveryFailures.length > 0) {
        const log = server.logs().trim();
        if (log) console.error(`  ${server.label} log (end):\n${log.slice(-3000)}`);
        break;
      }
    }
  } finally {
    sender.stop();
    sentLog.stop();
    await Promise.all(swarms.map((w) => w.close()));
    await publisher.close();
  }
  return results;
}

const STEP_COLUMNS = [
  "viewers",
  "fwd pkt/s",
  "server CPU",
  "µs/pkt",
  "main thread µs/pkt",
  "clients' CPU",
  "delivery min (median)",
  "rate min",
  "step's joins: first packet p50/max",
  "probe joins: first packet max",
  "socket drops: clients/server",
  "server socket queue at the end",
  "SRTP sample",
  "verdict",
];

function formatStep(r: StepResult): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const failures = [...r.deliveryFailures, ...r.joinFailures];
  return [
    `${r.connected}/${r.viewers}`,
    Math.round(r.forwardedPerSecond).toLocaleString("en"),
    `${r.serverCpuPercent.toFixed(0)}%`,
    r.serverMicrosPerPacket.toFixed(2),
    Number.isNaN(r.mainThreadMicrosPerPacket) ? "-" : r.mainThreadMicrosPerPacket.toFixed(2),
    `${r.clientCpuPercent.toFixed(0)}%`,
    `${pct(r.deliveryMin)} (${pct(r.deliveryMedian)})`,
    pct(r.rateMin),
    `${r.burstFirstPacketP50.toFixed(0)}/${r.burstFirstPacketMax.toFixed(0)} ms`,
    `${r.probeFirstPacketMax.toFixed(0)} ms`,
    `${r.kernelDrops}/${r.serverDrops}`,
    `${Math.round(r.serverQueueKb)} KB`,
    `${r.verified} ok, ${r.verifyFailures} bad`,
    failures.length === 0 ? "pass" : failures.join("; "),
  ];
}

/** The last step before the first that failed (`delivery`: counting only delivery failures); 0 if none. */
export function ceiling(steps: StepResult[], only: "all" | "delivery" = "all"): number {
  let last = 0;
  for (const step of steps) {
    if (step.deliveryFailures.length > 0 || (only === "all" && step.joinFailures.length > 0)) break;
    last = step.viewers;
  }
  return last;
}

if (import.meta.main) {
  const s = settings();
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const runs: { label: string; steps: StepResult[] }[] = [];
  const maxViewers = s.steps[s.steps.length - 1];
  const targets: { name: ServerName; workers?: number }[] = s.servers.flatMap((name) =>
    name === "pion" || name === "werift"
      ? [{ name }]
      : s.workers.map((workers): { name: ServerName; workers?: number } => ({ name, workers }))
  );
  for (const target of targets) {
    const server = await startServer(target.name, {
      sessions: maxViewers + 10,
      serverRoot: s.serverRoot,
      env: target.workers === undefined ? undefined : {
        FANOUT_WORKERS: String(target.workers),
        MAX_VIEWERS_PER_ADDRESS: String(maxViewers + 10),
        MAX_PENDING_PER_ADDRESS: String(maxViewers + 10),
        MAX_PUBLISHERS: "10",
      },
    });
    const label = target.workers === undefined ? server.label : `${server.label}, ${target.workers} workers`;
    console.error(`measuring ${label} (pid ${server.pid})...`);
    try {
      runs.push({ label, steps: await rampUp(server, clip, s, target.workers !== undefined) });
    } catch (e) {
      console.error(`${label} failed: ${(e as Error).stack}\n${server.logs()}`);
    } finally {
      await server.stop();
    }
    await sleep(1000);
  }

  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  const lines = [
    "",
    `Capacity: one publisher, 1280x720p30 H.264 ${(clip.videoBitrate / 1e6).toFixed(2)} Mbit/s + Opus; ` +
    `${s.seconds} s window per step; pass = every viewer ≥ ${DELIVERY_FLOOR * 100} % delivery and ` +
    `each of ${PROBES} viewers joined one at a time after the window gets its first packet ≤ ${FIRST_PACKET_LIMIT_MS} ms`,
    `Machine: ${cpuModel()}, ${navigator.hardwareConcurrency} cores (clients and server share them), ` +
    `load avg ${load}, Deno ${Deno.version.deno}; ${s.swarms} client processes`,
  ];
  for (const run of runs) {
    lines.push(
      "",
      `${run.label}: ceiling ${ceiling(run.steps)} viewers (delivery alone: ${
        ceiling(run.steps, "delivery")
      })`,
      "",
      `| ${STEP_COLUMNS.join(" | ")} |`,
      `|${STEP_COLUMNS.map(() => "---").join("|")}|`,
      ...run.steps.map((r) => `| ${formatStep(r).join(" | ")} |`),
    );
  }
  const pion = runs.find((r) => r.label.startsWith("Pion"));
  lines.push("");
  for (const run of runs) {
    if (run === pion) continue;
    for (const only of ["all", "delivery"] as const) {
      const ours = ceiling(run.steps, only);
      const theirs = pion ? ceiling(pion.steps, only) : 0;
      lines.push(
        `${run.label}: ceiling ${only === "all" ? "(delivery and join)" : "(delivery alone)"} ${ours}` +
          (pion ? ` vs Pion ${theirs} (${(ours / Math.max(1, theirs)).toFixed(2)}×)` : ""),
      );
    }
  }
  console.log(lines.join("\n"));
}
