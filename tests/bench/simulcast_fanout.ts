/**
 * The room's forwarding work per forwarded packet with a three-layer simulcast publisher against one
 * encoding, in the same run: N viewers (fake peers whose send is a no-op, so SRTP and the socket are left
 * out and only the room's work is timed: header reading, layer routing, history, numbering), all on the
 * top layer. The simulcast room also receives the two smaller layers (about 40 % more packets than the top
 * layer alone), which costs it receive work without adding forwarded packets. Runs alternate; medians are
 * printed with their ratio.
 *
 * `deno run --allow-all tests/bench/simulcast_fanout.ts [--viewers N] [--runs N]`
 */
import type { Peer } from "../../src/peer/peer.ts";
import { newReception, newViewerTrack, Room, type Viewer } from "../../src/rooms/room.ts";

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

function viewers(): Viewer[] {
  return Array.from({ length: VIEWERS }, (_, i) => ({
    sessionId: `v${i}`,
    peer,
    video: newViewerTrack(96, 5000 + i, true),
    reception: newReception(),
    sentReports: new Map(),
  }));
}

/** ns per forwarded packet for one run. */
function run(simulcast: boolean): number {
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
  for (const v of viewers()) room.addViewer(v, now);
  feed(60, 300); // up to the next keyframe, so every viewer forwards live
  sent = 0;
  const start = performance.now();
  feed(300, FRAMES);
  const elapsed = performance.now() - start;
  if (simulcast && room.layers!.top.rid !== "h") throw new Error("the top layer should be h");
  return (elapsed * 1e6) / sent;
}

const results = { single: [] as number[], simulcast: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  results.single.push(run(false));
  results.simulcast.push(run(true));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = median(results.single);
const m = median(results.simulcast);
console.log(
  `${VIEWERS} viewers, room work per forwarded packet (median of ${RUNS}): one encoding ${
    s.toFixed(0)
  } ns, ` +
    `three-layer simulcast ${m.toFixed(0)} ns: ${(m / s).toFixed(2)}x`,
);
