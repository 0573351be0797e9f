/**
 * End to end: the real server process, headless Chromium publishing its fake camera and microphone over WHIP
 * (H.264 preferred) and a second page watching over WHEP; then teardown and the error statuses.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { type ServerProcess, startServerProcess } from "./helpers/server_process.ts";
import { openSse } from "./helpers/sse.ts";
import { offerFromPage, publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";

Deno.test({
  name: "Chromium publishes over WHIP and another Chromium page watches over WHEP",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const server: ServerProcess = await startServerProcess();
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const publisherPage: Page = await browser.newPage();
    const viewerPage: Page = await browser.newPage();
    await publisherPage.goto(`${server.baseUrl}/healthz`);
    await viewerPage.goto(`${server.baseUrl}/healthz`);
    const rooms = async () => (await (await fetch(`${server.baseUrl}/rooms`)).json()).rooms;

    const sse = await openSse(`${server.baseUrl}/notifications`);
    assert.equal(sse.response.headers.get("content-type"), "text/event-stream");
    assert.deepEqual(await sse.waitFor(() => true), { rooms: [] }, "the list is sent on connect");
    type Rooms = { rooms: { id: string; viewer_count: number }[] };
    let publisherLocation = "";
    let viewerLocation = "";
    await t.step("publisher goes live", async () => {
      const published = await publishFromPage(publisherPage, {
        token: server.token,
        room: "e2e-room",
        degradation: "maintain-resolution",
      });
      publisherLocation = published.location;
      assert.match(publisherLocation, /^\/whip\/[A-Za-z0-9_-]{32,}$/);
      assert.equal(published.roomId, "e2e-room");
      const live = await waitFor("room to be listed", rooms, (r) => r.length === 1);
      assert.equal(live[0].id, "e2e-room");
      assert.equal(live[0].viewer_count, 0);
    });

    await t.step("viewer decodes video and receives audio", async () => {
      viewerLocation = await watchFromPage(viewerPage, "e2e-room");
      assert.match(viewerLocation, /^\/whep\/[A-Za-z0-9_-]{32,}$/);
      const stats = await waitFor(
        "frames to be decoded",
        () => receiveStats(viewerPage),
        (s) => s.framesDecoded > 30 && s.frameWidth > 0 && s.audioPackets > 0,
      );
      assert.equal(stats.videoCodec, "video/H264");
      assert.ok(stats.videoWidthInElement > 0, "the <video> element has a width");
      const listed = await waitFor("viewer count 1", rooms, (r) => r[0]?.viewer_count === 1);
      assert.equal(listed[0].viewer_count, 1);
      await sse.waitFor((e) => (e as Rooms).rooms[0]?.viewer_count === 1);
    });

    await t.step("room details and thumbnail", async () => {
      const room = await waitFor(
        "picture size, bitrate and thumbnail",
        async () => (await (await fetch(`${server.baseUrl}/rooms/e2e-room`)).json()),
        (r) => r.thumbnail_url !== null && r.video.width !== null && r.bitrate_kbps > 0,
      );
      assert.equal(room.video.codec, "H264");
      assert.equal(room.video.width, 640);
      assert.equal(room.video.height, 480);
      assert.equal(room.audio.codec, "opus");
      assert.ok(!Number.isNaN(Date.parse(room.created_at)));
      const jpeg = await fetch(`${server.baseUrl}${room.thumbnail_url}`);
      assert.equal(jpeg.status, 200);
      assert.equal(jpeg.headers.get("content-type"), "image/jpeg");
      const bytes = new Uint8Array(await jpeg.arrayBuffer());
      assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8]);
      const etag = jpeg.headers.get("etag")!;
      const revalidated = await fetch(`${server.baseUrl}${room.thumbnail_url}`, {
        headers: { "If-None-Match": etag },
      });
      await revalidated.body?.cancel();
      assert.equal(revalidated.status, 304);
      const small = await fetch(`${server.baseUrl}/rooms/e2e-room/thumbnail.jpg?w=160`);
      assert.equal(small.status, 200);
      assert.ok((await small.arrayBuffer()).byteLength < bytes.length);
      const bad = await fetch(`${server.baseUrl}/rooms/e2e-room/thumbnail.jpg?w=9999`);
      await bad.body?.cancel();
      assert.equal(bad.status, 400);
      // Per-viewer reception from the viewer's receiver reports; RTT needs a translated sender report first.
      const stats = await waitFor(
        "the viewer's round-trip time",
        async () => (await (await fetch(`${server.baseUrl}/rooms/e2e-room/stats`)).json()),
        (s) => s.viewers[0]?.rtt_ms !== null && s.viewers[0]?.rtt_ms !== undefined,
      );
      assert.equal(stats.viewers.length, 1);
      assert.ok(stats.viewers[0].video_packets_sent > 0 && stats.viewers[0].audio_packets_sent > 0);
      assert.ok(
        stats.viewers[0].rtt_ms >= 0 && stats.viewers[0].rtt_ms < 1000,
        `rtt ${stats.viewers[0].rtt_ms}`,
      );
      assert.ok(stats.publisher.keyframe_requests >= 1);
      // Chromium took transport-cc from the answer: it reports on the numbered video packets it received.
      const feedback = await waitFor(
        "the viewer's transport feedback",
        async () => (await (await fetch(`${server.baseUrl}/rooms/e2e-room/stats`)).json()),
        (s) => s.viewers[0]?.bandwidth?.feedbacks >= 5 && s.viewers[0].bandwidth.received_kbps > 0,
      );
      assert.equal(feedback.viewers[0].bandwidth.malformed_feedbacks, 0);
      const files = [...Deno.readDirSync(server.storageDir)].map((e) => e.name);
      assert.ok(files.includes("e2e-room.jpg"), `thumbnail file in STORAGE_DIR (${files})`);
      await sse.waitFor((e) =>
        (e as { rooms: { thumbnail_url: string | null }[] }).rooms[0]?.thumbnail_url !== null
      );
    });

    await t.step("DELETE of the viewer, then the publisher, ends both", async () => {
      const viewerDelete = await fetch(`${server.baseUrl}${viewerLocation}`, { method: "DELETE" });
      await viewerDelete.body?.cancel();
      assert.equal(viewerDelete.status, 200);
      await waitFor("viewer count 0", rooms, (r) => r[0]?.viewer_count === 0);

      const unauthorized = await fetch(`${server.baseUrl}${publisherLocation}`, { method: "DELETE" });
      await unauthorized.body?.cancel();
      assert.equal(unauthorized.status, 401, "DELETE of a WHIP session needs the token");

      const publisherDelete = await fetch(`${server.baseUrl}${publisherLocation}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${server.token}` },
      });
      await publisherDelete.body?.cancel();
      assert.equal(publisherDelete.status, 200);
      await waitFor("room to close", rooms, (r) => r.length === 0);
      await sse.waitFor((e) => (e as Rooms).rooms.length === 0 && sse.events.indexOf(e) > 0);
      // The feed told the room's life in order: the empty list on connect, the room with its viewer, the
      // end. How many events lie between is not fixed: changes within COALESCE_MS share one event.
      const life = sse.events.map((e): number | "none" => (e as Rooms).rooms[0]?.viewer_count ?? "none");
      const withViewer = life.indexOf(1);
      assert.ok(withViewer > 0 && life.lastIndexOf("none") > withViewer, JSON.stringify(life));
      await waitFor(
        "thumbnail file removed",
        () => Promise.resolve([...Deno.readDirSync(server.storageDir)].map((e) => e.name)),
        (names) => !names.includes("e2e-room.jpg"),
      );
      const gone = await fetch(`${server.baseUrl}/rooms/e2e-room`);
      await gone.body?.cancel();
      assert.equal(gone.status, 404);
      const again = await fetch(`${server.baseUrl}${publisherLocation}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${server.token}` },
      });
      await again.body?.cancel();
      assert.equal(again.status, 404);
      await waitFor(
        "publisher page to see the session end",
        () =>
          publisherPage.evaluate(() =>
            (globalThis as unknown as { pc: RTCPeerConnection }).pc.connectionState
          ),
        (s) => s === "closed" || s === "failed" || s === "disconnected",
      );
    });

    await t.step("error statuses", async () => {
      const videoH264 = await offerFromPage(publisherPage, ["video", "audio"], true);
      const audioOnly = await offerFromPage(publisherPage, ["audio"], true);
      // A video codec the server does not take (Chromium's non-H.264 codecs renamed).
      const videoUnknown = (await offerFromPage(publisherPage, ["video"], false))
        .replace(/ (VP8|VP9|AV1|H265)\/90000/g, " THEORA/90000");
      const post = async (path: string, init: RequestInit) => {
        const res = await fetch(`${server.baseUrl}${path}`, init);
        return { status: res.status, text: await res.text(), headers: res.headers };
      };
      const sdpHeaders = { "Content-Type": "application/sdp", Authorization: `Bearer ${server.token}` };

      let r = await post("/whip", {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: videoH264,
      });
      assert.equal(r.status, 401);
      r = await post("/whip", {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: "Bearer wrong-token-value" },
        body: videoH264,
      });
      assert.equal(r.status, 401);
      r = await post("/whip", {
        method: "POST",
        headers: { ...sdpHeaders, "Content-Type": "text/plain" },
        body: videoH264,
      });
      assert.equal(r.status, 415);
      r = await post("/whip", { method: "POST", headers: sdpHeaders, body: "hello" });
      assert.equal(r.status, 400);
      assert.match(r.text, /malformed SDP/);
      r = await post("/whip", { method: "POST", headers: sdpHeaders, body: audioOnly });
      assert.equal(r.status, 406);
      assert.match(r.text, /no video/);
      r = await post("/whip", { method: "POST", headers: sdpHeaders, body: videoUnknown });
      assert.equal(r.status, 406);
      assert.match(
        r.text,
        /\(THEORA\) has none of the codecs this server takes \(H\.264, AV1, VP9, VP8, H\.265/,
      );
      r = await post("/whip", {
        method: "POST",
        headers: sdpHeaders,
        body: "v=0\r\n" + "a=x\r\n".repeat(20000),
      });
      assert.equal(r.status, 413);
      r = await post("/whip", { method: "GET" });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get("allow"), "POST, OPTIONS");
      r = await post("/whip/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", {
        method: "DELETE",
        headers: { Authorization: `Bearer ${server.token}` },
      });
      assert.equal(r.status, 404);
      r = await post("/whep?target_id=nobody", { method: "POST", headers: sdpHeaders, body: videoH264 });
      assert.equal(r.status, 404);
      r = await post("/whep", { method: "POST", headers: sdpHeaders, body: videoH264 });
      assert.equal(r.status, 400);
      // CORS: a browser WHIP/WHEP client on another origin can make the requests and read the headers.
      r = await post("/whip", {
        method: "OPTIONS",
        headers: { Origin: "https://player.example", "Access-Control-Request-Method": "POST" },
      });
      assert.equal(r.status, 204);
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
      assert.match(r.headers.get("access-control-allow-methods") ?? "", /POST/);
      for (const h of ["Authorization", "Content-Type", "If-Match"]) {
        assert.match(r.headers.get("access-control-allow-headers") ?? "", new RegExp(h));
      }
      r = await post("/rooms", { method: "GET" });
      for (const h of ["Location", "ETag", "Link"]) {
        assert.match(r.headers.get("access-control-expose-headers") ?? "", new RegExp(h));
      }
      // The server is still healthy after all of that.
      r = await post("/healthz", { method: "GET" });
      assert.equal(r.status, 200);
    });
    sse.close();
    if (Deno.env.get("SHOW_SERVER_LOG")) console.error(server.logs());
  } catch (e) {
    console.error(server.logs());
    throw e;
  } finally {
    await browser?.close();
    await server.stop();
  }
});
