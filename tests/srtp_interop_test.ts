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
            await new Promise((r) => setTimeout(r, 100));
            const viewer = await LightClient.connect({ ...common, role: "viewer" });
            // Let the replayed keyframe from the server's cache arrive before counting.
            await new Promise((r) => setTimeout(r, 200));
            const received = viewer.stats.rtpPackets;
            for (let i = 0; i < 100; i++) {
              publisher.sendRtp(videoPacket(publisher, seq++, i % 50 === 0));
              if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
            }
            const deadline = Date.now() + 3000;
            while (viewer.stats.rtpPackets - received < 100 && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, 20));
            }
            ok(
              viewer.stats.rtpPackets - received >= 100,
              `viewer got ${viewer.stats.rtpPackets - received} of 100`,
            );
            deepEqual([viewer.stats.decryptFailures, publisher.stats.decryptFailures], [0, 0]);
            await viewer.close();
            await publisher.close();
          });
        }
      }
      const metrics = await fetch(`${server.baseUrl}/metrics`);
      const text = await metrics.text();
      const failures = /^sfu_srtp_decrypt_failures_total (\d+)/m.exec(text);
      if (metrics.ok && failures) equal(Number(failures[1]), 0, "server-side SRTP failures");
    } finally {
      await server.stop();
    }
  },
});
