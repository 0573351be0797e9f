/**
 * Join burst: one light publisher sends the bench clip, then N light viewers join at the same moment. For
 * each server (this one and the Pion anchor, same run) it prints how many connected, why the others did
 * not, when each got its first packet, and what share of the packets published in a window after every
 * viewer started receiving each viewer got. A quicker, harsher version of the fan-out bench's joins (which
 * come eight at a time).
 *
 * Options: --viewers N (default 50), --seconds S (measured window, default 5), --servers LIST (default
 * `ours,pion`).
 */
import { join } from "node:path";
import { createClientCertificate, LightClient } from "./light_client.ts";
import { loadClip, publishClip } from "./media_clip.ts";
import { startCpuProfile, summarizeCpuProfile } from "./cpu_profile.ts";
import { freePort } from "../helpers/server_process.ts";
import { parseServerNames, scrapeMetrics, type ServerUnderTest, startServer } from "./servers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))];
}

async function measure(
  server: ServerUnderTest,
  viewers: number,
  seconds: number,
  inspectPort?: number,
): Promise<string> {
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const certificate = await createClientCertificate();
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "burst",
    token: server.token,
    certificate,
  });
  const sender = publishClip(publisher, clip);
  await sleep(1500);
  const errors = new Map<string, number>();
  const connected: LightClient[] = [];
  const profiler = inspectPort === undefined ? undefined : await startCpuProfile(inspectPort);
  const joinedAt = performance.now();
  await Promise.all(
    Array.from(
      { length: viewers },
      () =>
        LightClient.connect({ baseUrl: server.baseUrl, role: "viewer", room: "burst", certificate }).then(
          (v) => void connected.push(v),
          (e) => {
            const reason = String(
              (e as Error).message || (e as Error).stack?.split("\n").slice(0, 3).join(" / ") || e,
            ).replace(/\d+\.\d+\.\d+\.\d+:\d+/, "<addr>");
            errors.set(reason, (errors.get(reason) ?? 0) + 1);
          },
        ),
    ),
  );
  const joinSeconds = (performance.now() - joinedAt) / 1000;
  const profile = profiler ? summarizeCpuProfile(await profiler.stop(), viewers) : "";
  const deadline = performance.now() + 10_000;
  while (connected.some((v) => v.stats.firstRtpAt === 0) && performance.now() < deadline) await sleep(100);
  await sleep(2000);
  const m0 = await scrapeMetrics(server.baseUrl);
  const sent0 = sender.sent();
  const got0 = connected.map((v) => v.stats.rtpPackets);
  await sleep(seconds * 1000);
  const sent1 = sender.sent();
  const got1 = connected.map((v) => v.stats.rtpPackets);
  const m1 = await scrapeMetrics(server.baseUrl);
  sender.stop();
  await Promise.all(connected.map((v) => v.close()));
  await publisher.close();
  const published = sent1 - sent0;
  const shares = got1.map((n, i) => (n - got0[i]) / published);
  const first = connected.filter((v) => v.stats.firstRtpAt > 0).map((v) =>
    v.stats.firstRtpAt - v.stats.startedAt
  );
  const stage = (f: (v: LightClient) => number) =>
    `p50 ${percentile(connected.map(f), 0.5).toFixed(0)}/p90 ${percentile(connected.map(f), 0.9).toFixed(0)}`;
  const stages = `  stages (ms): answer ${stage((v) => v.stats.answeredAt - v.stats.startedAt)}, ICE ${
    stage((v) => v.stats.iceAt - v.stats.answeredAt)
  }, DTLS ${stage((v) => v.stats.connectedAt - v.stats.iceAt)}, first packet after DTLS ${
    stage((v) => v.stats.firstRtpAt - v.stats.connectedAt)
  }`;
  const decryptFailures = connected.reduce((n, v) => n + v.stats.decryptFailures, 0);
  const noMedia = connected.filter((v) => v.stats.firstRtpAt === 0).length;
  const delta = (name: string) => (m1.get(name) ?? NaN) - (m0.get(name) ?? NaN);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `${server.label}: connected ${connected.length}/${viewers} (joins took ${joinSeconds.toFixed(1)} s)` +
    `, without media ${noMedia}, decrypt failures ${decryptFailures}, viewers under 99%: ${
      shares.filter((s) => s < 0.99).length
    }`,
    `  delivery min ${pct(Math.min(...shares))}, median ${pct(percentile(shares, 0.5))}; first packet ` +
    `p50 ${percentile(first, 0.5).toFixed(0)} ms, p90 ${percentile(first, 0.9).toFixed(0)} ms`,
    `  server RTP in ${delta("sfu_rtp_packets_in_total")}, out ${delta("sfu_rtp_packets_out_total")} ` +
    `(published ${published}), load ${Deno.loadavg()[0].toFixed(1)}; viewers ${m1.get("sfu_viewers")}, ` +
    `unknown-peer datagrams ${m1.get("sfu_udp_unknown_peer_datagrams_total")}, loop lag max ` +
    `${m1.get("sfu_event_loop_lag_max_seconds")} s, send errors ${m1.get("sfu_udp_send_errors_total")}`,
    stages,
    ...[...errors].map(([reason, n]) => `  ${n} x ${reason}`),
    profile,
  ].join("\n");
}

if (import.meta.main) {
  const viewers = Number(flag("viewers") ?? 50);
  const seconds = Number(flag("seconds") ?? 5);
  for (const name of parseServerNames(flag("servers") ?? "ours,pion")) {
    const inspectPort = name === "ours" && Deno.args.includes("--profile") ? freePort("tcp") : undefined;
    const server = await startServer(name, { sessions: viewers, inspectPort });
    try {
      console.log(await measure(server, viewers, seconds, inspectPort));
    } catch (e) {
      console.log(`${server.label} failed: ${(e as Error).stack}\n${server.logs()}`);
    } finally {
      if (Deno.env.get("BURST_LOGS")) console.log(server.logs());
      await server.stop();
    }
  }
}
