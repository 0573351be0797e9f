import assert from "node:assert/strict";
import { buildNack, buildReceiverReport, compound, readRtcp } from "../rtp/rtcp.ts";
import { type RecordingPeer, recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { newReception, newViewerTrack, Room, type Viewer } from "./room.ts";

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
  const publisher = recordingPeer();
  const room = new Room({ id: "r", publisherSessionId: "s", publisher, video, audio, now: new Date() });
  room.live = true;
  const viewer = (): Viewer & { peer: RecordingPeer } => ({
    sessionId: crypto.randomUUID(),
    peer: recordingPeer(),
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

const big = (first: number) => [first, ...new Array(998).fill(7)]; // ~1,000-byte payloads

Deno.test("a joining viewer gets the GOP in order, paced, interleaved with live packets, then live", () => {
  const { room, viewer } = setup();
  // 2 s of a ~4 Mbit/s stream: 500 packets per second, keyframe first.
  let seq = 100;
  let now = 0;
  const publish = () => {
    room.handlePublisherRtp(
      rtp(102, 1, seq, 3000 + Math.floor((seq - 100) / 10) * 3000, big(seq === 100 ? 0x65 : 0x41)),
      now,
    );
    seq++;
    now += 2;
  };
  while (seq < 1100) publish();
  const v = viewer();
  const wake = room.addViewer(v, now);
  assert.equal(room.counters.keyframeCacheHits, 1);
  const burst = v.peer.sent.length;
  assert.ok(burst > 0 && burst <= 70, `a first burst of ${burst} packets, not the whole GOP`);
  assert.equal(v.peer.sent[0].payload[0], 0x65, "the keyframe first");
  assert.ok(wake !== undefined && wake > now, "the replay wants to be woken later");
  // Live packets keep coming; the replay runs on them and on its own wake-ups until it has caught up.
  for (let i = 0; i < 2000 && v.video!.replay!.active; i++) {
    publish();
    if (i % 3 === 0) room.pollReplays(now);
  }
  assert.ok(!v.video!.replay!.active, "caught up");
  const caughtUpAt = now;
  for (let i = 0; i < 20; i++) publish();
  const t = v.video!;
  const numbers = v.peer.sent.filter((s) => s.ssrc === 5000).map((s) => s.sequenceNumber);
  for (let i = 1; i < numbers.length; i++) {
    assert.equal(numbers[i], (numbers[i - 1] + 1) & 0xffff, `packet ${i} follows the one before it`);
  }
  assert.equal((numbers[0] - t.sequenceOffset) & 0xffff, 100, "from the keyframe");
  assert.equal((numbers[numbers.length - 1] - t.sequenceOffset) & 0xffff, seq - 1, "to the live edge");
  // 1,000 packets of GOP at 3x the stream's rate while it keeps growing at 1x: about a second to catch up.
  assert.ok(caughtUpAt - 2000 > 600 && caughtUpAt - 2000 < 1500, `caught up after ${caughtUpAt - 2000} ms`);
  // Timestamps never go back, and live packets keep the publisher's spacing after the replay.
  const stamps = v.peer.sent.map((s) => s.timestamp);
  for (let i = 1; i < stamps.length; i++) assert.ok(((stamps[i] - stamps[i - 1]) | 0) >= 0);
  const last = v.peer.sent.slice(-11);
  assert.equal((last[10].timestamp - last[0].timestamp) >>> 0, 3000, "10 live packets = one frame of 3000");
});

Deno.test("a resend of a replayed packet keeps the timestamp it was replayed with", () => {
  const { room, viewer } = setup();
  room.handlePublisherRtp(rtp(102, 1, 100, 3000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 101, 6000, P), 33);
  room.handlePublisherRtp(rtp(102, 1, 102, 9000, P), 66);
  const plain = viewer();
  const withRtx = viewer();
  withRtx.video = newViewerTrack(96, 5000, true, 97);
  for (const v of [plain, withRtx]) {
    room.addViewer(v, 70);
    const second = v.peer.sent[1];
    v.peer.sent.length = 0;
    room.handleViewerRtcp(v, buildNack(9, 5000, [second.sequenceNumber]), 80);
    assert.equal(v.peer.sent.length, 1);
    assert.equal(v.peer.sent[0].timestamp, second.timestamp, "the replayed timestamp again");
  }
  // Past the window (by then the replayed packets have left the history) the live timestamp is used.
  const frame = (101 + plain.video!.sequenceOffset) & 0xffff;
  plain.peer.sent.length = 0;
  room.handleViewerRtcp(plain, buildNack(9, 5000, [frame]), 70 + 10_001);
  assert.equal(plain.peer.sent[0].timestamp, (6000 + plain.video!.timestampOffset) >>> 0);
});

Deno.test("a NACK flood gets at most a quarter of the stream's rate in resends", () => {
  const { room, viewer } = setup();
  const v = viewer();
  room.addViewer(v, 0);
  let streamBytes = 0;
  let resentBytes = 0;
  for (let i = 0; i < 1000; i++) {
    const now = i * 2; // 2 s at 500 packets per second
    const packet = rtp(102, 1, 1000 + i, 1000 + i * 300, big(i ? 0x41 : 0x65));
    streamBytes += packet.length;
    room.handlePublisherRtp(packet, now);
    // Every 2 ms the viewer asks for the last 100 packets again, 64 per RTCP packet.
    const sent = v.peer.sent.length;
    const asked = [];
    for (let k = 1; k <= 100 && k <= i; k++) asked.push((1000 + i - k + v.video!.sequenceOffset) & 0xffff);
    room.handleViewerRtcp(v, buildNack(9, 5000, asked), now);
    for (const resent of v.peer.sent.slice(sent)) resentBytes += resent.payload.length + 12;
  }
  const ratio = resentBytes / streamBytes;
  assert.ok(
    ratio <= 0.25 + 0.25 / 2,
    `resends ${(ratio * 100).toFixed(1)} % of the stream (1 s bucket + 2 s refill)`,
  );
  assert.ok(room.counters.resendsRefused > 10_000, `refused ${room.counters.resendsRefused}`);
  assert.ok(room.counters.packetsResent > 0, "some were answered");
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

Deno.test("during a replay a late publisher retransmission the cursor skipped goes at once, with its frame", () => {
  const { room, viewer } = setup();
  room.handlePublisherRtp(rtp(102, 1, 100, 3000, IDR), 0);
  room.handlePublisherRtp(rtp(102, 1, 101, 6000, P), 33);
  room.handlePublisherRtp(rtp(102, 1, 103, 6000, P), 34); // 102 (same frame) is lost for now
  for (let seq = 104; seq < 300; seq++) {
    room.handlePublisherRtp(rtp(102, 1, seq, 9000 + seq * 30, big(0x41)), 40);
  }
  const v = viewer();
  room.addViewer(v, 50);
  const t = v.video!;
  assert.ok(t.replay?.active, "still replaying after the first burst");
  const frame = v.peer.sent.find((s) => ((s.sequenceNumber - t.sequenceOffset) & 0xffff) === 103)!;
  const before = v.peer.sent.length;
  room.handlePublisherRtp(rtp(102, 1, 102, 6000, P), 60); // the publisher's retransmission
  const late = v.peer.sent.slice(before).find((s) =>
    ((s.sequenceNumber - t.sequenceOffset) & 0xffff) === 102
  );
  assert.ok(late, "sent at once, not held for the cursor");
  assert.equal(late.timestamp, frame.timestamp, "with the timestamp its frame was replayed with");
});

Deno.test("a publisher that answers PLI: a viewer joining late in the GOP waits for a fresh keyframe", () => {
  const { room, viewer } = setup();
  let seq = 100;
  const send = (payload: number[], now: number) =>
    room.handlePublisherRtp(rtp(102, 1, seq, seq++ * 100, payload), now);
  send(IDR, 0);
  // Two joins whose PLIs were answered within 100 ms teach the room that this publisher answers.
  room.addViewer(viewer(), 10);
  send(IDR, 100);
  room.addViewer(viewer(), 600);
  send(IDR, 650);
  for (let now = 660; now < 2000; now += 10) send(P, now);
  const late = viewer();
  room.addViewer(late, 2000);
  assert.equal(late.peer.sent.length, 0, "no replay of a 1.3 s old GOP");
  send(P, 2010);
  send(IDR, 2080); // the answer to its PLI
  assert.equal(late.peer.sent.length, 1);
  assert.equal(late.peer.sent[0].payload[0], 0x65, "starts at the fresh keyframe");
  // A publisher that never answers (OBS): its GOP is replayed.
  const other = setup();
  other.room.handlePublisherRtp(rtp(102, 1, 1, 100, IDR), 0);
  for (let i = 2; i < 100; i++) other.room.handlePublisherRtp(rtp(102, 1, i, i * 100, P), i * 20);
  const joiner = other.viewer();
  other.room.addViewer(joiner, 2000);
  assert.ok(
    joiner.peer.sent.length > 0 && joiner.peer.sent[0].payload[0] === 0x65,
    "replayed from the keyframe",
  );
});

const SPS_320X180 = Uint8Array.from(
  "6742c00bd901419f9f011000000300100000030140f142a480".match(/../g)!,
  (b) => parseInt(b, 16),
);

Deno.test("only keyframes are rebuilt: size and onKeyframe from SPS + FU-A IDR; every frame counted by marker", () => {
  const { room } = setup();
  const keyframes: { timestamp: number; bytes: number }[] = [];
  room.onKeyframe = (frame) => keyframes.push({ timestamp: frame.timestamp, bytes: frame.data.length });
  const marked = (packet: Uint8Array) => {
    packet[1] |= 0x80;
    return packet;
  };
  let seq = 100;
  // Keyframe at ts 3000: SPS, PPS, then an IDR slice in two FU-A fragments (start, end + marker).
  room.handlePublisherRtp(rtp(102, 1, seq++, 3000, [...SPS_320X180]), 0);
  room.handlePublisherRtp(rtp(102, 1, seq++, 3000, [0x68, 0xce, 0x3c, 0x80]), 0);
  room.handlePublisherRtp(rtp(102, 1, seq++, 3000, [0x7c, 0x85, 1, 2, 3]), 0);
  room.handlePublisherRtp(marked(rtp(102, 1, seq++, 3000, [0x7c, 0x45, 4, 5])), 0);
  // Three delta frames, one of them missing its first packet (still a picture the viewers get).
  room.handlePublisherRtp(marked(rtp(102, 1, seq++, 6000, P)), 33);
  seq++;
  room.handlePublisherRtp(marked(rtp(102, 1, seq++, 9000, P)), 66);
  room.handlePublisherRtp(marked(rtp(102, 1, seq++, 12000, P)), 99);
  assert.equal(keyframes.length, 1);
  assert.equal(keyframes[0].timestamp, 3000);
  assert.ok(keyframes[0].bytes > SPS_320X180.length + 5, "SPS, PPS and the IDR slice in one access unit");
  assert.deepEqual([room.width, room.height], [320, 180]);
  assert.equal(room.accessUnits, 4);
  // A keyframe whose picture never completes (no marker, next picture arrives) is given up at that picture.
  room.handlePublisherRtp(rtp(102, 1, seq++, 15000, [0x7c, 0x85, 1, 2, 3]), 132);
  room.handlePublisherRtp(marked(rtp(102, 1, seq++, 18000, P)), 165);
  room.handlePublisherRtp(rtp(102, 1, seq++, 21000, [...SPS_320X180]), 198);
  room.handlePublisherRtp(marked(rtp(102, 1, seq++, 21000, [0x65, 0x88, 0x84])), 198);
  assert.equal(keyframes.at(-1)?.timestamp, 21000, "the next keyframe is rebuilt again");
  assert.equal(room.accessUnits, 6);
});

Deno.test("transport-wide sequence numbers are read from the one-byte extension without werift", () => {
  const publisher = recordingPeer();
  const room = new Room({
    id: "r",
    publisherSessionId: "s",
    publisher,
    video,
    audio,
    now: new Date(),
    media: { twccExtensionId: 3 },
  });
  // Header extension 0xBEDE, one word: id 3, length 2 (0x31), transport sequence 0x0102, one padding byte.
  for (let i = 0; i < 3; i++) {
    const packet = new Uint8Array(12 + 8 + 2);
    const view = new DataView(packet.buffer);
    packet[0] = 0x90;
    packet[1] = 111;
    view.setUint16(2, 500 + i);
    view.setUint32(4, 960 * i);
    view.setUint32(8, 9);
    packet.set([0xbe, 0xde, 0, 1, 0x31, 0x01, 0x02 + i, 0], 12);
    packet.set([0xfc, 0xff], 20);
    room.handlePublisherRtp(packet, i * 20);
  }
  // The 50 ms TWCC feedback goes out with the first packet after the interval.
  room.handlePublisherRtp(rtp(111, 9, 503, 2880, [0]), 60);
  const feedback = publisher.rtcp.flatMap(rtcpPackets).filter((p) => p[1] === 205 && (p[0] & 0x1f) === 15);
  assert.equal(feedback.length, 1);
  const view = new DataView(feedback[0].buffer, feedback[0].byteOffset);
  assert.equal(view.getUint16(12), 0x0102, "base sequence number");
  assert.equal(view.getUint16(14), 3, "packet status count");
});

/** The packets of a compound RTCP packet. */
function rtcpPackets(compoundPacket: Uint8Array): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let at = 0;
  while (at + 4 <= compoundPacket.length) {
    const end = at + (((compoundPacket[at + 2] << 8) | compoundPacket[at + 3]) + 1) * 4;
    packets.push(compoundPacket.subarray(at, end));
    at = end;
  }
  return packets;
}
