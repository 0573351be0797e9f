/**
 * Fan-out benchmark (`deno task bench`): one publisher sends a 720p H.264 + Opus clip at ~2.5 Mbit/s, N
 * lightweight viewers (full ICE, DTLS, SRTP decrypt, no decode) watch it, and the server process's CPU time
 * is divided by the packets the viewers received. The same run measures the Pion anchor (Pion WebRTC v3
 * forwarding the Broadcast Box way, `pion_sfu/`) with the same clients and prints the ratios.
 *
 * Options (flags or environment): --viewers N (BENCH_VIEWERS, default 100), --seconds S (BENCH_SECONDS,
 * measured window, default 20), --servers LIST (BENCH_SERVERS, default `ours,pion`; `werift` adds the
 * werift baseline, one `RTCPeerConnection` per client), --server-root DIR (BENCH_SERVER_ROOT: a checkout
 * whose main.ts to run, default this one), --baseline-viewers M (BENCH_BASELINE_VIEWERS, viewers for the
 * werift baseline, default N: werift saturates one core near 30 k packets/s, so a lower M shows its
 * steady-state cost).
 */
import { join } from "node:path";
import { createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { srtpBackendName } from "../../src/srtp/context.ts";
import { cpuModel, processCpu, processRssBytes } from "./proc_stats.ts";
import {
  parseServerNames,
  scrapeMetrics,
  type ServerName,
  type ServerUnderTest,
  startServer,
} from "./servers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Settings {
  viewers: number;
  baselineViewers: number;
  seconds: number;
  serverRoot: string;
  servers: ServerName[];
}

function settings(): Settings {
  const flag = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const viewers = Number(flag("viewers") ?? Deno.env.get("BENCH_VIEWERS") ?? 100);
  return {
    viewers,
    baselineViewers: Number(flag("baseline-viewers") ?? Deno.env.get("BENCH_BASELINE_VIEWERS") ?? viewers),
    seconds: Number(flag("seconds") ?? Deno.env.get("BENCH_SECONDS") ?? 20),
    serverRoot: flag("server-root") ?? Deno.env.get("BENCH_SERVER_ROOT") ?? ROOT,
    servers: parseServerNames(flag("servers") ?? Deno.env.get("BENCH_SERVERS") ?? "ours,pion"),
  };
}

/** utime + stime of a process (all threads), in microseconds. */
function cpuMicros(pid: number): number {
  const { user, system } = processCpu(pid);
  return user + system;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What one server's run measured. */
interface Result {
  label: string;
  viewersAsked: number;
  viewersConnected: number;
  publishedPerSecond: number;
  forwardedPerSecond: number;
  cpuMicrosPerPacket: number;
  /** The kernel's share of it (system time: sendto and loopback delivery). */
  systemMicrosPerPacket: number;
  cpuPercent: number;
  deliveryMin: number;
  deliveryMedian: number;
  firstPacketMedianMs: number;
  firstPacketP95Ms: number;
  rssPerViewer: number;
  rssIdle: number;
  benchCpuPercent: number;
  /** Server-side rates from /metrics over the window, when available. */
  serverRtpInPerSecond: number | undefined;
  serverRtpOutPerSecond: number | undefined;
  serverSendErrors: number | undefined;
  /**
   * Viewers the server still served at the end of the window (its sfu_viewers gauge): fewer than connected
   * means it ended some, e.g. for consent (RFC 7675) when a starved bench client answered too late.
   */
  serverViewers: number | undefined;
  errors: string[];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))];
}

async function measure(
  server: ServerUnderTest,
  clip: Clip,
  s: { viewers: number; seconds: number },
): Promise<Result> {
  const certificate = await createClientCertificate();
  const errors: string[] = [];
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "bench",
    token: server.token,
    certificate,
  });
  const sender = publishClip(publisher, clip);
  await sleep(1500);
  const rssIdle = processRssBytes(server.pid);

  const viewers: LightClient[] = [];
  let next = 0;
  const worker = async () => {
    while (next < s.viewers) {
      next++;
      try {
        viewers.push(
          await LightClient.connect({ baseUrl: server.baseUrl, role: "viewer", room: "bench", certificate }),
        );
      } catch (e) {
        if (errors.length < 5) {
          errors.push((e as Error).message || (e as Error).stack?.split("\n")[1]?.trim() || String(e));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const firstDeadline = performance.now() + 10_000;
  while (viewers.some((v) => v.stats.firstRtpAt === 0) && performance.now() < firstDeadline) await sleep(100);
  await sleep(2000);

  const metricsBefore = await scrapeMetrics(server.baseUrl);
  const before = {
    at: performance.now(),
    cpu: cpuMicros(server.pid),
    system: processCpu(server.pid).system,
    bench: cpuMicros(Deno.pid),
    sent: sender.sent(),
    received: viewers.map((v) => v.stats.rtpPackets),
  };
  await sleep(s.seconds * 1000);
  const after = {
    at: performance.now(),
    cpu: cpuMicros(server.pid),
    system: processCpu(server.pid).system,
    bench: cpuMicros(Deno.pid),
    sent: sender.sent(),
    received: viewers.map((v) => v.stats.rtpPackets),
  };
  const metricsAfter = await scrapeMetrics(server.baseUrl);
  const rss = processRssBytes(server.pid);
  sender.stop();
  await Promise.all(viewers.map((v) => v.close()));
  await publisher.close();

  const seconds = (after.at - before.at) / 1000;
  const published = after.sent - before.sent;
  const deliveries = after.received.map((n, i) => n - before.received[i]);
  const forwarded = deliveries.reduce((a, b) => a + b, 0);
  const ratios = deliveries.map((n) => Math.min(1, n / published));
  // Viewers that never connected count as receiving nothing.
  for (let i = viewers.length; i < s.viewers; i++) ratios.push(0);
  const rate = (name: string) =>
    metricsAfter.has(name)
      ? ((metricsAfter.get(name)! - (metricsBefore.get(name) ?? 0)) / seconds)
      : undefined;
  const firstPackets = viewers.filter((v) => v.stats.firstRtpAt > 0).map((v) =>
    v.stats.firstRtpAt - v.stats.startedAt
  );
  return {
    label: server.label,
    viewersAsked: s.viewers,
    viewersConnected: viewers.length,
    publishedPerSecond: published / seconds,
    forwardedPerSecond: forwarded / seconds,
    cpuMicrosPerPacket: forwarded > 0 ? (after.cpu - before.cpu) / forwarded : NaN,
    systemMicrosPerPacket: forwarded > 0 ? (after.system - before.system) / forwarded : NaN,
    cpuPercent: (after.cpu - before.cpu) / 1e6 / seconds * 100,
    deliveryMin: Math.min(...ratios),
    deliveryMedian: percentile(ratios, 0.5),
    firstPacketMedianMs: percentile(firstPackets, 0.5),
    firstPacketP95Ms: percentile(firstPackets, 0.95),
    rssPerViewer: viewers.length > 0 ? (rss - rssIdle) / viewers.length : NaN,
    rssIdle,
    benchCpuPercent: (after.bench - before.bench) / 1e6 / seconds * 100,
    serverRtpInPerSecond: rate("sfu_rtp_packets_in_total"),
    serverRtpOutPerSecond: rate("sfu_rtp_packets_out_total"),
    serverSendErrors: metricsAfter.has("sfu_udp_send_errors_total")
      ? metricsAfter.get("sfu_udp_send_errors_total")! - (metricsBefore.get("sfu_udp_send_errors_total") ?? 0)
      : undefined,
    serverViewers: metricsAfter.get("sfu_viewers"),
    errors,
  };
}

function format(results: Result[], clip: Clip, s: Settings): string {
  const model = cpuModel();
  const cores = navigator.hardwareConcurrency;
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const kb = (x: number) => `${Math.round(x / 1024).toLocaleString("en")} KB`;
  const columns = [
    "server",
    "viewers",
    "fwd pkt/s",
    "server CPU µs/pkt (kernel)",
    "server CPU",
    "delivery min",
    "delivery median",
    "first packet median (p95)",
    "RSS/viewer",
  ];
  const rows = results.map((r) => [
    r.label,
    `${r.viewersConnected}/${r.viewersAsked}`,
    Math.round(r.forwardedPerSecond).toLocaleString("en"),
    `${r.cpuMicrosPerPacket.toFixed(2)} (${r.systemMicrosPerPacket.toFixed(2)})`,
    `${r.cpuPercent.toFixed(0)}%`,
    pct(r.deliveryMin),
    pct(r.deliveryMedian),
    `${r.firstPacketMedianMs.toFixed(0)} ms (${r.firstPacketP95Ms.toFixed(0)} ms)`,
    kb(r.rssPerViewer),
  ]);
  const ours = results.find((r) => r.label === "this server");
  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
  for (const other of results) {
    if (!ours || other === ours) continue;
    rows.push([
      `${ours.label} ÷ ${other.label}`,
      "",
      ratio(ours.forwardedPerSecond, other.forwardedPerSecond),
      `${ratio(ours.cpuMicrosPerPacket, other.cpuMicrosPerPacket)} (${
        ratio(ours.systemMicrosPerPacket, other.systemMicrosPerPacket)
      })`,
      ratio(ours.cpuPercent, other.cpuPercent),
      ratio(ours.deliveryMin, other.deliveryMin),
      ratio(ours.deliveryMedian, other.deliveryMedian),
      ratio(ours.firstPacketMedianMs, other.firstPacketMedianMs),
      ratio(ours.rssPerViewer, other.rssPerViewer),
    ]);
  }
  const lines = [
    "",
    `Fan-out: ${s.seconds} s window; clip 1280x720p30 H.264 ` +
    `${(clip.videoBitrate / 1e6).toFixed(2)} Mbit/s + Opus 64 kbit/s ` +
    `(${Math.round(results[0]?.publishedPerSecond ?? 0)} pkt/s published)`,
    `Machine: ${model}, ${cores} cores, load avg ${load}, Deno ${Deno.version.deno}; ` +
    `bench-side SRTP ${srtpBackendName().split(" (")[0]}`,
    "",
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
  ];
  for (const r of results) {
    lines.push(
      `${r.label}: bench process CPU ${r.benchCpuPercent.toFixed(0)}% (clients + publisher), ` +
        `server idle RSS ${kb(r.rssIdle)}` +
        (r.serverRtpInPerSecond === undefined
          ? ""
          : `; server /metrics: RTP in ${Math.round(r.serverRtpInPerSecond)}/s, RTP out ${
            Math.round(r.serverRtpOutPerSecond ?? 0)
          }/s, send errors ${r.serverSendErrors}, viewers served at the end ${r.serverViewers}`) +
        (r.errors.length ? `; errors: ${r.errors.join("; ")}` : ""),
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const s = settings();
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const results: Result[] = [];
  for (const name of s.servers) {
    const viewers = name === "werift" ? s.baselineViewers : s.viewers;
    const server = await startServer(name, { sessions: viewers, serverRoot: s.serverRoot });
    console.error(`measuring ${server.label} (pid ${server.pid}) with ${viewers} viewers...`);
    try {
      results.push(await measure(server, clip, { viewers, seconds: s.seconds }));
    } catch (e) {
      console.error(`${server.label} failed: ${(e as Error).stack}\n${server.logs()}`);
    } finally {
      // BENCH_LOGS=1 (with BENCH_LOG_LEVEL=info) prints the server's log, e.g. why sessions closed.
      if (Deno.env.get("BENCH_LOGS")) console.error(server.logs());
      await server.stop();
    }
    await sleep(1000);
  }
  console.log(format(results, clip, s));
}
