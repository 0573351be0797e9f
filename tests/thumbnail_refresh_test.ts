/**
 * Thumbnails of a browser-published room stay fresh with nobody watching: Chromium sends a keyframe only
 * when asked, so the server asks whenever THUMBNAIL_INTERVAL says a thumbnail is due. Before, the lobby kept
 * the first frame for as long as nobody joined.
 */
import assert from "node:assert/strict";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";
import { hasCommand } from "./interop/harness.ts";

async function thumbnailUrl(baseUrl: string, room: string): Promise<string | null> {
  const { rooms } = await (await fetch(`${baseUrl}/rooms`)).json() as {
    rooms: { id: string; thumbnail_url: string | null }[];
  };
  return rooms.find((r) => r.id === room)?.thumbnail_url ?? null;
}

Deno.test({
  name: "a browser publisher's thumbnail is refreshed every THUMBNAIL_INTERVAL with no viewer",
  ignore: !hasCommand("ffmpeg"),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ THUMBNAIL_INTERVAL: "1" });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(page, { token: server.token, room: "fresh", videoOnly: true });
    const seen = new Set<string>();
    await waitFor(
      "three different thumbnails",
      async () => {
        const url = await thumbnailUrl(server.baseUrl, "fresh");
        if (url) seen.add(url);
        return seen.size;
      },
      (n) => n >= 3,
      // Stats run every 2 s, so a 1 s interval refreshes every ~2 s: three in well under 15 s.
      15_000,
    );
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const requests = Number(/^sfu_keyframe_requests_total (\d+)/m.exec(metrics)?.[1] ?? "0");
    assert.ok(requests >= 2, `keyframes were asked for (${requests})`);
  } catch (e) {
    console.error(server.logs().slice(-3000));
    throw e;
  } finally {
    await browser.close();
    await server.stop();
  }
});
