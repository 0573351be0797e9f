/**
 * Flood: the real server with a Chromium publisher and 20 viewers, while another process blasts the UDP port
 * with junk and forged STUN from many source ports (~30,000 packets/s) and the HTTP port with bad requests
 * for 10 s. Viewers must keep receiving (every second, and ≥ 99.9 % of the packets the server forwards, by
 * sequence-number accounting), no forged check may get an answer, and the server's RSS must stay bounded.
 *
 * Viewers are the lightweight WHEP client (tests/bench/light_client.ts) by default; FLOOD_VIEWERS=chromium
 * uses Chromium pages instead (heavy on 2 cores). FLOOD_PPS and FLOOD_SECONDS change the flood.
 */
import assert from "node:assert/strict";
import { launchChromium } from "./helpers/browser.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { createClientCertificate, LightClient } from "./bench/light_client.ts";
import { waitFor } from "./helpers/wait.ts";
import type { FloodPlan, FloodResult } from "./fuzz/flood.ts";
import type { Page } from "playwright-core";

const VIEWERS = 20;
const PPS = Number(Deno.env.get("FLOOD_PPS") ?? 30_000);
const SECONDS = Number(Deno.env.get("FLOOD_SECONDS") ?? 10);
const CHROMIUM_VIEWERS = Deno.env.get("FLOOD_VIEWERS") === "chromium";

/**
 * Video packets by payload across viewers (each viewer gets its own SSRC, sequence and timestamp offsets, but
 * the same payload bytes). A packet some viewer got and another did not was lost between the server and that
 * viewer; a packet no viewer got was lost before it (at the server's socket or on the way from Chromium).
 */
class FanOut {
  #firstSeen = new Map<string, number>();
  #perViewer: Set<string>[] = [];

  viewer(): Set<string> {
    const seen = new Set<string>();
    this.#perViewer.push(seen);
    return seen;
  }

  record(seen: Set<string>, id: string, now: number): void {
    if (!this.#firstSeen.has(id)) this.#firstSeen.set(id, now);
    seen.add(id);
  }

  /** Over packets first seen in [from, to]: how many viewer copies were due and how many arrived. */
  figures(from: number, to: number): { expected: number; received: number } {
    let expected = 0;
    let received = 0;
    for (const [id, at] of this.#firstSeen) {
      if (at < from || at > to) continue;
      expected += this.#perViewer.length;
      for (const seen of this.#perViewer) if (seen.has(id)) received++;
    }
    return { expected, received };
  }
}

/** One viewer's accounting while the window is open: sequence numbers per SSRC, and video payloads. */
class Delivery {
  open = false;
  total = 0;
  videoPayloadType = -1;
  #streams = new Map<number, { seen: Set<number>; lastExt: number }>();
  #fanOut: FanOut;
  #videoSeen: Set<string>;

  constructor(fanOut: FanOut) {
    this.#fanOut = fanOut;
    this.#videoSeen = fanOut.viewer();
  }

  onRtp(packet: Uint8Array, now: number): void {
    this.total++;
    if (!this.open || packet.length < 12) return;
    const ssrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    const seq = (packet[2] << 8) | packet[3];
    let s = this.#streams.get(ssrc);
    if (!s) {
      s = { seen: new Set(), lastExt: seq };
      this.#streams.set(ssrc, s);
    }
    // Unwrap relative to the newest sequence number seen (RFC 3550 A.1 in spirit).
    const delta = ((seq - (s.lastExt & 0xffff) + 0x8000) & 0xffff) - 0x8000;
    const ext = s.lastExt + delta;
    if (delta > 0) s.lastExt = ext;
    s.seen.add(ext);
    if ((packet[1] & 0x7f) === this.videoPayloadType) {
      let offset = 12 + (packet[0] & 0x0f) * 4;
      if (packet[0] & 0x10) offset += 4 + ((packet[offset + 2] << 8) | packet[offset + 3]) * 4;
      this.#fanOut.record(this.#videoSeen, payloadId(packet.subarray(offset)), now);
    }
  }

  /** Packets expected in the window (first to last sequence number seen) and packets received. */
  figures(): { expected: number; received: number } {
    let expected = 0;
    let received = 0;
    for (const s of this.#streams.values()) {
      if (s.seen.size === 0) continue;
      const all = [...s.seen];
      expected += Math.max(...all) - Math.min(...all) + 1;
      received += s.seen.size;
    }
    return { expected, received };
  }
}

/** FNV-1a of the payload plus its length: distinct H.264 fragments never collide in practice. */
function payloadId(payload: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < payload.length; i++) h = Math.imul(h ^ payload[i], 0x01000193);
  return `${h >>> 0}:${payload.length}`;
}

/** Datagrams the kernel dropped for the server's UDP socket (receive buffer full), from /proc/net/udp. */
function kernelDrops(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  for (const line of Deno.readTextFileSync("/proc/net/udp").split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(hex.trim()) && fields[1].startsWith("0100007F")) return Number(fields[12]);
  }
  return 0;
}

/** CPU seconds a process used so far (user + system). */
function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return match ? Number(match[1]) : 0;
}

Deno.test({
  name:
    `flood: 1 publisher + ${VIEWERS} viewers keep streaming through ${PPS} hostile packets/s and bad HTTP`,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ LOG_LEVEL: "info" });
  const browser = await launchChromium();
  const lights: LightClient[] = [];
  try {
    const publisher = await browser.newPage();
    await publisher.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(publisher, { token: server.token, room: "flood" });
    const sdp = await publisher.evaluate(() => {
      const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
      return { local: pc.localDescription!.sdp, remote: pc.remoteDescription!.sdp };
    });
    const ufrag = (s: string) => /a=ice-ufrag:(\S+)/.exec(s)![1];

    // Viewers.
    const deliveries: Delivery[] = [];
    const fanOut = new FanOut();
    const pages: Page[] = [];
    if (CHROMIUM_VIEWERS) {
      for (let i = 0; i < VIEWERS; i++) {
        const page = await browser.newPage();
        await page.goto(`${server.baseUrl}/healthz`);
        await watchFromPage(page, "flood");
        pages.push(page);
      }
    } else {
      const certificate = await createClientCertificate();
      for (let i = 0; i < VIEWERS; i++) {
        const delivery = new Delivery(fanOut);
        deliveries.push(delivery);
        lights.push(
          await LightClient.connect({
            baseUrl: server.baseUrl,
            role: "viewer",
            room: "flood",
            certificate,
            onRtp: (packet, now) => delivery.onRtp(packet, now),
          }),
        );
        delivery.videoPayloadType = lights[i].media.videoPayloadType;
      }
    }
    const received = async (): Promise<number[]> =>
      CHROMIUM_VIEWERS
        ? await Promise.all(pages.map(async (p) => (await receiveStats(p)).videoPackets))
        : deliveries.map((d) => d.total);
    const chromiumLoss = async () =>
      await Promise.all(pages.map((p) =>
        p.evaluate(async () => {
          const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
          let got = 0;
          let lost = 0;
          (await pc.getStats()).forEach((s) => {
            if (s.type === "inbound-rtp") {
              got += s.packetsReceived ?? 0;
              lost += s.packetsLost ?? 0;
            }
          });
          return { got, lost };
        })
      ));
    // Warm up: every viewer is receiving.
    await waitFor("every viewer to receive", received, (counts) => counts.every((n) => n >= 50));
    await new Promise((r) => setTimeout(r, 1000));

    const rssBefore = rssKiB(server.pid);
    const dropsBefore = kernelDrops(server.udpPort);
    const cpuBefore = cpuSeconds(server.pid);
    const lossBefore = CHROMIUM_VIEWERS ? await chromiumLoss() : [];
    for (const d of deliveries) d.open = true;
    const windowOpened = performance.now();
    const plan: FloodPlan = {
      udpPort: server.udpPort,
      baseUrl: server.baseUrl,
      seconds: SECONDS,
      packetsPerSecond: PPS,
      sockets: 128,
      targets: [
        { serverUfrag: ufrag(sdp.remote), clientUfrag: ufrag(sdp.local) },
        { serverUfrag: ufrag(sdp.remote), clientUfrag: "zzzz" },
      ],
      httpConcurrency: Number(Deno.env.get("FLOOD_HTTP") ?? 4),
      seed: 8,
    };
    const floodProcess = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--unstable-net",
        "--allow-all",
        new URL("./fuzz/flood.ts", import.meta.url).pathname,
        JSON.stringify(plan),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();

    // While it runs: every second, every viewer has more packets than the second before.
    const samples: number[][] = [await received()];
    let rssPeak = rssBefore;
    for (let s = 0; s < SECONDS; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(await received());
      rssPeak = Math.max(rssPeak, rssKiB(server.pid));
    }
    const out = await floodProcess;
    assert.ok(out.success, "flood process failed");
    const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as FloodResult;
    await new Promise((r) => setTimeout(r, 1000));
    for (const d of deliveries) d.open = false;
    // Packets first seen at the window's edges may be half counted; 100 ms inside them nothing is in flight.
    const fan = fanOut.figures(windowOpened + 100, performance.now() - 100);
    const rssAfter = rssKiB(server.pid);
    const drops = kernelDrops(server.udpPort) - dropsBefore;
    const cpu = (cpuSeconds(server.pid) - cpuBefore) / (result.seconds + 1);

    // Figures.
    let delivery: { min: number; mean: number; expected: number; received: number };
    if (CHROMIUM_VIEWERS) {
      const lossAfter = await chromiumLoss();
      const ratios = lossAfter.map((a, i) => {
        const got = a.got - lossBefore[i].got;
        const lost = a.lost - lossBefore[i].lost;
        return { got, expected: got + Math.max(0, lost) };
      });
      const sum = ratios.reduce((n, r) => ({ got: n.got + r.got, expected: n.expected + r.expected }), {
        got: 0,
        expected: 0,
      });
      delivery = {
        min: Math.min(...ratios.map((r) => r.got / r.expected)),
        mean: sum.got / sum.expected,
        expected: sum.expected,
        received: sum.got,
      };
    } else {
      const per = deliveries.map((d) => d.figures());
      const expected = per.reduce((n, f) => n + f.expected, 0);
      const got = per.reduce((n, f) => n + f.received, 0);
      delivery = {
        min: Math.min(...per.map((f) => f.received / f.expected)),
        mean: got / expected,
        expected,
        received: got,
      };
    }
    const stalls = samples.slice(1).flatMap((row, s) =>
      row.map((n, v) => (n > samples[s][v] ? undefined : `viewer ${v} second ${s + 1}`)).filter(Boolean)
    );
    const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
    console.log([
      `viewers: ${VIEWERS} ${CHROMIUM_VIEWERS ? "Chromium pages" : "light WHEP clients"}`,
      `UDP flood: ${result.udpSent} datagrams in ${result.seconds.toFixed(1)} s (${
        (result.udpSent / result.seconds).toFixed(0)
      }/s) from ${plan.sockets} ports on 127.0.0.1-4, ${result.forgedStun} forged STUN checks; ` +
      `${result.responses} datagrams came back, ${result.stunSuccessResponses} STUN success responses`,
      `HTTP flood: ${result.httpRequests} bad requests, statuses ${
        JSON.stringify(result.httpStatuses)
      }, ${result.httpErrors} errors`,
      `delivery during the flood: ${delivery.received}/${delivery.expected} = ${
        (delivery.mean * 100).toFixed(3)
      } % (worst viewer ${(delivery.min * 100).toFixed(3)} %)`,
      CHROMIUM_VIEWERS
        ? ""
        : `fan-out (video packets the server got, copies that reached each viewer): ${fan.received}/${fan.expected} = ${
          (fan.received / Math.max(1, fan.expected) * 100).toFixed(3)
        } %`,
      `server RSS: ${mib(rssBefore)} before, ${mib(rssPeak)} peak, ${mib(rssAfter)} after; server CPU ${
        (cpu * 100).toFixed(0)
      } % of a core; ${drops} datagrams dropped by the kernel (socket receive buffer full)`,
    ].join("\n"));

    assert.equal(result.stunSuccessResponses, 0, "a forged STUN check was answered");
    assert.equal(result.responses, 0, "the server sent something to a flooding address");
    assert.ok(result.udpSent >= PPS * SECONDS * 0.7, `flood too slow: ${result.udpSent} datagrams`);
    assert.equal(result.httpStatuses["500"] ?? 0, 0, "HTTP 500 during the flood");
    assert.deepEqual(stalls, [], "a viewer stopped receiving");
    // What the server received it delivered to every viewer: its own part, independent of machine load.
    if (!CHROMIUM_VIEWERS) {
      assert.ok(
        fan.expected > 0 && fan.received / fan.expected >= 0.999,
        `fan-out ${fan.received}/${fan.expected}`,
      );
    }
    // End to end (including what the kernel dropped before the server could read it). The enlarged receive
    // buffer absorbs ~200 ms without CPU at this rate; only a machine busy with other work (other tests on a
    // shared CI runner) loses more, and then the kernel counts it: the server's own share is asserted above.
    assert.ok(
      delivery.mean >= (drops === 0 ? 0.999 : 0.9),
      `delivery ${(delivery.mean * 100).toFixed(3)} % (${drops} kernel drops)`,
    );
    // The heap grows to carry the load (thousands of HTTP requests a second) and then stays; a leak per
    // datagram or request would pass this at 300,000 datagrams.
    assert.ok(rssPeak < 512 * 1024, `RSS peaked at ${mib(rssPeak)}`);
    assert.doesNotMatch(server.logs(), /request failed|UDP socket failed/);
    assert.ok(
      (await (await fetch(`${server.baseUrl}/rooms/flood`)).json()).viewer_count === VIEWERS,
      "viewers were dropped",
    );
  } catch (e) {
    console.error(server.logs().split("\n").slice(-40).join("\n"));
    throw e;
  } finally {
    for (const l of lights) await l.close();
    await browser.close();
    await server.stop();
  }
});
