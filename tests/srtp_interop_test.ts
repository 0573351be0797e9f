/**
 * SRTP through the real server: a light publisher and viewer (tests/bench/light_client.ts) with each
 * profile and each client-side backend. Whatever the server encrypts with, every packet the publisher sends
 * must reach the viewer and decrypt, and nothing may fail authentication on either side.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import {
  createClientCertificate,
  LightClient,
  syntheticVideoPacket as videoPacket,
} from "./bench/light_client.ts";
import { nativeSrtpAvailable } from "../src/srtp/context.ts";
import { metric, scrapeMetrics } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";

Deno.test({
  name: "publisher and viewer interoperate with the server over both SRTP profiles and both client backends",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0", LOG_LEVEL: "info" });
    const certificate = await createClientCertificate();
    try {
      const backends = nativeSrtpAvailable() ? ["native", "portable"] as const : ["portable"] as const;
      for (const profile of [7, 1] as const) {
        for (const backend of backends) {
          await t.step(`profile ${profile}, client ${backend}`, async () => {
            const room = `srtp-${profile}-${backend}`;
            const common = {
              baseUrl: server.baseUrl,
              room,
              certificate,
              srtpProfiles: [profile],
              srtpBackend: backend,
            };
            const publisher = await LightClient.connect({
              ...common,
              role: "publisher",
              token: server.token,
            });
            equal(publisher.srtpProfile, profile);
            // Sequence numbers cross the 16-bit wrap so both ends must carry the rollover counter.
            let seq = 65_500;
            publisher.sendRtp(videoPacket(publisher, seq++, true));
            // The keyframe is in the room (and its cache) once the server answered a check sent after it.
            await publisher.answeredCheck();
            const viewer = await LightClient.connect({ ...common, role: "viewer" });
            // The cached keyframe is replayed to the new viewer before anything else.
            await waitFor(
              "the cached keyframe to reach the viewer",
              () => viewer.stats.rtpPackets,
              (n) => n >= 1,
            );
            const received = viewer.stats.rtpPackets;
            for (let i = 0; i < 100; i++) {
              publisher.sendRtp(videoPacket(publisher, seq++, i % 50 === 0));
              if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
            }
            await waitFor(
              "all 100 packets to reach the viewer",
              () => viewer.stats.rtpPackets - received,
              (n) => n >= 100,
              3000,
            );
            deepEqual([viewer.stats.decryptFailures, publisher.stats.decryptFailures], [0, 0]);
            await viewer.close();
            await publisher.close();
          });
        }
      }
      const metrics = await scrapeMetrics(`${server.baseUrl}/metrics`);
      equal(metric(metrics, "sfu_srtp_decrypt_failures_total"), 0, "server-side SRTP failures");
      // Every packet of every step was decrypted by the server: 101 per step from each publisher.
      ok(
        metric(metrics, "sfu_rtp_packets_in_total") >= 101 * 2 * 2,
        "the server decrypted the publishers' RTP",
      );
    } finally {
      await server.stop();
    }
  },
});
