/**
 * Access control end to end (issue #20) against the real server process: per-room stream keys (reread on
 * change and on SIGHUP), takeover of a live room only with its key and only once the new session has media
 * (light-client publishers and viewer), the auth webhook with a real receiver started here, and a private
 * room watched by Chromium with a viewer token.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import { openSse } from "./helpers/sse.ts";
import { launchChromium } from "./helpers/browser.ts";
import { publishFromPage, receiveStats } from "./helpers/webrtc_clients.ts";
import { loadOfferFixtures } from "./fuzz/werift_client.ts";
import { createClientCertificate, LightClient, syntheticVideoPacket } from "./bench/light_client.ts";
import { signViewerToken } from "../src/access/viewer_token.ts";

const ALICE = "alice-key-0001";
const BOB = "bob-key-000002";

/** POSTs an SDP offer to `path` with an optional bearer token. */
async function postOffer(baseUrl: string, path: string, offer: string, token?: string) {
  const headers: Record<string, string> = { "Content-Type": "application/sdp" };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${baseUrl}${path}`, { method: "POST", headers, body: offer });
  return {
    status: res.status,
    text: await res.text(),
    location: res.headers.get("Location"),
    room: res.headers.get("X-Room-Id"),
  };
}

async function keyFile(text: string): Promise<string> {
  const path = `${await Deno.makeTempDir({ prefix: "sfu-keys-" })}/stream-keys`;
  await Deno.writeTextFile(path, text);
  return path;
}

Deno.test({
  name: "stream keys: own room 201, another room's key 403, master key 201; reread on change and SIGHUP",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { publish } = await loadOfferFixtures();
  const path = await keyFile(`alice ${ALICE}\nbob ${BOB}\n`);
  const server = await startServerProcess({ STREAM_KEYS_FILE: path, RATE_LIMIT_PER_MINUTE: "0" });
  const whip = (room: string | undefined, token?: string) =>
    postOffer(server.baseUrl, room === undefined ? "/whip" : `/whip?room=${room}`, publish, token);
  try {
    const alice = await whip("alice", ALICE);
    assert.equal(alice.status, 201);
    const wrongRoom = await whip("bob", ALICE);
    assert.equal(wrongRoom.status, 403);
    assert.equal(wrongRoom.text, `this stream key is not the key of room "bob"\n`);
    assert.equal((await whip("carol", ALICE)).status, 403, "a room without a key of its own");
    assert.equal((await whip("carol", server.token)).status, 201, "the master key opens any room");
    assert.equal((await whip("alice", "not-a-key-at-all")).status, 401);
    assert.equal((await whip("alice")).status, 401);
    const byKey = await whip(undefined, BOB);
    assert.equal(byKey.status, 201, "without ?room= a stream key publishes to its own room");
    assert.equal(byKey.room, "bob");

    // Managing a session takes the key that made it (or the master key).
    const del = (token: string) =>
      fetch(`${server.baseUrl}${alice.location}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${token}` },
      })
        .then(async (r) => (await r.body?.cancel(), r.status));
    assert.equal(await del(BOB), 401);
    assert.equal(await del(ALICE), 200);
    assert.doesNotMatch(server.logs(), new RegExp(`${ALICE}|${BOB}`), "keys never reach the log");

    // A changed file is reread while the server runs.
    await Deno.writeTextFile(path, `alice ${ALICE}\nbob ${BOB}\ndave dave-key-0004\n`);
    await waitFor(
      "dave's key to be loaded",
      async () => (await whip("dave", "dave-key-0004")).status,
      (s) => s === 201,
    );
    // Same size, same inode, modification time put back: only SIGHUP makes the server read it.
    const before = Deno.statSync(path);
    await Deno.writeTextFile(path, `alice ${ALICE}\nbob ${BOB}\ndave dave-key-0005\n`);
    Deno.utimeSync(path, before.atime!, before.mtime!);
    // The window in which the change must stay unseen: longer than one poll period (2 s). Nothing shows
    // that a poll ran, so this is a sleep, not a wait.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await whip("dave", "dave-key-0005")).status, 401);
    Deno.kill(server.pid, "SIGHUP");
    await waitFor(
      "SIGHUP to reload",
      async () => (await whip("dave", "dave-key-0005")).status,
      (s) => s === 201,
    );
  } finally {
    await server.stop();
    await Deno.remove(path);
  }
});

Deno.test({
  name: "takeover: only with the room's key, and only once the new session has media",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { publish } = await loadOfferFixtures();
  const path = await keyFile(`alice ${ALICE}\nbob ${BOB}\n`);
  const server = await startServerProcess({
    STREAM_KEYS_FILE: path,
    CONNECT_TIMEOUT: "3",
    LOG_LEVEL: "info",
    RATE_LIMIT_PER_MINUTE: "0",
  });
  const certificate = await createClientCertificate();
  const timers: ReturnType<typeof setInterval>[] = [];
  const clients: LightClient[] = [];
  const connect = async (role: "publisher" | "viewer", token?: string) => {
    const client = await LightClient.connect({
      baseUrl: server.baseUrl,
      role,
      room: "alice",
      token,
      certificate,
    });
    clients.push(client);
    return client;
  };
  const sendMedia = (publisher: LightClient) => {
    let seq = 0;
    timers.push(
      setInterval(() => publisher.sendRtp(syntheticVideoPacket(publisher, seq, seq++ % 30 === 0)), 10),
    );
  };
  try {
    const first = await connect("publisher", ALICE);
    sendMedia(first);
    const viewer = await connect("viewer");
    const flowing = async (what: string) => {
      const now = viewer.stats.rtpPackets;
      await waitFor(what, () => viewer.stats.rtpPackets, (n) => n >= now + 50);
    };
    await flowing("media to reach the viewer");

    assert.equal((await postOffer(server.baseUrl, "/whip?room=alice", publish, BOB)).status, 403);
    // The room's own key, but the offer never connects: the live publisher keeps the room.
    const stray = await postOffer(server.baseUrl, "/whip?room=alice", publish, ALICE);
    assert.equal(stray.status, 201);
    const strayId = stray.location!.split("/").pop()!.slice(0, 8);
    await flowing("media to keep flowing after a takeover offer");
    await waitFor(
      "the stray offer to expire",
      () => server.logs(),
      (l) => l.includes(`${strayId} closed (ice-timeout)`),
    );
    await flowing("media to keep flowing after the stray offer expired");

    // A real takeover: connected but silent, it waits; its first packet switches the room.
    const second = await connect("publisher", ALICE);
    const secondId = second.location.split("/").pop()!.slice(0, 8);
    await flowing("the first publisher to keep feeding the room while the second is silent");
    assert.doesNotMatch(server.logs(), new RegExp(`${secondId} takes over room alice`));
    sendMedia(second);
    await waitFor(
      "the takeover",
      () => server.logs(),
      (l) => l.includes(`whip session ${secondId} takes over room alice`),
    );
    assert.match(server.logs(), /closed \(replaced\); room alice continues/);
    await flowing("the new publisher's media to reach the same viewer");
    const room = await (await fetch(`${server.baseUrl}/rooms/alice`)).json();
    assert.equal(room.viewer_count, 1, "the viewer stayed");

    // The publisher leaves while a takeover waits: the waiting session continues the room at once.
    const third = await connect("publisher", ALICE);
    const thirdId = third.location.split("/").pop()!.slice(0, 8);
    await second.close();
    await waitFor(
      "the waiting session to continue the room",
      () => server.logs(),
      (l) => l.includes(`whip session ${thirdId} takes over room alice`),
    );
    assert.equal((await (await fetch(`${server.baseUrl}/rooms/alice`)).json()).viewer_count, 1);
    sendMedia(third);
    await flowing("the third publisher's media to reach the same viewer");
  } catch (e) {
    console.error(`--- server log (tail) ---\n${server.logs().split("\n").slice(-30).join("\n")}`);
    throw e;
  } finally {
    for (const timer of timers) clearInterval(timer);
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
    await Deno.remove(path);
  }
});

Deno.test({
  name: "auth webhook: 2xx allows, other statuses and time-outs deny with 403, allows are cached",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { publish, watch } = await loadOfferFixtures();
  const asked: Record<string, unknown>[] = [];
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const question = await req.json();
    asked.push(question);
    if (question.token === "slow-token") await held;
    return new Response(null, { status: String(question.token).startsWith("allow") ? 204 : 403 });
  });
  const server = await startServerProcess({
    AUTH_WEBHOOK_URL: `http://127.0.0.1:${receiver.addr.port}/auth`,
    AUTH_WEBHOOK_TIMEOUT: "1",
    RATE_LIMIT_PER_MINUTE: "0",
  });
  try {
    const allowed = await postOffer(server.baseUrl, "/whip?room=hooked", publish, "allow-publisher");
    assert.equal(allowed.status, 201);
    assert.deepEqual(asked[0], {
      action: "publish",
      room: "hooked",
      token: "allow-publisher",
      ip: "127.0.0.1",
      user_agent: asked[0].user_agent,
    });
    const denied = await postOffer(server.baseUrl, "/whip?room=hooked", publish, "deny-publisher");
    assert.equal(denied.status, 403);
    assert.equal(denied.text, "denied by the auth webhook (403)\n");
    const slow = await postOffer(server.baseUrl, "/whip?room=hooked", publish, "slow-token");
    assert.equal(slow.status, 403);
    assert.match(slow.text, /no answer within 1000 ms/);
    const calls = asked.length;
    assert.equal((await postOffer(server.baseUrl, "/whip?room=master", publish, server.token)).status, 201);
    assert.equal(asked.length, calls, "the master key is not put to the webhook");

    // Watching: allowed viewers reach the room check (404: the room is not live), denied ones do not.
    assert.equal((await postOffer(server.baseUrl, "/whep/hooked", watch, "allow-viewer")).status, 404);
    assert.equal((await postOffer(server.baseUrl, "/whep/hooked", watch, "allow-viewer")).status, 404);
    assert.equal(asked.filter((q) => q.token === "allow-viewer").length, 1, "the allow was remembered");
    assert.equal((await postOffer(server.baseUrl, "/whep/hooked", watch, "deny-viewer")).status, 403);
    assert.equal((await postOffer(server.baseUrl, "/whep/hooked", watch)).status, 403);
    assert.deepEqual(asked.at(-1), { ...asked.at(-1), action: "watch", room: "hooked", token: null });
    assert.doesNotMatch(server.logs(), /allow-publisher|allow-viewer/, "tokens never reach the log");
  } finally {
    release();
    await server.stop();
    await receiver.shutdown();
  }
});

Deno.test({
  name:
    "private room: hidden from lists, 401 without or with an expired token, Chromium plays with a valid one",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { watch } = await loadOfferFixtures();
  const secret = "viewer-token-secret-for-tests";
  const server = await startServerProcess({
    PRIVATE_ROOMS: "backstage",
    VIEWER_TOKEN_SECRET: secret,
    RATE_LIMIT_PER_MINUTE: "0",
  });
  const now = Date.now() / 1000;
  const token = signViewerToken(secret, "backstage", now + 600);
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const publisher: Page = await browser.newPage();
    await publisher.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(publisher, { token: server.token, room: "backstage", videoOnly: true });
    const other: Page = await browser.newPage();
    await other.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(other, { token: server.token, room: "stage", videoOnly: true });

    const listed = async (query = "", auth?: string) => {
      const res = await fetch(`${server.baseUrl}/rooms${query}`, {
        headers: auth ? { Authorization: `Bearer ${auth}` } : {},
      });
      return ((await res.json()).rooms as { id: string }[]).map((r) => r.id).sort();
    };
    await waitFor("both rooms live", () => listed("", server.token), (ids) => ids.length === 2);
    assert.deepEqual(await listed(), ["stage"], "hidden from /rooms");
    assert.deepEqual(await listed(`?token=${token}`), ["backstage", "stage"], "its viewer token shows it");
    const badList = await fetch(`${server.baseUrl}/rooms`, { headers: { Authorization: "Bearer guess" } });
    await badList.body?.cancel();
    assert.equal(badList.status, 401);
    const detail = await fetch(`${server.baseUrl}/rooms/backstage`);
    await detail.body?.cancel();
    assert.equal(detail.status, 404, "its details are hidden too");
    const publicFeed = await openSse(`${server.baseUrl}/notifications`);
    const adminFeed = await openSse(`${server.baseUrl}/notifications?token=${server.token}`);
    try {
      const ids = (e: unknown) => (e as { rooms: { id: string }[] }).rooms.map((r) => r.id).sort().join();
      assert.equal(ids(await publicFeed.waitFor(() => true)), "stage");
      assert.equal(ids(await adminFeed.waitFor(() => true)), "backstage,stage");
    } finally {
      publicFeed.close();
      adminFeed.close();
    }

    const whep = (auth?: string) => postOffer(server.baseUrl, "/whep/backstage", watch, auth);
    const none = await whep();
    assert.equal(none.status, 401);
    assert.match(none.text, /private: a viewer token is required/);
    const expired = await whep(signViewerToken(secret, "backstage", now - 1));
    assert.equal(expired.status, 401);
    assert.equal(expired.text, "viewer token expired\n");
    assert.equal(
      (await whep(signViewerToken("some-other-secret-value", "backstage", now + 600))).status,
      401,
    );
    assert.equal(
      (await whep(signViewerToken(secret, "stage", now + 600))).status,
      403,
      "a token for another room",
    );

    const viewer: Page = await browser.newPage();
    await viewer.goto(`${server.baseUrl}/healthz`);
    await viewer.evaluate(async (token) => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver("video", { direction: "recvonly" });
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch("/whep/backstage", {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
        body: pc.localDescription!.sdp,
      });
      if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${await res.text()}`);
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      (globalThis as unknown as { pc: RTCPeerConnection }).pc = pc;
    }, token);
    await waitFor("frames to be decoded", () => receiveStats(viewer), (s) => s.framesDecoded > 10);

    // The watch page: with ?token= it plays; without, it says the room is private.
    const page: Page = await browser.newPage();
    await page.goto(`${server.baseUrl}/watch/backstage?token=${token}`);
    await page.waitForFunction(
      () => {
        const video = document.querySelector("video");
        return video !== null && video.videoWidth > 0 && video.currentTime > 0;
      },
      undefined,
      { timeout: 20_000 },
    );
    const locked: Page = await browser.newPage();
    await locked.goto(`${server.baseUrl}/watch/backstage`);
    await locked.locator('#message[data-state="private"]').waitFor({ timeout: 10_000 });
    assert.match(await locked.locator("#message").innerText(), /private/);
  } catch (e) {
    console.error(`--- server log (tail) ---\n${server.logs().split("\n").slice(-30).join("\n")}`);
    throw e;
  } finally {
    await browser?.close();
    await server.stop();
  }
});

Deno.test({
  name: "a takeover with another codec also waits for media, then restarts the room with the new codec",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ LOG_LEVEL: "info", RATE_LIMIT_PER_MINUTE: "0" });
  const certificate = await createClientCertificate();
  let browser: Browser | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const clients: LightClient[] = [];
  try {
    const h264 = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "publisher",
      room: "codec",
      token: server.token,
      certificate,
    });
    clients.push(h264);
    let seq = 0;
    timer = setInterval(() => h264.sendRtp(syntheticVideoPacket(h264, seq, seq++ % 30 === 0)), 10);
    const viewer = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "viewer",
      room: "codec",
      certificate,
    });
    clients.push(viewer);
    await waitFor("media to reach the viewer", () => viewer.stats.rtpPackets, (n) => n >= 50);

    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(page, { token: server.token, room: "codec", videoOnly: true, codec: "video/VP8" });
    await waitFor(
      "the VP8 takeover",
      () => server.logs(),
      (l) => /takes over room codec with VP8 instead of H264/.test(l),
    );
    // The offer alone did not end the room: the restart came with the VP8 publisher's media.
    const log = server.logs();
    assert.ok(
      log.indexOf("will take over room codec at its first packet") < log.indexOf("with VP8 instead of H264"),
    );
    const listed = await waitFor(
      "the room restarted with VP8",
      async () => (await (await fetch(`${server.baseUrl}/rooms/codec`)).json()),
      (r) => r.video?.codec === "VP8",
    );
    assert.equal(listed.viewer_count, 0, "the H.264 viewer could not follow and was ended");
    assert.match(server.logs(), /whep session \S+ closed \(publisher-left\)/);
  } catch (e) {
    console.error(`--- server log (tail) ---\n${server.logs().split("\n").slice(-30).join("\n")}`);
    throw e;
  } finally {
    clearInterval(timer);
    await Promise.all(clients.map((c) => c.close()));
    await browser?.close();
    await server.stop();
  }
});
