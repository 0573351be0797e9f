import { deepEqual, ok } from "node:assert/strict";
import { RtpRewriter } from "./rtp_rewrite.ts";
import { rtpPacket, toHex } from "../../tests/helpers/srtp_packets.ts";

Deno.test("RtpRewriter strips the header extension and keeps CSRCs, marker and padding", () => {
  const original = rtpPacket({
    seq: 500,
    marker: true,
    payloadType: 102,
    ssrc: 0xaabbccdd,
    csrcs: [7],
    extensions: [{ id: 1, data: [1, 2] }, { id: 2, data: [3, 4, 5, 6, 7] }],
    payloadLength: 40,
    padding: 3,
  });
  const r = new RtpRewriter();
  ok(r.load(original));
  deepEqual([r.payloadType, r.sequenceNumber, r.ssrc, r.marker, r.headerLength], [
    102,
    500,
    0xaabbccdd,
    true,
    16,
  ]);
  const expected = rtpPacket({
    seq: 500,
    marker: true,
    payloadType: 102,
    ssrc: 0xaabbccdd,
    csrcs: [7],
    payloadLength: 40,
    padding: 3,
  });
  deepEqual(toHex(r.packet), toHex(expected));

  r.setStream(96, 0x01020304, 65535, 0xfffffffe);
  const rewritten = expected.slice();
  rewritten.set([0x80 | 96, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4], 1);
  deepEqual(toHex(r.packet), toHex(rewritten));
});

Deno.test("RtpRewriter leaves a packet without extension byte-for-byte apart from the stream fields", () => {
  const original = rtpPacket({ seq: 1, payloadLength: 1188 });
  const r = new RtpRewriter();
  ok(r.load(original));
  deepEqual(toHex(r.packet), toHex(original));
  r.setStream(96, 0x11223344, 1, 3000);
  deepEqual(toHex(r.packet), toHex(original));
});

Deno.test("RtpRewriter refuses malformed and oversized packets", () => {
  const r = new RtpRewriter(200);
  ok(!r.load(new Uint8Array(11)));
  ok(!r.load(new Uint8Array(20)), "version 0");
  const truncated = rtpPacket({ seq: 1, extensions: [{ id: 1, data: [1, 2, 3, 4] }], payloadLength: 0 });
  ok(!r.load(truncated.subarray(0, 18)));
  ok(!r.load(rtpPacket({ seq: 1, payloadLength: 300 })));
  ok(r.load(rtpPacket({ seq: 1, payloadLength: 100 })));
});

Deno.test("RtpRewriter builds an RTX packet: RTX header fields, original sequence number, same payload", () => {
  const r = new RtpRewriter();
  const packet = new Uint8Array([0x80, 0xe6, 0x12, 0x34, 0, 0, 0, 9, 0, 0, 0, 1, 0x65, 1, 2, 3]);
  ok(r.load(packet));
  r.setStream(96, 0xaabbccdd, 0x4321, 0x01020304);
  const rtx = r.rtxPacket(97, 0x11223344, 7);
  deepEqual(
    [...rtx],
    [0x80, 0x80 | 97, 0, 7, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x43, 0x21, 0x65, 1, 2, 3],
    "marker kept; the viewer's original sequence number leads the payload",
  );
  deepEqual([...r.packet.subarray(0, 4)], [0x80, 0x80 | 96, 0x43, 0x21], "the original is untouched");
});
