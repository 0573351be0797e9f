/**
 * Loss recovery with a real browser: a Chromium viewer watches through a relay that drops 5 % of what the
 * server sends it. Its NACKs must be answered on the RTX stream it negotiated (RFC 4588), which Chromium
 * counts as retransmitted packets, and the server's stats must show the resends.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launchChromium, pageAt } from "./helpers/browser.ts";
import { seededRandom, startLossyRelay } from "./helpers/lossy_relay.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import {
  publishFromPage,
  recoveryStats,
  routeAnswersThrough,
  watchFromPage,
} from "./helpers/webrtc_clients.ts";

Deno.test({
  name: "a viewer on a lossy path gets its losses back on its RTX stream",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const relay = startLossyRelay("127.0.0.2", { hostname: "127.0.0.1", port: server.udpPort }, {
    downstreamLoss: 0.05,
    delayMs: 20,
    random: seededRandom(7),
  });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    await publishFromPage(await pageAt(browser, server.baseUrl), {
      token: server.token,
      room: "lossy",
      videoOnly: true,
    });
    const viewer = await pageAt(browser, server.baseUrl);
    await routeAnswersThrough(viewer, relay.address);
    await watchFromPage(viewer, "lossy");
    const answer = await viewer.evaluate(() =>
      (globalThis as unknown as { pc: RTCPeerConnection }).pc.remoteDescription!.sdp
    );
    assert.match(answer, /a=ssrc-group:FID \d+ \d+/, "the answer pairs an RTX stream with the video");

    const stats = await waitFor(
      "retransmissions to arrive on the RTX stream",
      () => recoveryStats(viewer),
      (s) => s.retransmittedPacketsReceived >= 10 && s.framesDecoded >= 60,
      20_000,
    );
    assert.ok(stats.nackCount > 0, "the viewer NACKed its losses");
    assert.ok(relay.dropped > 0, "the relay dropped packets");
    const roomStats = await (await fetch(`${server.baseUrl}/rooms/lossy/stats`)).json();
    assert.ok(roomStats.viewers[0].packets_resent >= stats.retransmittedPacketsReceived);
  } catch (e) {
    console.error(`--- server log ---\n${server.logs()}`);
    throw e;
  } finally {
    relay.close();
    await browser?.close();
    await server.stop();
  }
});
