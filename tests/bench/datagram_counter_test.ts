/**
 * The capacity benchmarks' viewer counting: sequence spans (pure, with gaps, reordering and wrap-around), and
 * end to end against this server: viewers handed to a swarm process keep receiving past the consent timeout
 * (the counter answers the server's consent checks), every viewer's delivery is 100 % on an idle loopback,
 * and the sampled packets decrypt.
 */
import { equal, ok } from "node:assert/strict";
import { SequenceSpan } from "./datagram_counter.ts";
import { createClientCertificate, LightClient, syntheticVideoPacket } from "./light_client.ts";
import { startServer } from "./servers.ts";
import { ViewerSwarm } from "./viewer_swarm.ts";
import { deliveries } from "./capacity_bench.ts";
import { waitFor } from "../helpers/wait.ts";

Deno.test("SequenceSpan: gaps count as loss, reordering and duplicates of old packets do not widen it", () => {
  const s = new SequenceSpan();
  for (const seq of [10, 11, 13, 12, 14]) s.add(1, seq);
  equal(s.received, 5);
  equal(s.span, 5);
  s.add(1, 20); // 15..19 lost
  equal(s.span, 11);
  equal(s.received, 6);
  s.add(1, 9); // older than the first: received, span unchanged
  equal(s.span, 11);
});

Deno.test("SequenceSpan: wraps at 65536 and keeps SSRCs apart", () => {
  const s = new SequenceSpan();
  for (const seq of [65534, 65535, 0, 1]) s.add(7, seq);
  equal(s.span, 4);
  for (const seq of [100, 101]) s.add(8, seq);
  equal(s.span, 6);
  equal(s.received, 6);
});

Deno.test({
  name: "viewer swarm: detached viewers keep receiving past the consent timeout; delivery 100 %",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A 3 s consent timeout: a counter that ignored the server's consent checks would lose its viewers.
    const server = await startServer("ours", { sessions: 5, env: { CONSENT_TIMEOUT: "3" } });
    const swarm = ViewerSwarm.start();
    let publisher: LightClient | undefined;
    let timer: ReturnType<typeof setInterval> | undefined;
    try {
      const certificate = await createClientCertificate();
      const p = await LightClient.connect({
        baseUrl: server.baseUrl,
        role: "publisher",
        room: "swarm",
        token: server.token,
        certificate,
      });
      publisher = p;
      let seq = 0;
      // 200 packets/s, a keyframe every 100.
      timer = setInterval(() => {
        for (let i = 0; i < 2; i++, seq++) p.sendRtp(syntheticVideoPacket(p, seq, seq % 100 === 0));
      }, 10);
      const added = await swarm.add(server.baseUrl, "swarm", 3, 3);
      equal(added.firstPacketMs.filter((t) => t !== null).length, 3, added.errors.join("; "));
      const before = await swarm.counts();
      const sentBefore = seq;
      // Twice the consent timeout.
      const start = performance.now();
      await waitFor("6 s to pass", () => performance.now() - start, (t) => t > 6000, 10_000, 250);
      const after = await swarm.counts();
      const d = deliveries(before, after, seq - sentBefore);
      equal(d.delivery.length, 3);
      for (const rate of d.rate) {
        ok(rate > 0.9, `a viewer got ${rate} of the packets after the consent timeout`);
      }
      for (const delivery of d.delivery) equal(delivery, 1);
      ok(d.verified > 0, "no packet was sampled");
      equal(d.verifyFailures, 0);
    } finally {
      clearInterval(timer);
      await swarm.close();
      await publisher?.close();
      await server.stop();
    }
  },
});
