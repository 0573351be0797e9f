/**
 * Limits that admit a crowd and stop hoarding (issues #15.5 and #20), with default settings and real WebRTC
 * viewers (the light client: ICE, DTLS, SRTP): 60 viewers from one address joining within 15 s are all
 * admitted and all receive video; one address piling up 600 offers that never connect holds only
 * MAX_PENDING_PER_ADDRESS of them, loses them after CONNECT_TIMEOUT, and cannot make the server refuse a
 * viewer from another address.
 */
import assert from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import {
  type ClientCertificate,
  createClientCertificate,
  LightClient,
  syntheticVideoPacket,
} from "./bench/light_client.ts";
import { loadOfferFixtures } from "./fuzz/werift_client.ts";

/** A light-client publisher sending synthetic H.264 (a keyframe every 30 packets) every 10 ms. */
async function startPublisher(baseUrl: string, token: string, room: string, certificate: ClientCertificate) {
  const publisher = await LightClient.connect({ baseUrl, role: "publisher", room, token, certificate });
  let seq = 0;
  const timer = setInterval(
    () => publisher.sendRtp(syntheticVideoPacket(publisher, seq, seq++ % 30 === 0)),
    10,
  );
  return {
    async close() {
      clearInterval(timer);
      await publisher.close();
    },
  };
}

Deno.test({
  name: "default limits: 60 viewers from one address joining within 15 s are all admitted and receive video",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ LOG_LEVEL: "info" });
  const certificate = await createClientCertificate();
  const viewers: LightClient[] = [];
  let publisher: Awaited<ReturnType<typeof startPublisher>> | undefined;
  try {
    publisher = await startPublisher(server.baseUrl, server.token, "crowd", certificate);
    const outcomes: string[] = [];
    const joins: Promise<void>[] = [];
    const started = performance.now();
    for (let i = 0; i < 60; i++) {
      joins.push(
        LightClient.connect({
          baseUrl: server.baseUrl,
          role: "viewer",
          room: "crowd",
          certificate,
          timeoutMs: 30_000,
        })
          .then((viewer) => {
            viewers.push(viewer);
            outcomes.push("201");
          }, (e) => {
            outcomes.push(/answered (\d+)/.exec(String(e))?.[1] ?? String(e));
          }),
      );
      // The crowd's arrival schedule, not a wait: one join every 250 ms, 60 within 15 s.
      await new Promise((r) => setTimeout(r, 250));
    }
    await Promise.all(joins);
    const tally: Record<string, number> = {};
    for (const o of outcomes) tally[o] = (tally[o] ?? 0) + 1;
    console.log(
      `joins over ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(tally)}`,
    );
    assert.deepEqual(tally, { "201": 60 });
    await waitFor(
      "every viewer to receive video",
      () => viewers.filter((v) => v.stats.rtpPackets >= 20).length,
      (n) => n === 60,
      30_000,
    );
  } catch (e) {
    console.error(`--- server log (tail) ---\n${server.logs().split("\n").slice(-40).join("\n")}`);
    throw e;
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await publisher?.close();
    await server.stop();
  }
});

Deno.test({
  name: "600 never-connected offers from one address: it holds MAX_PENDING_PER_ADDRESS, others still watch",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // The hoarder comes through a trusted proxy so the test can give it its own address.
  const server = await startServerProcess({ LOG_LEVEL: "info", TRUSTED_PROXIES: "127.0.0.1" });
  const certificate = await createClientCertificate();
  const { watch } = await loadOfferFixtures();
  let publisher: Awaited<ReturnType<typeof startPublisher>> | undefined;
  let viewer: LightClient | undefined;
  const hoard = async () => {
    const res = await fetch(`${server.baseUrl}/whep/hoard`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", "X-Forwarded-For": "203.0.113.66" },
      body: watch,
    });
    await res.body?.cancel();
    return res.status;
  };
  try {
    publisher = await startPublisher(server.baseUrl, server.token, "hoard", certificate);
    const tally: Record<number, number> = {};
    for (let batch = 0; batch < 12; batch++) {
      for (const status of await Promise.all(Array.from({ length: 50 }, hoard))) {
        tally[status] = (tally[status] ?? 0) + 1;
      }
    }
    console.log(`600 hoarding offers: ${JSON.stringify(tally)}`);
    assert.equal(tally[201], 20, "MAX_PENDING_PER_ADDRESS (20) offers are held");
    assert.equal(tally[429], 580);

    viewer = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "viewer",
      room: "hoard",
      certificate,
    });
    await waitFor(
      "the other address's viewer to receive video",
      () => viewer!.stats.rtpPackets,
      (n) => n >= 20,
    );

    // The never-connected sessions expire after CONNECT_TIMEOUT (10 s), not the consent timeout.
    const metrics = async () =>
      Number(/^sfu_viewers (\d+)/m.exec(await (await fetch(`${server.baseUrl}/metrics`)).text())?.[1]);
    assert.equal(await metrics(), 21);
    await waitFor("the hoarded sessions to expire", metrics, (n) => n === 1, 15_000);
  } catch (e) {
    console.error(`--- server log (tail) ---\n${server.logs().split("\n").slice(-40).join("\n")}`);
    throw e;
  } finally {
    await viewer?.close();
    await publisher?.close();
    await server.stop();
  }
});
