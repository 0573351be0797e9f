/**
 * Unauthenticated DTLS records from a session's own (validated) address, as an attacker spoofing the
 * client's address could send them: a plaintext fatal alert, a ClientHello and a record of an unknown
 * content type, both while the handshake is in flight and after it. None of them may end or restart the
 * session (RFC 6347 §4.1.2.7: invalid records are dropped).
 */
import { equal } from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import { createClientCertificate, LightClient, syntheticVideoPacket } from "./bench/light_client.ts";
import { waitFor } from "./helpers/wait.ts";
import { metric, scrapeMetrics } from "./helpers/metrics.ts";
import type { RoomJson } from "../src/http/rooms.ts";

/** A DTLS 1.2 record at epoch 0 (plaintext). */
function plaintextRecord(contentType: number, sequence: number, fragment: number[]): Uint8Array {
  const record = new Uint8Array(13 + fragment.length);
  record[0] = contentType;
  record[1] = 0xfe;
  record[2] = 0xfd;
  record[10] = sequence;
  record[11] = fragment.length >> 8;
  record[12] = fragment.length & 0xff;
  record.set(fragment, 13);
  return record;
}

const FATAL_HANDSHAKE_FAILURE = plaintextRecord(21, 0, [2, 40]);
/** A truncated ClientHello: handshake header (type 1) and the start of its body. */
const CLIENT_HELLO = plaintextRecord(22, 1, [1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0xfe, 0xfd, 0, 0]);
const UNKNOWN_CONTENT_TYPE = plaintextRecord(25, 2, [1, 2, 3]);
const FORGERIES = [FATAL_HANDSHAKE_FAILURE, CLIENT_HELLO, UNKNOWN_CONTENT_TYPE];

Deno.test({
  name: "spoofed plaintext DTLS records neither end nor restart a session, during or after the handshake",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0", LOG_LEVEL: "info" });
  const certificate = await createClientCertificate();
  let publisher: LightClient | undefined;
  let viewer: LightClient | undefined;
  let sending: ReturnType<typeof setInterval> | undefined;
  try {
    // The forgeries arrive after ICE validated the address and before the real ClientHello.
    publisher = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "publisher",
      room: "spoof",
      token: server.token,
      certificate,
      beforeDtls: FORGERIES,
      timeoutMs: 10_000,
    });
    let seq = 0;
    sending = setInterval(
      () => publisher!.sendRtp(syntheticVideoPacket(publisher!, seq, seq++ % 30 === 0)),
      10,
    );
    viewer = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "viewer",
      room: "spoof",
      certificate,
      beforeDtls: FORGERIES,
      timeoutMs: 10_000,
    });
    await waitFor("media to reach the viewer", () => viewer!.stats.rtpPackets, (n) => n >= 20);

    // After the handshake, from both clients' addresses.
    for (const forged of FORGERIES) {
      publisher.sendRaw(forged);
      viewer.sendRaw(forged);
    }
    // The forgeries were all handled once the server has answered a check each client sent after them.
    await viewer.answeredCheck();
    await publisher.answeredCheck();
    const before = viewer.stats.rtpPackets;
    await waitFor("media to keep flowing", () => viewer!.stats.rtpPackets, (n) => n >= before + 20, 3000);
    const room = await (await fetch(`${server.baseUrl}/rooms/spoof`)).json() as RoomJson;
    equal(room.viewer_count, 1, "the viewer session is still there");
    equal(viewer.stats.decryptFailures, 0, "the viewer still decrypts with the keys of its handshake");
    const metrics = await scrapeMetrics(`${server.baseUrl}/metrics`);
    // Both sessions are the original ones, still connected: a closed session would be gone, a restarted
    // handshake would leave "connected" (and a new session would be a third one).
    equal(metric(metrics, "sfu_publishers"), 1);
    equal(metric(metrics, "sfu_viewers"), 1);
    equal(metric(metrics, 'sfu_sessions{state="connected"}'), 2);
    equal(metric(metrics, "sfu_srtp_decrypt_failures_total"), 0);
  } catch (e) {
    console.error(`--- server log ---\n${server.logs()}`);
    throw e;
  } finally {
    clearInterval(sending);
    await viewer?.close();
    await publisher?.close();
    await server.stop();
  }
});
