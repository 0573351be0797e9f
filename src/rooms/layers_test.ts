import assert from "node:assert/strict";
import { buildNack, readRtcp } from "../rtp/rtcp.ts";
import { type RecordingPeer, recordingPeer, type SentRtp } from "../../tests/helpers/recording_peer.ts";
import { newReception, newViewerTrack, Room, type Viewer } from "./room.ts";

const RID_EXTENSION = 10;

/** An H.264 RTP packet; with `rid` it carries the RTP stream id extension (RFC 8285 one-byte form). */
function rtp(ssrc: number, seq: number, ts: number, marker: boolean, payload: number[], rid?: string) {
  const ext: number[] = [];
  if (rid) {
    ext.push((RID_EXTENSION << 4) | (rid.length - 1), ...[...rid].map((c) => c.charCodeAt(0)));
    while (ext.length % 4 !== 0) ext.push(0);
  }
  const headerLength = 12 + (ext.length > 0 ? 4 + ext.length : 0);
  const p = new Uint8Array(headerLength + payload.length);
  const view = new DataView(p.buffer);
  p[0] = ext.length > 0 ? 0x90 : 0x80;
  p[1] = (marker ? 0x80 : 0) | 102;
  view.setUint16(2, seq);
  view.setUint32(4, ts);
  view.setUint32(8, ssrc);
  if (ext.length > 0) {
    view.setUint16(12, 0xbede);
    view.setUint16(14, ext.length / 4);
    p.set(ext, 16);
  }
  p.set(payload, headerLength);
  return p;
}

/** A padding-only packet (a browser's bandwidth probe): P bit, 200 bytes of padding. */
function paddingOnly(ssrc: number, seq: number, ts: number) {
  const p = rtp(ssrc, seq, ts, false, [...new Array(199).fill(0), 200]);
  p[0] |= 0x20;
  return p;
}

const video = {
  payloadType: 102,
  name: "H264",
  clockRate: 90000,
  fmtp: "packetization-mode=1",
  feedback: [],
};
const IDR = 0x65;
const P = 0x41;
/** Second payload byte: which layer a forwarded packet came from. */
const HIGH = 0xa1;
const LOW = 0xb1;

function setup() {
  const publisher = recordingPeer();
  const room = new Room({
    id: "r",
    publisherSessionId: "s",
    publisher,
    video,
    audio: undefined,
    now: new Date(),
    media: { simulcast: { rids: ["h", "l"], ridExtensionId: RID_EXTENSION } },
  });
  room.live = true;
  const viewer: Viewer & { peer: RecordingPeer } = {
    sessionId: "v",
    peer: recordingPeer(),
    video: newViewerTrack(96, 5000, true),
    reception: newReception(),
    sentReports: new Map(),
  };
  return { room, publisher, viewer };
}

/** Two layers: "l" (ssrc 21, one 100-byte packet per frame) and "h" (ssrc 11, two 1,000-byte packets). */
class Publisher {
  lowSeq = 1000;
  highSeq = 2000;
  sentRid = new Set<string>();
  constructor(readonly room: Room) {}

  #rid(rid: string) {
    // Senders put the rid in the first packets only; the room must go on by SSRC.
    if (this.sentRid.has(rid)) return undefined;
    this.sentRid.add(rid);
    return rid;
  }

  low(frame: number, keyframe: boolean, now: number, packets = 1) {
    for (let i = 0; i < packets; i++) {
      const first = keyframe && i === 0 ? IDR : P;
      const payload = [first, LOW, ...new Array(98).fill(1)];
      this.room.handlePublisherRtp(
        rtp(21, this.lowSeq++, 500_000 + frame * 3000, i === packets - 1, payload, this.#rid("l")),
        now,
      );
    }
  }

  high(frame: number, keyframe: boolean, now: number, part: "all" | "first" | "rest" = "all") {
    const ts = 7_000_000 + frame * 3000;
    if (part !== "rest") {
      const payload = [keyframe ? IDR : P, HIGH, ...new Array(998).fill(2)];
      this.room.handlePublisherRtp(rtp(11, this.highSeq++, ts, false, payload, this.#rid("h")), now);
    }
    if (part !== "first") {
      this.room.handlePublisherRtp(
        rtp(11, this.highSeq++, ts, true, [P, HIGH, ...new Array(998).fill(2)]),
        now,
      );
    }
  }
}

function plisFor(publisher: RecordingPeer, ssrc: number): number {
  return publisher.rtcp.filter((p) =>
    readRtcp(p).keyframeRequested && new DataView(p.buffer).getUint32(8) !== 0
  )
    .filter((p) => {
      // The PLI is the last packet of the compound; its media SSRC is its last 4 bytes.
      const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
      return view.getUint32(p.length - 4) === ssrc;
    }).length;
}

/** `maxGapMs`: the longest a viewer may have waited for a keyframe (its timestamps follow the wall clock). */
function assertOneContinuousStream(sent: SentRtp[], maxGapMs = 1000) {
  assert.ok(sent.length > 0);
  for (let i = 1; i < sent.length; i++) {
    assert.equal(sent[i].ssrc, 5000, "one SSRC for the viewer");
    assert.equal(sent[i].sequenceNumber, (sent[i - 1].sequenceNumber + 1) & 0xffff, `no gap at packet ${i}`);
    const dt = (sent[i].timestamp - sent[i - 1].timestamp) | 0;
    assert.ok(dt >= 0 && dt <= maxGapMs * 90, `timestamps move forward at packet ${i} (by ${dt})`);
  }
}

Deno.test("simulcast: layers are learnt from the rid extension, then by SSRC; a viewer climbs at a keyframe", () => {
  const { room, publisher, viewer } = setup();
  const pub = new Publisher(room);
  let now = 0;
  let frame = 0;
  // Only the low layer is sent at first (a browser's bandwidth estimate still ramps up).
  pub.low(frame++, true, now);
  for (; frame < 10; frame++) pub.low(frame, false, now += 40);
  room.addViewer(viewer, now);
  for (; frame < 20; frame++) {
    pub.low(frame, false, now += 40);
    // The browser probes its uplink with padding on this layer: none of it may reach the viewer.
    room.handlePublisherRtp(paddingOnly(21, pub.lowSeq++, 500_000 + frame * 3000), now);
  }
  const layers = room.layers!;
  assert.equal(layers.layerOf(viewer)?.rid, "l");
  assert.ok(viewer.peer.sent.length > 0 && viewer.peer.sent.every((s) => s.payload[1] === LOW));
  assertOneContinuousStream(viewer.peer.sent); // the padding's sequence numbers were closed over

  // The high layer starts (with no keyframe yet); once its rate is known it is the top layer.
  const plisBefore = plisFor(publisher, 11);
  for (; frame < 40; frame++) {
    pub.low(frame, false, now += 40);
    pub.high(frame, false, now);
  }
  assert.equal(layers.top.rid, "h");
  assert.ok(plisFor(publisher, 11) > plisBefore, "the target layer is asked for a keyframe");
  assert.equal(layers.layerOf(viewer)?.rid, "l", "no switch before the high layer's keyframe");
  pub.low(frame, false, now += 40);
  pub.high(frame++, true, now);
  for (; frame < 50; frame++) {
    pub.low(frame, false, now += 40);
    pub.high(frame, false, now);
  }
  assert.equal(layers.layerOf(viewer)?.rid, "h");
  const sent = viewer.peer.sent;
  assertOneContinuousStream(sent);
  const firstHigh = sent.findIndex((s) => s.payload[1] === HIGH);
  assert.equal(sent[firstHigh].payload[0], IDR, "the switch happens at the high layer's keyframe");
  assert.ok(sent[firstHigh - 1].marker, "the low layer's last frame was complete");
  assert.ok(sent.slice(firstHigh).every((s) => s.payload[1] === HIGH), "nothing of the low layer after");
  assert.deepEqual(room.info().layers!.map((l) => [l.encodingId, l.active]), [["h", true], ["l", true]]);

  // A NACK for a packet the low layer sent must not be answered with a high-layer packet.
  const resentBefore = viewer.peer.sent.length;
  room.handleViewerRtcp(viewer, buildNack(1, 5000, [sent[firstHigh - 1].sequenceNumber]), now);
  assert.equal(viewer.peer.sent.length, resentBefore, "no resend across the switch");
  room.handleViewerRtcp(viewer, buildNack(1, 5000, [sent[firstHigh + 1].sequenceNumber]), now);
  assert.equal(viewer.peer.sent.length, resentBefore + 1, "a high-layer packet is resent");
  assert.equal(viewer.peer.sent.at(-1)!.payload[1], HIGH);
  assert.equal(room.counters.packetsResent, 1, "the layers count into the room's counters (metrics)");
  assert.ok(room.counters.keyframeRequests > 0);
});

/** The high layer's keyframe starts while the viewer's low frame is half sent; the low frame ends `lateMs` later. */
function midFrameSwitch(lateMs: number) {
  const { room, viewer } = setup();
  const pub = new Publisher(room);
  let now = 0;
  let frame = 0;
  pub.low(frame++, true, now, 2);
  room.addViewer(viewer, now);
  for (; frame < 30; frame++) {
    pub.low(frame, false, now += 40, 2);
    if (frame >= 10) pub.high(frame, false, now);
  }
  assert.equal(room.layers!.top.rid, "h");
  const lowTs = 500_000 + frame * 3000;
  room.handlePublisherRtp(rtp(21, pub.lowSeq++, lowTs, false, [P, LOW, 9, 9]), now += 40);
  pub.high(frame, true, now, "first");
  room.handlePublisherRtp(rtp(21, pub.lowSeq++, lowTs, true, [P, LOW, 9, 9]), now += lateMs);
  pub.high(frame++, true, now, "rest");
  return { room, viewer, pub, frame, now };
}

Deno.test("simulcast: a viewer in the middle of a frame finishes it, then catches up on the new keyframe", () => {
  const { room, viewer, pub, now: t } = midFrameSwitch(5);
  let now = t;
  for (let frame = 31; frame < 35; frame++) {
    pub.low(frame, false, now += 40, 2);
    pub.high(frame, false, now);
  }
  const sent = viewer.peer.sent;
  const firstHigh = sent.findIndex((s) => s.payload[1] === HIGH);
  assert.ok(firstHigh > 0);
  assert.ok(sent[firstHigh - 1].marker, "the low layer's frame was finished first");
  assert.equal(sent[firstHigh].payload[0], IDR, "the keyframe from its first packet (from the history)");
  assert.ok(sent.slice(firstHigh).every((s) => s.payload[1] === HIGH));
  assert.equal(room.layers!.layerOf(viewer)?.rid, "h");
  assertOneContinuousStream(sent);
});

Deno.test("simulcast: when the target's keyframe is too old to catch up on, the viewer waits for the next", () => {
  const { room, viewer, pub, frame: f, now: t } = midFrameSwitch(1100);
  let now = t;
  let frame = f;
  for (; frame < 35; frame++) {
    pub.low(frame, false, now += 40, 2);
    pub.high(frame, false, now);
  }
  const sent = viewer.peer.sent;
  assert.ok(!sent.some((s) => s.payload[1] === HIGH), "no part of a keyframe whose start was missed");
  assert.ok(sent.at(-1)!.marker, "the low layer ended with a complete frame");
  assert.equal(room.layers!.layerOf(viewer)?.rid, "h", "waiting on the high layer");
  const waitingSince = sent.length;
  pub.high(frame++, true, now += 40);
  assert.equal(sent[waitingSince].payload[0], IDR);
  assert.equal(sent[waitingSince].payload[1], HIGH);
  assertOneContinuousStream(sent, 1500);
});

Deno.test("simulcast: a layer that stops being sent loses its viewers to the next one", () => {
  const { room, viewer } = setup();
  const pub = new Publisher(room);
  let now = 0;
  let frame = 0;
  pub.low(frame, true, now);
  pub.high(frame++, true, now);
  for (; frame < 30; frame++) {
    pub.low(frame, false, now += 40);
    pub.high(frame, false, now);
  }
  room.addViewer(viewer, now);
  assert.equal(room.layers!.layerOf(viewer)?.rid, "h");
  pub.high(frame++, true, now += 40);
  // The browser stops the high layer (its bandwidth estimate fell); the low one goes on.
  for (; frame < 100; frame++) pub.low(frame, frame === 80, now += 40);
  assert.equal(room.layers!.layerOf(viewer)?.rid, "l");
  // It waited from the high layer's last frame until the low layer's next keyframe (2 s here).
  assertOneContinuousStream(viewer.peer.sent, 2500);
  assert.equal(viewer.peer.sent.at(-1)!.payload[1], LOW);
});

Deno.test("simulcast: a new publisher session (takeover) is learnt anew; viewers continue at its keyframe", () => {
  const { room, viewer } = setup();
  const pub = new Publisher(room);
  let now = 0;
  let frame = 0;
  pub.low(frame, true, now);
  pub.high(frame++, true, now);
  for (; frame < 30; frame++) {
    pub.low(frame, false, now += 40);
    pub.high(frame, false, now);
  }
  room.addViewer(viewer, now);
  pub.high(frame++, true, now += 40);
  assert.equal(room.layers!.layerOf(viewer)?.rid, "h");
  const before = viewer.peer.sent.length;
  const next = recordingPeer();
  room.replacePublisher({
    publisher: next,
    publisherSessionId: "s2",
    video,
    audio: undefined,
    twccExtensionId: undefined,
  });
  // The new encoder: new SSRCs, its own numbering, rids in its first packets again.
  let seq = 40_000;
  for (let f = 0; f < 40; f++) {
    now += 40;
    const ts = 123_000 + f * 3000;
    room.handlePublisherRtp(
      rtp(77, seq++, ts, false, [f === 0 ? IDR : P, HIGH, 1], f === 0 ? "h" : undefined),
      now,
    );
    room.handlePublisherRtp(rtp(77, seq++, ts, true, [P, HIGH, 2]), now);
    room.handlePublisherRtp(
      rtp(78, 9000 + f, ts, true, [f === 0 ? IDR : P, LOW, 3], f === 0 ? "l" : undefined),
      now,
    );
  }
  const after = viewer.peer.sent.slice(before);
  assert.ok(after.length >= 70, `the viewer gets the new publisher's video (${after.length} packets)`);
  assert.equal(after[0].payload[0], IDR);
  assertOneContinuousStream(viewer.peer.sent, 2000);
});

Deno.test("simulcast: a layer's rate leaves out padding-only probes entirely (their headers too)", () => {
  const { room } = setup();
  const pub = new Publisher(room);
  let now = 0;
  // 25 frames a second of one 112-byte packet (~22 kbit/s) and 40 padding-only probes per frame.
  for (let frame = 0; frame < 50; frame++) {
    pub.low(frame, frame === 0, now += 40);
    for (let i = 0; i < 40; i++) {
      room.handlePublisherRtp(paddingOnly(21, pub.lowSeq++, 500_000 + frame * 3000), now);
    }
  }
  const low = room.layers!.info().find((l) => l.encodingId === "l")!;
  // The 12-byte headers of 1,000 probes a second alone would add 96 kbit/s.
  assert.ok(low.bitrateKbps >= 20 && low.bitrateKbps <= 25, `${low.bitrateKbps} kbit/s`);
});
