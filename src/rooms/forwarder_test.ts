import assert from "node:assert/strict";
import { type RecordingPeer, recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { rtpPacket } from "../../tests/helpers/srtp_packets.ts";
import { continueNumbering, Forwarder, remapTracks } from "./forwarder.ts";
import { JoinReplay } from "./join_replay.ts";
import { newReception, newViewerTrack, type Viewer } from "./viewer.ts";

function viewer(videoSsrc = 5000, audioSsrc = 6000): Viewer & { peer: RecordingPeer } {
  return {
    sessionId: crypto.randomUUID(),
    peer: recordingPeer(),
    video: newViewerTrack(96, videoSsrc, true),
    audio: newViewerTrack(97, audioSsrc, false),
    reception: newReception(),
    sentReports: new Map(),
  };
}

/** Loads a publisher video packet (with a header extension viewers did not negotiate) and forwards it. */
function forwardVideo(
  forwarder: Forwarder,
  viewers: Set<Viewer>,
  seq: number,
  keyframe: boolean,
  now: number,
) {
  const packet = rtpPacket({
    seq,
    timestamp: seq * 3000,
    payloadType: 102,
    extensions: [{ id: 3, data: [1, 2] }],
    payloadLength: 20,
    marker: true,
  });
  assert.ok(forwarder.load(packet));
  return forwarder.forwardLive(viewers, true, seq, seq * 3000, keyframe, now);
}

Deno.test("forwardLive: each viewer gets its own PT, SSRC and offsets, without the publisher's extensions", () => {
  const forwarder = new Forwarder();
  const a = viewer(5000);
  const b = viewer(7000);
  const viewers = new Set<Viewer>([a, b]);
  assert.equal(forwardVideo(forwarder, viewers, 10, false, 0), true, "mid-GOP: both wait for a keyframe");
  assert.equal(a.peer.sent.length + b.peer.sent.length, 0);
  assert.equal(forwardVideo(forwarder, viewers, 11, true, 33), false);
  const original = rtpPacket({ seq: 11, payloadLength: 20 });
  for (const v of [a, b]) {
    const [sent] = v.peer.sent;
    const track = v.video!;
    assert.equal(sent.ssrc, track.ssrc);
    assert.equal(sent.payloadType, 96);
    assert.equal(sent.sequenceNumber, (11 + track.sequenceOffset) & 0xffff);
    assert.equal(sent.timestamp, (33000 + track.timestampOffset) >>> 0);
    assert.deepEqual(sent.payload, [...original.subarray(12)], "payload only: the extension was dropped");
    assert.equal(track.packetsSent, 1);
    assert.equal(track.octetsSent, 20);
    assert.ok(track.frameEnded, "the marker bit ended a frame");
  }
});

Deno.test("a remapped track continues its numbering by one and its timestamps by the time that passed", () => {
  const forwarder = new Forwarder();
  const v = viewer();
  const viewers = new Set<Viewer>([v]);
  forwardVideo(forwarder, viewers, 100, true, 0);
  const before = v.peer.sent[0];
  remapTracks(viewers, true);
  assert.ok(v.video!.remap && !v.video!.started, "video waits for the new stream's keyframe");
  assert.ok(v.audio!.started && !v.audio!.remap, "audio that sent nothing just waits for the new stream");
  forwardVideo(forwarder, viewers, 40_000, false, 400);
  assert.equal(v.peer.sent.length, 1, "the new stream's delta frame is held back");
  forwardVideo(forwarder, viewers, 40_001, true, 500);
  const after = v.peer.sent[1];
  assert.equal(after.sequenceNumber, (before.sequenceNumber + 1) & 0xffff);
  assert.equal((after.timestamp - before.timestamp) >>> 0, 45_000, "500 ms at 90 kHz");
  assert.equal(v.video!.resendFloor, after.sequenceNumber, "older numbers named the old stream");
});

Deno.test("continueNumbering advances timestamps by at least one tick", () => {
  const track = newViewerTrack(96, 1, true);
  track.lastSequence = 0xffff;
  track.lastTimestamp = 0xffffffff;
  track.lastSentAt = 1000;
  continueNumbering(track, 7, 123, 90000, 1000);
  assert.equal((7 + track.sequenceOffset) & 0xffff, 0, "wraps to 0");
  assert.equal((123 + track.timestampOffset) >>> 0, 0, "one tick later, wrapped");
});

Deno.test("forwardRtx wraps the loaded packet in the viewer's RTX stream (RFC 4588)", () => {
  const forwarder = new Forwarder();
  const v = viewer();
  v.video = newViewerTrack(96, 5000, true, 98);
  const rtx = v.video.rtx!;
  const first = rtx.nextSequence;
  assert.ok(forwarder.load(rtpPacket({ seq: 9, payloadLength: 4 })));
  forwarder.forwardRtx(v, v.video, rtx, 0x1234, 777, 0);
  const [sent] = v.peer.sent;
  assert.deepEqual([sent.ssrc, sent.payloadType, sent.sequenceNumber, sent.timestamp], [
    rtx.ssrc,
    98,
    first,
    777,
  ]);
  assert.deepEqual(sent.payload.slice(0, 2), [0x12, 0x34], "original sequence number first");
  assert.equal(rtx.nextSequence, (first + 1) & 0xffff);
  assert.equal(v.video.packetsSent, 0, "not a packet of the original stream");
});

Deno.test("a leaving viewer is reported at its frame's end; a replaying one only gets packets its cursor passed", () => {
  const forwarder = new Forwarder();
  const ended: number[] = [];
  forwarder.onFrameEnd = (_viewer, now) => ended.push(now);
  const v = viewer();
  const viewers = new Set<Viewer>([v]);
  forwardVideo(forwarder, viewers, 1, true, 0);
  v.video!.leaving = true;
  forwardVideo(forwarder, viewers, 2, false, 33);
  assert.deepEqual(ended, [33]);
  const cursor = new JoinReplay({
    start: 10,
    streamBytesPerMs: 0,
    clockRate: 90000,
    timestampOffset: 0,
    now: 0,
  });
  cursor.timestamps.set(9 * 3000, 5);
  v.video!.replay = { cursor, active: true, until: Infinity };
  v.peer.sent.length = 0;
  forwardVideo(forwarder, viewers, 10, false, 40);
  assert.equal(v.peer.sent.length, 0, "the cursor sends 10 in its turn");
  forwardVideo(forwarder, viewers, 9, false, 41);
  assert.equal(v.peer.sent.length, 1, "9 is behind the cursor: it goes at once");
  assert.equal(v.peer.sent[0].timestamp, (5 + v.video!.timestampOffset) >>> 0, "with its replayed timestamp");
});
