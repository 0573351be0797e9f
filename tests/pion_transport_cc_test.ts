/**
 * A foreign viewer with transport-wide congestion control: a Pion v3 viewer offering the transport-cc header
 * extension and feedback (its TWCC interceptor) watches a publisher for 6 s. It must receive the video
 * whole (no gap, no SRTP failure: the server's extension sits inside the authenticated header), and the
 * server must read its feedback about the numbered packets, none of it malformed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { loadClip, publishClip } from "./bench/media_clip.ts";
import { buildPionViewer, pionViewerMissing, startPionViewer } from "./interop/pion_viewer.ts";
import { hasCommand, roomIds } from "./interop/harness.ts";
import type { RoomStatsJson } from "../src/http/room_stats.ts";

const missing = pionViewerMissing() ?? (hasCommand("ffmpeg") ? undefined : "ffmpeg");
if (missing) console.warn(`Pion transport-cc test ignored: missing ${missing}`);

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name: "a Pion viewer offering transport-cc plays whole and its feedback reaches the estimate",
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "pion-whep-" });
  const binary = await buildPionViewer(dir);
  const clip = await loadClip(join(ROOT, "storage/bench-cache"), {
    videoKbps: 1500,
    gopSeconds: 2,
    seconds: 12,
  });
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "twcc",
    token: server.token,
    certificate: await createClientCertificate(),
  });
  const sender = publishClip(publisher, clip);
  try {
    await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes("twcc"));
    const viewer = startPionViewer(binary, `${server.baseUrl}/whep?target_id=twcc`, {
      seconds: 6,
      transportCc: true,
    });
    const stats = await waitFor(
      "the Pion viewer's transport feedback",
      () => fetch(`${server.baseUrl}/rooms/twcc/stats`).then((r) => r.json() as Promise<RoomStatsJson>),
      (s) => (s.viewers[0]?.bandwidth?.feedbacks ?? 0) >= 5,
    );
    const result = await viewer.result;
    const summary = JSON.stringify(result);
    const bandwidth = stats.viewers[0].bandwidth!;
    console.log(`Pion viewer: ${summary}; server's view: ${JSON.stringify(bandwidth)}`);
    assert.equal(result.error, undefined, summary);
    assert.ok(result.connected, summary);
    assert.ok(result.video.packets > 300, `video packets: ${summary}`);
    assert.equal(result.video.missing, 0, `video packets missing: ${summary}`);
    assert.equal(result.srtpAuthFailures + result.srtpOtherFailures + result.srtpReplayed, 0, summary);
    assert.equal(bandwidth.malformed_feedbacks, 0);
    assert.ok(bandwidth.received_kbps > 0, JSON.stringify(bandwidth));
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
