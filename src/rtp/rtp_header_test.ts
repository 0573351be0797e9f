import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RtpHeader } from "werift";
import { RtpHeaderReader } from "./rtp_header.ts";

/** An RTP packet: fixed header fields, CSRCs, an optional extension block, payload and padding. */
function packet(o: {
  marker?: boolean;
  payloadType?: number;
  sequenceNumber?: number;
  timestamp?: number;
  ssrc?: number;
  csrcs?: number[];
  extension?: { profile: number; elements: number[] };
  payload?: number[];
  padding?: number;
}): Uint8Array {
  const csrcs = o.csrcs ?? [];
  const ext = o.extension;
  const extWords = ext ? Math.ceil(ext.elements.length / 4) : 0;
  const payload = o.payload ?? [1, 2, 3];
  const padding = o.padding ?? 0;
  const out = new Uint8Array(12 + csrcs.length * 4 + (ext ? 4 + extWords * 4 : 0) + payload.length + padding);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | (padding ? 0x20 : 0) | (ext ? 0x10 : 0) | csrcs.length;
  out[1] = (o.marker ? 0x80 : 0) | (o.payloadType ?? 96);
  view.setUint16(2, o.sequenceNumber ?? 0);
  view.setUint32(4, o.timestamp ?? 0);
  view.setUint32(8, o.ssrc ?? 0);
  let at = 12;
  for (const c of csrcs) {
    view.setUint32(at, c);
    at += 4;
  }
  if (ext) {
    view.setUint16(at, ext.profile);
    view.setUint16(at + 2, extWords);
    out.set(ext.elements, at + 4); // the rest of the last word stays zero (padding bytes)
    at += 4 + extWords * 4;
  }
  out.set(payload, at);
  if (padding) out[out.length - 1] = padding;
  return out;
}

Deno.test("fixed fields, CSRCs and payload bounds, as werift's parser reads them", () => {
  const bytes = packet({
    marker: true,
    payloadType: 111,
    sequenceNumber: 0xfffe,
    timestamp: 0xfedcba98,
    ssrc: 0x80000001,
    csrcs: [0x11223344, 0xaabbccdd],
    payload: [9, 8, 7, 6],
  });
  const header = new RtpHeaderReader();
  assert.equal(header.read(bytes), true);
  const werift = RtpHeader.deSerialize(Buffer.from(bytes));
  assert.equal(header.marker, werift.marker);
  assert.equal(header.payloadType, werift.payloadType);
  assert.equal(header.sequenceNumber, werift.sequenceNumber);
  assert.equal(header.timestamp, werift.timestamp);
  assert.equal(header.ssrc, werift.ssrc);
  assert.equal(header.csrcCount, 2);
  assert.deepEqual([header.csrc(0), header.csrc(1)], werift.csrc);
  assert.equal(header.payloadStart, werift.payloadOffset);
  assert.equal(header.payloadStart, 20);
  assert.equal(header.payloadEnd, bytes.length);
  assert.equal(header.padding, false);
  assert.equal(header.extensionProfile, -1);
  assert.equal(header.findExtension(1), -1);
});

Deno.test("one-byte extensions (RFC 8285 §4.2): lookup by id across padding bytes, stop at id 15", () => {
  // id 1 len 1 (L=0): 0x7f; a padding byte; id 3 len 3 (L=2): abs-send-time; id 5 len 2: transport-cc.
  const bytes = packet({
    extension: { profile: 0xbede, elements: [0x10, 0x7f, 0x00, 0x32, 0x12, 0x34, 0x56, 0x51, 0x01, 0x02] },
    payload: [0xaa],
  });
  const header = new RtpHeaderReader();
  assert.equal(header.read(bytes), true);
  assert.equal(header.extensionProfile, 0xbede);
  assert.equal(header.extensionStart, 16);
  assert.equal(header.extensionEnd, 28);
  assert.equal(header.payloadStart, 28);
  assert.equal(bytes[header.payloadStart], 0xaa);

  assert.equal(header.extensionValue(1), 0x7f);
  assert.equal(header.extensionValue(3), 0x123456);
  assert.equal(header.extensionLength, 3);
  assert.equal(header.extensionValue(5), 0x0102);
  const at = header.findExtension(5);
  assert.deepEqual([...bytes.subarray(at, at + header.extensionLength)], [0x01, 0x02]);
  assert.equal(header.findExtension(2), -1);
  assert.equal(header.findExtension(14), -1);

  // id 15 ends processing: an element behind it is not found.
  const stopped = packet({ extension: { profile: 0xbede, elements: [0xf0, 0x10, 0x7f, 0x00] } });
  assert.equal(header.read(stopped), true);
  assert.equal(header.findExtension(1), -1);

  // An element claiming more bytes than the block holds is not returned.
  const overlong = packet({ extension: { profile: 0xbede, elements: [0x1f, 0x00, 0x00, 0x00] } });
  assert.equal(header.read(overlong), true);
  assert.equal(header.findExtension(1), -1);
});

Deno.test("two-byte extensions (RFC 8285 §4.3): ids above 14, empty and long elements", () => {
  // profile 0x1000 (appbits 0): id 20 len 0; padding byte; id 200 len 5; id 3 len 2.
  const elements = [20, 0, 0x00, 200, 5, 1, 2, 3, 4, 5, 3, 2, 0xbe, 0xef];
  const bytes = packet({ extension: { profile: 0x1003, elements } });
  const header = new RtpHeaderReader();
  assert.equal(header.read(bytes), true);
  assert.equal(header.findExtension(20), header.extensionStart + 2);
  assert.equal(header.extensionLength, 0);
  assert.equal(header.extensionValue(20), -1);
  const at = header.findExtension(200);
  assert.deepEqual([...bytes.subarray(at, at + header.extensionLength)], [1, 2, 3, 4, 5]);
  assert.equal(header.extensionValue(200), -1); // longer than 4 bytes
  assert.equal(header.extensionValue(3), 0xbeef);
  assert.equal(header.findExtension(4), -1);

  // A profile that is neither form (RFC 3550's generic extension): the block is skipped, nothing is found.
  const generic = packet({ extension: { profile: 0x1234, elements: [0x10, 0x7f, 0, 0] } });
  assert.equal(header.read(generic), true);
  assert.equal(header.payloadStart, 20);
  assert.equal(header.findExtension(1), -1);
});

Deno.test("padding: the last octet's count is taken off the payload", () => {
  const header = new RtpHeaderReader();
  const bytes = packet({ payload: [1, 2, 3, 4], padding: 4 });
  assert.equal(header.read(bytes), true);
  assert.equal(header.padding, true);
  assert.equal(header.payloadStart, 12);
  assert.equal(header.payloadEnd, 16);

  // A padding-only packet (a bandwidth probe) has an empty payload.
  assert.equal(header.read(packet({ payload: [], padding: 10 })), true);
  assert.equal(header.payloadEnd - header.payloadStart, 0);
});

Deno.test("bounds: truncated or inconsistent headers are refused", () => {
  const header = new RtpHeaderReader();
  assert.equal(header.read(new Uint8Array(11).fill(0x80, 0, 1)), false);
  const v1 = packet({});
  v1[0] = 0x40 | (v1[0] & 0x3f);
  assert.equal(header.read(v1), false, "version 1");

  const csrcs = packet({ csrcs: [1, 2], payload: [] });
  assert.equal(header.read(csrcs), true);
  assert.equal(header.read(csrcs.subarray(0, 19)), false, "CSRC list cut");

  const ext = packet({ extension: { profile: 0xbede, elements: [0x10, 1, 0, 0] }, payload: [] });
  assert.equal(header.read(ext), true);
  assert.equal(header.read(ext.subarray(0, 15)), false, "extension header cut");
  assert.equal(header.read(ext.subarray(0, 19)), false, "extension block cut");
  const huge = ext.slice();
  huge[14] = 0xff; // claims 65,280+ words
  assert.equal(header.read(huge), false, "extension length past the end");

  const zeroPadding = packet({ payload: [1, 2], padding: 1 });
  zeroPadding[zeroPadding.length - 1] = 0;
  assert.equal(header.read(zeroPadding), false, "padding count 0");
  const tooMuchPadding = packet({ payload: [1, 2], padding: 3 });
  tooMuchPadding[tooMuchPadding.length - 1] = 6; // 2 payload + 3 padding bytes hold at most 5
  assert.equal(header.read(tooMuchPadding), false, "padding longer than the payload");
});
