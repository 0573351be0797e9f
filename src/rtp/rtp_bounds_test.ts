import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RtpHeader } from "werift";
import { rtpHeaderFits } from "./rtp_bounds.ts";

Deno.test("headers that fit pass; a claimed extension past the end does not", () => {
  const plain = new Uint8Array(20);
  plain[0] = 0x80;
  assert.equal(rtpHeaderFits(plain), true);
  assert.equal(rtpHeaderFits(plain.subarray(0, 11)), false);

  // Two CSRCs (8 bytes) and a one-word extension: 12 + 8 + 4 + 4 = 28 bytes.
  const withExtension = new Uint8Array(28);
  withExtension.set([0x92, 96], 0);
  withExtension.set([0xbe, 0xde, 0x00, 0x01], 20);
  assert.equal(rtpHeaderFits(withExtension), true);
  assert.equal(rtpHeaderFits(withExtension.subarray(0, 27)), false);

  // The packet that made werift's parser spin: 46 bytes claiming 0x8ee8 extension words.
  const hostile = Buffer.from(
    "9066ffdd000003e800001234bede8ee842520203110007001c86056421405988cb7729dd508020b00022c27a7a60",
    "hex",
  );
  assert.equal(rtpHeaderFits(hostile), false);
  // What werift does with a fitting header is fine.
  const header = RtpHeader.deSerialize(Buffer.from(withExtension));
  assert.equal(header.payloadOffset, 28);
});
