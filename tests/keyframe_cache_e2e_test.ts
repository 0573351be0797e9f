/**
 * A viewer joining mid-GOP of a publisher that ignores PLI (simple-whip-client sending a pre-encoded clip with
 * a keyframe every 4 s) decodes its first frame from the server's keyframe cache, long before the
 * publisher's next keyframe could arrive.
 */
import assert from "node:assert/strict";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { clipPublisherMissing, makeGopClip, startClipPublisher } from "./helpers/clip_publisher.ts";
import { timeToFirstFrame } from "./helpers/webrtc_clients.ts";
import { createNetNamespace, netnsUnavailable } from "./helpers/netns.ts";
import { roomIds, waitFor } from "./interop/harness.ts";

const missing = clipPublisherMissing() ??
  (netnsUnavailable() ? `a private network namespace (${netnsUnavailable()})` : undefined);
if (missing) console.warn(`keyframe cache e2e ignored: missing ${missing}`);

Deno.test({
  name: "a viewer joining mid-GOP of a PLI-ignoring publisher starts from the keyframe cache",
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const clip = await makeGopClip(60, 4);
  // libnice never pairs loopback: the server, the publisher and Chromium share a private namespace.
  const netns = await createNetNamespace();
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" }, { netns });
  const browser = await launchChromium([], netns);
  const publisher = await startClipPublisher(server.baseUrl, server.token, "gop", clip, netns);
  try {
    await waitFor(
      "the clip publisher's room",
      () => roomIds(server.baseUrl),
      (ids) => ids.includes("gop"),
      30000,
    );
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    // Join at several points of the 4 s GOP. Without the cache each join would wait for the next keyframe
    // (2 s on average, up to 4 s), since the publisher cannot make one on request.
    const samples: number[] = [];
    for (const pause of [1300, 700, 1900]) {
      await new Promise((r) => setTimeout(r, pause));
      samples.push(await timeToFirstFrame(page, "gop", 8000));
    }
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const hits = Number(/^\w*keyframe_cache_hits_total\S* (\d+)/m.exec(metrics)?.[1] ?? "0");
    assert.ok(hits >= samples.length, `every join was served from the cache (hits ${hits})\n${metrics}`);
    samples.sort((a, b) => a - b);
    assert.ok(samples[1] < 1000, `median time to first frame ${samples[1].toFixed(0)} ms (all: ${samples})`);
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
