/**
 * Simulcast end to end: headless Chromium publishes three layers (rid h, m, l at full, 1/2 and 1/4 size);
 * the server receives all three (the room's stats list each layer's bytes and picture size) and a default
 * Chromium viewer decodes the top layer.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { type ServerProcess, startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";
import type { RoomStatsJson } from "../src/http/room_stats.ts";

/** The layers as Chromium's examples name them: h full size, m half, l quarter. */
export const THREE_LAYERS = [
  { rid: "h", scaleResolutionDownBy: 1 },
  { rid: "m", scaleResolutionDownBy: 2 },
  { rid: "l", scaleResolutionDownBy: 4 },
];

Deno.test({
  name: "Chromium publishes three simulcast layers; all arrive, a default viewer decodes the top one",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server: ServerProcess = await startServerProcess();
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const publisherPage = await browser.newPage();
    const viewerPage = await browser.newPage();
    await publisherPage.goto(`${server.baseUrl}/healthz`);
    await viewerPage.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(publisherPage, {
      token: server.token,
      room: "layers",
      videoOnly: true,
      width: 1280,
      height: 720,
      degradation: "maintain-resolution",
      sendEncodings: THREE_LAYERS,
    });
    const stats = () =>
      fetch(`${server.baseUrl}/rooms/layers/stats`).then((r) => r.json() as Promise<RoomStatsJson>);
    const layered = await waitFor(
      "all three layers with bytes and picture sizes",
      stats,
      (s) => s.layers.length === 3 && s.layers.every((l) => l.bytes_received > 0 && l.width !== null),
      30_000,
    );
    const byRid = new Map(layered.layers.map((l) => [l.encoding_id, l]));
    console.log(
      "layers:",
      layered.layers.map((l) => `${l.encoding_id} ${l.width}x${l.height} ${l.bitrate_kbps} kbit/s`).join(
        ", ",
      ),
    );
    assert.equal(byRid.get("h")!.width, 1280);
    assert.equal(byRid.get("m")!.width, 640);
    assert.equal(byRid.get("l")!.width, 320);

    await watchFromPage(viewerPage, "layers");
    const received = await waitFor(
      "the viewer to decode the top layer",
      () => receiveStats(viewerPage),
      (s) => s.framesDecoded > 10 && s.frameWidth === 1280,
      30_000,
    );
    assert.equal(received.frameHeight, 720);
    const room = await stats();
    console.log(
      "after the viewer decoded:",
      room.layers.map((l) => `${l.encoding_id} ${l.width}x${l.height} ${l.bitrate_kbps} kbit/s`).join(", "),
    );
    assert.equal(room.viewers[0].layer, "h");
    const listed = await (await fetch(`${server.baseUrl}/rooms/layers`)).json();
    assert.equal(listed.video.width, 1280, "the room shows its top layer's picture");
  } finally {
    await browser?.close();
    await server.stop();
  }
});
