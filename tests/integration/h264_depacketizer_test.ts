import { deepEqual, equal, ok } from "node:assert/strict";
import { type AccessUnit, H264Depacketizer, MAX_ACCESS_UNIT_BYTES } from "../../src/rtp/h264_depacketizer.ts";
import {
  encodeTestStream,
  groupAccessUnits,
  packetizeStream,
  splitAnnexB,
  type TestPacket,
  toAnnexB,
} from "../fixtures/h264_fixture.ts";

// 10 frames of 320x180, IDR at frames 0 and 5, two slices per picture.
const units = groupAccessUnits(splitAnnexB(await encodeTestStream()));
const expected = units.map(toAnnexB);

interface Out {
  data: Uint8Array;
  timestamp: number;
  isKeyframe: boolean;
  width?: number;
  height?: number;
}

/** Pushes packets and returns copies of the units (the depacketizer's data is only valid until the next push). */
function run(packets: TestPacket[], d = new H264Depacketizer()): Out[] {
  const out: Out[] = [];
  for (const p of packets) {
    const au: AccessUnit | undefined = d.push(p.payload, p.seq, p.timestamp, p.marker);
    if (au) out.push({ ...au, data: au.data.slice() });
  }
  return out;
}

function timestampOf(i: number): number {
  return 1000 + i * 9000;
}

Deno.test("fixture has the shape the tests rely on", () => {
  equal(units.length, 10);
  deepEqual(units[0].slice(0, 2).map((n) => n[0] & 0x1f), [7, 8]);
  deepEqual(units[5].slice(0, 2).map((n) => n[0] & 0x1f), [7, 8]);
});

for (const mtu of [100, 300, 1200, 65000]) {
  Deno.test(`reassembles the ffmpeg stream packetized at mtu ${mtu}`, () => {
    const out = run(packetizeStream(units, mtu));
    equal(out.length, units.length);
    out.forEach((au, i) => {
      deepEqual(au.data, expected[i], `access unit ${i}`);
      equal(au.timestamp, timestampOf(i));
      equal(au.isKeyframe, i % 5 === 0);
      equal(au.width, 320);
      equal(au.height, 180);
    });
  });
}

Deno.test("the packetizations cover single NAL, STAP-A and FU-A payloads", () => {
  const types = new Set<number>();
  for (const mtu of [100, 300, 1200]) {
    for (const p of packetizeStream(units, mtu)) types.add(p.payload[0] & 0x1f);
  }
  ok(types.has(1) && types.has(24) && types.has(28), [...types].join());
});

Deno.test("16-bit sequence number wrap-around is not a gap", () => {
  const packets = packetizeStream(units, 100, 65500);
  ok(packets.some((p) => p.seq === 65535) && packets.some((p) => p.seq === 0));
  deepEqual(run(packets).map((a) => a.data), expected);
});

Deno.test("a lost middle packet drops only its access unit", () => {
  const packets = packetizeStream(units, 100, 65530);
  const inUnit3 = packets.filter((p) => p.timestamp === timestampOf(3));
  ok(inUnit3.length >= 3);
  const lost = inUnit3[1];
  const out = run(packets.filter((p) => p !== lost));
  deepEqual(out.map((a) => a.timestamp), [0, 1, 2, 4, 5, 6, 7, 8, 9].map(timestampOf));
  out.forEach((a) => deepEqual(a.data, expected[(a.timestamp - 1000) / 9000]));
});

Deno.test("a lost marker packet drops its unit and, conservatively, the next", () => {
  const packets = packetizeStream(units, 100);
  const lost = packets.filter((p) => p.timestamp === timestampOf(2)).at(-1)!;
  const out = run(packets.filter((p) => p !== lost));
  deepEqual(out.map((a) => a.timestamp), [0, 1, 4, 5, 6, 7, 8, 9].map(timestampOf));
});

Deno.test("a lost first packet of a keyframe drops the keyframe", () => {
  const packets = packetizeStream(units, 100);
  const lost = packets.find((p) => p.timestamp === timestampOf(5))!;
  const out = run(packets.filter((p) => p !== lost));
  ok(!out.some((a) => a.timestamp === timestampOf(5)));
  ok(!out.some((a) => a.isKeyframe && a.timestamp !== timestampOf(0)));
});

Deno.test("without marker bits a unit completes when the timestamp changes", () => {
  const packets = packetizeStream(units, 300).map((p) => ({ ...p, marker: false }));
  const out = run(packets);
  // The last unit has no successor to end it.
  deepEqual(out.map((a) => a.data), expected.slice(0, -1));
});

Deno.test("a marked packet that also ends an unmarked unit defers its own unit, losing nothing", () => {
  const packets = packetizeStream(units.slice(0, 4), 65000); // one STAP-A per unit
  packets[0].marker = false; // unit 0 then ends on unit 1's packet, which itself carries a marker
  const out = run(packets);
  deepEqual(out.map((a) => a.data), expected.slice(0, 3)); // unit 3 waits for a unit 4 that never comes
});

Deno.test("duplicated and late packets are ignored", () => {
  const packets = packetizeStream(units, 100);
  const noisy: TestPacket[] = [];
  packets.forEach((p, i) => {
    noisy.push(p, p);
    if (i > 3) noisy.push(packets[i - 3]);
  });
  deepEqual(run(noisy).map((a) => a.data), expected);
});

Deno.test("a backward jump of the sequence numbers (restarted sender) resynchronizes", () => {
  const before = packetizeStream(units.slice(0, 5), 100, 10000);
  const after = packetizeStream(units.slice(5), 100, 60000, timestampOf(5));
  const out = run([...before, ...after]);
  // Unit 5 loses its first packets while the jump is told apart from reordering; the rest comes through.
  deepEqual(out.map((a) => a.data), [...expected.slice(0, 5), ...expected.slice(6)]);
});

Deno.test("a keyframe without SPS/PPS gets the remembered ones prepended", () => {
  const stripped = units.map((u, i) => (i === 5 ? u.filter((n) => (n[0] & 0x1f) === 5) : u));
  const out = run(packetizeStream(stripped, 1200));
  const [sps, pps] = units[0];
  deepEqual(out[5].data, toAnnexB([sps, pps, ...stripped[5]]));
  ok(out[5].isKeyframe);
  deepEqual(out.map((a) => a.data).filter((_, i) => i !== 5), expected.filter((_, i) => i !== 5));
});

Deno.test("a keyframe before any SPS is passed on as is", () => {
  const idrOnly = [units[0].filter((n) => (n[0] & 0x1f) === 5)];
  const out = run(packetizeStream(idrOnly, 1200));
  equal(out.length, 1);
  ok(out[0].isKeyframe);
  deepEqual(out[0].data, toAnnexB(idrOnly[0]));
  equal(out[0].width, undefined);
});

Deno.test("FU-A continuation without a start, or a second start, drops the unit", () => {
  const d = new H264Depacketizer();
  const slice = units[1][1];
  const fu = (header: number, body: Uint8Array) => Uint8Array.of((slice[0] & 0xe0) | 28, header, ...body);
  equal(d.push(fu(0x40 | 1, slice.subarray(1)), 1, 10, true), undefined); // end without start
  equal(d.push(fu(0x80 | 1, slice.subarray(1, 50)), 2, 20, false), undefined);
  equal(d.push(fu(0x80 | 1, slice.subarray(1, 50)), 3, 20, false), undefined); // start again
  equal(d.push(fu(0x40 | 1, slice.subarray(50)), 4, 20, true), undefined);
  equal(d.push(fu(0x80 | 1, slice.subarray(1, 50)), 5, 30, true), undefined); // marker mid-fragment
  equal(d.droppedCount, 3);
  const au = d.push(slice, 6, 40, true);
  deepEqual(au?.data, toAnnexB([slice]));
});

Deno.test("malformed STAP-A drops the unit without emitting half of it", () => {
  const d = new H264Depacketizer();
  const [sps, pps] = units[0];
  const stap = Uint8Array.of(24, 0, sps.length, ...sps, 0, 200, ...pps); // second length overruns
  equal(d.push(stap, 1, 10, true), undefined);
  equal(d.push(Uint8Array.of(24, 0), 2, 20, true), undefined); // truncated length field
  equal(d.push(Uint8Array.of(24, 0, 0), 3, 30, true), undefined); // zero-length NAL
  equal(d.droppedCount, 3);
});

Deno.test("interleaved-mode and reserved packet types are skipped", () => {
  const packets = packetizeStream(units, 300);
  const noisy: TestPacket[] = [];
  let seq = 0;
  for (const p of packets) {
    noisy.push({ ...p, seq: seq++, marker: false });
    for (const type of [0, 25, 26, 27, 29, 30, 31]) {
      noisy.push({
        payload: Uint8Array.of(type, 1, 2, 3),
        seq: seq++,
        timestamp: p.timestamp,
        marker: false,
      });
    }
    noisy.at(-1)!.marker = p.marker;
  }
  deepEqual(run(noisy).map((a) => a.data), expected);
});

Deno.test("an access unit over the size cap is dropped and memory stays bounded", () => {
  const d = new H264Depacketizer();
  const body = new Uint8Array(60000).fill(0x55);
  const fu = (header: number) => {
    const p = new Uint8Array(2 + body.length);
    p[0] = 0x65 & 0xe0 | 28;
    p[1] = header;
    p.set(body, 2);
    return p;
  };
  let seq = 0;
  equal(d.push(fu(0x85), seq++, 10, false), undefined);
  const fragments = Math.ceil(MAX_ACCESS_UNIT_BYTES / body.length) + 5;
  for (let i = 0; i < fragments; i++) equal(d.push(fu(0x05), seq++, 10, false), undefined);
  equal(d.push(fu(0x45), seq++, 10, true), undefined);
  equal(d.droppedCount, 1);
  const au = d.push(units[1][0], seq++, 20, true);
  deepEqual(au?.data, toAnnexB([units[1][0]]));
});

Deno.test("reset forgets the partial unit and the sequence history", () => {
  const d = new H264Depacketizer();
  const packets = packetizeStream(units.slice(0, 2), 100);
  for (const p of packets.slice(0, 5)) d.push(p.payload, p.seq, p.timestamp, p.marker);
  d.reset();
  deepEqual(run(packetizeStream(units.slice(0, 2), 100, 40000), d).map((a) => a.data), expected.slice(0, 2));
});

Deno.test("random and mutated input never throws and only yields well-formed output", () => {
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const d = new H264Depacketizer();
  const valid = packetizeStream(units, 100);
  let seq = 0;
  let emitted = 0;
  for (let i = 0; i < 200_000; i++) {
    let payload: Uint8Array;
    if (rand(2)) {
      payload = Uint8Array.from({ length: rand(64) }, () => rand(256));
      if (payload.length && rand(2)) payload[0] = (payload[0] & 0xe0) | [1, 5, 7, 8, 24, 28][rand(6)];
    } else {
      payload = valid[rand(valid.length)].payload.slice();
      if (payload.length) payload[rand(payload.length)] = rand(256);
    }
    seq = (seq + (rand(10) === 0 ? rand(65536) : 1)) & 0xffff;
    const au = d.push(payload, seq, rand(4) * 3000, rand(3) === 0);
    if (au) {
      emitted++;
      ok(au.data.length >= 5 && au.data.length <= MAX_ACCESS_UNIT_BYTES);
      deepEqual([...au.data.subarray(0, 4)], [0, 0, 0, 1]);
    }
  }
  ok(emitted > 0);
});
