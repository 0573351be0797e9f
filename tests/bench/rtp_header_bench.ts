/**
 * Per-packet cost of reading an RTP header the way a browser publisher sends it (1200 bytes, one-byte
 * extensions: mid, abs-send-time, transport-cc): werift's `RtpHeader.deSerialize` (what the receive path
 * uses today) against the allocation-free `RtpHeaderReader`, both taking the transport-cc sequence number.
 * Run: `deno run --allow-all tests/bench/rtp_header_bench.ts`; prints the best of five rounds (the machine
 * may be shared) in µs per packet and the ratio.
 */
import { Buffer } from "node:buffer";
import { RtpHeader } from "werift";
import { RtpHeaderReader } from "../../src/rtp/rtp_header.ts";

const MID_ID = 4;
const ABS_SEND_TIME_ID = 2;
const TWCC_ID = 3;

function browserPacket(seq: number): Uint8Array {
  const p = new Uint8Array(1200);
  const view = new DataView(p.buffer);
  p[0] = 0x90;
  p[1] = 102;
  view.setUint16(2, seq);
  view.setUint32(4, seq * 3000);
  view.setUint32(8, 0x12345678);
  // 0xBEDE, 3 words: mid "0" (1 byte), abs-send-time (3 bytes), transport-cc (2 bytes), 2 padding bytes.
  p.set([0xbe, 0xde, 0, 3, (MID_ID << 4) | 0, 0x30, (ABS_SEND_TIME_ID << 4) | 2, 1, 2, 3], 12);
  p.set([(TWCC_ID << 4) | 1, seq >> 8, seq & 0xff, 0, 0], 22);
  for (let i = 28; i < p.length; i++) p[i] = i;
  return p;
}

const packets = Array.from({ length: 256 }, (_, i) => browserPacket(i));
const buffers = packets.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length));
let sink = 0;
const reader = new RtpHeaderReader();
const ROUNDS = 5;
const LOOPS = 1000;

function werift(): void {
  for (const b of buffers) {
    const header = RtpHeader.deSerialize(b);
    const twcc = header.extensions.find((e) => e.id === TWCC_ID);
    sink += header.sequenceNumber + (twcc ? twcc.payload.readUInt16BE(0) : 0);
  }
}

function allocationFree(): void {
  for (const p of packets) {
    if (reader.read(p)) sink += reader.sequenceNumber + reader.extensionValue(TWCC_ID);
  }
}

/** Best µs per packet over the rounds. */
function measure(run: () => void): number {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    for (let i = 0; i < LOOPS; i++) run();
    best = Math.min(best, (performance.now() - start) * 1000 / (LOOPS * packets.length));
  }
  return best;
}

const weriftMicros = measure(werift);
const readerMicros = measure(allocationFree);
console.log(
  `werift RtpHeader.deSerialize + transport-cc lookup: ${weriftMicros.toFixed(3)} µs/packet\n` +
    `RtpHeaderReader.read + extensionValue:              ${readerMicros.toFixed(3)} µs/packet ` +
    `(${(weriftMicros / readerMicros).toFixed(0)}× less)` + (sink === 0.5 ? "" : ""),
);
