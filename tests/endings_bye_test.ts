/**
 * Every ending the server decides is announced with an RTCP BYE before DTLS close_notify, so clients end
 * their tracks at once instead of waiting for consent to expire: a publisher taken over gets one, and on
 * SIGTERM a Pion viewer and the publisher get one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { loadClip, publishClip } from "./bench/media_clip.ts";
import { buildPionViewer, pionViewerMissing, startPionViewer } from "./interop/pion_viewer.ts";
import { hasCommand, roomIds } from "./interop/harness.ts";
import { readRtcp } from "../src/rtp/rtcp.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** A publisher that records when an RTCP BYE reached it. */
async function byeWatchingPublisher(baseUrl: string, token: string, room: string) {
  const seen = { byeAt: 0 };
  const client = await LightClient.connect({
    baseUrl,
    role: "publisher",
    room,
    token,
    certificate: await createClientCertificate(),
    onRtcp: (packet) => {
      if (readRtcp(packet).bye && seen.byeAt === 0) seen.byeAt = performance.now();
    },
  });
  return { client, seen };
}

async function packetsOut(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return Number(/^sfu_rtp_packets_out_total (\d+)/m.exec(text)?.[1] ?? "0");
}

Deno.test({
  name: "a publisher taken over gets an RTCP BYE",
  ignore: !hasCommand("ffmpeg"),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const first = await byeWatchingPublisher(server.baseUrl, server.token, "takeover");
  let second: Awaited<ReturnType<typeof byeWatchingPublisher>> | undefined;
  let sender: ReturnType<typeof publishClip> | undefined;
  try {
    await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes("takeover"));
    second = await byeWatchingPublisher(server.baseUrl, server.token, "takeover");
    // The takeover happens at the new session's first media packet.
    sender = publishClip(second.client, await loadClip(join(ROOT, "storage/bench-cache")));
    await waitFor("a BYE at the first publisher", () => first.seen.byeAt, (at) => at > 0, 5000);
    assert.equal(second.seen.byeAt, 0, "the new publisher is not told goodbye");
  } catch (e) {
    console.error(server.logs().slice(-3000));
    throw e;
  } finally {
    sender?.stop();
    first.client.abandon();
    await second?.client.close();
    await server.stop();
  }
});

const missing = pionViewerMissing() ?? (hasCommand("ffmpeg") ? undefined : "ffmpeg");
if (missing) console.warn(`BYE on shutdown (Pion) test ignored: missing ${missing}`);

Deno.test({
  name: "on SIGTERM a Pion viewer and the publisher get an RTCP BYE before the connection closes",
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "pion-whep-" });
  const binary = await buildPionViewer(dir);
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const publisher = await byeWatchingPublisher(server.baseUrl, server.token, "sigterm");
  const sender = publishClip(publisher.client, clip);
  const viewer = startPionViewer(binary, `${server.baseUrl}/whep?target_id=sigterm`, {
    seconds: 30,
    untilBye: true,
  });
  try {
    await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes("sigterm"));
    // The viewer reads RTCP once its track started: wait until media flows to it.
    await waitFor("media to the viewer", () => packetsOut(server.baseUrl), (n) => n > 200, 15_000);
    const stoppedAt = performance.now();
    await server.stop();
    const result = await viewer.result;
    assert.ok(result.bye, `the viewer saw a BYE: ${JSON.stringify(result)}`);
    assert.ok(
      result.closedMs < 0 || result.byeMs <= result.closedMs,
      `BYE before close: ${JSON.stringify(result)}`,
    );
    assert.ok(publisher.seen.byeAt >= stoppedAt, "the publisher saw a BYE");
  } catch (e) {
    console.error(server.logs().slice(-3000));
    throw e;
  } finally {
    viewer.kill();
    sender.stop();
    publisher.client.abandon();
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
