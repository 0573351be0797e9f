/**
 * No reflection to third parties (RFC 7675): a viewer knows the server's ice-pwd from its own answer, so it
 * can sign a nominating check with a forged source address. The server must not move the stream there, nor
 * answer the check: it may only ask the forged address, with its own binding request, whether it wants the
 * media, and it gives up after a few retransmissions. A real Chromium viewer keeps receiving throughout,
 * past the consent timeout, which also shows it answers the server's consent requests.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Browser, Page } from "playwright-core";
import { classes, Message, methods, parseMessage } from "werift";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { receiveStats } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient, syntheticVideoPacket } from "./bench/light_client.ts";
import { datagrams } from "../src/net/datagrams.ts";

/** Watches over WHEP from the page and returns both SDPs (the test needs the credentials in them). */
function watchWithSdp(page: Page, room: string): Promise<{ offer: string; answer: string }> {
  return page.evaluate(async (room) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`/whep?target_id=${encodeURIComponent(room)}`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription!.sdp,
    });
    const answer = await res.text();
    if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${answer}`);
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    (globalThis as unknown as { pc: RTCPeerConnection }).pc = pc;
    return { offer: pc.localDescription!.sdp, answer };
  }, room);
}

function sdpValue(sdp: string, name: string): string {
  const value = new RegExp(`^a=${name}:(\\S+)`, "m").exec(sdp)?.[1];
  assert.ok(value, `a=${name} in SDP`);
  return value;
}

const CONSENT_TIMEOUT_S = 3;
const LISTEN_MS = 6000;

Deno.test({
  name: "a forged-source nominated check gets only a bounded consent request; media stays with the viewer",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({
    RATE_LIMIT_PER_MINUTE: "0",
    CONSENT_TIMEOUT: String(CONSENT_TIMEOUT_S),
  });
  const certificate = await createClientCertificate();
  let publisher: LightClient | undefined;
  let browser: Browser | undefined;
  let sending: ReturnType<typeof setInterval> | undefined;
  const victim = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.2", port: 0 });
  try {
    publisher = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "publisher",
      room: "reflect",
      token: server.token,
      certificate,
    });
    let seq = 0;
    sending = setInterval(
      () => publisher!.sendRtp(syntheticVideoPacket(publisher!, seq, seq++ % 30 === 0)),
      10,
    );

    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    const { offer, answer } = await watchWithSdp(page, "reflect");
    await waitFor("Chromium to receive video", () => receiveStats(page), (s) => s.videoPackets > 50);

    // The attacker's check: the viewer's credentials, USE-CANDIDATE, source 127.0.0.2.
    const check = () => {
      const m = new Message(methods.BINDING, classes.REQUEST);
      m.setAttribute("USERNAME", `${sdpValue(answer, "ice-ufrag")}:${sdpValue(offer, "ice-ufrag")}`);
      m.setAttribute("PRIORITY", 1853824767);
      m.setAttribute("ICE-CONTROLLING", 0x1234n);
      m.setAttribute("USE-CANDIDATE", null);
      m.addMessageIntegrity(Buffer.from(sdpValue(answer, "ice-pwd"), "utf8"));
      m.addFingerprint();
      return new Uint8Array(m.bytes);
    };
    const received: Uint8Array[] = [];
    let closed = false;
    const listening = (async () => {
      for await (const [data] of datagrams(victim, () => closed)) received.push(data);
    })().catch(() => {});
    const before = await receiveStats(page);
    const serverAddress = { transport: "udp" as const, hostname: "127.0.0.1", port: server.udpPort };
    const started = performance.now();
    for (let i = 0; i < 10; i++) {
      await victim.send(check(), serverAddress);
      await new Promise((r) => setTimeout(r, 100)); // the attacker's pacing, not a wait for a condition
    }
    // Past the consent timeout: Chromium must have answered the server's consent requests to stay up.
    await waitFor(
      "the listening period to pass",
      () => performance.now() - started,
      (t) => t >= LISTEN_MS,
      LISTEN_MS + 5000,
    );
    const after = await receiveStats(page);
    closed = true;
    victim.close();
    await listening;

    const bytes = received.reduce((n, d) => n + d.length, 0);
    const requests = received.filter((d) => d[0] === 0x00 && d[1] === 0x01);
    console.log(
      `forged address got ${received.length} datagrams (${bytes} bytes) in ${LISTEN_MS / 1000} s, ` +
        `${requests.length} of them binding requests; Chromium received ${
          after.videoPackets - before.videoPackets
        } video packets meanwhile`,
    );
    assert.equal(requests.length, received.length, "nothing but binding requests (no media, no answers)");
    assert.ok(requests.length >= 1 && requests.length <= 4, `a bounded probe: ${requests.length}`);
    for (const request of requests) {
      // The probe asks the client, not the attacker: signed with the viewer's ice-pwd from its offer.
      const parsed = parseMessage(Buffer.from(request), Buffer.from(sdpValue(offer, "ice-pwd"), "utf8"));
      assert.ok(parsed, "signed with the viewer's ice-pwd");
      assert.equal(
        parsed.getAttributeValue("USERNAME"),
        `${sdpValue(offer, "ice-ufrag")}:${sdpValue(answer, "ice-ufrag")}`,
      );
      assert.notEqual(parsed.getAttributeValue("ICE-CONTROLLED"), undefined);
    }
    assert.ok(after.videoPackets - before.videoPackets > 200, "media kept going to the real viewer");
    assert.equal(after.connectionState, "connected");
    const room = await (await fetch(`${server.baseUrl}/rooms/reflect`)).json();
    assert.equal(room.viewer_count, 1, "the viewer's session outlived the consent timeout");
  } catch (e) {
    console.error(`--- server log ---\n${server.logs()}`);
    throw e;
  } finally {
    clearInterval(sending);
    try {
      victim.close();
    } catch { /* closed above */ }
    await browser?.close();
    await publisher?.close();
    await server.stop();
  }
});
