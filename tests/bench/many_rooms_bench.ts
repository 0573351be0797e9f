/**
 * Many-rooms benchmark (`deno task bench:many-rooms`): `--rooms` publishers (default 20), each in its own
 * room sending the 720p H.264 + Opus clip at ~2.5 Mbit/s, with `--viewers` light viewers each (default 5),
 * the shape of a community server. Prints the server's CPU, its µs per packet (received + forwarded), and
 * every viewer's delivery over the window, for this server and the Pion anchor in the same run. Viewers
 * run in separate processes and count with `recvmmsg` (viewer_swarm.ts), as in the capacity benchmark.
 *
 * Options (flags or environment): --rooms N (BENCH_ROOMS), --viewers N (BENCH_VIEWERS, per room),
 * --seconds S (BENCH_SECONDS, window, default 10), --servers LIST (BENCH_SERVERS, default `ours,pion`),
 * --workers LIST (BENCH_WORKERS, FANOUT_WORKERS values for this server, default `0,1`), --swarms N.
 */
import { join } from "node:path";
import { createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { cpuModel, processCpu, processUdpDrops } from "./proc_stats.ts";
import { parseServerNames, type ServerName, type ServerUnderTest, startServer } from "./servers.ts";
import { ViewerSwarm } from "./viewer_swarm.ts";
import { deliveries, percentile, SentLog, swarmCounts } from "./capacity_bench.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Settings {
  rooms: number;
  viewers: number;
  seconds: number;
  servers: ServerName[];
  workers: number[];
  swarms: number;
}

function settings(): Settings {
  const flag = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  return {
    rooms: Number(flag("rooms") ?? Deno.env.get("BENCH_ROOMS") ?? 20),
    viewers: Number(flag("viewers") ?? Deno.env.get("BENCH_VIEWERS") ?? 5),
    seconds: Number(flag("seconds") ?? Deno.env.get("BENCH_SECONDS") ?? 10),
    servers: parseServerNames(flag("servers") ?? Deno.env.get("BENCH_SERVERS") ?? "ours,pion"),
    workers: (flag("workers") ?? Deno.env.get("BENCH_WORKERS") ?? "0,1").split(",").map(Number),
    swarms: Number(flag("swarms") ?? Deno.env.get("BENCH_SWARMS") ?? 2),
  };
}

interface Result {
  label: string;
  publishers: number;
  viewers: number;
  receivedPerSecond: number;
  forwardedPerSecond: number;
  cpuPercent: number;
  microsPerPacket: number;
  deliveryMin: number;
  deliveryMedian: number;
  rateMin: number;
  clientCpuPercent: number;
  kernelDrops: number;
  serverDrops: number;
  verifyFailures: number;
  errors: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuMicros = (pid: number) => {
  const { user, system } = processCpu(pid);
  return user + system;
};

async function measure(server: ServerUnderTest, clip: Clip, s: Settings, label: string): Promise<Result> {
  const certificate = await createClientCertificate();
  const errors: string[] = [];
  const publishers = await Promise.all(
    Array.from({ length: s.rooms }, (_, i) =>
      LightClient.connect({
        baseUrl: server.baseUrl,
        role: "publisher",
        room: `room-${i}`,
        token: server.token,
        certificate,
      })),
  );
  // Publishers start 100 ms apart: real ones are not in step, and 20 keyframes at once would be one
  // 2.4 MB burst every GOP.
  const senders: ReturnType<typeof publishClip>[] = [];
  for (const p of publishers) {
    senders.push(publishClip(p, clip));
    await sleep(clip.durationMs / 5 / publishers.length);
  }
  const sentLogs = senders.map((x) => new SentLog(x.sent));
  const swarms = Array.from({ length: s.swarms }, () => ViewerSwarm.start());
  try {
    await sleep(1500);
    // Each room's viewers join through one swarm, so a swarm's counts map to rooms in the order added.
    const roomsBySwarm: number[][] = swarms.map(() => []);
    let joined = 0;
    await Promise.all(swarms.map(async (swarm, w) => {
      for (let room = w; room < s.rooms; room += swarms.length) {
        const added = await swarm.add(server.baseUrl, `room-${room}`, s.viewers, 2);
        for (const t of added.firstPacketMs) {
          if (t !== null) {
            roomsBySwarm[w].push(room);
            joined++;
          }
        }
        for (const e of added.errors) if (errors.length < 3) errors.push(e);
      }
    }));
    const roomOfViewer = roomsBySwarm.flat();
    await sleep(2000);
    const snapshot = async () => ({
      at: performance.now(),
      counts: await swarmCounts(swarms),
      sent: senders.map((x) => x.sent()),
      server: cpuMicros(server.pid),
      serverDrops: processUdpDrops(server.pid),
      clients: swarms.reduce((sum, w) => sum + cpuMicros(w.pid), cpuMicros(Deno.pid)),
    });
    const before = await snapshot();
    await sleep(s.seconds * 1000);
    const after = await snapshot();
    const seconds = (after.at - before.at) / 1000;
    const publishedPerRoom = after.sent.map((n, i) => n - before.sent[i]);
    const d = deliveries(
      before.counts,
      after.counts,
      roomOfViewer.map((room, i) =>
        sentLogs[room].at(after.counts.readAt[i]) - sentLogs[room].at(before.counts.readAt[i])
      ),
    );
    if (Deno.env.get("BENCH_DEBUG")) {
      console.error(
        after.counts.counts.map((c, i) => {
          const b = before.counts.counts[i];
          return `${roomOfViewer[i]}:${c.received - b.received}/${c.span - b.span}`;
        }).join(" "),
      );
    }
    // Viewers that never got media count as receiving nothing.
    for (let i = joined; i < s.rooms * s.viewers; i++) {
      d.delivery.push(0);
      d.rate.push(0);
    }
    const received = publishedPerRoom.reduce((a, b) => a + b, 0);
    const cpu = after.server - before.server;
    return {
      label,
      publishers: publishers.length,
      viewers: joined,
      receivedPerSecond: received / seconds,
      forwardedPerSecond: d.forwarded / seconds,
      cpuPercent: cpu / 1e4 / seconds,
      microsPerPacket: cpu / (received + d.forwarded),
      deliveryMin: Math.min(...d.delivery),
      deliveryMedian: percentile(d.delivery, 0.5),
      rateMin: Math.min(...d.rate),
      clientCpuPercent: (after.clients - before.clients) / 1e4 / seconds,
      kernelDrops: after.counts.kernelDrops - before.counts.kernelDrops,
      serverDrops: after.serverDrops - before.serverDrops,
      verifyFailures: d.verifyFailures,
      errors,
    };
  } finally {
    for (const x of senders) x.stop();
    for (const log of sentLogs) log.stop();
    await Promise.all(swarms.map((w) => w.close()));
    await Promise.all(publishers.map((p) => p.close()));
  }
}

if (import.meta.main) {
  const s = settings();
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const sessions = s.rooms * (s.viewers + 1);
  const targets: { name: ServerName; workers?: number }[] = s.servers.flatMap((name) =>
    name === "pion" || name === "werift"
      ? [{ name }]
      : s.workers.map((workers): { name: ServerName; workers?: number } => ({ name, workers }))
  );
  const results: Result[] = [];
  for (const target of targets) {
    const server = await startServer(target.name, {
      sessions,
      env: target.workers === undefined ? undefined : {
        FANOUT_WORKERS: String(target.workers),
        MAX_PUBLISHERS: String(s.rooms + 10),
        MAX_VIEWERS_PER_ADDRESS: String(sessions + 10),
        MAX_PENDING_PER_ADDRESS: String(sessions + 10),
      },
    });
    const label = target.workers === undefined ? server.label : `${server.label}, ${target.workers} workers`;
    console.error(`measuring ${label} (pid ${server.pid})...`);
    try {
      results.push(await measure(server, clip, s, label));
    } catch (e) {
      console.error(`${label} failed: ${(e as Error).stack}\n${server.logs()}`);
    } finally {
      await server.stop();
    }
    await sleep(1000);
  }
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const columns = [
    "server",
    "publishers",
    "viewers",
    "in pkt/s",
    "out pkt/s",
    "server CPU",
    "µs per packet in+out",
    "delivery min (median)",
    "rate min",
    "clients' CPU",
    "socket drops: clients/server",
    "SRTP sample failures",
  ];
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  const lines = [
    "",
    `Many rooms: ${s.rooms} publishers (720p H.264 ${
      (clip.videoBitrate / 1e6).toFixed(2)
    } Mbit/s + Opus each), ` +
    `${s.viewers} viewers per room; ${s.seconds} s window`,
    `Machine: ${cpuModel()}, ${navigator.hardwareConcurrency} cores (clients and server share them), ` +
    `load avg ${load}, Deno ${Deno.version.deno}; ${s.swarms} client processes`,
    "",
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...results.map((r) =>
      `| ${
        [
          r.label,
          r.publishers,
          `${r.viewers}/${s.rooms * s.viewers}`,
          Math.round(r.receivedPerSecond).toLocaleString("en"),
          Math.round(r.forwardedPerSecond).toLocaleString("en"),
          `${r.cpuPercent.toFixed(0)}%`,
          r.microsPerPacket.toFixed(2),
          `${pct(r.deliveryMin)} (${pct(r.deliveryMedian)})`,
          pct(r.rateMin),
          `${r.clientCpuPercent.toFixed(0)}%`,
          `${r.kernelDrops}/${r.serverDrops}`,
          r.verifyFailures,
        ].join(" | ")
      } |`
    ),
  ];
  const ours = results.find((r) => r.label.startsWith("this server"));
  const pion = results.find((r) => r.label.startsWith("Pion"));
  if (ours && pion) {
    lines.push(
      "",
      `this server ÷ Pion: server CPU ${(ours.cpuPercent / pion.cpuPercent).toFixed(2)}×, µs per packet ` +
        `${(ours.microsPerPacket / pion.microsPerPacket).toFixed(2)}×`,
    );
  }
  for (const r of results) if (r.errors.length) lines.push(`${r.label} errors: ${r.errors.join("; ")}`);
  console.log(lines.join("\n"));
}
