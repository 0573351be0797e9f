/**
 * Simulcast end to end: headless Chromium publishes three layers (rid h, m, l at full, 1/2 and 1/4 size);
 * the server receives all three (the room's stats list each layer's bytes and picture size) and a default
 * Chromium viewer decodes the top layer.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { type ServerProcess, startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage, receiveStats, THREE_LAYERS, watchFromPage } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";
import { openSse } from "./helpers/sse.ts";
import type { RoomStatsJson } from "../src/http/room_stats.ts";

Deno.test({
  name:
    "Chromium publishes three simulcast layers; all arrive, a default viewer decodes the top one, a pinned one the quarter-size layer",
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

    // Manual selection, the WHEP layer extension's way (as Broadcast Box's player does it).
    const links: string = await viewerPage.evaluate(() =>
      (globalThis as unknown as { whepLinks: string }).whepLinks
    );
    const layerUrl = /<([^>]+)>; rel="urn:ietf:params:whep:ext:core:layer"/.exec(links)?.[1];
    const sseUrl = /<([^>]+)>; rel="urn:ietf:params:whep:ext:core:server-sent-events"; events="layers"/.exec(
      links,
    )
      ?.[1];
    assert.ok(layerUrl && sseUrl, `both extension links in ${links}`);
    const events = await openSse(`${server.baseUrl}${sseUrl}`);
    // A session may hold two layer event streams open; a third is refused.
    const second = await openSse(`${server.baseUrl}${sseUrl}`);
    const third = await fetch(`${server.baseUrl}${sseUrl}`);
    assert.equal(third.status, 429);
    assert.match(await third.text(), /already has 2 layer event streams open/);
    second.close();
    const first = await events.waitFor(() => true) as Record<string, { layers: { encodingId: string }[] }>;
    const [mid] = Object.keys(first);
    assert.deepEqual(first[mid].layers.map((l) => l.encodingId).sort(), ["h", "l", "m"]);
    const select = (body: string) =>
      fetch(`${server.baseUrl}${layerUrl}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });

    let r = await select("{not json");
    assert.equal(r.status, 400);
    assert.match(await r.text(), /JSON/);
    r = await select(JSON.stringify({ mediaId: mid, encodingId: "x" }));
    assert.equal(r.status, 400);
    assert.match(await r.text(), /unknown encodingId "x".*h, m, l/);
    r = await select("x".repeat(5000));
    assert.equal(r.status, 413);
    await r.body?.cancel();

    let asked = Date.now();
    r = await select(JSON.stringify({ mediaId: mid, encodingId: "l" }));
    assert.equal(r.status, 204);
    await waitFor("the quarter-size layer", () => receiveStats(viewerPage), (s) => s.frameWidth === 320);
    const down = Date.now() - asked;
    asked = Date.now();
    r = await select(JSON.stringify({ mediaId: mid, encodingId: "" }));
    assert.equal(r.status, 204);
    await waitFor("the top layer again", () => receiveStats(viewerPage), (s) => s.frameWidth === 1280);
    const up = Date.now() - asked;
    console.log(`pinned to l: decoding 320x180 after ${down} ms; back to automatic: 1280x720 after ${up} ms`);
    assert.ok(down < 3000 && up < 3000, "each switch within 3 s");
    const current = await events.waitFor((e) =>
      (e as Record<string, { current: string }>)[mid]?.current === "h"
    );
    assert.ok(current);
    events.close();

    // /rooms lists the layers; the watch page's quality menu offers Auto and each layer by height.
    const listedLayers = (await (await fetch(`${server.baseUrl}/rooms/layers`)).json()).layers;
    assert.deepEqual(listedLayers.map((l: { encoding_id: string }) => l.encoding_id), ["h", "m", "l"]);
    const watchPage = await browser.newPage();
    await watchPage.goto(`${server.baseUrl}/watch/layers`);
    const menu = await waitFor(
      "the quality menu",
      () =>
        watchPage.evaluate(() => [...document.querySelectorAll("#quality option")].map((o) => o.textContent)),
      (labels) => labels.length === 4,
    );
    assert.deepEqual(menu, ["Auto", "720p", "360p", "180p"]);
    const pageVideo = () =>
      watchPage.evaluate(() => ({
        width: (document.getElementById("video") as HTMLVideoElement).videoWidth,
        now: document.getElementById("quality-now")!.textContent,
      }));
    await waitFor("the watch page at 720p", pageVideo, (v) => v.width === 1280 && v.now === "receiving 720p");
    await watchPage.selectOption("#quality", "l");
    await waitFor("the watch page at 180p", pageVideo, (v) => v.width === 320 && v.now === "receiving 180p");
    await watchPage.selectOption("#quality", "");
    await waitFor(
      "the watch page back at 720p",
      pageVideo,
      (v) => v.width === 1280 && v.now === "receiving 720p",
    );

    // The publish page sends simulcast by default where the browser can (Chromium can).
    const publishPage = await browser.newPage();
    await publishPage.goto(`${server.baseUrl}/publish`);
    assert.ok(await publishPage.locator("#simulcast").isChecked(), "simulcast is on by default");
    await publishPage.locator("#token").fill(server.token);
    await publishPage.locator("#room").fill("from-page");
    await publishPage.getByRole("button", { name: "Start streaming" }).click();
    await publishPage.locator('#status[data-state="live"]').waitFor({ timeout: 20000 });
    const fromPage = await waitFor(
      "the publish page's three layers",
      () => fetch(`${server.baseUrl}/rooms/from-page/stats`).then((r) => r.json() as Promise<RoomStatsJson>),
      (s) => s.layers.length === 3 && s.layers.every((l) => l.bytes_received > 0),
      30_000,
    );
    assert.deepEqual(fromPage.layers.map((l) => l.encoding_id), ["h", "m", "l"]);
  } catch (e) {
    console.error(`--- server log ---\n${server.logs()}`);
    throw e;
  } finally {
    await browser?.close();
    await server.stop();
  }
});
