/**
 * A viewer joining mid-GOP of a publisher that ignores PLI (simple-whip-client sending a pre-encoded clip)
 * decodes its first frame from the server's keyframe cache. The clip has one keyframe, at its start, and no
 * other for its 40 s: a viewer joining after that keyframe can only decode what the cache replays, so
 * decoding at all (the deadline is a quarter of the GOP) proves the cache, with no timing luck involved.
 * How much sooner the cache makes the first frame is measured by tests/bench/join_latency.ts.
 */
import assert from "node:assert/strict";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { clipPublisherMissing, makeGopClip, startClipPublisher } from "./helpers/clip_publisher.ts";
import { timeToFirstFrame } from "./helpers/webrtc_clients.ts";
import { createNetNamespace, netnsUnavailable } from "./helpers/netns.ts";
import { metricOf } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";
import type { RoomJson } from "../src/http/rooms.ts";

const missing = clipPublisherMissing() ??
  (netnsUnavailable() ? `a private network namespace (${netnsUnavailable()})` : undefined);
if (missing) console.warn(`keyframe cache e2e ignored: missing ${missing}`);

const CLIP_SECONDS = 40;

for (const codec of ["h264", "vp8", "vp9"] as const) {
  Deno.test({
    name: `a viewer joining mid-GOP of a PLI-ignoring ${codec} publisher starts from the keyframe cache`,
    ignore: missing !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const room = `gop-${codec}`;
    const clip = await makeGopClip(CLIP_SECONDS, CLIP_SECONDS, codec);
    // libnice never pairs loopback: the server, the publisher and Chromium share a private namespace.
    const netns = await createNetNamespace();
    const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" }, { netns });
    const browser = await launchChromium([], netns);
    const publisher = await startClipPublisher(server.baseUrl, server.token, room, clip, netns);
    try {
      // The room knows its picture size once the clip's one keyframe arrived (its SPS, or VP8's key frame header).
      await waitFor(
        "the clip's keyframe to reach the server",
        async () => {
          const res = await fetch(`${server.baseUrl}/rooms/${room}`);
          if (!res.ok) return `status ${res.status}`;
          const video = ((await res.json()) as RoomJson).video;
          return video.codec === codec.toUpperCase() ? video.width : video.codec;
        },
        (width) => width === 640,
        30_000,
      );
      const page = await browser.newPage();
      await page.goto(`${server.baseUrl}/healthz`);
      // Three joins one after another, each later in the GOP; without the cache none could decode before
      // the clip ends.
      const samples: number[] = [];
      for (let i = 0; i < 3; i++) samples.push(await timeToFirstFrame(page, room, (CLIP_SECONDS / 4) * 1000));
      console.log(
        `${codec}: time to first frame from the cache: ${
          samples.map((s) => `${s.toFixed(0)} ms`).join(", ")
        }`,
      );
      const hits = await metricOf(server.baseUrl, "sfu_keyframe_cache_hits_total");
      assert.ok(hits >= samples.length, `every join was served from the cache (hits ${hits})`);
    } catch (e) {
      console.error(`--- whip-client ---\n${publisher.output()}\n--- server ---\n${server.logs()}`);
      throw e;
    } finally {
      await publisher.cleanup();
      await browser.close();
      await server.stop();
      await netns.close();
    }
  });
}
