/**
 * The join burst as a strict client sees it: a Pion v3 viewer (SRTP replay window 64, the kernel's default
 * socket buffer, no NACK) joins late in the 4 s GOP of a ~3 Mbit/s publisher that ignores PLI, and must
 * receive every packet of its first 10 s in sequence order: no gap, nothing reordered, nothing refused by
 * SRTP. The replayed GOP has to come in order, interleaved with live packets and paced.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { loadClip, publishClip } from "./bench/media_clip.ts";
import { buildPionViewer, pionViewerMissing, startPionViewer } from "./interop/pion_viewer.ts";
import { hasCommand, roomIds } from "./interop/harness.ts";

const missing = pionViewerMissing() ?? (hasCommand("ffmpeg") ? undefined : "ffmpeg");
if (missing) console.warn(`join burst (Pion) test ignored: missing ${missing}`);

const ROOT = new URL("..", import.meta.url).pathname;
const GOP_SECONDS = 4;

Deno.test({
  name: "a Pion viewer (replay window 64) joining late in a 4 s GOP loses and refuses nothing in 10 s",
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "pion-whep-" });
  const binary = await buildPionViewer(dir);
  const clip = await loadClip(join(ROOT, "storage/bench-cache"), {
    videoKbps: 3000,
    gopSeconds: GOP_SECONDS,
    seconds: 12,
  });
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "burst",
    token: server.token,
    certificate: await createClientCertificate(),
  });
  const sender = publishClip(publisher, clip);
  const startedAt = performance.now();
  try {
    await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes("burst"));
    // Join 3.5 s into the clip's first GOP: the server holds ~3.5 s of video to replay.
    const joinAt = startedAt + (GOP_SECONDS - 0.5) * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, joinAt - performance.now())));
    const viewer = startPionViewer(binary, `${server.baseUrl}/whep?target_id=burst`, { seconds: 10 });
    const result = await viewer.result;
    const summary = JSON.stringify(result);
    assert.equal(result.error, undefined, summary);
    assert.ok(result.connected, summary);
    const video = result.video;
    // ~3 Mbit/s for 10 s plus the replayed 3.5 s: well over 2,500 packets of ~1,200 bytes.
    assert.ok(video.packets > 2500, `video packets received: ${summary}`);
    assert.ok(video.firstIsKeyframe, `the first video packet starts a keyframe: ${summary}`);
    assert.equal(result.srtpReplayed, 0, `SRTP replay rejections: ${summary}`);
    assert.equal(result.srtpAuthFailures + result.srtpOtherFailures, 0, `SRTP failures: ${summary}`);
    assert.equal(video.outOfOrder, 0, `video packets out of order: ${summary}`);
    assert.equal(video.missing, 0, `video packets missing: ${summary}`);
    assert.equal(result.audio.missing, 0, `audio packets missing: ${summary}`);
    console.log(`Pion viewer: ${summary}`);
  } catch (e) {
    console.error(`--- server ---\n${server.logs().slice(-4000)}`);
    throw e;
  } finally {
    sender.stop();
    await publisher.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
