import assert from "node:assert/strict";
import { videoCodecSupport } from "../rtp/video_codec.ts";
import { KeyframeTap } from "./keyframe_tap.ts";

const SPS_320X180 = Uint8Array.from(
  "6742c00bd901419f9f011000000300100000030140f142a480".match(/../g)!,
  (b) => parseInt(b, 16),
);
const PPS = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
const codec = videoCodecSupport("h264");

Deno.test("keyframe tap: SPS, PPS and an FU-A IDR make one keyframe with its picture size", () => {
  const tap = new KeyframeTap(codec);
  const frames: { timestamp: number; bytes: number }[] = [];
  tap.onKeyframe = (frame) => frames.push({ timestamp: frame.timestamp, bytes: frame.data.length });
  const push = (seq: number, ts: number, payload: Uint8Array, marker = false) =>
    tap.push(payload, seq, ts, marker, codec.startsKeyframe(payload));
  push(1, 3000, Uint8Array.of(0x41, 1, 2), true); // a delta frame: not rebuilt
  assert.equal(frames.length, 0);
  push(2, 6000, SPS_320X180);
  push(3, 6000, PPS);
  push(4, 6000, Uint8Array.of(0x7c, 0x85, 1, 2, 3));
  push(5, 6000, Uint8Array.of(0x7c, 0x45, 4, 5), true);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].timestamp, 6000);
  assert.ok(frames[0].bytes > SPS_320X180.length + PPS.length + 5);
  assert.deepEqual([tap.width, tap.height], [320, 180]);
});

Deno.test("keyframe tap: a keyframe cut off by the next picture or by reset() is dropped", () => {
  const tap = new KeyframeTap(codec);
  let frames = 0;
  tap.onKeyframe = () => frames++;
  const push = (seq: number, ts: number, payload: Uint8Array, marker = false) =>
    tap.push(payload, seq, ts, marker, codec.startsKeyframe(payload));
  push(1, 3000, Uint8Array.of(0x7c, 0x85, 1, 2, 3)); // FU-A start, never ended
  push(2, 6000, Uint8Array.of(0x41, 1), true);
  push(3, 9000, Uint8Array.of(0x7c, 0x45, 4, 5), true); // an end with no start
  assert.equal(frames, 0);
  push(4, 12000, Uint8Array.of(0x7c, 0x85, 1, 2, 3));
  tap.reset();
  push(5, 12000, Uint8Array.of(0x7c, 0x45, 4, 5), true);
  assert.equal(frames, 0, "reset dropped the half keyframe");
  push(6, 15000, Uint8Array.of(0x65, 0x88, 0x84), true);
  assert.equal(frames, 1, "the next whole keyframe is rebuilt");
});
