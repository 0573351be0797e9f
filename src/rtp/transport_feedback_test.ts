import assert from "node:assert/strict";
import { TransportFeedback } from "./transport_feedback.ts";
import { TwccRecorder } from "./twcc.ts";
import { SentPackets } from "./sent_packets.ts";

Deno.test("transport feedback: what the recorder builds reads back (gaps, large and negative deltas)", () => {
  const recorder = new TwccRecorder();
  // 65530..65535, 0..3 wrapping; 65532 and 1 lost; one arrival 100 ms late (two-byte delta), one earlier.
  const arrivals: [number, number][] = [
    [65530, 1_000_000],
    [65531, 1_000_250],
    [65533, 1_001_000],
    [65534, 1_101_000],
    [65535, 1_100_500],
    [0, 1_102_000],
    [2, 1_103_000],
    [3, 1_103_250],
  ];
  for (const [seq, at] of arrivals) recorder.record(seq, at);
  const packet = recorder.buildFeedback(0x11111111, 0x22222222)!;
  const feedback = new TransportFeedback();
  assert.ok(feedback.read(packet));
  assert.equal(feedback.baseSequence, 65530);
  assert.equal(feedback.count, 10);
  assert.equal(feedback.mediaSsrc, 0x22222222);
  const byOffset = new Map(arrivals.map(([seq, at]) => [(seq - 65530) & 0xffff, at]));
  for (let i = 0; i < 10; i++) {
    const expected = byOffset.get(i);
    if (expected === undefined) assert.ok(Number.isNaN(feedback.arrivalUs[i]), `${i} lost`);
    // Deltas are in 250 µs steps from a 64 ms reference: equal to the recorded times here.
    else assert.equal(feedback.arrivalUs[i] - feedback.arrivalUs[0], expected - 1_000_000, `${i}`);
  }
});

Deno.test("transport feedback: run-length and one-bit chunks (as libwebrtc writes them)", () => {
  // base 100, 20 statuses: run of 14 received-small, then a one-bit vector chunk: 1,0,1,0,0,1 (6 left).
  const deltas = [...Array(14).fill(4), 8, 8, 12];
  const bytes = [
    0x8f,
    205,
    0,
    0, // header; length filled below
    0,
    0,
    0,
    1, // sender
    0,
    0,
    0,
    2, // media
    0,
    100,
    0,
    20, // base, count
    0,
    0,
    2,
    7, // reference 2 (128 ms), feedback count 7
    0x20,
    14, // run length: symbol 1, 14
    0b10101001,
    0b00000000, // one-bit vector: 1,0,1,0,0,1 (the rest unused)
    ...deltas,
  ];
  while (bytes.length % 4) bytes.push(0);
  bytes[3] = bytes.length / 4 - 1;
  const feedback = new TransportFeedback();
  assert.ok(feedback.read(new Uint8Array(bytes)));
  assert.equal(feedback.count, 20);
  assert.equal(feedback.feedbackCount, 7);
  assert.equal(feedback.arrivalUs[0], 128_000 + 1000);
  assert.equal(feedback.arrivalUs[13], 128_000 + 14 * 1000);
  assert.equal(feedback.arrivalUs[14], 128_000 + 14 * 1000 + 2000);
  assert.ok(Number.isNaN(feedback.arrivalUs[15]));
  assert.equal(feedback.arrivalUs[16], 128_000 + 14 * 1000 + 4000);
  assert.ok(Number.isNaN(feedback.arrivalUs[17]) && Number.isNaN(feedback.arrivalUs[18]));
  assert.equal(feedback.arrivalUs[19], 128_000 + 14 * 1000 + 7000);
});

Deno.test("transport feedback: malformed packets are refused, not thrown", () => {
  const feedback = new TransportFeedback();
  const recorder = new TwccRecorder();
  for (let i = 0; i < 30; i++) recorder.record(i, i * 1000);
  const good = recorder.buildFeedback(1, 2)!;
  assert.ok(feedback.read(good));
  assert.equal(feedback.read(good.subarray(0, 22)), false, "chunks cut short");
  assert.equal(feedback.read(good.subarray(0, good.length - 8)), false, "deltas cut short");
  const notTwcc = good.slice();
  notTwcc[0] = 0x81; // a generic NACK
  assert.equal(feedback.read(notTwcc), false);
  // A run-length chunk of length 0 forever: ends at the packet's end.
  const zeros = new Uint8Array(64);
  zeros.set(good.subarray(0, 20));
  zeros[3] = 15;
  zeros[14] = 0xff; // 65535 statuses
  zeros[15] = 0xff;
  assert.equal(feedback.read(zeros), false);
});

Deno.test("sent packets: numbering wraps, old entries are forgotten", () => {
  const sent = new SentPackets(65534);
  assert.equal(sent.record(1000, 1), 65534);
  assert.equal(sent.record(900, 2), 65535);
  assert.equal(sent.record(800, 3), 0);
  assert.equal(sent.sentAt(65535), 2);
  assert.equal(sent.size(0), 800);
  assert.ok(Number.isNaN(sent.sentAt(1)), "not sent yet");
  for (let i = 0; i < 5000; i++) sent.record(100, 10 + i);
  assert.ok(Number.isNaN(sent.sentAt(65534)), "overwritten");
});
