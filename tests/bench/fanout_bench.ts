/**
 * Fan-out benchmark (`deno task bench`): one publisher sends a 720p H.264 + Opus clip at ~2.5 Mbit/s, N
 * lightweight viewers (full ICE, DTLS, SRTP decrypt, no decode) watch it, and the server process's CPU time
 * is divided by the packets the viewers received. The same run measures a baseline built from werift's
 * `RTCPeerConnection` (one per client) and prints both with their ratios.
 *
 * Options (flags or environment): --viewers N (BENCH_VIEWERS, default 100), --seconds S (BENCH_SECONDS,
 * measured window, default 20), --server-root DIR (BENCH_SERVER_ROOT: a checkout whose main.ts to run,
 * default this one), --baseline-viewers M (BENCH_BASELINE_VIEWERS, default N: werift saturates one core
 * near 30 k packets/s, so a lower M shows its steady-state cost), --only ours|werift.
 */
import { join } from "node:path";
import { createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { freePort } from "../helpers/server_process.ts";
import { srtpBackendName } from "../../src/srtp/context.ts";
import { cpuModel, processCpu, processRssBytes } from "./proc_stats.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Settings {
  viewers: number;
  baselineViewers: number;
  seconds: number;
  serverRoot: string;
  only: "ours" | "werift" | undefined;
}

function settings(): Settings {
  const flag = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const only = flag("only");
  if (only !== undefined && only !== "ours" && only !== "werift") {
    throw new Error("--only takes ours or werift");
  }
  const viewers = Number(flag("viewers") ?? Deno.env.get("BENCH_VIEWERS") ?? 100);
  return {
    viewers,
    baselineViewers: Number(flag("baseline-viewers") ?? Deno.env.get("BENCH_BASELINE_VIEWERS") ?? viewers),
    seconds: Number(flag("seconds") ?? Deno.env.get("BENCH_SECONDS") ?? 20),
    serverRoot: flag("server-root") ?? Deno.env.get("BENCH_SERVER_ROOT") ?? ROOT,
    only,
  };
}

/** A server under test running as its own process, so its CPU time can be read from /proc. */
interface ServerUnderTest {
  label: string;
  baseUrl: string;
  pid: number;
  token: string;
  logs(): string;
  stop(): Promise<void>;
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

async function startOurs(serverRoot: string, viewers: number): Promise<ServerUnderTest> {
  const dir = await Deno.makeTempDir({ prefix: "fanout-bench-" });
  const httpPort = freePort("tcp");
  const token = `bench-${crypto.randomUUID()}`;
  const child = new Deno.Command(Deno.execPath(), {
    // BENCH_SERVER_FLAGS adds Deno flags to the server, e.g. --v8-flags=--prof to profile it.
    args: [
      "run",
      "--unstable-net",
      "--allow-all",
      ...(Deno.env.get("BENCH_SERVER_FLAGS")?.split(" ").filter((f) => f !== "") ?? []),
      join(serverRoot, "main.ts"),
    ],
    cwd: serverRoot,
    env: {
      TCP_ADDRESS: "127.0.0.1",
      TCP_PORT: String(httpPort),
      UDP_ADDRESS: "127.0.0.1",
      UDP_PORT: String(freePort("udp")),
      WHIP_TOKEN: token,
      STORAGE_DIR: join(dir, "storage"),
      CERTS_DIR: join(dir, "certs"),
      // Thumbnails run ffmpeg every few seconds; keep them out of the fan-out figures.
      THUMBNAIL_INTERVAL: "3600",
      // Admission limits would turn the viewers away; settings a version does not know are ignored.
      RATE_LIMIT_PER_MINUTE: "0",
      MAX_SESSIONS: String(viewers + 10),
      MAX_VIEWERS_PER_ROOM: String(viewers + 10),
      LOG_LEVEL: "warn",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = { text: "" };
  const drained = collect(child.stderr, log);
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  await waitHealthy(baseUrl, child, log);
  return {
    label: "this server",
    baseUrl,
    pid: child.pid,
    token,
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

async function startWerift(): Promise<ServerUnderTest> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(ROOT, "tests/bench/werift_sfu.ts")],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
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
  const listening = await port;
  clearTimeout(timeout);
  if (listening < 0) {
    child.kill("SIGKILL");
    throw new Error(`werift SFU did not start:\n${log.text}`);
  }
  return {
    label: "werift RTCPeerConnection per client",
    baseUrl: `http://127.0.0.1:${listening}`,
    pid: child.pid,
    token: "",
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

async function waitHealthy(baseUrl: string, child: Deno.ChildProcess, log: { text: string }): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server did not start:\n${log.text}`);
    }
    await sleep(100);
  }
}

/** utime + stime of a process (all threads), in microseconds. */
function cpuMicros(pid: number): number {
  const { user, system } = processCpu(pid);
  return user + system;
}

/** Counters from the server's Prometheus endpoint, when it has one (the werift baseline does not). */
async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
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
        if (errors.length < 5) errors.push((e as Error).message);
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
  if (results.length === 2) {
    const [a, b] = results;
    const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
    rows.push([
      `${b.label} ÷ ${a.label}`,
      "",
      ratio(b.forwardedPerSecond, a.forwardedPerSecond),
      `${ratio(b.cpuMicrosPerPacket, a.cpuMicrosPerPacket)} (${
        ratio(b.systemMicrosPerPacket, a.systemMicrosPerPacket)
      })`,
      ratio(b.cpuPercent, a.cpuPercent),
      ratio(b.deliveryMin, a.deliveryMin),
      ratio(b.deliveryMedian, a.deliveryMedian),
      ratio(b.firstPacketMedianMs, a.firstPacketMedianMs),
      ratio(b.rssPerViewer, a.rssPerViewer),
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
          }/s, send errors ${r.serverSendErrors}`) +
        (r.errors.length ? `; errors: ${r.errors.join("; ")}` : ""),
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const s = settings();
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const results: Result[] = [];
  const targets: [string, number, () => Promise<ServerUnderTest>][] = [
    ["ours", s.viewers, () => startOurs(s.serverRoot, s.viewers)],
    ["werift", s.baselineViewers, startWerift],
  ];
  for (const [name, viewers, start] of targets) {
    if (s.only && s.only !== name) continue;
    const server = await start();
    console.error(`measuring ${server.label} (pid ${server.pid}) with ${viewers} viewers...`);
    try {
      results.push(await measure(server, clip, { viewers, seconds: s.seconds }));
    } catch (e) {
      console.error(`${server.label} failed: ${(e as Error).stack}\n${server.logs()}`);
    } finally {
      await server.stop();
    }
    await sleep(1000);
  }
  console.log(format(results, clip, s));
}
