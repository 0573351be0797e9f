/**
 * Viewers joining together, with the light client the benchmarks use (tests/bench/light_client.ts): all of
 * them connect and each receives the stream whole from its first packet on; and a client whose path to the
 * server is slow (300 ms each way) still connects. The fan-out bench lost viewers to two faults of that
 * client once the server's answers took longer than 100 ms (a busy server under a burst of joins): it sent
 * each ICE retransmission as a new transaction and took only the newest one's answer, and werift's DTLS
 * client gave the handshake up on a second HelloVerifyRequest (the answer to its own retransmitted
 * ClientHello).
 */
import assert from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import { startLossyRelay } from "./helpers/lossy_relay.ts";
import { waitFor } from "./helpers/wait.ts";
import {
  type ClientCertificate,
  createClientCertificate,
  LightClient,
  syntheticVideoPacket,
} from "./bench/light_client.ts";

/** A publisher sending synthetic H.264 every 10 ms (a keyframe every 30), each packet carrying its index. */
async function startPublisher(baseUrl: string, token: string, room: string, certificate: ClientCertificate) {
  const client = await LightClient.connect({ baseUrl, role: "publisher", room, token, certificate });
  let sent = 0;
  const timer = setInterval(() => {
    const packet = syntheticVideoPacket(client, sent, sent % 30 === 0);
    new DataView(packet.buffer).setUint32(13, sent);
    client.sendRtp(packet);
    sent++;
  }, 10);
  return {
    sent: () => sent,
    stop: () => clearInterval(timer),
    async close() {
      clearInterval(timer);
      await client.close();
    },
  };
}

/** Which publisher packets (by index) a viewer received, from the payload the publisher stamped. */
class Reception {
  /** The publisher's count when this viewer's first packet arrived: the delivery is counted from there. */
  from = -1;
  #seen = new Uint8Array(1 << 16);
  constructor(private readonly publisherSent: () => number) {}

  onRtp = (packet: Uint8Array): void => {
    if (this.from < 0) this.from = this.publisherSent();
    const cc = packet[0] & 0x0f;
    let offset = 12 + 4 * cc;
    if (packet[0] & 0x10) offset += 4 + 4 * ((packet[offset + 2] << 8) | packet[offset + 3]);
    if (packet.length < offset + 5) return;
    const index = new DataView(packet.buffer, packet.byteOffset).getUint32(offset + 1);
    if (index < this.#seen.length) this.#seen[index] = 1;
  };

  /** Packets with index in [from, end) that arrived. */
  received(end: number): number {
    let n = 0;
    for (let i = Math.max(0, this.from); i < end; i++) n += this.#seen[i];
    return n;
  }
}

Deno.test({
  name:
    "20 light viewers joining at once all connect and each receives >= 99% of what follows its first packet",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ LOG_LEVEL: "info" });
  const certificate = await createClientCertificate();
  const viewers: LightClient[] = [];
  let publisher: Awaited<ReturnType<typeof startPublisher>> | undefined;
  try {
    publisher = await startPublisher(server.baseUrl, server.token, "burst", certificate);
    const sent = publisher.sent;
    await waitFor("the room to carry a keyframe", sent, (n) => n > 40);
    // 20 is MAX_PENDING_PER_ADDRESS's default: a 21st viewer from this address would be answered 429.
    const receptions = Array.from({ length: 20 }, () => new Reception(sent));
    const outcomes = await Promise.allSettled(receptions.map((r) =>
      LightClient.connect({
        baseUrl: server.baseUrl,
        role: "viewer",
        room: "burst",
        certificate,
        onRtp: r.onRtp,
      }).then((v) => {
        viewers.push(v);
        return v;
      })
    ));
    const failures = outcomes.flatMap((o) => o.status === "rejected" ? [String(o.reason)] : []);
    assert.deepEqual(failures, [], "every viewer connects");
    await waitFor(
      "every viewer's first packet",
      () => receptions.filter((r) => r.from < 0).length,
      (n) => n === 0,
    );
    // Three more seconds of stream after the last viewer's first packet, then the publisher stops.
    const lastFirst = Math.max(...receptions.map((r) => r.from));
    await waitFor("300 more packets", sent, (n) => n >= lastFirst + 300);
    publisher.stop();
    const end = sent();
    const shares = () => receptions.map((r) => r.received(end) / (end - r.from));
    const final = await waitFor(
      "every viewer to have >= 99%",
      shares,
      (s) => s.every((x) => x >= 0.99),
      5_000,
    )
      .catch(() => shares());
    console.log(
      `${viewers.length} viewers; delivery from the first packet on: min ${
        (Math.min(...final) * 100).toFixed(1)
      }%`,
    );
    assert.deepEqual(final.filter((x) => x < 0.99), [], "no viewer below 99%");
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await publisher?.close();
    await server.stop();
  }
});

Deno.test({
  name:
    "light clients behind a path of 300 ms each way connect (ICE retransmissions, repeated HelloVerifyRequest)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ LOG_LEVEL: "info" });
  const certificate = await createClientCertificate();
  let relay: ReturnType<typeof startLossyRelay> | undefined;
  const route = (candidate: { hostname: string; port: number }) =>
    (relay ??= startLossyRelay("127.0.0.1", candidate, { downstreamLoss: 0, delayMs: 300 })).address;
  const viewers: LightClient[] = [];
  let publisher: Awaited<ReturnType<typeof startPublisher>> | undefined;
  try {
    publisher = await startPublisher(server.baseUrl, server.token, "far", certificate);
    await waitFor("the room to carry a keyframe", publisher.sent, (n) => n > 40);
    const outcomes = await Promise.allSettled(
      Array.from(
        { length: 3 },
        () =>
          LightClient.connect({ baseUrl: server.baseUrl, role: "viewer", room: "far", certificate, route })
            .then((v) => {
              viewers.push(v);
              return v;
            }),
      ),
    );
    const failures = outcomes.flatMap((o) => o.status === "rejected" ? [String(o.reason)] : []);
    assert.deepEqual(failures, [], "every viewer connects through the slow path");
    const counts = await waitFor(
      "video through the slow path",
      () => viewers.map((v) => v.stats.rtpPackets),
      (c) => c.every((n) => n >= 50),
    );
    assert.equal(counts.length, 3);
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await publisher?.close();
    relay?.close();
    await server.stop();
  }
});
