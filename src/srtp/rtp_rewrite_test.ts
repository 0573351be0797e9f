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

Deno.test("RtpRewriter writes a viewer's transport-wide sequence number, and drops it again for the next viewer", () => {
  const original = rtpPacket({
    seq: 500,
    marker: true,
    ssrc: 0xaabbccdd,
    csrcs: [7],
    extensions: [{ id: 1, data: [1, 2] }, { id: 2, data: [3, 4, 5, 6, 7] }],
    payloadLength: 40,
    padding: 3,
  });
  const r = new RtpRewriter();
  ok(r.load(original));
  const viewerWith = (transportSequence: number) =>
    rtpPacket({
      seq: 9,
      timestamp: 1000,
      marker: true,
      payloadType: 100,
      ssrc: 0x01020304,
      csrcs: [7],
      extensions: [{ id: 3, data: [transportSequence >> 8, transportSequence & 0xff] }],
      payloadLength: 40,
      padding: 3,
    });
  // rtpPacket's payload follows its sequence number: the loaded payload is the original's.
  const payloadOf = (p: Uint8Array, headerLength: number) => toHex(p.subarray(headerLength));
  r.setStream(100, 0x01020304, 9, 1000, 3, 0x1234);
  deepEqual(toHex(r.packet.subarray(0, r.headerLength)), toHex(viewerWith(0x1234).subarray(0, 24)));
  deepEqual(r.headerLength, 24);
  deepEqual(payloadOf(r.packet, 24), payloadOf(original, 32));
  // A probe copy: the same packet with the next number, as RTX.
  r.setTransportSequence(0x1235);
  const rtx = r.rtxPacket(101, 0x05060708, 77);
  deepEqual([rtx[0] & 0x10, rtx[1], rtx[2], rtx[3], rtx[21], rtx[22], rtx[24], rtx[25]], [
    0x10,
    0x80 | 101,
    0,
    77,
    0x12,
    0x35,
    0,
    9,
  ]);
  // The next viewer negotiated no extension: the plain form, byte for byte.
  r.setStream(96, 0x0a0b0c0d, 10, 2000);
  const plain = rtpPacket({
    seq: 10,
    timestamp: 2000,
    marker: true,
    ssrc: 0x0a0b0c0d,
    csrcs: [7],
    payloadLength: 40,
    padding: 3,
  });
  deepEqual(r.headerLength, 16);
  deepEqual(toHex(r.packet.subarray(0, 16)), toHex(plain.subarray(0, 16)));
  deepEqual(payloadOf(r.packet, 16), payloadOf(original, 32));
  // And back to the extension form for a third viewer.
  r.setStream(100, 0x01020304, 11, 3000, 3, 0xffff);
  deepEqual(r.headerLength, 24);
  deepEqual(toHex(r.packet.subarray(16, 24)), "bede000131ffff00");
  deepEqual(payloadOf(r.packet, 24), payloadOf(original, 32));
});
