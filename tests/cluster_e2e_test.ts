/**
 * Cluster end to end: redis-server and two (or three) real server processes on loopback. Chromium publishes
 * to node A and watches through node B, which relays the room from A over WHEP; the room list on every
 * node shows the room with cluster-wide viewer counts; the room leaves the lists when A deletes it or is
 * killed; a Redis outage does not disturb viewers. Skipped (with a printed reason) without redis-server.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "./helpers/browser.ts";
import type { ServerProcess } from "./helpers/server_process.ts";
import { type RedisProcess, redisServerPath, startRedis } from "./helpers/redis.ts";
import { openSse } from "./helpers/sse.ts";
import { publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { CLUSTER_TOKEN, startClusterNode } from "./helpers/cluster_node.ts";
import { metricOf, scrapeMetrics } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";
import type { RoomJson } from "../src/http/rooms.ts";

const redisMissing = redisServerPath() === undefined;
if (redisMissing) {
  console.log("cluster_e2e_test: skipped, redis-server is not installed (apt-get install redis-server)");
}

async function rooms(node: ServerProcess): Promise<RoomJson[]> {
  const res = await fetch(`${node.baseUrl}/rooms`);
  return (await res.json()).rooms;
}

async function stopAll(nodes: (ServerProcess | undefined)[], browser?: Browser, redis?: RedisProcess) {
  await browser?.close().catch(() => {});
  for (const node of nodes) await node?.stop().catch(() => {});
  await redis?.stop();
}

Deno.test({
  name: "cluster: a room published on node A plays through node B; lists and counts agree",
  ignore: redisMissing,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const redis = await startRedis();
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    a = await startClusterNode(redis, "node-a");
    b = await startClusterNode(redis, "node-b");
    const nodeA = a;
    const nodeB = b;
    browser = await launchChromium();
    const publisherPage: Page = await browser.newPage();
    const viewerPage: Page = await browser.newPage();
    await publisherPage.goto(`${a.baseUrl}/healthz`);
    await viewerPage.goto(`${b.baseUrl}/healthz`);
    const sseB = await openSse(`${b.baseUrl}/notifications`);
    let publisherLocation = "";

    await t.step("the room published on A is listed on B", async () => {
      publisherLocation = (await publishFromPage(publisherPage, { token: a!.token, room: "cluster-room" }))
        .location;
      const listed = await waitFor("room on B", () => rooms(nodeB), (r) => r.length === 1, 10000);
      assert.equal(listed[0].id, "cluster-room");
      assert.equal(listed[0].viewer_count, 0);
      const onA = await rooms(nodeA);
      assert.equal(onA[0].created_at, listed[0].created_at, "same room, same JSON on both nodes");
      await sseB.waitFor((e) => (e as { rooms: RoomJson[] }).rooms[0]?.id === "cluster-room");
    });

    await t.step("publishing the same room name on B is refused", async () => {
      const res = await fetch(`${nodeB.baseUrl}/whip?room=cluster-room`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${nodeB.token}` },
        body: "v=0\r\n",
      });
      await res.body?.cancel();
      assert.equal(res.status, 409);
    });

    await t.step("a viewer on B decodes frames relayed from A; both lists count one viewer", async () => {
      await watchFromPage(viewerPage, "cluster-room");
      const stats = await waitFor(
        "frames through the relay",
        () => receiveStats(viewerPage),
        (s) => s.framesDecoded > 30 && s.audioPackets > 0,
      );
      assert.equal(stats.videoCodec, "video/H264");
      // The relay's pull is a session on A but not a viewer: both nodes say 1.
      await waitFor("viewer_count 1 on B", () => rooms(nodeB), (r) => r[0]?.viewer_count === 1);
      await waitFor("viewer_count 1 on A", () => rooms(nodeA), (r) => r[0]?.viewer_count === 1);
      await sseB.waitFor((e) => (e as { rooms: RoomJson[] }).rooms[0]?.viewer_count === 1);
      assert.match(b!.logs(), /relay of room cluster-room from node node-a up/);
    });

    await t.step("/metrics on both nodes shows the link, the nodes and B's one relay", async () => {
      const onB = await metrics(nodeB);
      assert.equal(onB.get("sfu_cluster_redis_connected"), 1);
      assert.equal(onB.get("sfu_cluster_nodes"), 2);
      assert.equal(onB.get("sfu_cluster_rooms"), 1);
      assert.equal(onB.get("sfu_cluster_relays"), 1, "B pulls the room from A while its viewer watches");
      assert.equal(onB.get("sfu_cluster_relay_pulls_total"), 1);
      assert.equal(onB.get("sfu_cluster_relay_failures_total"), 0);
      assert.equal(onB.get("sfu_cluster_redis_reconnects_total"), 0);
      const onA = await metrics(nodeA);
      assert.equal(onA.get("sfu_cluster_redis_connected"), 1);
      assert.equal(onA.get("sfu_cluster_rooms"), 1);
      assert.equal(onA.get("sfu_cluster_relays"), 0, "the origin relays nothing");
      assert.equal(onA.get("sfu_cluster_relay_pulls_total"), 0);
      // A read Redis last before or after B registered; it reads again every 2 s.
      await waitFor("A sees two nodes", () => metric(nodeA, "sfu_cluster_nodes"), (n) => n === 2, 5000);
    });

    await t.step("B serves the room's thumbnail from A", async () => {
      const room = await waitFor(
        "thumbnail on B",
        async () => (await (await fetch(`${nodeB.baseUrl}/rooms/cluster-room`)).json()) as RoomJson,
        (r) => r.thumbnail_url !== null,
        25000,
      );
      const res = await fetch(`${nodeB.baseUrl}${room.thumbnail_url}`);
      const body = new Uint8Array(await res.arrayBuffer());
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "image/jpeg");
      assert.deepEqual([...body.subarray(0, 2)], [0xff, 0xd8], "a JPEG");
    });

    await t.step("DELETE on A removes the room from B's list and ends B's viewer", async () => {
      const res = await fetch(`${nodeA.baseUrl}${publisherLocation}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${nodeA.token}` },
      });
      await res.body?.cancel();
      assert.equal(res.status, 200);
      await waitFor("room gone from B", () => rooms(nodeB), (r) => r.length === 0, 5000);
      await waitFor(
        "B's viewer to end",
        () => receiveStats(viewerPage),
        (s) => s.connectionState !== "connected",
        10000,
      );
      assert.match(nodeB.logs(), /relay of room cluster-room from node node-a ended/);
      const onB = await metrics(nodeB);
      assert.equal(onB.get("sfu_cluster_relays"), 0);
      assert.equal(onB.get("sfu_cluster_rooms"), 0);
      assert.equal(
        onB.get("sfu_cluster_relay_failures_total"),
        0,
        "a room ending on its origin is no failure",
      );
    });
    sseB.close();
  } finally {
    await stopAll([a, b], browser, redis);
  }
});

Deno.test({
  name: "cluster: a VP9 room published on node A plays in VP9 through node B",
  ignore: redisMissing,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const redis = await startRedis();
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    a = await startClusterNode(redis, "node-a");
    b = await startClusterNode(redis, "node-b");
    const nodeB = b;
    browser = await launchChromium();
    const publisherPage = await browser.newPage();
    const viewerPage = await browser.newPage();
    await publisherPage.goto(`${a.baseUrl}/healthz`);
    await viewerPage.goto(`${b.baseUrl}/healthz`);
    await publishFromPage(publisherPage, { token: a.token, room: "vp9-room", codec: "video/VP9" });
    const listed = await waitFor("the VP9 room on B", () => rooms(nodeB), (r) => r.length === 1);
    assert.equal(listed[0].video.codec, "VP9");
    // B's pull offers VP9 with the room's profile-id; without it the origin would answer 406.
    await watchFromPage(viewerPage, "vp9-room");
    const stats = await waitFor(
      "VP9 frames through the relay",
      () => receiveStats(viewerPage),
      (s) => s.framesDecoded > 30,
      30_000,
    );
    assert.equal(stats.videoCodec, "video/VP9");
    assert.match(b.logs(), /relay of room vp9-room from node node-a up/);
  } finally {
    await stopAll([a, b], browser, redis);
  }
});

/** Decoded frames of the page's viewer connection. */
async function framesOf(page: Page): Promise<number> {
  return (await receiveStats(page)).framesDecoded;
}

/** A node's `/metrics` samples, by `name{labels}`. */
function metrics(node: ServerProcess): Promise<Map<string, number>> {
  return scrapeMetrics(`${node.baseUrl}/metrics`);
}

/** One sample of a node's `/metrics`; fails when the node does not report it. */
function metric(node: ServerProcess, name: string): Promise<number> {
  return metricOf(node.baseUrl, name);
}

Deno.test({
  name: "cluster: a killed edge is freed by consent timeout; a killed origin's room leaves the lists",
  ignore: redisMissing,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const redis = await startRedis();
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let c: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    a = await startClusterNode(redis, "origin", { CONSENT_TIMEOUT: "3" });
    b = await startClusterNode(redis, "edge-b");
    c = await startClusterNode(redis, "edge-c");
    const [nodeA, nodeB, nodeC] = [a, b, c];
    browser = await launchChromium();
    const publisherPage = await browser.newPage();
    const viewerB = await browser.newPage();
    const viewerC = await browser.newPage();
    await publisherPage.goto(`${a.baseUrl}/healthz`);
    await viewerB.goto(`${b.baseUrl}/healthz`);
    await viewerC.goto(`${c.baseUrl}/healthz`);
    await publishFromPage(publisherPage, { token: a.token, room: "fault-room" });
    await waitFor(
      "room on B and C",
      async () => [...await rooms(nodeB), ...await rooms(nodeC)],
      (r) => r.length === 2,
    );
    await watchFromPage(viewerB, "fault-room");
    await watchFromPage(viewerC, "fault-room");
    await waitFor("B decoding", () => framesOf(viewerB), (n) => n > 30);
    await waitFor("C decoding", () => framesOf(viewerC), (n) => n > 30);
    await waitFor("two viewers counted on A", () => rooms(nodeA), (r) => r[0]?.viewer_count === 2);
    assert.equal(await metric(nodeA, "sfu_viewers"), 2, "two pull sessions on the origin");

    await t.step("edge C killed: the origin frees its pull by consent timeout, counts drop", async () => {
      Deno.kill(nodeC.pid, "SIGKILL");
      await nodeC.status;
      await waitFor("A's pull from C freed", () => metric(nodeA, "sfu_viewers"), (n) => n === 1, 10000);
      assert.match(nodeA.logs(), /whep session \S+ closed \(consent-timeout\)/);
      await waitFor("viewer count 1 on B", () => rooms(nodeB), (r) => r[0]?.viewer_count === 1, 10000);
    });

    await t.step(
      "origin A killed: the room leaves B's list when A's registration expires; B's viewer ends",
      async () => {
        const before = await framesOf(viewerB);
        assert.ok(before > 30);
        const killedAt = Date.now();
        Deno.kill(nodeA.pid, "SIGKILL");
        await nodeA.status;
        // Redis drops A's keys CLUSTER_TTL_SECONDS after A's last refresh; the deadline only guards a hang.
        await waitFor("room gone from B", () => rooms(nodeB), (r) => r.length === 0, 30_000);
        console.log(`origin killed: the room left B's list after ${Date.now() - killedAt} ms`);
        assert.equal(await metric(nodeB, "sfu_cluster_nodes"), 1, "B no longer counts A (nor the killed C)");
        await waitFor(
          "B's viewer to end",
          () => receiveStats(viewerB),
          (s) => s.connectionState !== "connected",
          15000,
        );
        assert.match(nodeB.logs(), /relay of room fault-room from node origin ended/);
        const health = await fetch(`${nodeB.baseUrl}/healthz`);
        await health.body?.cancel();
        assert.equal(health.status, 200, "B carries on");
      },
    );
  } finally {
    await stopAll([a, b, c], browser, redis);
  }
});

Deno.test({
  name: "cluster: Redis stopping mid-stream disturbs no viewer; nodes re-register when it returns",
  ignore: redisMissing,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const redis = await startRedis();
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    a = await startClusterNode(redis, "node-a");
    b = await startClusterNode(redis, "node-b");
    const [nodeA, nodeB] = [a, b];
    browser = await launchChromium();
    const publisherPage = await browser.newPage();
    const localViewer = await browser.newPage();
    const relayedViewer = await browser.newPage();
    await publisherPage.goto(`${a.baseUrl}/healthz`);
    await localViewer.goto(`${a.baseUrl}/healthz`);
    await relayedViewer.goto(`${b.baseUrl}/healthz`);
    await publishFromPage(publisherPage, { token: a.token, room: "steady" });
    await waitFor("room on B", () => rooms(nodeB), (r) => r.length === 1);
    await watchFromPage(localViewer, "steady");
    await watchFromPage(relayedViewer, "steady");
    await waitFor("local viewer decoding", () => framesOf(localViewer), (n) => n > 30);
    await waitFor("relayed viewer decoding", () => framesOf(relayedViewer), (n) => n > 30);

    await t.step("Redis down for longer than the TTL: both viewers keep decoding", async () => {
      await redis.kill();
      // Past the TTL without Redis, B vouches only for itself: wait for that state, not for a time.
      await waitFor(
        "B past the TTL without Redis",
        () => metrics(nodeB),
        (m) => m.get("sfu_cluster_redis_connected") === 0 && m.get("sfu_cluster_nodes") === 1,
        30_000,
      );
      const local0 = await framesOf(localViewer);
      const relayed0 = await framesOf(relayedViewer);
      // Both keep decoding after that point (a second of 30 fps video each).
      await waitFor(
        "the local viewer to keep decoding",
        () => framesOf(localViewer),
        (n) => n >= local0 + 30,
      );
      await waitFor(
        "the relayed viewer to keep decoding",
        () => framesOf(relayedViewer),
        (n) => n >= relayed0 + 30,
      );
      assert.equal((await rooms(nodeA))[0]?.id, "steady", "A still lists its own room");
      assert.equal((await rooms(nodeB))[0]?.id, "steady", "B still lists the room it relays");
      const outages = nodeA.logs().match(/Redis at \S+ unreachable/g) ?? [];
      assert.equal(outages.length, 1, "the outage is logged once");
      assert.equal(await metric(nodeB, "sfu_cluster_relays"), 1, "B still relays the room");
    });

    await t.step("Redis back: nodes re-register and a new viewer on B still gets the room", async () => {
      await redis.restart();
      await waitFor(
        "A re-registered",
        () => Promise.resolve(nodeA.logs()),
        (l) => /Redis reachable again/.test(l),
        15000,
      );
      assert.equal(await metric(nodeA, "sfu_cluster_redis_reconnects_total"), 1);
      await waitFor("A's link up", () => metric(nodeA, "sfu_cluster_redis_connected"), (n) => n === 1, 5000);
      const page = await browser!.newPage();
      await page.goto(`${nodeB.baseUrl}/healthz`);
      await watchFromPage(page, "steady");
      await waitFor("second relayed viewer decoding", () => framesOf(page), (n) => n > 10);
      await waitFor("cluster-wide count 3", () => rooms(nodeA), (r) => r[0]?.viewer_count === 3, 10000);
    });
  } finally {
    await stopAll([a, b], browser, redis);
  }
});

Deno.test({
  name: "cluster: a full origin sends an edge to another edge (tree); a pull that would loop gets 508",
  ignore: redisMissing,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const redis = await startRedis();
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let c: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    // One viewer slot per room on the origin: edge B's pull takes it.
    a = await startClusterNode(redis, "origin", { MAX_VIEWERS_PER_ROOM: "1" });
    b = await startClusterNode(redis, "edge-b");
    c = await startClusterNode(redis, "edge-c");
    const [nodeA, nodeB, nodeC] = [a, b, c];
    browser = await launchChromium();
    const publisherPage = await browser.newPage();
    const viewerB = await browser.newPage();
    const viewerC = await browser.newPage();
    await publisherPage.goto(`${a.baseUrl}/healthz`);
    await viewerB.goto(`${b.baseUrl}/healthz`);
    await viewerC.goto(`${c.baseUrl}/healthz`);
    await publishFromPage(publisherPage, { token: a.token, room: "tree" });
    await waitFor(
      "room on B and C",
      async () => [...await rooms(nodeB), ...await rooms(nodeC)],
      (r) => r.length === 2,
    );
    await watchFromPage(viewerB, "tree");
    await waitFor("B decoding", () => framesOf(viewerB), (n) => n > 10);
    // C learns that B holds the room from B's viewer count in Redis.
    await waitFor("B's count seen by C", () => rooms(nodeC), (r) => r[0]?.viewer_count === 1);
    await watchFromPage(viewerC, "tree");
    await waitFor("C decoding", () => framesOf(viewerC), (n) => n > 30);
    assert.match(nodeC.logs(), /relay of room tree: pull from origin: 503/);
    assert.match(nodeC.logs(), /relay of room tree from node edge-b up \(path edge-c\)/);
    const onC = await metrics(nodeC);
    assert.equal(onC.get("sfu_cluster_relay_pulls_total"), 2, "the origin refused, then edge B");
    assert.equal(onC.get("sfu_cluster_relay_failures_total"), 1);
    assert.equal(onC.get("sfu_cluster_relays"), 1);
    await waitFor("two viewers on the origin's list", () => rooms(nodeA), (r) => r[0]?.viewer_count === 2);

    // B already serves C; a request claiming to come through B must not be served by B.
    const looped = await fetch(`${nodeB.baseUrl}/whep?target_id=tree`, {
      method: "POST",
      headers: {
        "Content-Type": "application/sdp",
        "X-Relay-Path": "edge-c,edge-b",
        Authorization: `Bearer ${CLUSTER_TOKEN}`,
      },
      body: "v=0\r\n",
    });
    await looped.body?.cancel();
    assert.equal(looped.status, 508);
    const forged = await fetch(`${nodeB.baseUrl}/whep?target_id=tree`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", "X-Relay-Path": "edge-c" },
      body: "v=0\r\n",
    });
    await forged.body?.cancel();
    assert.equal(forged.status, 401, "X-Relay-Path without the cluster token");
  } finally {
    await stopAll([a, b, c], browser, redis);
  }
});
