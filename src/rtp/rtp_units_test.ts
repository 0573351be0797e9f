import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RtcpHeader, TransportWideCC } from "werift";
import { seqAdd, seqDiff, seqNewer } from "./sequence.ts";
import { startsKeyframe } from "./keyframe.ts";
import { PacketCache } from "./packet_cache.ts";
import { ReceiveStream } from "./receive_stream.ts";
import { buildNack, buildReceiverReport, buildRemb, buildSenderReport, compound, readRtcp } from "./rtcp.ts";
import { TwccRecorder } from "./twcc.ts";

Deno.test("sequence arithmetic wraps at 2^16", () => {
  assert.equal(seqDiff(2, 65534), 4);
  assert.equal(seqDiff(65534, 2), -4);
  assert.ok(seqNewer(0, 65535));
  assert.ok(!seqNewer(65535, 0));
  assert.equal(seqAdd(65535, 1), 0);
  assert.equal(seqAdd(0, -1), 65535);
});

Deno.test("keyframe starts: IDR or SPS alone, in STAP-A, first FU-A fragment of an IDR", () => {
  assert.ok(startsKeyframe(new Uint8Array([0x65, 0x88])));
  assert.ok(startsKeyframe(new Uint8Array([0x67, 0x42])));
  assert.ok(!startsKeyframe(new Uint8Array([0x41, 0x9a]))); // non-IDR slice
  assert.ok(startsKeyframe(new Uint8Array([0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce])));
  assert.ok(!startsKeyframe(new Uint8Array([0x18, 0, 2, 0x06, 0x05, 0, 9])));
  assert.ok(startsKeyframe(new Uint8Array([0x7c, 0x85, 1])));
  assert.ok(!startsKeyframe(new Uint8Array([0x7c, 0x05, 1]))); // middle fragment
  assert.ok(!startsKeyframe(new Uint8Array([0x7c, 0x81, 1]))); // FU-A start of a non-IDR slice
  assert.ok(!startsKeyframe(new Uint8Array([0x65])));
});

Deno.test("packet cache: lookup by sequence number, wrap-around, overwritten slots", () => {
  const cache = new PacketCache(8);
  cache.store(65534, new Uint8Array([1]));
  cache.store(65535, new Uint8Array([2]));
  cache.store(0, new Uint8Array([3, 3]));
  assert.deepEqual([...cache.get(65535)!], [2]);
  assert.deepEqual([...cache.get(0)!], [3, 3]);
  cache.store(6, new Uint8Array([9])); // same slot as 65534
  assert.equal(cache.get(65534), undefined);
  assert.equal(cache.get(14), undefined);
  cache.store(7, new Uint8Array(2000));
  assert.equal(cache.get(7), undefined, "oversized packets are not kept");
  cache.clear();
  assert.equal(cache.get(0), undefined);
});

Deno.test("receive stream: losses, NACK retries, report block", () => {
  const stream = new ReceiveStream(42, 90000);
  for (const seq of [65533, 65534, 1, 2]) stream.onPacket(seq, seq * 3000, seq);
  assert.equal(stream.missingCount, 2); // 65535 and 0
  assert.deepEqual(stream.dueNacks(100, 40).sort((a, b) => a - b), [0, 65535]);
  assert.deepEqual(stream.dueNacks(110, 40), [], "not again before the retry interval");
  stream.onPacket(0, 0, 120); // the retransmission arrives
  assert.deepEqual(stream.dueNacks(150, 40), [65535]);
  stream.dueNacks(200, 40);
  assert.deepEqual(stream.dueNacks(300, 40), [], "at most three tries");
  assert.equal(stream.missingCount, 0);
  const block = stream.reportBlock(300);
  assert.equal(block.ssrc, 42);
  assert.equal(block.cumulativeLost, 1);
  assert.equal(block.highestSequence, 0x10000 + 2);
  assert.ok(block.fractionLost > 0);
});

Deno.test("RTCP round trips: NACK, RR, SR, REMB in one compound packet", () => {
  const nack = buildNack(1, 2, [100, 101, 103, 117, 118, 65535]);
  const rr = buildReceiverReport(1, [{
    ssrc: 7,
    fractionLost: 25,
    cumulativeLost: -3,
    highestSequence: 70000,
    jitter: 12,
    lastSenderReport: 0x12345678,
    delaySinceLastSenderReport: 65536,
  }]);
  const sr = buildSenderReport({
    ssrc: 9,
    ntpSeconds: 1,
    ntpFraction: 2,
    rtpTimestamp: 3,
    packetCount: 4,
    octetCount: 5,
  });
  const remb = buildRemb(1, 2_500_000, [7, 8]);
  const summary = readRtcp(compound(rr, sr, nack, remb));
  assert.deepEqual(summary.nacks[0].sequenceNumbers.sort((a, b) => a - b), [100, 101, 103, 117, 118, 65535]);
  assert.equal(summary.nacks[0].mediaSsrc, 2);
  assert.equal(summary.reportBlocks[0].cumulativeLost, -3);
  assert.equal(summary.reportBlocks[0].highestSequence, 70000);
  assert.equal(summary.senderReports[0].octetCount, 5);
  assert.equal(summary.keyframeRequested, false, "REMB is not a keyframe request");
  // REMB mantissa/exponent decode back to the bitrate (within mantissa precision).
  const exp = remb[17] >> 2;
  const mantissa = ((remb[17] & 3) << 16) | (remb[18] << 8) | remb[19];
  assert.ok(Math.abs(mantissa * 2 ** exp - 2_500_000) < 2 ** exp);
  assert.deepEqual(
    readRtcp(new Uint8Array([0x80, 200, 0xff, 0xff])).senderReports,
    [],
    "truncated: no throw",
  );
});

Deno.test("transport-wide CC feedback parses with werift and reports arrivals and losses", () => {
  const recorder = new TwccRecorder();
  const base = 1_000_000;
  recorder.record(65534, base);
  recorder.record(65535, base + 1000);
  recorder.record(1, base + 5000); // 0 lost
  recorder.record(2, base + 200_000); // a large gap in time
  const packet = recorder.buildFeedback(11, 22)!;
  assert.equal(packet.length % 4, 0);
  const header = RtcpHeader.deSerialize(Buffer.from(packet));
  const twcc = TransportWideCC.deSerialize(Buffer.from(packet.subarray(4)), header);
  assert.equal(twcc.baseSequenceNumber, 65534);
  assert.equal(twcc.packetStatusCount, 5);
  // werift's packetResults only reads run-length chunks, so read the status vectors directly.
  const symbols = twcc.packetChunks.flatMap((c) => "symbolList" in c ? c.symbolList : []).slice(0, 5);
  assert.deepEqual(symbols, [1, 1, 0, 1, 2], "received small, small, lost, small, large delta");
  assert.deepEqual(
    twcc.recvDeltas.map((d) => d.delta),
    [40000, 1000, 4000, 195000],
    "deltas in µs, the first from the 64 ms reference",
  );
  assert.equal(recorder.buildFeedback(11, 22), undefined, "nothing new, no feedback");
  recorder.record(3, base + 201_000);
  const next = recorder.buildFeedback(11, 22)!;
  const nextTwcc = TransportWideCC.deSerialize(
    Buffer.from(next.subarray(4)),
    RtcpHeader.deSerialize(Buffer.from(next)),
  );
  assert.equal(nextTwcc.baseSequenceNumber, 3);
  assert.equal(nextTwcc.fbPktCount, 1);
});
