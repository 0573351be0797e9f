import assert from "node:assert/strict";
import { Av1Depacketizer, av1SequenceSize, av1StartsKeyframe } from "./av1.ts";

// A sequence header OBU payload (AV1 spec §5.5) for 1280x720: profile 0, reduced_still_picture_header 0, no
// timing info, one operating point at level 8 (4.0), 11-bit width and height fields.
const SEQUENCE_HEADER = new Uint8Array([0x00, 0x00, 0x00, 0x42, 0xaa, 0x7f, 0xac, 0xf0, 0x00]);
const SEQ_OBU = new Uint8Array([0x08, ...SEQUENCE_HEADER]); // type 1, no size field
const FRAME_OBU = new Uint8Array([0x30, 0x10, 0x20, 0x30, 0x40]); // type 6 (frame), payload 4 bytes

Deno.test("AV1 sequence header: the maximum frame size", () => {
  assert.deepEqual(av1SequenceSize(SEQUENCE_HEADER), { width: 1280, height: 720 });
  assert.equal(av1SequenceSize(SEQUENCE_HEADER.subarray(0, 4)), undefined, "truncated");
});

Deno.test("AV1 aggregation header W=2: two OBU elements, the last without a length; N marks a keyframe", () => {
  const packet = new Uint8Array([0x28, SEQ_OBU.length, ...SEQ_OBU, ...FRAME_OBU]); // W=2, N=1
  assert.equal(av1StartsKeyframe(packet), true);
  assert.equal(av1StartsKeyframe(new Uint8Array([0x20, ...FRAME_OBU])), false, "W=2 without N, frame OBU");
  const frame = new Av1Depacketizer().push(packet, 1, 3000, true)!;
  assert.equal(frame.isKeyframe, true);
  assert.deepEqual([frame.width, frame.height], [1280, 720]);
  // Temporal delimiter, then each OBU with obu_has_size_field set and its size.
  assert.deepEqual([...frame.data], [
    0x12,
    0x00,
    0x0a,
    SEQUENCE_HEADER.length,
    ...SEQUENCE_HEADER,
    0x32,
    0x04,
    0x10,
    0x20,
    0x30,
    0x40,
  ]);
});

Deno.test("AV1 OBU fragmented over packets (Y then Z), W=1; a lost middle drops the temporal unit", () => {
  const first = new Uint8Array([0x50, ...FRAME_OBU.subarray(0, 3)]); // Y=1, W=1
  const last = new Uint8Array([0x90, ...FRAME_OBU.subarray(3)]); // Z=1, W=1
  const d = new Av1Depacketizer();
  assert.equal(d.push(first, 10, 6000, false), undefined);
  const frame = d.push(last, 11, 6000, true)!;
  assert.deepEqual([...frame.data], [0x12, 0x00, 0x32, 0x04, 0x10, 0x20, 0x30, 0x40]);
  assert.equal(frame.isKeyframe, false);
  assert.equal(av1StartsKeyframe(last), false, "a continuation never starts a keyframe");

  const middle = new Uint8Array([0xd0, 0x99]); // Z=1, Y=1
  assert.equal(d.push(first, 20, 9000, false), undefined);
  assert.equal(d.push(middle, 21, 9000, false), undefined);
  assert.equal(d.push(last, 23, 9000, true), undefined, "packet 22 lost");
});
