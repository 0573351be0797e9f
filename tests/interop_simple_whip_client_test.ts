/**
 * Interop: Meetecho's simple-whip-client (Debian package `simple-whip-client`, GStreamer webrtcbin + libnice)
 * publishes an H.264 test pattern and Opus noise. It asks OPTIONS for ICE servers (-f), trickles its
 * candidates with PATCH and DELETEs the session when stopped. A Chromium page watches over WHEP and must
 * decode the picture.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { createNetNamespace, netnsUnavailable } from "./helpers/netns.ts";
import { type HttpRecorder, startHttpRecorder } from "./helpers/http_recorder.ts";
import {
  buildSoupShim,
  hasCommand,
  hasGstElement,
  missing,
  roomIds,
  spawnForeign,
  waitFor,
} from "./interop/harness.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const ignored = missing([
  [hasCommand("whip-client"), "whip-client (apt: simple-whip-client)"],
  [hasGstElement("webrtcbin"), "webrtcbin (apt: gstreamer1.0-plugins-bad)"],
  [hasGstElement("nicesrc"), "nicesrc (apt: gstreamer1.0-nice)"],
  [hasGstElement("x264enc"), "x264enc (apt: gstreamer1.0-plugins-ugly)"],
  [hasGstElement("opusenc"), "opusenc (apt: gstreamer1.0-plugins-base)"],
  [hasCommand("cc"), "cc (apt: gcc), to build the libsoup shim"],
  [hasCommand(CHROMIUM), `Chromium at ${CHROMIUM}`],
  [netnsUnavailable() === undefined, `a private network namespace (${netnsUnavailable()})`],
]);

const VIDEO = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1 ! " +
  "videoconvert ! queue ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1000 ! " +
  "video/x-h264,profile=constrained-baseline ! rtph264pay pt=96 ssrc=2 config-interval=-1 ! queue ! " +
  "application/x-rtp,media=video,encoding-name=H264,payload=96";
const AUDIO = "audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! " +
  "rtpopuspay pt=111 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111";

Deno.test({
  name: "simple-whip-client publishes H.264 with trickle ICE; Chromium decodes it over WHEP",
  ignore: ignored !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // libnice never pairs loopback: the server, the client and Chromium share a private namespace.
  const netns = await createNetNamespace();
  const server = await startServerProcess({
    ICE_SERVERS: "stun:127.0.0.1:3478",
    RATE_LIMIT_PER_MINUTE: "0",
  }, { netns });
  const dir = await Deno.makeTempDir({ prefix: "swc-" });
  let browser: Browser | undefined;
  let client: ReturnType<typeof spawnForeign> | undefined;
  let recorder: HttpRecorder | undefined;
  try {
    const shim = await buildSoupShim(dir);
    // The client talks to the server through a recorder, so the test sees each exchange's status.
    recorder = await startHttpRecorder(server.baseUrl, netns);
    client = spawnForeign(
      "whip-client",
      [
        "-u",
        `${recorder.baseUrl}/whip?room=swc`,
        "-t",
        server.token,
        "-f",
        "-l",
        "5",
        "-o",
        "-V",
        VIDEO,
        "-A",
        AUDIO,
      ],
      { LD_PRELOAD: shim },
      netns,
    );
    const running = client;
    await waitFor(
      "simple-whip-client's room to go live",
      async () => {
        const status = await Promise.race([running.status, Promise.resolve(undefined)]);
        if (status) throw new Error(`whip-client exited (${status.code}):\n${running.output()}`);
        return roomIds(server.baseUrl);
      },
      (ids) => ids.includes("swc"),
      30_000,
    );

    browser = await launchChromium([], netns);
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    await watchFromPage(page, "swc");
    const stats = await waitFor(
      "Chromium to decode simple-whip-client's video",
      () => receiveStats(page),
      (s) => s.framesDecoded > 30 && s.audioPackets > 0,
      30_000,
    );
    assert.equal(stats.videoCodec, "video/H264");
    assert.equal(stats.frameWidth, 640);
    assert.equal(stats.frameHeight, 480);

    // The last trickle PATCH (end-of-candidates) goes out on the client's next 100 ms tick after gathering.
    const output = await waitFor(
      "the end-of-candidates PATCH",
      running.output,
      (o) => /end-of-candidates/.test(o),
    );
    assert.match(output, /Auto configuration of STUN\/TURN servers/, "OPTIONS answered with Link headers");
    assert.match(output, /-- <stun:127\.0\.0\.1:3478>; rel="ice-server"/);
    const recorded = recorder;
    const patches = () => recorded.exchanges().filter((e) => e.method === "PATCH");
    // Candidates, then end-of-candidates: at least two PATCHes, all answered.
    await waitFor("the trickle PATCHes to be answered", patches, (p) => p.length >= 2);

    const status = await client.stop("SIGINT");
    assert.equal(status.code, 0, client.output());
    assert.match(client.output(), /Disconnecting from server \(Shutting down\)/);
    const exchanges = recorder.exchanges();
    const session = exchanges.find((e) => e.method === "POST")!;
    assert.deepEqual(
      exchanges.map((e) => `${e.method} ${e.path === session?.path ? "endpoint" : "session"} ${e.status}`),
      [
        "OPTIONS endpoint 204",
        "POST endpoint 201",
        ...patches().map(() => "PATCH session 204"),
        "DELETE session 200",
      ],
      "every trickle PATCH was accepted and the DELETE answered 200",
    );
    await waitFor("the room to close", () => roomIds(server.baseUrl), (ids) => !ids.includes("swc"), 10_000);
    assert.match(server.logs(), /whip session \S+ closed \(deleted\); room swc closed/);
  } catch (e) {
    console.error(`--- whip-client output ---\n${client?.output()}\n--- server log ---\n${server.logs()}`);
    throw e;
  } finally {
    await client?.stop("SIGKILL");
    await recorder?.stop();
    await browser?.close();
    await server.stop();
    await netns.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
