/**
 * VP8, VP9 and AV1 end to end with Chromium: a page publishes its fake camera with only that codec
 * (setCodecPreferences), another page watches and decodes the same codec, the rooms API names it with the
 * bitstream's picture size, and the thumbnail is a JPEG of the same picture. A viewer that cannot receive
 * the room's codec gets a 406 naming both sides. The publish page's codec choice; VP8 simulcast.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import type { Page } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import {
  offerFromPage,
  publishFromPage,
  receiveStats,
  timeToFirstFrame,
  watchFromPage,
} from "./helpers/webrtc_clients.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { rtpFixture } from "./fixtures/rtp_fixture.ts";
import { metricOf } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";

/** Mean red, green and blue of what the page's `<video>` shows now. */
function videoMeanColor(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const video = document.querySelector("video")!;
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 48;
    const ctx = canvas.getContext("2d")!;
    ctx.drawImage(video, 0, 0, 64, 48);
    const { data } = ctx.getImageData(0, 0, 64, 48);
    const sum = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
    return sum.map((s) => s / (data.length / 4));
  });
}

for (const codec of ["VP8", "VP9", "AV1"]) {
  Deno.test({
    name: `${codec}: Chromium publishes it, a Chromium viewer decodes it, the room gets a thumbnail`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const server = await startServerProcess({ THUMBNAIL_INTERVAL: "1", RATE_LIMIT_PER_MINUTE: "0" });
    const browser = await launchChromium();
    try {
      const publisher = await browser.newPage();
      const viewer = await browser.newPage();
      await publisher.goto(`${server.baseUrl}/healthz`);
      await viewer.goto(`${server.baseUrl}/healthz`);
      const room = codec.toLowerCase();
      await publishFromPage(publisher, {
        token: server.token,
        room,
        codec: `video/${codec}`,
        degradation: "maintain-resolution",
        // One room without audio: the viewer's audio m-line is then answered inactive.
        videoOnly: codec === "VP9",
      });
      await watchFromPage(viewer, room);
      const stats = await waitFor(
        `${codec} frames to be decoded`,
        () => receiveStats(viewer),
        (s) => s.framesDecoded > 30,
        30_000,
      );
      assert.equal(stats.videoCodec, `video/${codec}`);

      const info = await waitFor(
        "the picture size and the thumbnail",
        async () => await (await fetch(`${server.baseUrl}/rooms/${room}`)).json(),
        (r) => r.thumbnail_url !== null && r.video.width !== null && r.video.fps !== null,
        30_000,
      );
      assert.equal(info.video.codec, codec);
      // Chromium may scale its encoder down on a loaded machine; the camera's 4:3 shape stays.
      assert.equal(info.video.width * 3, info.video.height * 4, `${info.video.width}x${info.video.height}`);
      assert.equal(info.video.width, stats.frameWidth, "the size read from the bitstream is what is decoded");

      const jpeg = new Uint8Array(
        await (await fetch(`${server.baseUrl}${info.thumbnail_url}`)).arrayBuffer(),
      );
      assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
      const image = sharp(jpeg);
      const meta = await image.metadata();
      assert.equal(meta.width! * 3, meta.height! * 4, `thumbnail ${meta.width}x${meta.height}`);
      // The thumbnail shows the camera's picture: its colour balance matches what the viewer shows (as
      // shares of the total: ffmpeg and the browser's canvas may map the video's colour range differently).
      const thumbMean = (await image.stats()).channels.slice(0, 3).map((c) => c.mean);
      const shown = await videoMeanColor(viewer);
      const share = (v: number[]) => v.map((x) => x / (v[0] + v[1] + v[2]));
      for (let c = 0; c < 3; c++) {
        assert.ok(
          Math.abs(share(thumbMean)[c] - share(shown)[c]) < 0.1,
          `channel ${c}: thumbnail ${thumbMean}, video ${shown}`,
        );
      }
      assert.ok((await image.stats()).channels[1].stdev > 5, "not a blank picture");

      // A viewer that offers only H.264 cannot watch this room: 406 naming the room's codec and its offer.
      const h264Only = (await offerFromPage(viewer, ["video"], true)).replace(/a=sendonly/g, "a=recvonly")
        .replace(/a=rtpmap:(\d+) (VP8|VP9|AV1)\/90000\r\n/g, "");
      const refused = await fetch(`${server.baseUrl}/whep?target_id=${room}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: h264Only,
      });
      const reason = await refused.text();
      assert.equal(refused.status, 406, reason);
      assert.match(reason, new RegExp(`sends ${codec}`));
      assert.match(reason, /can receive .*H264/);
    } catch (e) {
      console.error(`--- server ---\n${server.logs()}`);
      throw e;
    } finally {
      await browser.close();
      await server.stop();
    }
  });
}

Deno.test({
  name: "the publish page lists the codecs Chromium encodes and publishes the one chosen",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/publish`);
    const options = await page.locator("#codec option").allInnerTexts();
    for (const name of ["H.264", "AV1", "VP9", "VP8"]) assert.ok(options.includes(name), `${options}`);
    await page.getByLabel("Token").fill(server.token);
    await page.getByLabel("Room name").fill("chosen");
    await page.getByLabel("Video codec").selectOption({ label: "VP9" });
    await page.getByRole("button", { name: "Start streaming" }).click();
    await page.locator('#status[data-state="live"]').waitFor({ timeout: 20000 });
    const info = await (await fetch(`${server.baseUrl}/rooms/chosen`)).json();
    assert.equal(info.video.codec, "VP9");
  } catch (e) {
    console.error(`--- server ---\n${server.logs()}`);
    throw e;
  } finally {
    await browser.close();
    await server.stop();
  }
});

Deno.test({
  name:
    "VP8 simulcast: three layers arrive, a viewer decodes the top one and switches to the quarter-size one",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const browser = await launchChromium();
  try {
    const publisher = await browser.newPage();
    const viewer = await browser.newPage();
    await publisher.goto(`${server.baseUrl}/healthz`);
    await viewer.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(publisher, {
      token: server.token,
      room: "vp8-layers",
      codec: "video/VP8",
      videoOnly: true,
      width: 1280,
      height: 720,
      degradation: "maintain-resolution",
      sendEncodings: [
        { rid: "h", scaleResolutionDownBy: 1 },
        { rid: "m", scaleResolutionDownBy: 2 },
        { rid: "l", scaleResolutionDownBy: 4 },
      ],
    });
    const stats = () => fetch(`${server.baseUrl}/rooms/vp8-layers/stats`).then((r) => r.json());
    const layered = await waitFor(
      "three VP8 layers with their picture sizes (from the VP8 key frame headers)",
      stats,
      (s) => s.layers?.length === 3 && s.layers.every((l: { width: number | null }) => l.width !== null),
      30_000,
    );
    const widths = Object.fromEntries(
      layered.layers.map((l: { encoding_id: string; width: number }) => [l.encoding_id, l.width]),
    );
    assert.deepEqual(widths, { h: 1280, m: 640, l: 320 });

    await watchFromPage(viewer, "vp8-layers");
    const top = await waitFor(
      "the top VP8 layer",
      () => receiveStats(viewer),
      (s) => s.framesDecoded > 10 && s.frameWidth === 1280,
      30_000,
    );
    assert.equal(top.videoCodec, "video/VP8");
    // Switching layers waits for a keyframe of the target layer: VP8 keyframe detection per layer.
    const links: string = await viewer.evaluate(() =>
      (globalThis as unknown as { whepLinks: string }).whepLinks
    );
    const layerUrl = /<([^>]+)>; rel="urn:ietf:params:whep:ext:core:layer"/.exec(links)?.[1];
    assert.ok(layerUrl, links);
    const r = await fetch(`${server.baseUrl}${layerUrl}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      // The viewer page's video transceiver was added first: mid 0.
      body: JSON.stringify({ mediaId: "0", encodingId: "l" }),
    });
    assert.equal(r.status, 204, await r.text());
    await waitFor(
      "the quarter-size VP8 layer",
      () => receiveStats(viewer),
      (s) => s.frameWidth === 320,
      30_000,
    );
  } catch (e) {
    console.error(`--- server ---\n${server.logs()}`);
    throw e;
  } finally {
    await browser.close();
    await server.stop();
  }
});

Deno.test({
  name: "AV1 from a PLI-ignoring publisher: viewers joining after its only keyframe decode from the cache",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // 30 s of AV1 at 10 fps with one keyframe, packetized per the AV1 RTP spec; the project's light client
  // sends it paced and never acts on PLI, so only the server's cache can give a joining viewer a keyframe.
  const packets = await rtpFixture("av1", { width: 320, height: 180, frames: 300, gop: 300 });
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const browser = await launchChromium();
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "av1-cache",
    token: server.token,
    certificate: await createClientCertificate(),
    videoCodec: { name: "AV1" },
  });
  let sending = true;
  const sent = (async () => {
    const started = performance.now();
    for (let i = 0; i < packets.length && sending; i++) {
      const p = packets[i];
      // Real time: each frame leaves at its RTP timestamp (90 kHz) after the first.
      const due = started + (p.timestamp - packets[0].timestamp) / 90;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      const packet = new Uint8Array(12 + p.payload.length);
      const view = new DataView(packet.buffer);
      packet[0] = 0x80;
      packet[1] = (p.marker ? 0x80 : 0) | publisher.media.videoPayloadType;
      view.setUint16(2, p.seq);
      view.setUint32(4, p.timestamp);
      view.setUint32(8, publisher.videoSsrc);
      packet.set(p.payload, 12);
      publisher.sendRtp(packet);
    }
  })();
  try {
    const info = await waitFor(
      "the AV1 room with its picture size (from the sequence header)",
      async () => await (await fetch(`${server.baseUrl}/rooms/av1-cache`)).json(),
      (r) => r.video?.width !== null && r.video?.width !== undefined,
    );
    assert.equal(info.video.codec, "AV1");
    assert.deepEqual([info.video.width, info.video.height], [320, 180]);
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) samples.push(await timeToFirstFrame(page, "av1-cache", 5000));
    console.log(
      `AV1: time to first frame from the cache: ${samples.map((s) => `${s.toFixed(0)} ms`).join(", ")}`,
    );
    assert.ok(await metricOf(server.baseUrl, "sfu_keyframe_cache_hits_total") >= 3);
  } catch (e) {
    console.error(`--- server ---\n${server.logs()}`);
    throw e;
  } finally {
    sending = false;
    await sent;
    await publisher.close();
    await browser.close();
    await server.stop();
  }
});

for (const [codec, mode] of [["VP9", "L3T3_KEY"], ["AV1", "L1T3"]]) {
  Deno.test({
    name: `${codec} SVC ${mode} is forwarded whole: a viewer decodes the full-size picture`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
    const browser = await launchChromium();
    try {
      const publisher = await browser.newPage();
      const viewer = await browser.newPage();
      await publisher.goto(`${server.baseUrl}/healthz`);
      await viewer.goto(`${server.baseUrl}/healthz`);
      await publishFromPage(publisher, {
        token: server.token,
        room: "svc",
        codec: `video/${codec}`,
        width: 1280,
        height: 720,
        videoOnly: true,
        degradation: "maintain-resolution",
        sendEncodings: [{ scalabilityMode: mode }],
      });
      await watchFromPage(viewer, "svc");
      const stats = await waitFor(
        `${codec} ${mode} frames`,
        () => receiveStats(viewer),
        (s) => s.framesDecoded > 60 && s.frameWidth === 1280,
        30_000,
      );
      assert.equal(stats.videoCodec, `video/${codec}`);
    } catch (e) {
      console.error(`--- server ---\n${server.logs()}`);
      throw e;
    } finally {
      await browser.close();
      await server.stop();
    }
  });
}
