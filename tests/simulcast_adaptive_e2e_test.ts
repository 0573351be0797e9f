/**
 * Automatic layer choice with a real browser: Chromium publishes three simulcast layers, a Chromium viewer
 * watches through a relay whose server-to-viewer direction becomes a 600 kbit/s bottleneck (token bucket,
 * 200 ms queue, drops beyond). The viewer must move to a layer that fits within 5 s, and climb back to the
 * top layer within 15 s once the bottleneck is lifted. Prints the time spent on each layer and the freezes
 * Chromium counted in each phase.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { launchChromium, pageAt } from "./helpers/browser.ts";
import { startLossyRelay } from "./helpers/lossy_relay.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import {
  publishFromPage,
  routeAnswersThrough,
  THREE_LAYERS,
  watchFromPage,
} from "./helpers/webrtc_clients.ts";
import type { RoomStatsJson } from "../src/http/room_stats.ts";

/** The example bottleneck; lowered to fit between the top two layers when they send less. */
const MAX_BOTTLENECK_BPS = 600_000;

interface Sample {
  at: number;
  layer: string | null;
  state?: unknown;
  bandwidth?: unknown;
  lost: number;
  rtt: number | null;
  frameWidth: number;
  freezes: number;
  freezeSeconds: number;
}

function viewerVideo(page: Page): Promise<{ frameWidth: number; freezes: number; freezeSeconds: number }> {
  return page.evaluate(async () => {
    const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
    const out = { frameWidth: 0, freezes: 0, freezeSeconds: 0 };
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.frameWidth = s.frameWidth ?? 0;
        out.freezes = s.freezeCount ?? 0;
        out.freezeSeconds = s.totalFreezesDuration ?? 0;
      }
    });
    return out;
  });
}

/** Time on each layer (s) and freezes between samples `from` and `to`. */
function summary(samples: Sample[], from: number, to: number): string {
  const inside = samples.filter((s) => s.at >= from && s.at <= to);
  const time = new Map<string, number>();
  for (let i = 1; i < inside.length; i++) {
    const key = String(inside[i - 1].layer);
    time.set(key, (time.get(key) ?? 0) + (inside[i].at - inside[i - 1].at) / 1000);
  }
  const first = inside[0];
  const last = inside.at(-1)!;
  const layers = [...time].map(([layer, s]) => `${layer} ${s.toFixed(1)} s`).join(", ");
  return `${layers}; freezes ${last.freezes - first.freezes} (${
    (last.freezeSeconds - first.freezeSeconds).toFixed(2)
  } s)`;
}

Deno.test({
  name: "a viewer behind a 600 kbit/s bottleneck settles on a fitting layer and climbs back when it lifts",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const relay = startLossyRelay("127.0.0.2", { hostname: "127.0.0.1", port: server.udpPort }, {
    downstreamLoss: 0,
    delayMs: 10,
  });
  let browser: Browser | undefined;
  let sampling = true;
  const samplesSeen: Sample[] = [];
  try {
    browser = await launchChromium();
    await publishFromPage(await pageAt(browser, server.baseUrl), {
      token: server.token,
      room: "adaptive",
      videoOnly: true,
      width: 1280,
      height: 720,
      degradation: "maintain-resolution",
      sendEncodings: THREE_LAYERS,
    });
    const stats = () =>
      fetch(`${server.baseUrl}/rooms/adaptive/stats`).then((r) => r.json() as Promise<RoomStatsJson>);
    const warm = await waitFor(
      "three layers, the top one well above the middle one",
      stats,
      (s) =>
        s.layers.length === 3 && s.layers.every((l) => l.active) &&
        s.layers[0].bitrate_kbps > 1.6 * s.layers[1].bitrate_kbps && s.layers[1].bitrate_kbps > 100,
      40_000,
    );
    // Between the middle layer and the top one: the top cannot pass, the middle can.
    const BOTTLENECK_BPS = Math.min(
      MAX_BOTTLENECK_BPS,
      Math.round(((warm.layers[0].bitrate_kbps + warm.layers[1].bitrate_kbps) / 2) * 1000),
    );
    const rates = (s: RoomStatsJson) =>
      s.layers.map((l) => `${l.encoding_id} ${l.bitrate_kbps} kbit/s`).join(", ");
    console.log(`publisher: ${rates(warm)}; bottleneck ${BOTTLENECK_BPS / 1000} kbit/s`);

    const viewer = await pageAt(browser, server.baseUrl);
    await routeAnswersThrough(viewer, relay.address);
    await watchFromPage(viewer, "adaptive");
    await waitFor("the top layer at the viewer", () => viewerVideo(viewer), (v) => v.frameWidth === 1280);

    const samples: Sample[] = samplesSeen;
    const sampler = (async () => {
      while (sampling) {
        const [room, video] = await Promise.all([stats(), viewerVideo(viewer)]);
        samples.push({
          at: Date.now(),
          layer: room.viewers[0]?.layer ?? null,
          state: room.viewers[0]?.layer_state,
          bandwidth: room.viewers[0]?.bandwidth,
          lost: room.viewers[0]?.fraction_lost,
          rtt: room.viewers[0]?.rtt_ms,
          ...video,
        });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    await waitFor("samples", () => samples.length, (n) => n >= 4);

    const limitedAt = Date.now();
    relay.setRate(BOTTLENECK_BPS);
    const settled = await waitFor(
      "a layer that fits",
      stats,
      (s) =>
        s.viewers[0].layer !== "h" &&
        s.layers.find((l) => l.encoding_id === s.viewers[0].layer)!.bitrate_kbps * 1000 < BOTTLENECK_BPS,
      30_000,
    );
    const settleMs = Date.now() - limitedAt;
    // Stay limited a while: the viewer may try the top layer again and must come back down.
    await new Promise((r) => setTimeout(r, 10_000));
    const liftedAt = Date.now();
    relay.setRate(undefined);
    await waitFor("the top layer again", () => viewerVideo(viewer), (v) => v.frameWidth === 1280, 40_000);
    const climbMs = Date.now() - liftedAt;
    await new Promise((r) => setTimeout(r, 1000));
    sampling = false;
    await sampler;

    console.log(
      `publisher while limited: ${rates(settled)}; bottleneck dropped ${relay.queueDrops} datagrams`,
    );
    console.log(
      `settled on ${
        settled.viewers[0].layer
      } ${settleMs} ms after the limit; top again ${climbMs} ms after it lifted`,
    );
    console.log(`before the limit: ${summary(samples, 0, limitedAt)}`);
    console.log(`settling (first 5 s): ${summary(samples, limitedAt, limitedAt + 5000)}`);
    console.log(`limited: ${summary(samples, limitedAt, liftedAt)}`);
    console.log(`after the lift: ${summary(samples, liftedAt, Infinity)}`);
    assert.ok(settleMs <= 5000, `settled within 5 s (${settleMs} ms)`);
    assert.ok(climbMs <= 15_000, `back on the top layer within 15 s (${climbMs} ms)`);
  } catch (e) {
    console.error(`--- server log ---\n${server.logs()}`);
    const file = await Deno.makeTempFile({ prefix: "simulcast-adaptive-", suffix: ".json" });
    await Deno.writeTextFile(file, JSON.stringify(samplesSeen, null, 0).replaceAll("},{", "},\n{"));
    console.error(`--- samples in ${file} ---`);
    throw e;
  } finally {
    sampling = false;
    relay.close();
    await browser?.close();
    await server.stop();
  }
});
