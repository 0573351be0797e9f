/**
 * Limits: sessions in total and viewers per room (SessionManager, 503), WHIP/WHEP POSTs per client address
 * (429 + Retry-After) and SSE clients (503), the last ones against the real server over HTTP.
 */
import assert from "node:assert/strict";
import { loadOrCreateCertificate } from "../src/peer/certificate.ts";
import { SessionManager } from "../src/rooms/sessions.ts";
import { SessionError } from "../src/rooms/errors.ts";
import { RoomBus, roomBusName } from "../src/rooms/bus.ts";
import type { Peer } from "../src/peer/peer.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { loadOfferFixtures } from "./fuzz/werift_client.ts";

const transport = {
  transmit() {},
  addPeer(_peer: Peer) {},
  renamePeer(_peer: Peer, _old: string) {},
  routeAddress() {},
  removePeer() {},
};

async function manager(limits: { maxSessions?: number; maxViewersPerRoom?: number }) {
  const dir = await Deno.makeTempDir();
  const bus = new RoomBus(roomBusName(crypto.randomUUID()));
  const sessions = new SessionManager({
    certificate: await loadOrCreateCertificate(dir),
    candidates: [{ address: "127.0.0.1", port: 9 }],
    consentTimeoutMs: 10_000,
    transport,
    bus,
    log: () => {},
    ...limits,
  });
  return {
    sessions,
    async close() {
      sessions.closeAll();
      bus.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function refused(status: number, text: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof SessionError, String(e));
    assert.equal(e.status, status);
    assert.match(e.message, text);
    return true;
  };
}

Deno.test("MAX_SESSIONS counts connecting and connected sessions of both kinds", async () => {
  const { publish, watch } = await loadOfferFixtures();
  const m = await manager({ maxSessions: 3 });
  try {
    m.sessions.publish(publish, "one");
    m.sessions.rooms.get("one")!.live = true; // as if its DTLS had finished
    const viewer = m.sessions.watch("one", watch);
    m.sessions.publish(publish, "two");
    assert.throws(() => m.sessions.publish(publish, "three"), refused(503, /server full.*MAX_SESSIONS/));
    assert.throws(() => m.sessions.watch("one", watch), refused(503, /server full/));
    // A session that ends frees its place.
    m.sessions.end("whep", viewer.sessionId);
    m.sessions.watch("one", watch);
  } finally {
    await m.close();
  }
});

Deno.test("MAX_VIEWERS_PER_ROOM refuses the next viewer of a full room only", async () => {
  const { publish, watch } = await loadOfferFixtures();
  const m = await manager({ maxViewersPerRoom: 2 });
  try {
    for (const room of ["full", "other"]) {
      m.sessions.publish(publish, room);
      m.sessions.rooms.get(room)!.live = true;
    }
    const first = m.sessions.watch("full", watch);
    m.sessions.watch("full", watch);
    assert.throws(() => m.sessions.watch("full", watch), refused(503, /room full.*MAX_VIEWERS_PER_ROOM/));
    m.sessions.watch("other", watch);
    m.sessions.end("whep", first.sessionId);
    m.sessions.watch("full", watch);
  } finally {
    await m.close();
  }
});

Deno.test({
  name: "HTTP: 503 + Retry-After when full, 429 + Retry-After past the POST budget, SSE client cap",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { publish } = await loadOfferFixtures();
  const server = await startServerProcess({
    MAX_SESSIONS: "2",
    RATE_LIMIT_PER_MINUTE: "4",
    MAX_SSE_CLIENTS: "1",
  });
  try {
    const post = async (room: string) => {
      const res = await fetch(`${server.baseUrl}/whip?room=${room}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${server.token}` },
        body: publish,
      });
      return { status: res.status, retryAfter: res.headers.get("Retry-After"), text: await res.text() };
    };
    assert.equal((await post("a")).status, 201);
    assert.equal((await post("b")).status, 201);
    const full = await post("c");
    assert.equal(full.status, 503);
    assert.match(full.text, /server full/);
    assert.ok(Number(full.retryAfter) > 0);
    assert.equal((await post("d")).status, 503);
    const limited = await post("e");
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.retryAfter) >= 1, `Retry-After ${limited.retryAfter}`);
    assert.match(limited.text, /4 per minute/);
    // Viewers' POSTs share the address's budget.
    const whep = await fetch(`${server.baseUrl}/whep/a`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: publish,
    });
    await whep.body?.cancel();
    assert.equal(whep.status, 429);

    const abort = new AbortController();
    const first = await fetch(`${server.baseUrl}/notifications`, { signal: abort.signal });
    assert.equal(first.status, 200);
    const second = await fetch(`${server.baseUrl}/notifications`);
    assert.equal(second.status, 503);
    assert.ok(second.headers.get("Retry-After"));
    await second.body?.cancel();
    abort.abort();
    await first.body?.cancel().catch(() => {});
  } finally {
    await server.stop();
  }
});

Deno.test({
  name:
    "behind a trusted proxy the rate limit counts X-Forwarded-For clients; anyone else's header is ignored",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "2", TRUSTED_PROXIES: "127.0.0.1" });
  const untrusting = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "2" });
  const post = async (baseUrl: string, forwardedFor: string) => {
    const res = await fetch(`${baseUrl}/whep/nothing-here`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", "X-Forwarded-For": forwardedFor },
      body: "v=0\r\n",
    });
    await res.body?.cancel();
    return res.status;
  };
  try {
    assert.notEqual(await post(server.baseUrl, "198.51.100.1"), 429);
    assert.notEqual(await post(server.baseUrl, "198.51.100.1"), 429);
    assert.equal(await post(server.baseUrl, "198.51.100.1"), 429, "the forwarded client's budget is spent");
    assert.equal(await post(server.baseUrl, "6.6.6.6, 198.51.100.1"), 429, "a client cannot pick its key");
    assert.notEqual(await post(server.baseUrl, "198.51.100.2"), 429, "another client has its own budget");

    assert.notEqual(await post(untrusting.baseUrl, "198.51.100.1"), 429);
    assert.notEqual(await post(untrusting.baseUrl, "198.51.100.2"), 429);
    assert.equal(
      await post(untrusting.baseUrl, "198.51.100.3"),
      429,
      "without TRUSTED_PROXIES the header is ignored",
    );
  } finally {
    await server.stop();
    await untrusting.stop();
  }
});
