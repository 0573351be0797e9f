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
 * percent, so compare profiled runs with each other), --client gstreamer (BENCH_CLIENT: publishers are
 * simple-whip-client, GStreamer webrtcbin + libnice, an independent WebRTC stack, sending the clip's video;
 * libnice never uses loopback, so servers and clients run in a private network namespace, see
 * tests/helpers/netns.ts; needs root; packets are the servers' own counts).
 */
import { join } from "node:path";
import { type ClientCertificate, createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, ensureClip, loadClip, publishClip } from "./media_clip.ts";
import { cpuModel, processCpu, threadCpuMicros } from "./proc_stats.ts";
import { parseServerNames, type ServerName, type ServerUnderTest, startServer } from "./servers.ts";
import { waitFor } from "../helpers/wait.ts";
import { freePort } from "../helpers/server_process.ts";
import { createNetNamespace, type NetNamespace, netnsUnavailable } from "../helpers/netns.ts";
import { buildSoupShim, hasCommand, hasGstElement, spawnForeign } from "../interop/harness.ts";
import { startCpuProfile, summarizeCpuProfile } from "./cpu_profile.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Seconds of an idle server (started, no sessions) measured before the publishers connect. */
const IDLE_SECONDS = 2;
/** Seconds between the publishers starting and the window, for ICE/DTLS and the first keyframe. */
const WARM_UP_SECONDS = 2;
/** Extra seconds for the GStreamer clients' catch-up burst (see gstreamerPublishers). */
const GSTREAMER_CATCH_UP_SECONDS = 4;

interface Settings {
  publishers: number[];
  seconds: number;
  repeat: number;
  servers: ServerName[];
  serverRoot: string;
  profile: boolean;
  client: "light" | "gstreamer";
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
    client: parseClient(flag("client") ?? Deno.env.get("BENCH_CLIENT") ?? "light"),
  };
}

function parseClient(name: string): "light" | "gstreamer" {
  if (name !== "light" && name !== "gstreamer") throw new Error("--client takes light or gstreamer");
  return name;
}

/** What one server measured with N publishers. */
interface IngestResult {
  label: string;
  publishers: number;
  sentPerSecond: number;
  /** Server CPU (user + system) per packet the publishers sent, µs. */
  microsPerPacket: number;
  systemMicrosPerPacket: number;
  /** Of which the server's main thread (this server's JavaScript thread; not meaningful for Go). */
  mainMicrosPerPacket: number;
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
  return { at: performance.now(), total: user + system, system, main: threadCpuMicros(pid, pid) };
}

/** N publishers sending to a server; `sent` is undefined when the clients do not count. */
interface Publishers {
  sent(): number | undefined;
  stop(): Promise<void>;
}

async function lightPublishers(
  server: ServerUnderTest,
  clip: Clip,
  certificate: ClientCertificate,
  count: number,
): Promise<Publishers> {
  const clients = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      LightClient.connect({
        baseUrl: server.baseUrl,
        role: "publisher",
        room: `ingest-${i}`,
        token: server.token,
        certificate,
      })),
  );
  const senders = clients.map((c) => publishClip(c, clip));
  await waitFor("every publisher sending", () => senders.map((s) => s.sent()), (n) => n.every((x) => x > 0));
  return {
    sent: () => senders.reduce((sum, s) => sum + s.sent(), 0),
    async stop() {
      for (const s of senders) s.stop();
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

/**
 * simple-whip-client (GStreamer webrtcbin + libnice) publishers inside `gstreamer.netns`, sending the clip's
 * video from an .mp4 in real time (no encoder: the clients stay cheap). They count nothing, so the servers'
 * own counters give the packets.
 */
async function gstreamerPublishers(
  server: ServerUnderTest,
  gstreamer: GstreamerSetup,
  count: number,
): Promise<Publishers> {
  const video = `filesrc location=${gstreamer.clip} ! qtdemux ! h264parse config-interval=-1 ! ` +
    "identity sync=true ! rtph264pay pt=102 ssrc=2 config-interval=-1 mtu=1200 ! queue ! " +
    "application/x-rtp,media=video,encoding-name=H264,payload=102";
  const clients = Array.from({ length: count }, (_, i) =>
    spawnForeign(
      "whip-client",
      [
        "-u",
        `${server.baseUrl}/whip?room=ingest-${i}`,
        "-t",
        server.token || "none",
        "-n",
        "-o",
        "-l",
        "3",
        "-V",
        video,
      ],
      { LD_PRELOAD: gstreamer.shim },
      gstreamer.netns,
    ));
  const stop = async () => {
    await Promise.all(clients.map((c) => c.stop("SIGINT", 3000)));
  };
  // Every client connected: the clip's video is ~250 packets/s, so wait for most of N times that.
  const ratePerSecond = async () => {
    const before = await server.rtpIn();
    await sleep(1000);
    return (await server.rtpIn()) - before;
  };
  try {
    await waitFor("every publisher sending", ratePerSecond, (rate) => rate > count * 180, 40_000);
    // webrtcbin holds the clip's first seconds until DTLS is up and then sends them at once: let that pass.
    await sleep(GSTREAMER_CATCH_UP_SECONDS * 1000);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${clients.map((c) => c.output().slice(-1500)).join("\n")}`);
  }
  return { sent: () => undefined, stop };
}

/** What the GStreamer clients need: a namespace, the libsoup shim and the clip as .mp4. */
interface GstreamerSetup {
  netns: NetNamespace;
  shim: string;
  clip: string;
}

async function setUpGstreamer(cacheDir: string): Promise<GstreamerSetup> {
  const absent = [
    hasCommand("whip-client") ? "" : "whip-client (apt: simple-whip-client)",
    hasCommand("cc") ? "" : "cc (apt: gcc)",
    ...["webrtcbin", "nicesrc", "qtdemux", "h264parse", "rtph264pay"].map((e) =>
      hasGstElement(e) ? "" : `GStreamer ${e}`
    ),
    netnsUnavailable() === undefined ? "" : `a private network namespace (${netnsUnavailable()})`,
  ].filter((a) => a !== "");
  if (absent.length > 0) throw new Error(`--client gstreamer needs ${absent.join(", ")}`);
  await ensureClip(cacheDir);
  const clip = join(cacheDir, "clip-720p30-60s.mp4");
  try {
    await Deno.stat(clip);
  } catch {
    // The 10 s clip six times over (Annex B streams concatenate), so one pass outlasts warm-up and window.
    const h264 = await Deno.readFile(join(cacheDir, "clip-720p30.h264"));
    const looped = new Uint8Array(h264.length * 6);
    for (let i = 0; i < 6; i++) looped.set(h264, i * h264.length);
    await Deno.writeFile(clip + ".h264", looped);
    const { code, stderr } = await new Deno.Command("ffmpeg", {
      args: ["-hide_banner", "-loglevel", "error", "-y", "-r", "30", "-i", clip + ".h264"]
        .concat(["-c", "copy", "-f", "mp4", clip + ".part"]),
    }).output();
    await Deno.remove(clip + ".h264");
    if (code !== 0) throw new Error(`ffmpeg failed: ${new TextDecoder().decode(stderr)}`);
    await Deno.rename(clip + ".part", clip);
  }
  const shim = await buildSoupShim(await Deno.makeTempDir({ prefix: "ingest-shim-" }));
  return { netns: await createNetNamespace(), shim, clip };
}

async function measure(
  server: ServerUnderTest,
  startPublishers: () => Promise<Publishers>,
  publishers: number,
  seconds: number,
  inspectPort: number | undefined,
): Promise<IngestResult> {
  const idleStart = cpuSample(server.pid);
  await sleep(IDLE_SECONDS * 1000);
  const idleEnd = cpuSample(server.pid);

  const clients = await startPublishers();
  try {
    await sleep(WARM_UP_SECONDS * 1000);
    const rtpInBefore = await server.rtpIn();
    const profiler = inspectPort === undefined ? undefined : await startCpuProfile(inspectPort);
    const before = { ...cpuSample(server.pid), sent: clients.sent() };
    await sleep(seconds * 1000);
    const after = { ...cpuSample(server.pid), sent: clients.sent() };
    const profile = await profiler?.stop();
    const rtpInAfter = await server.rtpIn();
    const window = (after.at - before.at) / 1000;
    const counted = rtpInAfter - rtpInBefore;
    const packets = after.sent !== undefined && before.sent !== undefined
      ? after.sent - before.sent
      : counted;
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
      mainMicrosPerPacket: (after.main - before.main) / packets,
      cpuPercent: (after.total - before.total) / 1e4 / window,
      idleCpuPercent: (idleEnd.total - idleStart.total) / 1e4 / ((idleEnd.at - idleStart.at) / 1000),
      serverRtpInPerSecond: after.sent === undefined ? undefined : counted / window,
      profileSummary,
    };
  } finally {
    await clients.stop();
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
    "main thread µs/pkt",
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
    r.label.startsWith("this server") ? r.mainMicrosPerPacket.toFixed(1) : "–",
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
      other.label.startsWith("this server") ? ratio(ours.mainMicrosPerPacket, other.mainMicrosPerPacket) : "",
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
  const cacheDir = join(ROOT, "storage/bench-cache");
  const clip = await loadClip(cacheDir);
  const certificate = await createClientCertificate();
  const gstreamer = s.client === "gstreamer" ? await setUpGstreamer(cacheDir) : undefined;
  const runs: IngestResult[][] = [];
  const out: string[] = [
    "",
    `Ingest: ${s.seconds} s window per run, no viewers; each publisher sends the clip 1280x720p30 H.264 ` +
    `${(clip.videoBitrate / 1e6).toFixed(2)} Mbit/s` +
    (gstreamer
      ? " (video only) with simple-whip-client (GStreamer webrtcbin) in a private network namespace"
      : " + Opus 64 kbit/s with the light client on loopback"),
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
          netns: gstreamer?.netns,
        });
        console.error(
          `run ${repeat + 1}: ${server.label} (pid ${server.pid}), ${publishers} publisher(s)...`,
        );
        try {
          const start = () =>
            gstreamer
              ? gstreamerPublishers(server, gstreamer, publishers)
              : lightPublishers(server, clip, certificate, publishers);
          results.push(await measure(server, start, publishers, s.seconds, inspectPort));
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
  await gstreamer?.netns.close();
  out.push(
    "",
    `Machine: ${cpuModel()}, ${navigator.hardwareConcurrency} cores, load avg ${
      Deno.loadavg().map((l) => l.toFixed(2)).join(" ")
    } at the end, Deno ${Deno.version.deno}`,
  );
  console.log(out.join("\n"));
}
