/**
 * Faults: a send error or a vanished address on one viewer never costs another viewer a packet, and SIGTERM
 * with a live publisher ends its session, removes the thumbnails and exits 0 promptly.
 */
import assert from "node:assert/strict";
import { startBrowserTest } from "./helpers/browser_test.ts";
import { createWorld } from "./fuzz/world.ts";
import { waitFor } from "./helpers/wait.ts";
import { rtpHeader } from "./fuzz/werift_client.ts";

Deno.test({
  name: "a viewer whose address fails or vanished does not affect the others",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // Real UDP both ways: the socket's read loop runs, so ICMP errors from the vanished viewer reach it too.
  const world = await createWorld({ viewers: 3, run: true });
  try {
    const [vanished, failing, healthy] = world.viewers;
    const peers = [...world.room.viewers].map((v) => v.peer);
    // The first viewer's socket goes away: the kernel answers what is sent there with ICMP unreachable.
    await vanished.close();
    // Every send to the second viewer now fails in sendto() itself (port 0: EINVAL).
    const failingPeer = peers.find((p) => p.selected?.port === failing.address.port)!;
    failingPeer.selected = { hostname: failing.address.hostname, port: 0 };

    const before = healthy.received.rtp;
    const errorsBefore = world.socket.counters.sendErrors;
    const count = 400;
    for (let i = 0; i < count; i++) {
      // Every payload is an IDR slice, so each viewer's stream may start at any packet.
      world.publisher.sendRtp(
        rtpHeader({
          payloadType: world.room.video.payloadType,
          sequenceNumber: 5000 + i,
          timestamp: 90_000 + i * 3000,
          ssrc: 0xfeed,
          marker: true,
        }),
        new Uint8Array([0x65, 0x88, 0x84, i & 0xff, 0x21, 0x00]),
      );
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(
      "the healthy viewer to get every packet",
      () => healthy.received.rtp - before,
      (n) => n >= count,
      10_000,
      5,
    );
    assert.equal(healthy.received.rtp - before, count);
    assert.equal(healthy.received.undecryptable, 0);
    assert.ok(world.socket.counters.sendErrors > errorsBefore, "sends towards the broken route failed");
    // Nothing was torn down by the errors: every session is still up and the socket still reads.
    assert.ok(world.room.live);
    assert.equal(world.room.publisher.state, "connected");
    assert.ok(peers.every((p) => p.state === "connected"));
    console.log(
      `delivered ${count}/${count} to the healthy viewer; ${
        world.socket.counters.sendErrors - errorsBefore
      } send errors on the broken route`,
    );
  } finally {
    await world.close();
  }
});

Deno.test({
  name: "SIGTERM with a live publisher: sessions end, thumbnails are removed, exit 0",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const test = await startBrowserTest({ THUMBNAIL_INTERVAL: "1" });
  const { server } = test;
  try {
    const { page } = await test.publish("sigterm");
    const jpgs = async () => {
      const names: string[] = [];
      for await (const entry of Deno.readDir(server.storageDir)) {
        if (entry.name.endsWith(".jpg")) names.push(entry.name);
      }
      return names;
    };
    await waitFor("a thumbnail on disk", jpgs, (names) => names.length > 0);

    const started = performance.now();
    Deno.kill(server.pid, "SIGTERM");
    const status = await server.status;
    const exitMs = performance.now() - started;
    console.log(`SIGTERM -> exit ${status.code} in ${exitMs.toFixed(0)} ms`);
    // main.ts exits 1 when the shutdown takes 5 s: code 0 says it finished on its own.
    assert.equal(status.code, 0, server.logs());
    assert.deepEqual(await jpgs(), []);
    assert.match(server.logs(), /SIGTERM: shutting down/);
    assert.match(server.logs(), /closed \(shutdown\)/);
    // The publisher learns at once from the DTLS close_notify, not after its ICE consent expires (Chromium
    // keeps connectionState "connected" until then, but closes the DTLS transport).
    const dtls = await page.waitForFunction(
      () =>
        (globalThis as unknown as { pc: RTCPeerConnection }).pc.getSenders()[0].transport?.state === "closed",
      undefined,
      // Far below the ~30 s after which Chromium would notice the silence by itself.
      { timeout: 10_000 },
    ).then(() => "closed", () => "still open");
    assert.equal(dtls, "closed");
  } finally {
    await test.close();
  }
});
