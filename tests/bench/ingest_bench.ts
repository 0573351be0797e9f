/**
 * Ingest benchmark (`deno task bench:ingest`): N light WHIP publishers (each its own room, each sending the
 * 720p H.264 + Opus clip at ~2.5 Mbit/s), no viewers; the server process's CPU time is divided by the
 * packets the publishers sent in the window. The same run measures this server and the Pion anchor
 * (`pion_sfu/`, Pion WebRTC v3 the Broadcast Box way) with the same clients, for each N, and prints
 * this server ÷ Pion. Repeats alternate which server goes first, so slow drifts in the machine's load fall
 * on both. A run where this server's own count of packets in (/metrics) strays more than 5 % from what was
 * sent is marked LAGGING (it was working off a backlog while measured) and left out of the ranges.
 *
 * Options (flags or environment): --publishers LIST (BENCH_PUBLISHERS, default `1,4`), --seconds S
 * (BENCH_SECONDS, measured window, default 10), --repeat R (BENCH_REPEAT, default 1), --servers LIST
 * (BENCH_SERVERS, default `ours,pion`), --server-root DIR (BENCH_SERVER_ROOT), --profile (BENCH_PROFILE=1:
 * take a V8 CPU profile of this server over each window through its inspector, print where the µs per
 * received packet go and save the `.cpuprofile` under storage/bench-cache/; the profiler costs a few
 * percent, so compare profiled runs with each other).
 */
import { join } from "node:path";
import { type ClientCertificate, createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { cpuModel, processCpu } from "./proc_stats.ts";
import {
  parseServerNames,
  scrapeMetrics,
  type ServerName,
  type ServerUnderTest,
  startServer,
} from "./servers.ts";
import { waitFor } from "../helpers/wait.ts";
import { freePort } from "../helpers/server_process.ts";
import { startCpuProfile, summarizeCpuProfile } from "./cpu_profile.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Seconds of an idle server (started, no sessions) measured before the publishers connect. */
const IDLE_SECONDS = 2;
/** Seconds between the publishers starting and the window, for ICE/DTLS and the first keyframe. */
const WARM_UP_SECONDS = 2;

interface Settings {
  publishers: number[];
  seconds: number;
  repeat: number;
  servers: ServerName[];
  serverRoot: string;
  profile: boolean;
}

function settings(): Settings {
  const flag = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const publishers = (flag("publishers") ?? Deno.env.get("BENCH_PUBLISHERS") ?? "1,4").split(",").map(Number);
  if (publishers.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--publishers takes e.g. 1,4");
  return {
    publishers,
    seconds: Number(flag("seconds") ?? Deno.env.get("BENCH_SECONDS") ?? 10),
    repeat: Number(flag("repeat") ?? Deno.env.get("BENCH_REPEAT") ?? 1),
    servers: parseServerNames(flag("servers") ?? Deno.env.get("BENCH_SERVERS") ?? "ours,pion"),
    serverRoot: flag("server-root") ?? Deno.env.get("BENCH_SERVER_ROOT") ?? ROOT,
    profile: Deno.args.includes("--profile") || Deno.env.get("BENCH_PROFILE") === "1",
  };
}

/** What one server measured with N publishers. */
interface IngestResult {
  label: string;
  publishers: number;
  sentPerSecond: number;
  /** Server CPU (user + system) per packet the publishers sent, µs. */
  microsPerPacket: number;
  systemMicrosPerPacket: number;
  cpuPercent: number;
  idleCpuPercent: number;
  /** RTP packets the server counted in, per second (/metrics; this server only). */
  serverRtpInPerSecond: number | undefined;
  /** Where this server's CPU went (with --profile). */
  profileSummary?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function cpuSample(pid: number) {
  const { user, system } = processCpu(pid);
  return { at: performance.now(), total: user + system, system };
}

async function measure(
  server: ServerUnderTest,
  clip: Clip,
  certificate: ClientCertificate,
  publishers: number,
  seconds: number,
  inspectPort: number | undefined,
): Promise<IngestResult> {
  const idleStart = cpuSample(server.pid);
  await sleep(IDLE_SECONDS * 1000);
  const idleEnd = cpuSample(server.pid);

  const clients = await Promise.all(
    Array.from({ length: publishers }, (_, i) =>
      LightClient.connect({
        baseUrl: server.baseUrl,
        role: "publisher",
        room: `ingest-${i}`,
        token: server.token,
        certificate,
      })),
  );
  const senders = clients.map((c) => publishClip(c, clip));
  const sent = () => senders.reduce((sum, s) => sum + s.sent(), 0);
  try {
    await waitFor(
      "every publisher sending",
      () => senders.map((s) => s.sent()),
      (n) => n.every((x) => x > 0),
    );
    await sleep(WARM_UP_SECONDS * 1000);
    const metricsBefore = await scrapeMetrics(server.baseUrl);
    const profiler = inspectPort === undefined ? undefined : await startCpuProfile(inspectPort);
    const before = { ...cpuSample(server.pid), sent: sent() };
    await sleep(seconds * 1000);
    const after = { ...cpuSample(server.pid), sent: sent() };
    const profile = await profiler?.stop();
    const metricsAfter = await scrapeMetrics(server.baseUrl);
    const window = (after.at - before.at) / 1000;
    const packets = after.sent - before.sent;
    const rtpIn = "sfu_rtp_packets_in_total";
    let profileSummary: string | undefined;
    if (profile) {
      const path = join(ROOT, `storage/bench-cache/ingest-${publishers}-${server.pid}.cpuprofile`);
      await Deno.writeTextFile(path, JSON.stringify(profile));
      profileSummary = `${server.label}, ${publishers} publisher(s), µs per received packet (${path}):\n` +
        summarizeCpuProfile(profile, packets);
    }
    return {
      label: server.label,
      publishers,
      sentPerSecond: packets / window,
      microsPerPacket: (after.total - before.total) / packets,
      systemMicrosPerPacket: (after.system - before.system) / packets,
      cpuPercent: (after.total - before.total) / 1e4 / window,
      idleCpuPercent: (idleEnd.total - idleStart.total) / 1e4 / ((idleEnd.at - idleStart.at) / 1000),
      serverRtpInPerSecond: metricsAfter.has(rtpIn)
        ? (metricsAfter.get(rtpIn)! - (metricsBefore.get(rtpIn) ?? 0)) / window
        : undefined,
      profileSummary,
    };
  } finally {
    for (const s of senders) s.stop();
    await Promise.all(clients.map((c) => c.close()));
  }
}

/**
 * Whether the server's own count of packets in the window strays from what was sent by more than 5 %: it
 * was working off a backlog (or fell behind) while being measured, so its CPU does not match the window.
 */
function lagging(r: IngestResult): boolean {
  return r.serverRtpInPerSecond !== undefined &&
    Math.abs(r.serverRtpInPerSecond - r.sentPerSecond) > 0.05 * r.sentPerSecond;
}

function table(results: IngestResult[]): string[] {
  const columns = [
    "server",
    "publishers",
    "pkt/s in",
    "server CPU µs/pkt (kernel)",
    "server CPU",
    "idle CPU",
  ];
  const rows = results.map((r) => [
    r.label,
    String(r.publishers),
    Math.round(r.sentPerSecond).toLocaleString("en") +
    (r.serverRtpInPerSecond === undefined ? "" : ` (server counted ${Math.round(r.serverRtpInPerSecond)})`) +
    (lagging(r) ? " LAGGING" : ""),
    `${r.microsPerPacket.toFixed(1)} (${r.systemMicrosPerPacket.toFixed(1)})`,
    `${r.cpuPercent.toFixed(1)}%`,
    `${r.idleCpuPercent.toFixed(1)}%`,
  ]);
  const ours = results.find((r) => r.label === "this server");
  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
  for (const other of results) {
    if (!ours || other === ours) continue;
    rows.push([
      `${ours.label} ÷ ${other.label}`,
      "",
      "",
      `${ratio(ours.microsPerPacket, other.microsPerPacket)} (${
        ratio(ours.systemMicrosPerPacket, other.systemMicrosPerPacket)
      })`,
      ratio(ours.cpuPercent, other.cpuPercent),
      other.idleCpuPercent > 0 ? ratio(ours.idleCpuPercent, other.idleCpuPercent) : "",
    ]);
  }
  return [
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
}

if (import.meta.main) {
  const s = settings();
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const certificate = await createClientCertificate();
  const runs: IngestResult[][] = [];
  const out: string[] = [
    "",
    `Ingest: ${s.seconds} s window per run, no viewers; each publisher sends the clip 1280x720p30 H.264 ` +
    `${(clip.videoBitrate / 1e6).toFixed(2)} Mbit/s + Opus 64 kbit/s`,
  ];
  for (let repeat = 0; repeat < s.repeat; repeat++) {
    const order = repeat % 2 === 0 ? s.servers : [...s.servers].reverse();
    for (const publishers of s.publishers) {
      const results: IngestResult[] = [];
      for (const name of order) {
        const inspectPort = s.profile && name.startsWith("ours") ? freePort("tcp") : undefined;
        const server = await startServer(name, {
          sessions: publishers,
          serverRoot: s.serverRoot,
          inspectPort,
        });
        console.error(
          `run ${repeat + 1}: ${server.label} (pid ${server.pid}), ${publishers} publisher(s)...`,
        );
        try {
          results.push(await measure(server, clip, certificate, publishers, s.seconds, inspectPort));
        } catch (e) {
          console.error(`${server.label} failed: ${(e as Error).stack}\n${server.logs()}`);
        } finally {
          await server.stop();
        }
      }
      runs.push(results);
      out.push(
        "",
        `Run ${repeat + 1}, ${publishers} publisher(s), load avg ${Deno.loadavg()[0].toFixed(2)}:`,
      );
      out.push(...table(results));
      for (const r of results) if (r.profileSummary) out.push("", r.profileSummary);
    }
  }
  if (s.repeat > 1) {
    out.push(
      "",
      "this server ÷ each baseline, µs per received packet, range over the runs (LAGGING runs left out):",
    );
    for (const publishers of s.publishers) {
      const byLabel = new Map<string, number[]>();
      for (const results of runs.filter((r) => r[0]?.publishers === publishers)) {
        const ours = results.find((r) => r.label === "this server");
        for (const r of results) {
          if (!ours || r === ours || lagging(ours) || lagging(r)) continue;
          byLabel.set(r.label, [...(byLabel.get(r.label) ?? []), ours.microsPerPacket / r.microsPerPacket]);
        }
      }
      for (const [label, ratios] of byLabel) {
        out.push(
          `  ${publishers} publisher(s) vs ${label}: ${Math.min(...ratios).toFixed(2)}–${
            Math.max(...ratios).toFixed(2)
          }× (${ratios.map((r) => r.toFixed(2)).join(", ")})`,
        );
      }
    }
  }
  out.push(
    "",
    `Machine: ${cpuModel()}, ${navigator.hardwareConcurrency} cores, load avg ${
      Deno.loadavg().map((l) => l.toFixed(2)).join(" ")
    } at the end, Deno ${Deno.version.deno}`,
  );
  console.log(out.join("\n"));
}
