import assert from "node:assert/strict";
import { classifyDatagram } from "./demux.ts";

Deno.test("classifies by first byte per RFC 7983", () => {
  const stun = new Uint8Array(20);
  stun[0] = 0x00;
  stun[1] = 0x01;
  assert.equal(classifyDatagram(stun), "stun");
  const dtls = new Uint8Array(13);
  dtls[0] = 22; // handshake record
  assert.equal(classifyDatagram(dtls), "dtls");
  const rtp = new Uint8Array(12);
  rtp[0] = 0x80;
  rtp[1] = 96;
  assert.equal(classifyDatagram(rtp), "rtp");
  rtp[1] = 0x80 | 96; // marker bit set is still RTP
  assert.equal(classifyDatagram(rtp), "rtp");
  const rtcp = new Uint8Array(8);
  rtcp[0] = 0x80;
  rtcp[1] = 200; // SR
  assert.equal(classifyDatagram(rtcp), "rtcp");
  rtcp[1] = 206; // PSFB
  assert.equal(classifyDatagram(rtcp), "rtcp");
});

Deno.test("too short or out-of-range first bytes are junk", () => {
  assert.equal(classifyDatagram(new Uint8Array([])), "unknown");
  assert.equal(classifyDatagram(new Uint8Array([0x00, 0x01, 0, 0])), "unknown"); // STUN shorter than a header
  assert.equal(classifyDatagram(new Uint8Array([22, 0xfe])), "unknown");
  assert.equal(classifyDatagram(new Uint8Array(30).fill(64)), "unknown"); // 64-79 is TURN channel data
  assert.equal(classifyDatagram(new Uint8Array(30).fill(200)), "unknown");
  const shortRtp = new Uint8Array(10);
  shortRtp[0] = 0x80;
  shortRtp[1] = 96;
  assert.equal(classifyDatagram(shortRtp), "unknown");
});
