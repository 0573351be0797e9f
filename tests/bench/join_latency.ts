/**
 * Time to first decoded frame for new WHEP viewers in Chromium, with the keyframe cache on (default) and off
 * (KEYFRAME_CACHE=off, the baseline), against (a) a Chromium publisher, which honours PLI, and (b) a
 * publisher that ignores PLI and sends a keyframe every 2 s (simple-whip-client sending a pre-encoded clip).
 * Prints p50/p90/max over JOIN_SAMPLES joins per case.
 * Run: deno run --unstable-net --allow-all tests/bench/join_latency.ts
 */
import { launchChromium } from "../helpers/browser.ts";
import { startServerProcess } from "../helpers/server_process.ts";
import { publishFromPage, timeToFirstFrame } from "../helpers/webrtc_clients.ts";
import { clipPublisherMissing, makeGopClip, startClipPublisher } from "../helpers/clip_publisher.ts";
import { roomIds, waitFor } from "../interop/harness.ts";
import { createNetNamespace, netnsUnavailable } from "../helpers/netns.ts";

const SAMPLES = Number(Deno.env.get("JOIN_SAMPLES") ?? "15");

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(label: string, env: Record<string, string>, clip?: string): Promise<number[]> {
  // libnice never pairs loopback: with the clip publisher, everything runs in a private namespace.
  const netns = clip ? await createNetNamespace() : undefined;
  const server = await startServerProcess(env, { netns });
  const browser = await launchChromium([], netns);
  let clipPublisher: Awaited<ReturnType<typeof startClipPublisher>> | undefined;
  try {
    if (clip && netns) {
      clipPublisher = await startClipPublisher(server.baseUrl, server.token, "join", clip, netns);
      await waitFor(
        "the clip publisher's room",
        () => roomIds(server.baseUrl),
        (ids) => ids.includes("join"),
        30000,
      );
    } else {
      const publisher = await browser.newPage();
      await publisher.goto(`${server.baseUrl}/healthz`);
      await publishFromPage(publisher, { token: server.token, room: "join" });
    }
    await new Promise((r) => setTimeout(r, 2000));
    const viewer = await browser.newPage();
    await viewer.goto(`${server.baseUrl}/healthz`);
    const samples: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      samples.push(await timeToFirstFrame(viewer, "join"));
      // Join at a random point of the publisher's stream.
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
    }
    const f = (v: number) => `${v.toFixed(0)} ms`;
    console.log(
      `${label.padEnd(34)} p50 ${f(percentile(samples, 50))}  p90 ${f(percentile(samples, 90))}  max ${
        f(Math.max(...samples))
      }  (n=${samples.length})`,
    );
    return samples;
  } finally {
    await clipPublisher?.cleanup();
    await browser.close();
    await server.stop();
    await netns?.close();
  }
}

console.log("time to first decoded frame, (a) Chromium publisher (honours PLI):");
const on = await measure("keyframe cache on (default)", {});
const off = await measure("keyframe cache off (baseline)", { KEYFRAME_CACHE: "off" });
console.log(`ratio p50 on/off: ${(percentile(on, 50) / percentile(off, 50)).toFixed(2)}`);

const missing = clipPublisherMissing() ??
  (netnsUnavailable() ? `a private network namespace (${netnsUnavailable()})` : undefined);
if (missing) {
  console.log(`(b) skipped: missing ${missing}`);
} else {
  const clip = await makeGopClip();
  console.log("\n(b) publisher ignoring PLI, keyframe every 2 s (simple-whip-client sending a clip):");
  const clipOn = await measure("keyframe cache on (default)", {}, clip);
  const clipOff = await measure("keyframe cache off (baseline)", { KEYFRAME_CACHE: "off" }, clip);
  console.log(`ratio p50 on/off: ${(percentile(clipOn, 50) / percentile(clipOff, 50)).toFixed(2)}`);
}
