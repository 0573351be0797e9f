/// <reference lib="dom" />
/**
 * Interop: Medooze's browser WHIP/WHEP client library (npm `whip-whep`: whip.js and whep.js, the reference
 * clients of the RFC's author) publishes from one Chromium page and watches from another. It applies the
 * Link ICE servers, trickles with If-Match, and restarts ICE over PATCH; media must keep flowing across the
 * restarts and the selected candidate pair must move to the server's new credentials.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
// Imported so that Deno installs the package into node_modules/, where the page's copy is read from.
import "whip-whep/whip.js";
import "whip-whep/whep.js";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { receiveStats } from "./helpers/webrtc_clients.ts";
import { hasCommand, missing, roomIds, waitFor } from "./interop/harness.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const ignored = missing([[hasCommand(CHROMIUM), `Chromium at ${CHROMIUM}`]]);
const LIBRARY = new URL("../node_modules/whip-whep/", import.meta.url);

/** Loads whip.js and whep.js into the page as modules and exposes their classes on `globalThis`. */
async function addLibrary(page: Page): Promise<void> {
  for (const [file, name] of [["whip.js", "WHIPClient"], ["whep.js", "WHEPClient"]]) {
    const source = await Deno.readTextFile(new URL(file, LIBRARY));
    await page.addScriptTag({ type: "module", content: `${source}\nglobalThis.${name} = ${name};\n` });
  }
  await page.waitForFunction(() => "WHIPClient" in globalThis && "WHEPClient" in globalThis);
}

interface LibraryClient {
  etag?: string;
  resourceURL?: URL;
  restart(): Promise<void>;
  stop(): Promise<void>;
}
type PageGlobals = {
  pc: RTCPeerConnection;
  client: LibraryClient;
  WHIPClient: new () => LibraryClient & {
    publish(pc: RTCPeerConnection, url: string, token: string): Promise<void>;
  };
  WHEPClient: new () => LibraryClient & { view(pc: RTCPeerConnection, url: string): Promise<void> };
};

/** The server ufrag of the page's answer and of the remote candidate its selected pair uses. */
function iceState(page: Page) {
  return page.evaluate(async () => {
    const { pc } = globalThis as unknown as PageGlobals;
    const answerUfrag = /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription?.sdp ?? "")?.[1] ?? "";
    const report = await pc.getStats();
    let selectedRemoteUfrag = "";
    report.forEach((s) => {
      if (s.type !== "transport" || !s.selectedCandidatePairId) return;
      const pair = report.get(s.selectedCandidatePairId);
      selectedRemoteUfrag = report.get(pair?.remoteCandidateId)?.usernameFragment ?? "";
    });
    return { answerUfrag, selectedRemoteUfrag, state: pc.connectionState };
  });
}

Deno.test({
  name: "whip-whep (npm) publishes and watches from Chromium, with trickle and ICE restarts",
  ignore: ignored !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const server = await startServerProcess({
    // Unreachable on purpose: the test only checks that the library applies what Link announced.
    ICE_SERVERS: "stun:127.0.0.1:9",
    RATE_LIMIT_PER_MINUTE: "0",
  });
  let browser: Browser | undefined;
  // Later steps make no sense after a failed one.
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!await t.step(name, fn)) throw new Error(`step failed: ${name}`);
  };
  try {
    browser = await launchChromium();
    const publisher = await browser.newPage();
    const viewer = await browser.newPage();
    // What the server answered the library's PATCHes ("whip 204", "whep 200", ...): its trickle errors
    // would only surface as unhandled rejections inside the page.
    const patches: string[] = [];
    for (const page of [publisher, viewer]) {
      page.on("response", (r) => {
        const kind = /\/(whip|whep)\//.exec(r.url())?.[1];
        if (r.request().method() === "PATCH") patches.push(`${kind} ${r.status()}`);
      });
      await page.goto(`${server.baseUrl}/healthz`);
      await addLibrary(page);
    }

    await step("WHIPClient publishes; the Link ICE server is applied", async () => {
      const published = await publisher.evaluate(async (token) => {
        const g = globalThis as unknown as PageGlobals;
        const stream = await navigator.mediaDevices.getUserMedia({
          video: { width: 640, height: 480, frameRate: 30 },
          audio: true,
        });
        const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
        for (const track of stream.getTracks()) {
          const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
          if (track.kind === "video") {
            const codecs = RTCRtpSender.getCapabilities("video")!.codecs;
            transceiver.setCodecPreferences(codecs.filter((c) => c.mimeType === "video/H264"));
          }
        }
        const client = new g.WHIPClient();
        await client.publish(pc, `${location.origin}/whip?room=whipjs`, token);
        g.pc = pc;
        g.client = client;
        return {
          etag: client.etag,
          resource: client.resourceURL?.pathname,
          iceServers: pc.getConfiguration().iceServers?.flatMap((s) => s.urls),
        };
      }, server.token);
      assert.match(published.etag ?? "", /^"[A-Za-z0-9]+"$/);
      assert.match(published.resource ?? "", /^\/whip\/[A-Za-z0-9_-]{32}$/);
      assert.deepEqual(published.iceServers, ["stun:127.0.0.1:9"]);
      await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes("whipjs"));
    });

    await step("WHEPClient watches and decodes", async () => {
      await viewer.evaluate(async () => {
        const g = globalThis as unknown as PageGlobals;
        const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
        pc.addTransceiver("video", { direction: "recvonly" });
        pc.addTransceiver("audio", { direction: "recvonly" });
        const video = document.createElement("video");
        video.muted = true;
        video.autoplay = true;
        document.body.append(video);
        pc.ontrack = (e) => {
          if (e.track.kind === "video") video.srcObject = new MediaStream([e.track]);
        };
        const client = new g.WHEPClient();
        await client.view(pc, `${location.origin}/whep?target_id=whipjs`);
        g.pc = pc;
        g.client = client;
      });
      const stats = await waitFor("frames", () => receiveStats(viewer), (s) => s.framesDecoded > 30);
      assert.equal(stats.videoCodec, "video/H264");
    });

    await step("ICE restart of the publisher: new ETag and credentials, media keeps flowing", async () => {
      const before = await iceState(publisher);
      assert.equal(before.state, "connected");
      const oldEtag = await publisher.evaluate(() => (globalThis as unknown as PageGlobals).client.etag);
      await publisher.evaluate(() => (globalThis as unknown as PageGlobals).client.restart());
      const newEtag = await publisher.evaluate(() => (globalThis as unknown as PageGlobals).client.etag);
      assert.ok(newEtag && newEtag !== oldEtag, `ETag changed (${oldEtag} -> ${newEtag})`);
      const after = await waitFor(
        "the publisher's selected pair to use the new server ufrag",
        () => iceState(publisher),
        (s) => s.answerUfrag !== before.answerUfrag && s.selectedRemoteUfrag === s.answerUfrag,
      );
      assert.equal(after.state, "connected");
      const decoded = (await receiveStats(viewer)).framesDecoded;
      await waitFor(
        "frames after the restart",
        () => receiveStats(viewer),
        (s) => s.framesDecoded > decoded + 30,
      );
      assert.deepEqual(await roomIds(server.baseUrl), ["whipjs"], "same room, still live");
    });

    await step("ICE restart of the viewer", async () => {
      const before = await iceState(viewer);
      await viewer.evaluate(() => (globalThis as unknown as PageGlobals).client.restart());
      await waitFor(
        "the viewer's selected pair to use the new server ufrag",
        () => iceState(viewer),
        (s) => s.answerUfrag !== before.answerUfrag && s.selectedRemoteUfrag === s.answerUfrag,
      );
      const decoded = (await receiveStats(viewer)).framesDecoded;
      await waitFor(
        "frames after the restart",
        () => receiveStats(viewer),
        (s) => s.framesDecoded > decoded + 30,
      );
    });

    await step("stop() DELETEs both sessions", async () => {
      await viewer.evaluate(() => (globalThis as unknown as PageGlobals).client.stop());
      await waitFor(
        "the viewer to be gone",
        async () => (await (await fetch(`${server.baseUrl}/rooms/whipjs`)).json()).viewer_count,
        (n) => n === 0,
      );
      await publisher.evaluate(() => (globalThis as unknown as PageGlobals).client.stop());
      await waitFor("the room to close", () => roomIds(server.baseUrl), (ids) => ids.length === 0);
      assert.ok(patches.includes("whip 204") && patches.includes("whep 204"), `trickled: ${patches}`);
      assert.ok(patches.includes("whip 200") && patches.includes("whep 200"), `restarted: ${patches}`);
      assert.deepEqual(patches.filter((p) => !/ 20[04]$/.test(p)), [], "every PATCH succeeded");
      const logs = server.logs();
      assert.match(logs, /whip session \S+ ICE restart/);
      assert.match(logs, /whep session \S+ ICE restart/);
      // stop() closes the RTCPeerConnection before it sends DELETE: either may end the session first.
      assert.match(logs, /whip session \S+ closed \((deleted|dtls-closed)\)/);
      assert.match(logs, /whep session \S+ closed \((deleted|dtls-closed)\)/);
    });
  } catch (e) {
    console.error(server.logs());
    throw e;
  } finally {
    await browser?.close();
    await server.stop();
  }
});
