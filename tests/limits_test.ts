/**
 * Limits: publishers' and viewers' shares of the sessions and viewers per room (SessionManager, 503),
 * unconnected sessions per address (429), the budget of failed WHIP/WHEP POSTs per client address (429 +
 * Retry-After) and SSE streams per address (429), the last ones against the real server over HTTP.
 */
import assert from "node:assert/strict";
import { loadOrCreateCertificate } from "../src/peer/certificate.ts";
import { SessionManager } from "../src/rooms/sessions.ts";
import { SessionError } from "../src/rooms/errors.ts";
import { asHttpError } from "../src/http/session_status.ts";
import type { HttpError } from "../src/http/body.ts";
import { RoomBus, roomBusName } from "../src/rooms/bus.ts";
import type { Peer } from "../src/peer/peer.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { loadOfferFixtures } from "./fuzz/werift_client.ts";

const transport = {
  transmit() {},
  addPeer(_peer: Peer) {},
  renamePeer(_peer: Peer, _old: string) {},
  removePeer() {},
  scheduler: { wakeAt() {}, cancel() {} },
};

async function manager(
  limits: {
    maxSessions?: number;
    maxPublishers?: number;
    maxViewersPerRoom?: number;
    maxPendingPerAddress?: number;
  },
) {
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
    assert.equal((asHttpError(e) as HttpError).status, status, "the status the HTTP edge answers with");
    assert.match(e.message, text);
    return true;
  };
}

Deno.test("publishers' places are kept apart from viewers' (MAX_SESSIONS, MAX_PUBLISHERS)", async () => {
  const { publish, watch } = await loadOfferFixtures();
  const m = await manager({ maxSessions: 4, maxPublishers: 2 });
  try {
    m.sessions.publish(publish, "one");
    m.sessions.rooms.get("one")!.live = true; // as if its DTLS had finished
    const viewer = m.sessions.watch("one", watch);
    m.sessions.watch("one", watch);
    assert.throws(() => m.sessions.watch("one", watch), refused(503, /server full.*MAX_SESSIONS/));
    // Viewers filled their share, yet a publisher still gets in; publishers have their own ceiling.
    m.sessions.publish(publish, "two");
    assert.throws(
      () => m.sessions.publish(publish, "three"),
      refused(503, /publishers full.*MAX_PUBLISHERS/),
    );
    // A session that ends frees its place.
    m.sessions.end("whep", viewer.sessionId);
    m.sessions.watch("one", watch);
  } finally {
    await m.close();
  }
});

Deno.test("an address holds at most MAX_PENDING_PER_ADDRESS unconnected viewer sessions", async () => {
  const { publish, watch } = await loadOfferFixtures();
  const m = await manager({ maxPendingPerAddress: 2 });
  try {
    m.sessions.publish(publish, "room");
    m.sessions.rooms.get("room")!.live = true;
    const first = m.sessions.watch("room", watch, { address: "198.51.100.1" });
    m.sessions.watch("room", watch, { address: "198.51.100.1" });
    assert.throws(
      () => m.sessions.watch("room", watch, { address: "198.51.100.1" }),
      refused(429, /2 sessions still connecting.*MAX_PENDING_PER_ADDRESS/),
    );
    m.sessions.watch("room", watch, { address: "198.51.100.2" });
    m.sessions.watch("room", watch); // no address: another node of the cluster
    m.sessions.end("whep", first.sessionId);
    m.sessions.watch("room", watch, { address: "198.51.100.1" });
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
  name: "HTTP: 503 + Retry-After when publishers are full; 429 once an address spent its failure budget",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { publish } = await loadOfferFixtures();
  const server = await startServerProcess({
    MAX_SESSIONS: "10",
    MAX_PUBLISHERS: "2",
    RATE_LIMIT_PER_MINUTE: "3",
  });
  try {
    const post = async (room: string, token = server.token) => {
      const res = await fetch(`${server.baseUrl}/whip?room=${room}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
        body: publish,
      });
      return { status: res.status, retryAfter: res.headers.get("Retry-After"), text: await res.text() };
    };
    assert.equal((await post("a")).status, 201);
    assert.equal((await post("b")).status, 201);
    const full = await post("c");
    assert.equal(full.status, 503);
    assert.match(full.text, /publishers full/);
    assert.ok(Number(full.retryAfter) > 0);
    // Successful and refused-for-capacity POSTs spent nothing; failed ones do.
    for (let i = 0; i < 3; i++) assert.equal((await post("d", "wrong-token")).status, 401);
    const limited = await post("e");
    assert.equal(limited.status, 429, "even the right token waits once the budget is spent");
    assert.ok(Number(limited.retryAfter) >= 1, `Retry-After ${limited.retryAfter}`);
    assert.match(limited.text, /too many failed requests.*3 per minute/);
    const whep = await fetch(`${server.baseUrl}/whep/a`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: publish,
    });
    await whep.body?.cancel();
    assert.equal(whep.status, 429, "viewers' POSTs share the address's budget");
  } finally {
    await server.stop();
  }
});

Deno.test({
  name: "SSE: 1000 streams from one address hold MAX_SSE_PER_ADDRESS; another address still gets the lobby",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ TRUSTED_PROXIES: "127.0.0.1", MAX_SSE_CLIENTS: "150" });
  // The responses are kept: a collected one would close its connection and free its place.
  const held: { abort: AbortController; response: Response }[] = [];
  try {
    const open = async (forwardedFor: string) => {
      const abort = new AbortController();
      const res = await fetch(`${server.baseUrl}/notifications`, {
        signal: abort.signal,
        headers: { "X-Forwarded-For": forwardedFor },
      });
      if (res.status === 200) held.push({ abort, response: res });
      else await res.body?.cancel();
      return res.status;
    };
    const statuses: Record<number, number> = {};
    for (let batch = 0; batch < 20; batch++) {
      const results = await Promise.all(Array.from({ length: 50 }, () => open("203.0.113.9")));
      for (const status of results) statuses[status] = (statuses[status] ?? 0) + 1;
    }
    assert.deepEqual(statuses, { 200: 100, 429: 900 }, JSON.stringify(statuses));
    const other = await fetch(`${server.baseUrl}/notifications`, {
      headers: { "X-Forwarded-For": "198.51.100.4" },
    });
    assert.equal(other.status, 200, "another address is served");
    const reader = other.body!.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /retry|rooms/);
    await reader.cancel();
  } finally {
    for (const { abort } of held) abort.abort();
    await server.stop();
  }
});

Deno.test({
  name:
    "behind a trusted proxy the failure budget counts X-Forwarded-For clients; anyone else's header is ignored",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "2", TRUSTED_PROXIES: "127.0.0.1" });
  const untrusting = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "2" });
  // A POST without an SDP content type is a failed attempt (415).
  const post = async (baseUrl: string, forwardedFor: string) => {
    const res = await fetch(`${baseUrl}/whep/nothing-here`, {
      method: "POST",
      headers: { "Content-Type": "text/plain", "X-Forwarded-For": forwardedFor },
      body: "v=0\r\n",
    });
    await res.body?.cancel();
    return res.status;
  };
  try {
    assert.equal(await post(server.baseUrl, "198.51.100.1"), 415);
    assert.equal(await post(server.baseUrl, "198.51.100.1"), 415);
    assert.equal(await post(server.baseUrl, "198.51.100.1"), 429, "the forwarded client's budget is spent");
    assert.equal(await post(server.baseUrl, "6.6.6.6, 198.51.100.1"), 429, "a client cannot pick its key");
    assert.equal(await post(server.baseUrl, "198.51.100.2"), 415, "another client has its own budget");

    assert.equal(await post(untrusting.baseUrl, "198.51.100.1"), 415);
    assert.equal(await post(untrusting.baseUrl, "198.51.100.2"), 415);
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
