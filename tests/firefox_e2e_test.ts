/**
 * Firefox ESR (no H.264 here: its OpenH264 plugin is never downloaded) publishes VP8 from its fake camera and
 * watches a VP8 room Chromium publishes; Chromium watches Firefox's room; an H.264 room answers Firefox 406
 * with what the room sends and what Firefox offered. Firefox runs headless over WebDriver BiDi
 * (puppeteer-core), inside a private network namespace with the server and Chromium.
 */
/// <reference lib="dom" />
import assert from "node:assert/strict";
import type { Page as FirefoxPage } from "puppeteer-core";
import { launchChromium } from "./helpers/browser.ts";
import { FIREFOX_PATH, launchFirefox } from "./helpers/firefox.ts";
import { createNetNamespace, netnsUnavailable } from "./helpers/netns.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";

let missing: string | undefined;
try {
  Deno.statSync(FIREFOX_PATH);
} catch {
  missing = `Firefox at ${FIREFOX_PATH} (apt: firefox-esr)`;
}
missing ??= netnsUnavailable() && `a private network namespace (${netnsUnavailable()})`;
if (missing) console.warn(`Firefox e2e ignored: missing ${missing}`);

/** Publishes Firefox's fake camera and microphone with only `codec` offered for video (all when empty). */
function publish(page: FirefoxPage, token: string, room: string, codec: string): Promise<string> {
  return page.evaluate(
    async (token: string, room: string, codec: string) => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      const pc = new RTCPeerConnection();
      const video = pc.addTransceiver(stream.getVideoTracks()[0], {
        direction: "sendonly",
        streams: [stream],
      });
      const codecs = RTCRtpSender.getCapabilities("video")!.codecs;
      if (codec) video.setCodecPreferences(codecs.filter((c) => [codec, "video/rtx"].includes(c.mimeType)));
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly", streams: [stream] });
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(`/whip?room=${room}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
        body: pc.localDescription!.sdp,
      });
      if (res.status !== 201) throw new Error(`WHIP POST answered ${res.status}: ${await res.text()}`);
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      (globalThis as unknown as { pc: RTCPeerConnection }).pc = pc;
      return res.headers.get("Location")!;
    },
    token,
    room,
    codec,
  );
}

/** Watches a room in Firefox (offering what Firefox can receive). */
function watch(page: FirefoxPage, room: string): Promise<string> {
  return page.evaluate(async (room: string) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    document.body.append(video);
    pc.ontrack = (e) => {
      if (e.track.kind === "video") video.srcObject = new MediaStream([e.track]);
    };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`/whep?target_id=${room}`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription!.sdp,
    });
    if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${await res.text()}`);
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    (globalThis as unknown as { pc: RTCPeerConnection }).pc = pc;
    return res.headers.get("Location")!;
  }, room);
}

/** Firefox's inbound video: frames decoded and the codec. */
function firefoxReceived(page: FirefoxPage): Promise<{ frames: number; codec: string; width: number }> {
  return page.evaluate(async () => {
    const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
    const report = await pc.getStats();
    let out = { frames: 0, codec: "", width: 0 };
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out = {
          frames: s.framesDecoded ?? 0,
          codec: (s.codecId && report.get(s.codecId)?.mimeType) ?? "",
          width: s.frameWidth ?? 0,
        };
      }
    });
    return out;
  });
}

Deno.test({
  name: "Firefox ESR publishes VP8 and, by default, AV1 (Chromium decodes both) and watches Chromium's VP8",
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // Firefox ICE uses no loopback: the server, Firefox and Chromium share a private namespace.
  const netns = await createNetNamespace();
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" }, { netns });
  const { browser: firefox, close: closeFirefox } = await launchFirefox(netns);
  const chromium = await launchChromium([], netns);
  try {
    const ffPublisher = await firefox.newPage();
    await ffPublisher.goto(`${server.baseUrl}/healthz`);
    await publish(ffPublisher, server.token, "from-firefox", "video/VP8");
    const chromeViewer = await chromium.newPage();
    await chromeViewer.goto(`${server.baseUrl}/healthz`);
    await waitFor(
      "Firefox's room to be live",
      async () => (await fetch(`${server.baseUrl}/rooms/from-firefox`)).status,
      (s) => s === 200,
    );
    await watchFromPage(chromeViewer, "from-firefox");
    const seen = await waitFor(
      "Chromium to decode Firefox's VP8",
      () => receiveStats(chromeViewer),
      (s) => s.framesDecoded > 30,
      30_000,
    );
    assert.equal(seen.videoCodec, "video/VP8");
    assert.ok(seen.audioPackets > 0, "Firefox's Opus arrives too");

    const chromePublisher = await chromium.newPage();
    await chromePublisher.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(chromePublisher, {
      token: server.token,
      room: "from-chromium",
      codec: "video/VP8",
    });
    const ffViewer = await firefox.newPage();
    await ffViewer.goto(`${server.baseUrl}/healthz`);
    await watch(ffViewer, "from-chromium");
    const received = await waitFor(
      "Firefox to decode Chromium's VP8",
      () => firefoxReceived(ffViewer),
      (r) => r.frames > 30,
      30_000,
    );
    assert.equal(received.codec, "video/VP8");
    assert.ok(received.width > 0);

    // Firefox's own offer (VP8, VP9, AV1; no H.264 here) gets the first of the server's order it has: AV1.
    const ffDefault = await firefox.newPage();
    await ffDefault.goto(`${server.baseUrl}/healthz`);
    await publish(ffDefault, server.token, "firefox-default", "");
    const defaultViewer = await chromium.newPage();
    await defaultViewer.goto(`${server.baseUrl}/healthz`);
    await waitFor(
      "Firefox's default room to be live",
      async () => (await fetch(`${server.baseUrl}/rooms/firefox-default`)).status,
      (s) => s === 200,
    );
    await watchFromPage(defaultViewer, "firefox-default");
    const av1 = await waitFor(
      "Chromium to decode Firefox's default codec",
      () => receiveStats(defaultViewer),
      (s) => s.framesDecoded > 30,
      30_000,
    );
    assert.equal(av1.videoCodec, "video/AV1");

    // An H.264 room: this Firefox has no H.264 decoder, and the 406 says what the room sends and what it offered.
    const h264Publisher = await chromium.newPage();
    await h264Publisher.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(h264Publisher, { token: server.token, room: "h264-room" });
    const refusedPage = await firefox.newPage();
    await refusedPage.goto(`${server.baseUrl}/healthz`);
    await assert.rejects(
      watch(refusedPage, "h264-room"),
      /406: room "h264-room" sends H\.264 .*; the offer can receive VP8, VP9, AV1/,
    );
  } catch (e) {
    console.error(`--- server ---\n${server.logs()}`);
    throw e;
  } finally {
    await closeFirefox();
    await chromium.close();
    await server.stop();
    await netns.close();
  }
});
