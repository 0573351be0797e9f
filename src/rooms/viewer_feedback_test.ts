import assert from "node:assert/strict";
import { buildNack, buildPli, buildReceiverReport, compound, readRtcp } from "../rtp/rtcp.ts";
import { PacketCache } from "../rtp/packet_cache.ts";
import { RateMeter } from "../rtp/rate_meter.ts";
import { type RecordingPeer, recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { rtpPacket } from "../../tests/helpers/srtp_packets.ts";
import { Forwarder } from "./forwarder.ts";
import { newRoomCounters } from "./room_counters.ts";
import { MAX_RESENDS_PER_NACK, ViewerFeedback } from "./viewer_feedback.ts";
import { newReception, newViewerTrack, type Viewer } from "./viewer.ts";

function setup(packets: number) {
  const history = new PacketCache(1024);
  const videoRate = new RateMeter();
  for (let seq = 0; seq < packets; seq++) {
    const packet = rtpPacket({ seq, payloadLength: 200 });
    history.store(seq, packet);
    videoRate.add(packet.length, seq);
  }
  const counters = newRoomCounters();
  const forwarder = new Forwarder();
  const feedback = new ViewerFeedback({ forwarder, history, videoRate, counters, retransmissions: true });
  const viewer: Viewer & { peer: RecordingPeer } = {
    sessionId: "v",
    peer: recordingPeer(),
    video: newViewerTrack(96, 5000, true),
    audio: newViewerTrack(97, 6000, false),
    reception: newReception(),
    sentReports: new Map(),
  };
  // As if the viewer had been sent everything in the history.
  viewer.video!.lastSequence = (packets - 1 + viewer.video!.sequenceOffset) & 0xffff;
  return { feedback, viewer, counters };
}

Deno.test("a NACK is answered from history in the viewer's numbering; a PLI is passed on", () => {
  const { feedback, viewer, counters } = setup(100);
  const track = viewer.video!;
  const asked = (track.sequenceOffset + 42) & 0xffff;
  const pli = feedback.handle(viewer, compound(buildReceiverReport(9), buildNack(9, 5000, [asked])), 200);
  assert.equal(pli, false);
  assert.equal(viewer.peer.sent.length, 1);
  const [resent] = viewer.peer.sent;
  assert.equal(resent.sequenceNumber, asked);
  assert.equal(resent.ssrc, 5000);
  assert.deepEqual(resent.payload, [...rtpPacket({ seq: 42, payloadLength: 200 }).subarray(12)]);
  assert.equal(counters.packetsResent, 1);
  assert.equal(viewer.reception.nacksReceived, 1);
  assert.equal(feedback.handle(viewer, buildNack(9, 1234, [asked]), 210), false);
  assert.equal(viewer.peer.sent.length, 1, "a NACK naming another SSRC is ignored");
  assert.equal(feedback.handle(viewer, buildPli(9, 5000), 220), true);
});

Deno.test("one NACK packet gets at most 64 resends; the rest are counted as refused", () => {
  const { feedback, viewer, counters } = setup(300);
  const offset = viewer.video!.sequenceOffset;
  const asked = Array.from({ length: 100 }, (_, i) => (offset + 150 + i) & 0xffff);
  feedback.handle(viewer, buildNack(9, 5000, asked), 400);
  assert.equal(viewer.peer.sent.length, MAX_RESENDS_PER_NACK);
  assert.equal(counters.resendsRefused, 100 - MAX_RESENDS_PER_NACK);
});

Deno.test("a translated sender report carries the viewer's timestamp and counts; its echo gives the RTT", () => {
  const { feedback, viewer } = setup(1);
  const track = viewer.video!;
  const report = {
    ssrc: 1,
    ntpSeconds: 0x00012345,
    ntpFraction: 0x67890000,
    rtpTimestamp: 1000,
    packetCount: 999,
    octetCount: 999,
  };
  feedback.translateSenderReport(viewer, true, report, 0);
  assert.equal(viewer.peer.rtcp.length, 0, "nothing sent yet: no report");
  track.packetsSent = 3;
  track.octetsSent = 300;
  feedback.translateSenderReport(viewer, true, report, 1000);
  const [sr] = readRtcp(viewer.peer.rtcp[0]).senderReports;
  assert.deepEqual(
    [sr.ssrc, sr.rtpTimestamp, sr.packetCount, sr.octetCount],
    [5000, (1000 + track.timestampOffset) >>> 0, 3, 300],
  );
  // The viewer echoes the SR's middle bits 100 ms later, having held it 20 ms (20/1000 × 65536).
  const rr = buildReceiverReport(9, [{
    ssrc: 5000,
    fractionLost: 64,
    cumulativeLost: 7,
    highestSequence: 0,
    jitter: 900,
    lastSenderReport: 0x23456789,
    delaySinceLastSenderReport: Math.round(0.02 * 65536),
  }]);
  feedback.handle(viewer, rr, 1100);
  const reception = viewer.reception;
  assert.equal(reception.rttMs, 80);
  assert.equal(reception.fractionLost, 0.25);
  assert.equal(reception.cumulativeLost, 7);
  assert.equal(reception.jitterMs, 10, "900 ticks at 90 kHz");
  assert.equal(reception.reports, 1);
});
