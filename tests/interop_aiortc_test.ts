/**
 * Interop: aiortc (Debian `python3-aiortc`, its own ICE, DTLS and SRTP stack in Python) watches a room over
 * WHEP and decodes the H.264 with PyAV; Chromium publishes. The script is tests/interop/aiortc_whep.py.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage } from "./helpers/webrtc_clients.ts";
import { createNetNamespace, netnsUnavailable } from "./helpers/netns.ts";
import { hasCommand, missing, pythonHas, roomIds, spawnForeign, waitFor } from "./interop/harness.ts";

// Debian's interpreter, where apt puts aiortc (a pyenv or venv python3 earlier on PATH would not have it).
const PYTHON = Deno.env.get("AIORTC_PYTHON") ?? "/usr/bin/python3";
const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const SCRIPT = new URL("./interop/aiortc_whep.py", import.meta.url).pathname;
const ignored = missing([
  [pythonHas(PYTHON, ["aiortc", "av"]), `aiortc and PyAV for ${PYTHON} (apt: python3-aiortc)`],
  [hasCommand(CHROMIUM), `Chromium at ${CHROMIUM}`],
  [netnsUnavailable() === undefined, `a private network namespace (${netnsUnavailable()})`],
]);

interface WatchResult {
  frames: number;
  width: number;
  height: number;
  codec: string | null;
  audio_frames: number;
  status: number | null;
  location: string | null;
  delete_status: number | null;
  error: string | null;
}

/** Chromium (in `netns`) publishes to `room`; aiortc watches, offering audio and video; returns its result. */
async function publishAndWatch(
  room: string,
  publish: { codec?: string; videoOnly?: boolean },
  check: (result: WatchResult, status: Deno.CommandStatus, output: string) => void,
): Promise<void> {
  // aioice never gathers loopback: the server, aiortc and Chromium share a private namespace.
  const netns = await createNetNamespace();
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" }, { netns });
  let browser: Browser | undefined;
  let viewer: ReturnType<typeof spawnForeign> | undefined;
  try {
    browser = await launchChromium([], netns);
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(page, {
      token: server.token,
      room,
      width: 640,
      height: 480,
      degradation: "maintain-resolution",
      ...publish,
    });
    await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes(room));

    viewer = spawnForeign(
      PYTHON,
      [SCRIPT, `${server.baseUrl}/whep?target_id=${room}`, "--frames", "60"],
      {},
      netns,
    );
    const status = await viewer.status;
    const lines = viewer.output().trim().split("\n");
    let result: WatchResult;
    try {
      result = JSON.parse(lines.findLast((l) => l.startsWith("{")) ?? "");
    } catch {
      throw new Error(`aiortc script printed no result (exit ${status.code}):\n${viewer.output()}`);
    }
    check(result, status, viewer.output());
    await waitFor(
      "the viewer to be gone",
      async () => (await (await fetch(`${server.baseUrl}/rooms/${room}`)).json()).viewer_count,
      (n) => n === 0,
    );
  } catch (e) {
    console.error(`--- aiortc output ---\n${viewer?.output()}\n--- server log ---\n${server.logs()}`);
    throw e;
  } finally {
    await viewer?.stop("SIGKILL");
    await browser?.close();
    await server.stop();
    await netns.close();
  }
}

Deno.test({
  name: "aiortc watches over WHEP and decodes the H.264 Chromium publishes",
  ignore: ignored !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await publishAndWatch("aiortc", {}, (result, status, output) => {
    assert.equal(result.error, null, output);
    assert.equal(status.code, 0);
    assert.equal(result.status, 201);
    assert.match(result.location ?? "", /\/whep\/[A-Za-z0-9_-]{32}$/);
    assert.ok(result.frames >= 60, `decoded ${result.frames} frames`);
    assert.equal(result.codec, "video/H264");
    // Chromium may still scale its encoder down on a loaded machine (CI did, to 480x360), so the size
    // is checked for the camera's shape and bounds rather than for the exact capture size.
    assert.ok(result.width >= 160 && result.width <= 640, `decoded width ${result.width}`);
    assert.equal(result.width * 3, result.height * 4, `decoded ${result.width}x${result.height}`);
    assert.ok(result.audio_frames > 0, "Opus audio decoded too");
    assert.equal(result.delete_status, 200);
  });
});

Deno.test({
  name: "aiortc watches a video-only VP8 room while offering audio too (answered inactive)",
  ignore: ignored !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await publishAndWatch("vp8only", { codec: "video/VP8", videoOnly: true }, (result, status, output) => {
    // aiortc 1.4 threw "RTCP mux is not enabled" (then "Failed to set remote audio description") on the
    // answer's rejected audio line before.
    assert.equal(result.error, null, output);
    assert.equal(status.code, 0);
    assert.equal(result.status, 201);
    assert.equal(result.codec, "video/VP8");
    assert.ok(result.frames >= 60, `decoded ${result.frames} frames`);
    assert.equal(result.width * 3, result.height * 4, `decoded ${result.width}x${result.height}`);
    assert.equal(result.audio_frames, 0);
    assert.equal(result.delete_status, 200);
  });
});
