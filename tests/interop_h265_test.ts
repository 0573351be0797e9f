/**
 * H.265 end to end with GStreamer on both sides (Chromium here can neither encode nor decode it):
 * simple-whip-client publishes x265enc + rtph265pay through webrtcbin, a webrtcbin WHEP viewer
 * (tests/interop/gst_whep.py) decodes it with avdec_h265, and the room gets its picture size from the SPS
 * and a JPEG thumbnail. All inside a private network namespace (libnice never uses loopback).
 */
import assert from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import { createNetNamespace, netnsUnavailable } from "./helpers/netns.ts";
import {
  buildSoupShim,
  hasCommand,
  hasGstElement,
  missing,
  pythonHas,
  roomIds,
  spawnForeign,
  waitFor,
} from "./interop/harness.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./interop/gst_whep.py", import.meta.url).pathname;
const ignored = missing([
  [hasCommand("whip-client"), "whip-client (apt: simple-whip-client)"],
  [hasGstElement("x265enc"), "x265enc (apt: gstreamer1.0-plugins-bad)"],
  [hasGstElement("rtph265pay"), "rtph265pay (apt: gstreamer1.0-plugins-good)"],
  [hasGstElement("avdec_h265"), "avdec_h265 (apt: gstreamer1.0-libav)"],
  [pythonHas(PYTHON, ["gi"]), "python3-gi (apt: python3-gst-1.0 gir1.2-gst-plugins-bad-1.0)"],
  [hasCommand("cc"), "cc (apt: gcc), to build the libsoup shim"],
  [netnsUnavailable() === undefined, `a private network namespace (${netnsUnavailable()})`],
]);

const VIDEO = "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=640,height=480,framerate=30/1 ! " +
  // Closed GOPs: keyframes are IDR pictures, before which rtph265pay repeats VPS/SPS/PPS (config-interval=-1);
  // x265's default CRA keyframes would carry no parameter sets, so a viewer joining at one could not decode.
  "videoconvert ! queue ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=800 " +
  'option-string="open-gop=0" ! ' +
  "video/x-h265,profile=main ! rtph265pay pt=96 ssrc=2 config-interval=-1 ! queue ! " +
  "application/x-rtp,media=video,encoding-name=H265,payload=96";

Deno.test({
  name: "GStreamer publishes H.265, a GStreamer viewer decodes it, the room gets a thumbnail",
  ignore: ignored !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const netns = await createNetNamespace();
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0", THUMBNAIL_INTERVAL: "1" }, { netns });
  const dir = await Deno.makeTempDir({ prefix: "h265-" });
  let publisher: ReturnType<typeof spawnForeign> | undefined;
  let viewer: ReturnType<typeof spawnForeign> | undefined;
  try {
    const shim = await buildSoupShim(dir);
    publisher = spawnForeign(
      "whip-client",
      ["-u", `${server.baseUrl}/whip?room=hevc`, "-t", server.token, "-o", "-V", VIDEO],
      { LD_PRELOAD: shim },
      netns,
    );
    await waitFor(
      "the H.265 room to go live",
      () => roomIds(server.baseUrl),
      (ids) => ids.includes("hevc"),
      30_000,
    );

    viewer = spawnForeign(
      PYTHON,
      [SCRIPT, `${server.baseUrl}/whep?target_id=hevc`, "--frames", "60"],
      {},
      netns,
    );
    const status = await viewer.status;
    const line = viewer.output().trim().split("\n").findLast((l) => l.startsWith("{"));
    if (!line) throw new Error(`the GStreamer viewer printed no result (exit ${status.code})`);
    const result = JSON.parse(line);
    assert.equal(result.error, null, viewer.output());
    assert.equal(result.status, 201);
    assert.ok(result.frames >= 60, `decoded ${result.frames} frames`);
    assert.deepEqual([result.width, result.height], [640, 480]);

    const info = await waitFor(
      "the picture size and a thumbnail",
      async () => await (await fetch(`${server.baseUrl}/rooms/hevc`)).json(),
      (r) => r.thumbnail_url !== null && r.video.width !== null,
      30_000,
    );
    assert.equal(info.video.codec, "H265");
    assert.equal(info.video.profile, "1");
    assert.deepEqual([info.video.width, info.video.height], [640, 480]);
    const jpeg = new Uint8Array(await (await fetch(`${server.baseUrl}${info.thumbnail_url}`)).arrayBuffer());
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
  } catch (e) {
    console.error(
      `--- publisher ---\n${publisher?.output()}\n--- viewer ---\n${viewer?.output()}\n--- server ---\n${server.logs()}`,
    );
    throw e;
  } finally {
    await viewer?.stop("SIGKILL");
    await publisher?.stop("SIGINT");
    await server.stop();
    await netns.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
