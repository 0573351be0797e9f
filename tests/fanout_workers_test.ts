/**
 * Fan-out workers end to end: viewers' RTP really leaves from worker threads (their counters rise, the main
 * thread seals none, Chromium decodes it), and a worker that dies is noticed: its Pion viewer gets an RTCP
 * BYE before the connection closes, a new worker takes its place and serves the next viewer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { metric, scrapeMetrics } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { loadClip, publishClip } from "./bench/media_clip.ts";
import { buildPionViewer, pionViewerMissing, startPionViewer } from "./interop/pion_viewer.ts";
import { hasCommand } from "./interop/harness.ts";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name:
    "with 2 fan-out workers, two Chromium viewers decode video each worker sealed; the main thread seals none",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ FANOUT_WORKERS: "2", RATE_LIMIT_PER_MINUTE: "0" });
  let browser: Browser | undefined;
  try {
    assert.match(server.logs(), /fan-out: 2 worker threads seal and send/);
    browser = await launchChromium();
    const pages = await Promise.all([browser.newPage(), browser.newPage(), browser.newPage()]);
    for (const page of pages) await page.goto(`${server.baseUrl}/healthz`);
    const [publisher, ...viewers] = pages;
    await publishFromPage(publisher, { token: server.token, room: "workers" });
    for (const viewer of viewers) await watchFromPage(viewer, "workers");
    for (const viewer of viewers) {
      await waitFor(
        "frames to be decoded",
        () => receiveStats(viewer),
        (s) => s.framesDecoded > 30 && s.frameWidth > 0 && s.audioPackets > 0,
        20_000,
      );
    }
    const stats = await (await fetch(`${server.baseUrl}/rooms/workers/stats`)).json();
    const workers = stats.viewers.map((v: { fanout_worker: number | null }) => v.fanout_worker).sort();
    assert.deepEqual(workers, [0, 1], "one viewer on each worker");
    // The viewers joined one after the other: wait until each worker has carried over 100 packets (a snapshot
    // right after the second viewer's 30th frame caught one at exactly 100).
    const values = await waitFor(
      "each worker to seal and send over 100 packets",
      () => scrapeMetrics(`${server.baseUrl}/metrics`),
      (m) =>
        ["0", "1"].every((worker) =>
          metric(m, `sfu_fanout_packets_sealed_total{worker="${worker}"}`) > 100 &&
          metric(m, `sfu_fanout_packets_sent_total{worker="${worker}"}`) > 100
        ),
    );
    for (const worker of ["0", "1"]) {
      assert.equal(metric(values, `sfu_fanout_viewers{worker="${worker}"}`), 1);
      assert.equal(metric(values, `sfu_fanout_ring_drops_total{worker="${worker}"}`), 0);
      assert.equal(metric(values, `sfu_fanout_send_errors_total{worker="${worker}"}`), 0);
    }
    const out = metric(values, "sfu_rtp_packets_out_total");
    assert.ok(out > 200);
    assert.equal(metric(values, "sfu_rtp_packets_offloaded_total"), out, "every RTP packet went to a worker");
  } catch (e) {
    console.error(server.logs().slice(-3000));
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    console.error(metrics.split("\n").filter((l) => /^sfu_(fanout|rtp|udp)/.test(l)).join("\n"));
    console.error(await (await fetch(`${server.baseUrl}/rooms/workers/stats`)).text());
    throw e;
  } finally {
    await browser?.close();
    await server.stop();
  }
});

const missing = pionViewerMissing() ?? (hasCommand("ffmpeg") ? undefined : "ffmpeg");
if (missing) console.warn(`fan-out worker death test ignored: missing ${missing}`);

Deno.test({
  name:
    "a fan-out worker that dies: its Pion viewer gets BYE then close, a new worker serves the next viewer",
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "fanout-death-" });
  const lines: string[] = [];
  // In this process, so the test can end the worker thread as a crash would.
  const server = await startServer(
    loadConfig((name) =>
      ({
        TCP_ADDRESS: "127.0.0.1",
        TCP_PORT: "0",
        UDP_ADDRESS: "127.0.0.1",
        UDP_PORT: "0",
        WHIP_TOKEN: "fanout-death-token",
        STORAGE_DIR: `${dir}/storage`,
        CERTS_DIR: `${dir}/certs`,
        FANOUT_WORKERS: "1",
        RATE_LIMIT_PER_MINUTE: "0",
        THUMBNAIL_INTERVAL: "3600",
      } as Record<string, string>)[name]
    ),
    (level, message) => lines.push(`${level} ${message}`),
  );
  const baseUrl = `http://127.0.0.1:${server.httpPort}`;
  const pool = server.socket.fanout!;
  const figures = () => pool.figures()[0];
  let publisher: LightClient | undefined;
  let sender: ReturnType<typeof publishClip> | undefined;
  const viewers: ReturnType<typeof startPionViewer>[] = [];
  try {
    const binary = await buildPionViewer(dir);
    publisher = await LightClient.connect({
      baseUrl,
      role: "publisher",
      room: "doomed",
      token: "fanout-death-token",
      certificate: await createClientCertificate(),
    });
    sender = publishClip(publisher, await loadClip(join(ROOT, "storage/bench-cache")));
    const first = startPionViewer(binary, `${baseUrl}/whep?target_id=doomed`, {
      seconds: 30,
      untilBye: true,
    });
    viewers.push(first);
    await waitFor(
      "the worker to send to the viewer",
      figures,
      (f) => f.sent > 200 && f.viewers === 1,
      15_000,
    );

    pool.breakWorker(0, "throw");
    const result = await first.result;
    assert.ok(result.bye, `the viewer saw a BYE: ${JSON.stringify(result)}`);
    assert.ok(
      result.closedMs < 0 || result.byeMs <= result.closedMs,
      `BYE before close: ${JSON.stringify(result)}`,
    );
    assert.equal(result.srtpAuthFailures, 0);
    assert.ok(result.video.packets > 100, "video arrived before the worker died");
    assert.equal(figures().restarts, 1);
    assert.ok(
      lines.some((l) => /fan-out worker 0 failed: .* its 1 viewers are ended/.test(l)),
      lines.join("\n"),
    );

    // The node keeps serving: the replacement seals for the next viewer, who decrypts all of it.
    const sealedBefore = figures().sealed;
    const second = startPionViewer(binary, `${baseUrl}/whep?target_id=doomed`, { seconds: 4 });
    viewers.push(second);
    const next = await second.result;
    assert.ok(
      next.connected && next.video.packets > 100,
      `the next viewer got video: ${JSON.stringify(next)}`,
    );
    assert.equal(next.srtpAuthFailures + next.srtpOtherFailures, 0);
    assert.ok(figures().sealed - sealedBefore > 100, "the new worker sealed it");
  } finally {
    for (const viewer of viewers) viewer.kill();
    sender?.stop();
    publisher?.abandon();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
