/**
 * A viewer flooding NACKs (bursts of compound packets of 40 NACK items, each naming 17 recent packets) is answered
 * within its resend budget: the server resends at most 1.5x the stream's own rate to it (the budget is a
 * quarter of it), its memory does not grow with the flood, and another viewer of the room keeps >= 99 %
 * of its packets. Before the budget, 175 KB of NACKs produced 388 MB of resends.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { loadClip, publishClip } from "./bench/media_clip.ts";
import { hasCommand, roomIds } from "./interop/harness.ts";
import { buildNack, buildReceiverReport, compound } from "../src/rtp/rtcp.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FLOOD_MS = Number(Deno.env.get("NACK_FLOOD_MS") ?? "3000");
const FLOOD_INTERVAL_MS = 5;
/** Compound NACK packets sent per interval. */
const FLOOD_BURST = Number(Deno.env.get("NACK_FLOOD_BURST") ?? "4");

/** Key of a video packet's payload (FNV-1a and length), the same at the publisher and at every viewer. */
function payloadKey(packet: Uint8Array): string {
  let offset = 12 + (packet[0] & 0x0f) * 4;
  if (packet[0] & 0x10) offset += 4 + ((packet[offset + 2] << 8) | packet[offset + 3]) * 4;
  let h = 0x811c9dc5;
  for (let i = offset; i < packet.length; i++) h = Math.imul(h ^ packet[i], 0x01000193);
  return `${h >>> 0}:${packet.length - offset}`;
}

/** When the publisher sent each video payload, while `tracking` (not during the flood: it costs CPU). */
class SendTimes {
  tracking = true;
  #at = new Map<string, number>();

  sent(packet: Uint8Array): void {
    if (this.tracking) this.#at.set(payloadKey(packet), performance.now());
  }

  of(packet: Uint8Array): number | undefined {
    return this.tracking ? this.#at.get(payloadKey(packet)) : undefined;
  }
}

/** Video sequence numbers one viewer received, for its delivery ratio over a window. */
class VideoCounter {
  ssrc = -1;
  latest = -1;
  bytes = 0;
  counting = false;
  /** When the publisher sent the newest packet this viewer got, as far as {@link SendTimes} knows. */
  latestSentAt = -Infinity;
  /** How old that packet was when it arrived (a join replay delivers packets seconds old). */
  latestAgeMs = Infinity;
  #seen = new Set<number>();
  #lowest = Infinity;
  #highest = -Infinity;
  #extended = -1;

  constructor(readonly videoPayloadType: () => number, readonly sendTimes: SendTimes) {}

  onRtp = (packet: Uint8Array) => {
    if ((packet[1] & 0x7f) !== this.videoPayloadType()) return;
    const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    this.ssrc = view.getUint32(8);
    const seq = view.getUint16(2);
    const sentAt = this.sendTimes.of(packet);
    if (sentAt !== undefined && sentAt >= this.latestSentAt) {
      this.latestSentAt = sentAt;
      this.latestAgeMs = performance.now() - sentAt;
    }
    this.latest = seq;
    this.#extended = this.#extended < 0
      ? seq
      : this.#extended + (((seq - this.#extended + 0x8000) & 0xffff) - 0x8000);
    if (!this.counting) return;
    if (!this.#seen.has(this.#extended)) this.bytes += packet.length;
    this.#seen.add(this.#extended);
    this.#lowest = Math.min(this.#lowest, this.#extended);
    this.#highest = Math.max(this.#highest, this.#extended);
  };

  delivery(): { received: number; expected: number } {
    return { received: this.#seen.size, expected: this.#highest - this.#lowest + 1 };
  }
}

async function resendTotals(baseUrl: string): Promise<{ packets: number; bytes: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return {
    packets: Number(/^sfu_packets_resent_total (\d+)/m.exec(text)?.[1] ?? "0"),
    bytes: Number(/^sfu_resent_bytes_total (\d+)/m.exec(text)?.[1] ?? "0"),
  };
}

function rssKb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? "0");
}

Deno.test({
  name: "a NACK flood from one viewer gets at most 1.5x the stream rate, RSS stays flat, others keep 99 %",
  ignore: !hasCommand("ffmpeg"),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const server = await startServerProcess({ RATE_LIMIT_PER_MINUTE: "0" });
  const certificate = await createClientCertificate();
  const publisher = await LightClient.connect({
    baseUrl: server.baseUrl,
    role: "publisher",
    room: "flood",
    token: server.token,
    certificate,
  });
  const sendTimes = new SendTimes();
  const send = publisher.sendRtp.bind(publisher);
  publisher.sendRtp = (packet) => {
    if ((packet[1] & 0x7f) === publisher.media.videoPayloadType) sendTimes.sent(packet);
    send(packet);
  };
  const sender = publishClip(publisher, clip);
  const viewers: LightClient[] = [];
  try {
    await waitFor("the room to go live", () => roomIds(server.baseUrl), (ids) => ids.includes("flood"));
    const attackerCount = new VideoCounter(() => attacker.media.videoPayloadType, sendTimes);
    const victimCount = new VideoCounter(() => victim.media.videoPayloadType, sendTimes);
    const attacker: LightClient = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "viewer",
      room: "flood",
      certificate,
      onRtp: attackerCount.onRtp,
    });
    viewers.push(attacker);
    const victim: LightClient = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "viewer",
      room: "flood",
      certificate,
      onRtp: victimCount.onRtp,
    });
    viewers.push(victim);
    // Past the join replays: both get the live stream (packets the publisher sent moments ago).
    await waitFor(
      "both viewers to receive the live stream",
      () => [attackerCount.latestAgeMs, victimCount.latestAgeMs],
      (ages) => ages.every((ms) => ms < 300),
      20_000,
      50,
    );
    sendTimes.tracking = false;
    const rssBefore = rssKb(server.pid);
    const resentBefore = await resendTotals(server.baseUrl);
    attackerCount.counting = true;
    victimCount.counting = true;
    let nackBytes = 0;
    const started = performance.now();
    while (performance.now() - started < FLOOD_MS) {
      // The 680 packets before the newest one received, as 40 NACK items.
      const asked: number[] = [];
      for (let k = 1; k <= 680; k++) asked.push((attackerCount.latest - k) & 0xffff);
      const packet = compound(buildReceiverReport(0x1234), buildNack(0x1234, attackerCount.ssrc, asked));
      for (let i = 0; i < FLOOD_BURST; i++) {
        nackBytes += packet.length;
        attacker.sendRtcp(packet);
      }
      // The flood's pace (FLOOD_BURST compounds every FLOOD_INTERVAL_MS), not a wait for something.
      await new Promise((r) => setTimeout(r, FLOOD_INTERVAL_MS));
    }
    // What was sent during the window has arrived once the other viewer gets a packet sent after it.
    const floodEnded = performance.now();
    sendTimes.tracking = true;
    await waitFor(
      "the other viewer to receive a packet sent after the flood",
      () => victimCount.latestSentAt,
      (at) => at > floodEnded,
      10_000,
      50,
    );
    attackerCount.counting = false;
    victimCount.counting = false;
    const rssAfter = rssKb(server.pid);
    // The attacker's SRTP drops the resends as replays of what it has: count them at the server.
    const { received, expected } = victimCount.delivery();
    const resentAfter = await resendTotals(server.baseUrl);
    const resent = resentAfter.packets - resentBefore.packets;
    const resentBytes = resentAfter.bytes - resentBefore.bytes;
    const figures = {
      nackBytes,
      streamBytes: victimCount.bytes,
      resent,
      resentBytes,
      resendPerNackByte: +(resentBytes / nackBytes).toFixed(2),
      resendToStream: +(resentBytes / victimCount.bytes).toFixed(3),
      victimDelivery: +(received / expected).toFixed(4),
      rssBeforeMb: +(rssBefore / 1024).toFixed(1),
      rssAfterMb: +(rssAfter / 1024).toFixed(1),
    };
    console.log(`NACK flood: ${JSON.stringify(figures)}`);
    assert.ok(
      resentBytes <= 1.5 * victimCount.bytes,
      `resends within 1.5x the stream: ${JSON.stringify(figures)}`,
    );
    assert.ok(received / expected >= 0.99, `the other viewer keeps 99 %: ${JSON.stringify(figures)}`);
    assert.ok(rssAfter - rssBefore < 64 * 1024, `RSS grew by less than 64 MB: ${JSON.stringify(figures)}`);
    assert.ok(resent > 0, "some resends were answered");
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    assert.match(metrics, /^sfu_resends_refused_total [1-9]\d*/m, "refusals are counted");
  } catch (e) {
    console.error(server.logs().slice(-3000));
    throw e;
  } finally {
    sender.stop();
    for (const viewer of viewers) viewer.abandon();
    publisher.abandon();
    await server.stop();
  }
});
