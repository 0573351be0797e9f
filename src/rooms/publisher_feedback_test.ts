import assert from "node:assert/strict";
import { readRtcp } from "../rtp/rtcp.ts";
import { ReceiveStream } from "../rtp/receive_stream.ts";
import { RtpHeaderReader } from "../rtp/rtp_header.ts";
import { rtpPacket } from "../../tests/helpers/srtp_packets.ts";
import { PublisherFeedback, type PublisherStream } from "./publisher_feedback.ts";
import { newRoomCounters } from "./room_counters.ts";

function stream(ssrc: number, clockRate: number): PublisherStream {
  return { ssrc, clockRate, receive: new ReceiveStream(ssrc, clockRate) };
}

/** The packets of a compound RTCP packet as [packet type, count/FMT, bytes]. */
function parts(compound: Uint8Array): [number, number, Uint8Array][] {
  const out: [number, number, Uint8Array][] = [];
  for (let at = 0; at + 4 <= compound.length;) {
    const end = at + (((compound[at + 2] << 8) | compound[at + 3]) + 1) * 4;
    out.push([compound[at + 1], compound[at] & 0x1f, compound.subarray(at, end)]);
    at = end;
  }
  return out;
}

const isRemb = ([type, fmt, bytes]: [number, number, Uint8Array]) =>
  type === 206 && fmt === 15 && String.fromCharCode(...bytes.subarray(12, 16)) === "REMB";

Deno.test("poll: a receiver report with REMB every second, NACKs as soon as a gap appears, nothing otherwise", () => {
  const counters = newRoomCounters();
  const feedback = new PublisherFeedback(
    { retransmissions: true, maxPublisherBitrate: 2_000_000 },
    counters,
  );
  feedback.video = stream(1111, 90000);
  feedback.audio = stream(2222, 48000);
  const first = feedback.poll(1000)!;
  assert.deepEqual(readRtcp(first).reportBlocks.map((b) => b.ssrc), [1111, 2222]);
  assert.ok(parts(first).some(isRemb), "REMB without transport-wide feedback");
  assert.equal(feedback.poll(1500), undefined, "nothing due between reports");
  feedback.video.receive.onPacket(10, 0, 1500);
  feedback.video.receive.onPacket(13, 0, 1501); // 11 and 12 missing
  const nack = feedback.poll(1502)!;
  assert.deepEqual(readRtcp(nack).nacks, [{ mediaSsrc: 1111, sequenceNumbers: [11, 12] }]);
  assert.equal(readRtcp(nack).reportBlocks.length, 0, "an empty RR leads the compound");
  assert.equal(counters.nacksSent, 2);
  assert.equal(feedback.poll(1510), undefined, "not asked again before the retry spacing");
  assert.ok(feedback.poll(2000), "the next report");
});

Deno.test("poll: transport-wide feedback every 50 ms replaces REMB", () => {
  const feedback = new PublisherFeedback(
    { retransmissions: false, maxPublisherBitrate: 2_000_000, twccExtensionId: 5 },
    newRoomCounters(),
  );
  feedback.audio = stream(2222, 48000);
  const header = new RtpHeaderReader();
  for (let i = 0; i < 4; i++) {
    assert.ok(header.read(rtpPacket({ seq: i, ssrc: 2222, extensions: [{ id: 5, data: [0, 40 + i] }] })));
    feedback.recordTransportSequence(header, 1000 + i * 10);
  }
  const out = parts(feedback.poll(1040)!);
  const twcc = out.filter(([type, fmt]) => type === 205 && fmt === 15);
  assert.equal(twcc.length, 1);
  const view = new DataView(twcc[0][2].buffer, twcc[0][2].byteOffset);
  assert.equal(view.getUint16(12), 40, "base sequence number");
  assert.equal(view.getUint16(14), 4, "packet status count");
  assert.ok(!out.some(isRemb));
  assert.equal(feedback.poll(1060), undefined, "the next one 50 ms later");
});

Deno.test("keyframeRequest: one PLI per 500 ms; a throttled request is kept until allowed", () => {
  const counters = newRoomCounters();
  const feedback = new PublisherFeedback({ retransmissions: true, maxPublisherBitrate: 1 }, counters);
  assert.equal(feedback.keyframeRequest(0), undefined, "no video stream yet");
  feedback.video = stream(1111, 90000);
  const pli = feedback.keyframeRequest(10)!;
  assert.ok(readRtcp(pli).keyframeRequested);
  assert.equal(feedback.keyframeRequest(200), undefined);
  assert.equal(feedback.keyframeRequestDue(400), false);
  assert.equal(feedback.keyframeRequestDue(510), true);
  assert.ok(feedback.keyframeRequest(510));
  assert.equal(feedback.keyframeRequestDue(2000), false, "nothing wanted any more");
  feedback.resetKeyframeThrottle();
  assert.ok(feedback.keyframeRequest(600), "a new stream is asked at once");
  assert.equal(counters.keyframeRequests, 3);
});
