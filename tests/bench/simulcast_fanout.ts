/**
 * The room's forwarding work per forwarded packet with a three-layer simulcast publisher against one
 * encoding, in the same run: N viewers (fake peers whose send is a no-op, so SRTP and the socket are left
 * out and only the room's work is timed: header reading, layer routing, history, numbering), all on the
 * top layer. The simulcast room also receives the two smaller layers (about 40 % more packets than the top
 * layer alone), which costs it receive work without adding forwarded packets. A third configuration gives
 * the simulcast room's viewers transport-wide congestion control (viewer_bandwidth.ts): each forwarded
 * packet is numbered, recorded and carries the extension, and every 100 ms each viewer's transport feedback
 * (built untimed) is read into its estimate and layer choice, timed apart: its cost per feedback and per
 * forwarded packet (a feedback covers 30 of them here) is printed beside. Runs alternate; medians are
 * printed with their ratios.
 *
 * `deno run --allow-all tests/bench/simulcast_fanout.ts [--viewers N] [--runs N]`
 */
import type { Peer } from "../../src/peer/peer.ts";
import { newReception, newViewerTrack, Room, type Viewer } from "../../src/rooms/room.ts";
import { ViewerBandwidth } from "../../src/rooms/viewer_bandwidth.ts";
import { buildEmptyReceiverReport, compound } from "../../src/rtp/rtcp.ts";
import { TwccRecorder } from "../../src/rtp/twcc.ts";

const arg = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const VIEWERS = arg("--viewers", 100);
const RUNS = arg("--runs", 7);
const FRAMES = 600;
const RID_EXTENSION = 10;
const video = {
  payloadType: 102,
  name: "H264",
  clockRate: 90000,
  fmtp: "packetization-mode=1",
  feedback: [],
};

let sent = 0;
const peer = {
  sendRtpPacket() {
    sent++;
  },
  sendRtcp() {},
} as unknown as Peer;

/** One layer's packets: `perFrame` 1,100-byte slices per frame, an IDR every 300 frames, rid in the first. */
function layerPackets(ssrc: number, rid: string | undefined, perFrame: number): Uint8Array[][] {
  const frames: Uint8Array[][] = [];
  let seq = 1000;
  for (let f = 0; f < FRAMES; f++) {
    const frame: Uint8Array[] = [];
    for (let i = 0; i < perFrame; i++) {
      const ext = rid && f === 0 && i === 0;
      const header = ext ? 20 : 12;
      const p = new Uint8Array(header + 1100).fill(0x55);
      const view = new DataView(p.buffer);
      p[0] = ext ? 0x90 : 0x80;
      p[1] = (i === perFrame - 1 ? 0x80 : 0) | 102;
      view.setUint16(2, seq++ & 0xffff);
      view.setUint32(4, 90_000 + f * 3000);
      view.setUint32(8, ssrc);
      if (ext) {
        view.setUint16(12, 0xbede);
        view.setUint16(14, 1);
        p[16] = (RID_EXTENSION << 4) | 0;
        p[17] = rid!.charCodeAt(0);
      }
      p[header] = f % 300 === 0 && i === 0 ? 0x65 : 0x41;
      frame.push(p);
    }
    frames.push(frame);
  }
  return frames;
}

const high = layerPackets(11, "h", 10);
const mid = layerPackets(12, "m", 3);
const low = layerPackets(13, "l", 1);
const single = layerPackets(11, undefined, 10);

function viewers(transportCc: boolean): Viewer[] {
  return Array.from({ length: VIEWERS }, (_, i) => ({
    sessionId: `v${i}`,
    peer,
    video: newViewerTrack(96, 5000 + i, true),
    reception: newReception(),
    sentReports: new Map(),
    ...(transportCc ? { bandwidth: new ViewerBandwidth(5) } : {}),
  }));
}

type Mode = "single" | "simulcast" | "transport-cc";

/** Time spent reading viewers' transport feedback (ms) and how many were read, over all runs. */
const feedbackTime = { ms: 0, count: 0 };

/** ns per forwarded packet for one run (forwarding only; feedback reading is counted apart). */
function run(mode: Mode): number {
  const simulcast = mode !== "single";
  const room = new Room({
    id: "bench",
    publisherSessionId: "p",
    publisher: peer,
    video,
    audio: undefined,
    now: new Date(),
    media: simulcast ? { simulcast: { rids: ["h", "m", "l"], ridExtensionId: RID_EXTENSION } } : {},
  });
  room.live = true;
  let now = 0;
  // Warm-up: the layers are learnt and measured, viewers join and start at a keyframe.
  const feed = (from: number, to: number) => {
    for (let f = from; f < to; f++) {
      now += 33;
      if (simulcast) {
        for (const p of low[f]) room.handlePublisherRtp(p, now);
        for (const p of mid[f]) room.handlePublisherRtp(p, now);
        for (const p of high[f]) room.handlePublisherRtp(p, now);
      } else {
        for (const p of single[f]) room.handlePublisherRtp(p, now);
      }
    }
  };
  feed(0, 60);
  const watching = viewers(mode === "transport-cc");
  for (const v of watching) room.addViewer(v, now);
  feed(60, 300); // up to the next keyframe, so every viewer forwards live
  // Each viewer's feedback from where its numbering stands: what it was sent arrived 10 ms later.
  const reported = watching.map((v) => v.bandwidth?.sent.nextSequence ?? 0);
  const feedbackOf = (v: Viewer, i: number): Uint8Array | undefined => {
    const bandwidth = v.bandwidth!;
    const recorder = new TwccRecorder();
    for (let seq = reported[i]; seq !== bandwidth.sent.nextSequence; seq = (seq + 1) & 0xffff) {
      recorder.record(seq, (bandwidth.sent.sentAt(seq) + 10) * 1000);
    }
    reported[i] = bandwidth.sent.nextSequence;
    const packet = recorder.buildFeedback(1, v.video!.ssrc);
    return packet && compound(buildEmptyReceiverReport(1), packet);
  };
  sent = 0;
  let elapsed = 0;
  for (let f = 300; f < FRAMES; f += 3) {
    let start = performance.now();
    feed(f, f + 3);
    elapsed += performance.now() - start;
    if (mode !== "transport-cc") continue;
    const feedback = watching.map(feedbackOf);
    start = performance.now();
    watching.forEach((v, i) => feedback[i] && room.handleViewerRtcp(v, feedback[i]!, now));
    feedbackTime.ms += performance.now() - start;
    feedbackTime.count += feedback.filter((p) => p).length;
  }
  if (simulcast && room.layers!.top.rid !== "h") throw new Error("the top layer should be h");
  return (elapsed * 1e6) / sent;
}

const results: Record<Mode, number[]> = { single: [], simulcast: [], "transport-cc": [] };
for (let i = 0; i < RUNS; i++) {
  for (const mode of Object.keys(results) as Mode[]) results[mode].push(run(mode));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = median(results.single);
const m = median(results.simulcast);
const t = median(results["transport-cc"]);
console.log(
  `${VIEWERS} viewers, room work per forwarded packet (median of ${RUNS}): one encoding ${
    s.toFixed(0)
  } ns, ` +
    `three-layer simulcast ${m.toFixed(0)} ns (${(m / s).toFixed(2)}x), simulcast with transport-cc ` +
    `${t.toFixed(0)} ns (${(t / s).toFixed(2)}x); reading a viewer's transport feedback ` +
    `${(feedbackTime.ms * 1000 / feedbackTime.count).toFixed(2)} µs (30 forwarded packets each)`,
);
