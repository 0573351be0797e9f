import assert from "node:assert/strict";
import { readVp9Descriptor, type Vp9Descriptor, vp9FrameKind, vp9StartsKeyframe } from "./vp9.ts";

const d = (): Vp9Descriptor => ({
  length: 0,
  predicted: false,
  begins: false,
  ends: false,
  spatialId: 0,
  width: 0,
  height: 0,
});

// A VP9 key frame's first bytes (profile 0): frame marker, key frame, sync code 49 83 42, colour config,
// then width-1 and height-1 in 16 bits each (VP9 spec §6.2): 1280x720 here.
const KEY_1280x720 = new Uint8Array([0x82, 0x49, 0x83, 0x42, 0x00, 0x4f, 0xf0, 0x2c, 0xf0]);
const INTER = new Uint8Array([0x86, 0x00, 0x40]);

Deno.test("VP9 key frame header: kind and size; an inter frame; not VP9 at all", () => {
  const size = { width: 0, height: 0 };
  assert.equal(vp9FrameKind(KEY_1280x720, size), "key");
  assert.deepEqual(size, { width: 1280, height: 720 });
  assert.equal(vp9FrameKind(INTER), "inter");
  assert.equal(vp9FrameKind(new Uint8Array([0x00, 0x01])), "unknown");
  assert.equal(vp9FrameKind(KEY_1280x720.subarray(0, 3)), "unknown", "truncated");
});

Deno.test("VP9 descriptor, flexible mode with layer indices, P_DIFFs and a scalability structure", () => {
  // I P L F B E V Z = 1 0 1 1 1 0 1 0; 15-bit picture id; TID/U/SID/D with SID 0; V: SS with N_S=2 (3
  // layers), Y=1 (sizes), G=1 with one group of two references.
  const packet = new Uint8Array([
    0xba,
    0x80,
    0x01, // picture id 0x0001, M=1
    0x00, // TID 0, U 0, SID 0, D 0
    0x58, // N_S=2, Y=1, G=1
    0x01,
    0x40,
    0x00,
    0xb4, // 320x180
    0x02,
    0x80,
    0x01,
    0x68, // 640x360
    0x05,
    0x00,
    0x02,
    0xd0, // 1280x720
    0x01, // N_G = 1
    0x08, // TID 0, U 0, R 2
    0x01,
    0x02, // P_DIFFs
    ...KEY_1280x720,
  ]);
  const out = d();
  assert.equal(readVp9Descriptor(packet, out), true);
  assert.equal(out.length, 21);
  assert.deepEqual([out.begins, out.ends, out.predicted, out.spatialId], [true, false, false, 0]);
  assert.deepEqual([out.width, out.height], [1280, 720], "the largest layer's size");
  assert.equal(vp9StartsKeyframe(packet), true);

  // An inter-predicted spatial layer 1 frame in flexible mode, with two P_DIFFs (N bit chaining them).
  const layer1 = new Uint8Array([0xf8, 0x05, 0x02, 0x03, 0x04, ...INTER]);
  assert.equal(readVp9Descriptor(layer1, out), true);
  assert.equal(out.length, 5);
  assert.deepEqual([out.spatialId, out.predicted], [1, true]);
  assert.equal(vp9StartsKeyframe(layer1), false);

  // Non-flexible mode adds TL0PICIDX after the layer indices.
  const nonFlexible = new Uint8Array([0x28, 0x00, 0x07, ...KEY_1280x720]);
  assert.equal(readVp9Descriptor(nonFlexible, out), true);
  assert.equal(out.length, 3);
  assert.equal(vp9StartsKeyframe(nonFlexible), true);

  // Truncations never read past the end.
  for (let n = 0; n < packet.length - KEY_1280x720.length; n++) {
    assert.equal(readVp9Descriptor(packet.subarray(0, n), out), false, `cut at ${n}`);
  }
});
