import assert from "node:assert/strict";
import type { Peer } from "../peer/peer.ts";
import { buildNack, buildReceiverReport, compound, readRtcp } from "../rtp/rtcp.ts";
import { newReception, newViewerTrack, Room, type Viewer } from "./room.ts";

interface Sent {
  ssrc: number;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  payload: number[];
}

function fakePeer(): Peer & { sent: Sent[]; rtcp: Uint8Array[] } {
  const sent: Sent[] = [];
  const rtcp: Uint8Array[] = [];
  return {
    sent,
    rtcp,
    sendRtpPacket(packet: Uint8Array, headerLength: number) {
      const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
      sent.push({
        ssrc: view.getUint32(8),
        payloadType: packet[1] & 0x7f,
        sequenceNumber: view.getUint16(2),
        timestamp: view.getUint32(4),
        payload: [...packet.subarray(headerLength)],
      });
    },
    sendRtcp(packet: Uint8Array) {
      rtcp.push(packet);
    },
  } as unknown as Peer & { sent: Sent[]; rtcp: Uint8Array[] };
}

function rtp(pt: number, ssrc: number, seq: number, ts: number, payload: number[]): Uint8Array {
  const p = new Uint8Array(12 + payload.length);
  const view = new DataView(p.buffer);
  p[0] = 0x80;
  p[1] = pt;
  view.setUint16(2, seq);
  view.setUint32(4, ts);
  view.setUint32(8, ssrc);
  p.set(payload, 12);
  return p;
}

const video = {
  payloadType: 102,
  name: "H264",
  clockRate: 90000,
  fmtp: "packetization-mode=1",
  feedback: [],
};
const audio = { payloadType: 111, name: "opus", clockRate: 48000, channels: 2, fmtp: "", feedback: [] };

function setup() {
  const publisher = fakePeer();
  const room = new Room({ id: "r", publisherSessionId: "s", publisher, video, audio, now: new Date() });
  room.live = true;
  const viewer = (): Viewer & { peer: ReturnType<typeof fakePeer> } => ({
    sessionId: crypto.randomUUID(),
    peer: fakePeer(),
    video: newViewerTrack(96, 5000, true),
    audio: newViewerTrack(97, 6000, false),
    reception: newReception(),
    sentReports: new Map(),
  });
  return { room, publisher, viewer };
}

const IDR = [0x65, 0xaa];
const P = [0x41, 0xbb];

Deno.test("each viewer gets its own PT, SSRC and offsets; video waits for a keyframe", () => {
  const { room, viewer } = setup();
  room.handlePublisherRtp(rtp(102, 1, 10, 1000, P), 0); // before any viewer: nothing cached (no keyframe)
  const v = viewer();
  room.addViewer(v, 0);
  room.handlePublisherRtp(rtp(102, 1, 11, 4000, P), 10); // mid-GOP: held back
  room.handlePublisherRtp(rtp(111, 2, 500, 48000, [1, 2]), 10); // audio flows at once
  room.handlePublisherRtp(rtp(102, 1, 12, 7000, IDR), 20);
  room.handlePublisherRtp(rtp(102, 1, 13, 10000, P), 30);
  const videoSent = v.peer.sent.filter((s) => s.ssrc === 5000);
  const audioSent = v.peer.sent.filter((s) => s.ssrc === 6000);
  assert.deepEqual(videoSent.map((s) => s.payload[0]), [0x65, 0x41], "starts at the keyframe");
  assert.ok(videoSent.every((s) => s.payloadType === 96));
  assert.equal(audioSent.length, 1);
  assert.equal(audioSent[0].payloadType, 97);
  const t = v.video!;
  assert.equal(videoSent[0].sequenceNumber, (12 + t.sequenceOffset) & 0xffff);
  assert.equal(videoSent[1].sequenceNumber, (13 + t.sequenceOffset) & 0xffff);
  assert.equal(videoSent[1].timestamp, (10000 + t.timestampOffset) >>> 0);
});

Deno.test("a joining viewer gets the cached GOP at once, squeezed, then live continues seamlessly", () => {
  const { room, viewer } = setup();
  room.handlePublisherRtp(rtp(102, 1, 100, 3000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 101, 6000, P), 33);
  room.handlePublisherRtp(rtp(102, 1, 102, 9000, P), 66);
  const v = viewer();
  room.addViewer(v, 70);
  assert.equal(room.counters.keyframeCacheHits, 1);
  room.handlePublisherRtp(rtp(102, 1, 103, 12000, P), 100);
  const t = v.video!;
  const sent = v.peer.sent;
  assert.deepEqual(sent.map((s) => (s.sequenceNumber - t.sequenceOffset) & 0xffff), [100, 101, 102, 103]);
  assert.deepEqual(
    sent.map((s) => (s.timestamp - t.timestampOffset) >>> 0),
    [8998, 8999, 9000, 12000],
    "replayed frames sit just before the newest cached frame; live keeps real timing",
  );
});

Deno.test("a resend of a replayed packet keeps the squeezed timestamp it was first sent with", () => {
  const { room, viewer } = setup();
  room.handlePublisherRtp(rtp(102, 1, 100, 3000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 101, 6000, P), 33);
  room.handlePublisherRtp(rtp(102, 1, 102, 9000, P), 66);
  const plain = viewer();
  const withRtx = viewer();
  withRtx.video = newViewerTrack(96, 5000, true, 97);
  for (const v of [plain, withRtx]) {
    room.addViewer(v, 70);
    const first = v.peer.sent[0];
    v.peer.sent.length = 0;
    room.handleViewerRtcp(v, buildNack(9, 5000, [first.sequenceNumber]), 80);
    assert.equal(v.peer.sent.length, 1);
    assert.equal(v.peer.sent[0].timestamp, first.timestamp, "the keyframe's squeezed timestamp again");
  }
  // Past the window (normally the burst has left the history by then) the live timestamp is used.
  const keyframe = (100 + plain.video!.sequenceOffset) & 0xffff;
  plain.peer.sent.length = 0;
  room.handleViewerRtcp(plain, buildNack(9, 5000, [keyframe]), 70 + 10_001);
  assert.equal(plain.peer.sent[0].timestamp, (3000 + plain.video!.timestampOffset) >>> 0);
});

Deno.test("NACKs from a viewer are answered from history with the viewer's numbering", () => {
  const { room, viewer } = setup();
  const v = viewer();
  room.addViewer(v, 0);
  room.handlePublisherRtp(rtp(102, 1, 200, 1000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 201, 1000, [0x65, 0xcc]), 1);
  const lost = v.peer.sent[1];
  v.peer.sent.length = 0;
  room.handleViewerRtcp(v, compound(buildReceiverReport(9), buildNack(9, 5000, [lost.sequenceNumber])), 50);
  assert.equal(v.peer.sent.length, 1);
  assert.deepEqual(v.peer.sent[0], lost);
  assert.equal(room.counters.packetsResent, 1);
  room.handleViewerRtcp(v, buildNack(9, 5000, [(lost.sequenceNumber + 500) & 0xffff]), 60);
  assert.equal(v.peer.sent.length, 1, "unknown packets are not invented");
});

Deno.test("a viewer with RTX gets resends on its RTX stream, original sequence number first", () => {
  const { room, viewer } = setup();
  const v = viewer();
  v.video = newViewerTrack(96, 5000, true, 97);
  const rtx = v.video.rtx!;
  assert.equal(rtx.payloadType, 97);
  room.addViewer(v, 0);
  room.handlePublisherRtp(rtp(102, 1, 300, 1000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 301, 1000, [0x65, 0xcc]), 1);
  const lost = v.peer.sent[1];
  v.peer.sent.length = 0;
  const firstRtxSequence = rtx.nextSequence;
  room.handleViewerRtcp(v, buildNack(9, 5000, [lost.sequenceNumber]), 50);
  room.handleViewerRtcp(v, buildNack(9, 5000, [lost.sequenceNumber]), 90); // the resend was lost too
  assert.equal(v.peer.sent.length, 2);
  for (const [i, resent] of v.peer.sent.entries()) {
    assert.equal(resent.ssrc, rtx.ssrc);
    assert.equal(resent.payloadType, 97);
    assert.equal(resent.sequenceNumber, (firstRtxSequence + i) & 0xffff, "RTX numbering is its own");
    assert.equal(resent.timestamp, lost.timestamp);
    assert.deepEqual(resent.payload, [lost.sequenceNumber >> 8, lost.sequenceNumber & 0xff, ...lost.payload]);
  }
  assert.equal(v.video.packetsSent, 2, "resends do not count as packets of the original stream");
  room.handleViewerRtcp(v, buildNack(9, rtx.ssrc, [lost.sequenceNumber]), 60);
  assert.equal(v.peer.sent.length, 2, "a NACK naming another SSRC is not answered");
});

Deno.test("publisher gaps are NACKed; a new publisher SSRC continues each viewer's numbering", () => {
  const { room, publisher, viewer } = setup();
  const v = viewer();
  room.addViewer(v, 0);
  room.handlePublisherRtp(rtp(102, 1, 300, 1000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 303, 4000, P), 1000); // 301, 302 missing
  const nacks = publisher.rtcp.flatMap((p) => readRtcp(p).nacks);
  assert.deepEqual(nacks.flatMap((n) => n.sequenceNumbers).sort(), [301, 302], "the gap was NACKed");
  const before = v.peer.sent[v.peer.sent.length - 1];
  // The encoder restarts: new SSRC, sequence and timestamp from scratch, starting with a keyframe.
  room.handlePublisherRtp(rtp(102, 77, 5, 90, IDR), 1500);
  const after = v.peer.sent[v.peer.sent.length - 1];
  assert.equal(after.ssrc, before.ssrc);
  assert.equal(after.sequenceNumber, (before.sequenceNumber + 1) & 0xffff);
  assert.equal(after.timestamp, (before.timestamp + 45000) >>> 0, "500 ms later at 90 kHz");
  assert.equal(room.counters.sourceChanges, 1);
});

Deno.test("a keyframe request inside the 500 ms window is deferred, not dropped", () => {
  const { room, publisher, viewer } = setup();
  room.handlePublisherRtp(rtp(102, 1, 1, 1000, IDR), 0);
  const plis = () => publisher.rtcp.filter((p) => readRtcp(p).keyframeRequested).length;
  room.addViewer(viewer(), 10);
  assert.equal(plis(), 1);
  const late = viewer();
  room.addViewer(late, 200); // inside the window
  assert.equal(plis(), 1);
  room.handlePublisherRtp(rtp(102, 1, 2, 4000, P), 400);
  assert.equal(plis(), 1, "still throttled");
  room.handlePublisherRtp(rtp(102, 1, 3, 7000, P), 520);
  assert.equal(plis(), 2, "sent when the window ended");
});

Deno.test("one NACK packet cannot ask for more than 64 resends", () => {
  const { room, viewer } = setup();
  const v = viewer();
  room.addViewer(v, 0);
  for (let i = 0; i < 200; i++) {
    room.handlePublisherRtp(rtp(102, 1, 1000 + i, 1000 + i * 3000, i ? P : IDR), i);
  }
  const sent = v.peer.sent.map((s) => s.sequenceNumber);
  v.peer.sent.length = 0;
  room.handleViewerRtcp(v, buildNack(9, 5000, sent), 300);
  assert.equal(v.peer.sent.length, 64);
});

Deno.test("a new publisher session takes over: viewers' numbering continues even with the same SSRC", () => {
  const { room, viewer } = setup();
  const v = viewer();
  room.addViewer(v, 0);
  room.handlePublisherRtp(rtp(102, 7, 100, 1000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 7, 101, 4000, P), 33);
  const before = v.peer.sent[v.peer.sent.length - 1];
  const next = setup().publisher;
  room.replacePublisher({
    publisher: next,
    publisherSessionId: "n",
    video,
    audio,
    twccExtensionId: undefined,
  });
  // The reconnected encoder reuses SSRC 7 but starts its sequence and timestamps afresh.
  room.handlePublisherRtp(rtp(102, 7, 50000, 777, P), 1033); // mid-GOP: held back
  room.handlePublisherRtp(rtp(102, 7, 50001, 3777, IDR), 1066);
  const after = v.peer.sent[v.peer.sent.length - 1];
  assert.equal(v.peer.sent.length, 3, "nothing before the new keyframe");
  assert.equal(after.payload[0], 0x65);
  assert.equal(after.sequenceNumber, (before.sequenceNumber + 1) & 0xffff);
  assert.ok(
    ((after.timestamp - before.timestamp) >>> 0) > 0 &&
      ((after.timestamp - before.timestamp) >>> 0) < 200_000,
  );
  assert.ok(
    next.rtcp.some((p) => readRtcp(p).keyframeRequested),
    "the new publisher is asked for a keyframe",
  );
});
