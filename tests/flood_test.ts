/**
 * Flood: the real server with a Chromium publisher and 20 viewers, while other processes blast the UDP port
 * with junk and forged STUN from many source ports (~30,000 packets/s for 10 s) and, in the second half, the
 * HTTP port with bad requests. What the server must guarantee, whatever the machine's speed:
 * - no forged check gets an answer and nothing at all goes back to a flooding address; no HTTP 500;
 * - every viewer keeps its session and receives something every second;
 * - what the server received from the publisher it forwarded to every viewer alike (its own counters);
 * - RSS stays bounded.
 * Printed, not asserted: the flood rate reached, end-to-end delivery, the kernel's drops and the server's
 * CPU per hostile datagram against its CPU per forwarded packet. On a machine whose cores are shared, how
 * much of the flood (and of the publisher's stream with it) the kernel drops before the server reads it
 * depends on how much CPU the scheduler gives the server: at load 11 on 2 cores it got 14-43 % of a core,
 * the kernel dropped half of the datagrams and delivery was 73-82 %, on the old code as on the new. CPU time
 * per datagram did not separate a slow machine from a broken server either: a log line per dropped
 * datagram left it at ~48 µs, as without.
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
import { metric, scrapeMetrics } from "./helpers/metrics.ts";
import type { RoomStatsJson } from "../src/http/room_stats.ts";
import type { FloodPlan, FloodResult } from "./fuzz/flood.ts";
import type { Page } from "playwright-core";

const VIEWERS = 20;
const PPS = Number(Deno.env.get("FLOOD_PPS") ?? 30_000);
const SECONDS = Number(Deno.env.get("FLOOD_SECONDS") ?? 10);
const CHROMIUM_VIEWERS = Deno.env.get("FLOOD_VIEWERS") === "chromium";
/** Length of the no-flood window the server's CPU per forwarded packet is measured in (printed). */
const BASELINE_SECONDS = 3;

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

/** What the server has done so far, by its own counters. */
interface ServerSnapshot {
  at: number;
  cpu: number;
  datagramsIn: number;
  rtpOut: number;
  kernelDrops: number;
  /** Video packets forwarded to each viewer. */
  viewerVideo: number[];
}

async function snapshot(server: { baseUrl: string; pid: number; udpPort: number }): Promise<ServerSnapshot> {
  const metrics = await scrapeMetrics(`${server.baseUrl}/metrics`);
  const stats = await (await fetch(`${server.baseUrl}/rooms/flood/stats`)).json() as RoomStatsJson;
  return {
    at: performance.now(),
    cpu: cpuSeconds(server.pid),
    datagramsIn: metric(metrics, "sfu_udp_datagrams_in_total"),
    rtpOut: metric(metrics, "sfu_rtp_packets_out_total"),
    kernelDrops: kernelDrops(server.udpPort),
    viewerVideo: stats.viewers.map((v) => v.video_packets_sent),
  };
}

function floodProcess(plan: FloodPlan): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
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
}

function floodResult(out: Deno.CommandOutput): FloodResult {
  assert.ok(out.success, "flood process failed");
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as FloodResult;
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

    // Baseline: the same stream and viewers without a flood. The sleep is the measurement window.
    const baselineStart = await snapshot(server);
    await new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000));
    const baselineEnd = await snapshot(server);

    const rssBefore = rssKiB(server.pid);
    const lossBefore = CHROMIUM_VIEWERS ? await chromiumLoss() : [];
    for (const d of deliveries) d.open = true;
    const windowOpened = performance.now();
    const floodStart = await snapshot(server);
    const udpPlan: FloodPlan = {
      udpPort: server.udpPort,
      baseUrl: server.baseUrl,
      seconds: SECONDS,
      packetsPerSecond: PPS,
      sockets: 128,
      targets: [
        { serverUfrag: ufrag(sdp.remote), clientUfrag: ufrag(sdp.local) },
        { serverUfrag: ufrag(sdp.remote), clientUfrag: "zzzz" },
      ],
      httpConcurrency: 0,
      seed: 8,
    };
    const udpFlood = floodProcess(udpPlan);

    // While it runs: every second, every viewer has more packets than the second before. The first half is
    // UDP only (the server's cost per hostile datagram), then bad HTTP joins in. The sleeps are the windows.
    const udpOnlySeconds = Math.max(1, Math.floor(SECONDS / 2));
    const samples: number[][] = [await received()];
    let rssPeak = rssBefore;
    let udpOnlyEnd: ServerSnapshot | undefined;
    let httpFlood: Promise<Deno.CommandOutput> | undefined;
    for (let s = 0; s < SECONDS; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(await received());
      rssPeak = Math.max(rssPeak, rssKiB(server.pid));
      if (s + 1 === udpOnlySeconds) {
        udpOnlyEnd = await snapshot(server);
        httpFlood = floodProcess({
          ...udpPlan,
          packetsPerSecond: 0,
          sockets: 0,
          seconds: SECONDS - udpOnlySeconds,
          httpConcurrency: Number(Deno.env.get("FLOOD_HTTP") ?? 4),
        });
      }
    }
    const result = floodResult(await udpFlood);
    const http = httpFlood ? floodResult(await httpFlood) : undefined;
    // Late packets of the window still count; the sleep lets them arrive.
    await new Promise((r) => setTimeout(r, 1000));
    for (const d of deliveries) d.open = false;
    const floodEnd = await snapshot(server);
    // Packets first seen at the window's edges may be half counted; 100 ms inside them nothing is in flight.
    const fan = fanOut.figures(windowOpened + 100, performance.now() - 100);
    const rssAfter = rssKiB(server.pid);
    const drops = floodEnd.kernelDrops - floodStart.kernelDrops;
    const cpu = (floodEnd.cpu - floodStart.cpu) / ((floodEnd.at - floodStart.at) / 1000);

    // The server's CPU per forwarded packet without a flood, and per hostile datagram it read with one.
    const baselineSeconds = (baselineEnd.at - baselineStart.at) / 1000;
    const baselineCpuRate = (baselineEnd.cpu - baselineStart.cpu) / baselineSeconds;
    const forwardCost = (baselineEnd.cpu - baselineStart.cpu) /
      Math.max(1, baselineEnd.rtpOut - baselineStart.rtpOut);
    const udpOnly = udpOnlyEnd!;
    const udpOnlySecondsMeasured = (udpOnly.at - floodStart.at) / 1000;
    const legitInRate = (baselineEnd.datagramsIn - baselineStart.datagramsIn) / baselineSeconds;
    const hostileRead = udpOnly.datagramsIn - floodStart.datagramsIn - legitInRate * udpOnlySecondsMeasured;
    const hostileCost = (udpOnly.cpu - floodStart.cpu - baselineCpuRate * udpOnlySecondsMeasured) /
      Math.max(1, hostileRead);
    // Video packets the server forwarded to each viewer during the flood.
    const forwarded = floodEnd.viewerVideo.map((n, i) => n - floodStart.viewerVideo[i]);

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
    const us = (seconds: number) => `${(seconds * 1e6).toFixed(1)} µs`;
    console.log([
      `viewers: ${VIEWERS} ${CHROMIUM_VIEWERS ? "Chromium pages" : "light WHEP clients"}`,
      `UDP flood: ${result.udpSent} datagrams in ${result.seconds.toFixed(1)} s (${
        (result.udpSent / result.seconds).toFixed(0)
      }/s of ${PPS}/s asked) from ${udpPlan.sockets} ports on 127.0.0.1-4, ${result.forgedStun} forged STUN ` +
      `checks; ${result.responses} datagrams came back, ${result.stunSuccessResponses} STUN success responses`,
      `HTTP flood (last ${SECONDS - udpOnlySeconds} s): ${http?.httpRequests} bad requests, statuses ${
        JSON.stringify(http?.httpStatuses)
      }, ${http?.httpErrors} errors, ${http?.responses} datagrams came back`,
      `server CPU per packet forwarded (baseline, ${baselineSeconds.toFixed(1)} s): ${us(forwardCost)}; ` +
      `per hostile datagram read (UDP-only half, ${hostileRead.toFixed(0)} read): ${us(hostileCost)}; ` +
      `ratio ${(hostileCost / forwardCost).toFixed(2)}`,
      `video packets forwarded to each viewer during the flood: ${Math.min(...forwarded)}..${
        Math.max(...forwarded)
      }`,
      `delivery to the viewers during the flood: ${delivery.received}/${delivery.expected} = ${
        (delivery.mean * 100).toFixed(3)
      } % (worst viewer ${(delivery.min * 100).toFixed(3)} %)`,
      CHROMIUM_VIEWERS
        ? ""
        : `fan-out as the viewers saw it (video packets some viewer got, copies that reached each): ${fan.received}/${fan.expected} = ${
          (fan.received / Math.max(1, fan.expected) * 100).toFixed(3)
        } %`,
      `server RSS: ${mib(rssBefore)} before, ${mib(rssPeak)} peak, ${mib(rssAfter)} after; server CPU ${
        (cpu * 100).toFixed(0)
      } % of a core; ${drops} datagrams dropped by the kernel (socket receive buffer full)`,
    ].join("\n"));

    // The flood happened: enough forged checks that "none was answered" means something (any machine sends
    // this many; the rate asked for is printed above, not asserted: it measures the flooding process).
    assert.ok(result.forgedStun >= 1000, `only ${result.forgedStun} forged checks sent`);
    assert.ok(hostileRead >= 1000, `the server read only ${hostileRead.toFixed(0)} hostile datagrams`);
    assert.equal(result.stunSuccessResponses, 0, "a forged STUN check was answered");
    assert.equal(result.responses, 0, "the server sent something to a flooding address");
    assert.equal(http?.responses ?? 0, 0, "the server sent something to a flooding address");
    assert.equal(http?.httpStatuses["500"] ?? 0, 0, "HTTP 500 during the flood");
    assert.deepEqual(stalls, [], "a viewer stopped receiving");
    // What the server received it forwarded to every viewer alike: its own part, independent of how much
    // the kernel dropped before it or the test process after it.
    assert.equal(forwarded.length, VIEWERS);
    assert.ok(
      Math.min(...forwarded) > 0 && Math.min(...forwarded) >= 0.999 * Math.max(...forwarded),
      `forwarded per viewer ${forwarded.join(", ")}`,
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
