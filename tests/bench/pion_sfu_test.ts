/**
 * The Pion anchor builds from Debian's sources and forwards: a light publisher's packets reach two light
 * viewers, and a viewer of a room nobody publishes gets 404. Skipped where Pion's sources are not installed
 * (`apt-get install golang-go golang-github-pion-webrtc.v3-dev`).
 */
import { equal } from "node:assert/strict";
import { createClientCertificate, LightClient, syntheticVideoPacket } from "./light_client.ts";
import { startServer } from "./servers.ts";
import { waitFor } from "../helpers/wait.ts";

const pionInstalled = (() => {
  try {
    Deno.statSync("/usr/share/gocode/src/github.com/pion/webrtc/go.mod");
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "Pion anchor: a publisher's packets reach every viewer; an unknown room is 404",
  ignore: !pionInstalled,
  async fn() {
    const cacheDir = await Deno.makeTempDir({ prefix: "pion-sfu-test-" });
    const server = await startServer("pion", { sessions: 3, cacheDir });
    const clients: LightClient[] = [];
    try {
      const missing = await fetch(`${server.baseUrl}/whep?target_id=nobody`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: "v=0\r\n",
      });
      await missing.body?.cancel();
      equal(missing.status, 404);

      const certificate = await createClientCertificate();
      const publisher = await LightClient.connect({
        baseUrl: server.baseUrl,
        role: "publisher",
        room: "r",
        certificate,
      });
      clients.push(publisher);
      for (let i = 0; i < 2; i++) {
        clients.push(
          await LightClient.connect({ baseUrl: server.baseUrl, role: "viewer", room: "r", certificate }),
        );
      }
      const viewers = clients.slice(1);
      let seq = 0;
      const timer = setInterval(
        () => publisher.sendRtp(syntheticVideoPacket(publisher, seq, seq++ % 30 === 0)),
        5,
      );
      try {
        await waitFor(
          "both viewers receiving 200 packets",
          () => viewers.map((v) => v.stats.rtpPackets),
          (counts) => counts.every((n) => n >= 200),
        );
      } finally {
        clearInterval(timer);
      }
      for (const v of viewers) equal(v.stats.decryptFailures, 0);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});
