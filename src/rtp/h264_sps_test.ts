import { deepEqual, equal } from "node:assert/strict";
import { parseSpsDimensions } from "./h264_sps.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
}

// SPS NAL units written by the local libx264 (ffmpeg -f lavfi -i testsrc ...), sizes confirmed by ffprobe.
const X264_SPS: [string, string, number, number][] = [
  ["constrained baseline 320x180", "6742c00bd901419f9f011000000300100000030140f142a480", 320, 180],
  ["high 1920x1080", "67640028acd940780227e5c044000003000400000300503c60c658", 1920, 1080],
  ["high 4:4:4 1280x720", "67f4001f919b280a00b76022000003000200000300281e30632c", 1280, 720],
  ["high 4:2:2 640x360", "677a0016bcd940a02ff89c0440000003004000000503c58b6580", 640, 360],
  ["high 10 100x50", "676e000aa6cd947279e23011000003000100000300140f122596", 100, 50],
  ["interlaced 1920x1080", "67640028acd94078044fde022000000300200000030283e2c5b2c0", 1920, 1080],
  ["4:4:4 odd size 322x202", "67f4000c919b282a37c7cf8088000003000800000300a078a14cb0", 322, 202],
  // h264_metadata=crop_left=8:crop_right=16:crop_top=4:crop_bottom=2 on a 320x180 stream
  ["rewritten crop 296x186", "6764000cacd941419ca25ac044000003000400000300503c50a658", 296, 186],
];

for (const [name, bytes, width, height] of X264_SPS) {
  Deno.test(`parseSpsDimensions: x264 ${name}`, () => {
    deepEqual(parseSpsDimensions(hex(bytes)), { width, height });
  });
}

Deno.test("parseSpsDimensions: accepts a leading start code", () => {
  const sps = X264_SPS[0][1];
  deepEqual(parseSpsDimensions(hex("00000001" + sps)), { width: 320, height: 180 });
  deepEqual(parseSpsDimensions(hex("000001" + sps)), { width: 320, height: 180 });
});

/** Writes SPS syntax elements so the rarer branches can be exercised; escapes like an encoder would. */
class SpsWriter {
  #bits: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.#bits.push(Math.floor(v / 2 ** i) & 1);
    return this;
  }
  ue(v: number): this {
    const len = Math.floor(Math.log2(v + 1));
    return this.u(len, 0).u(len + 1, v + 1);
  }
  se(v: number): this {
    return this.ue(v > 0 ? 2 * v - 1 : -2 * v);
  }
  nal(): Uint8Array {
    const bits = [...this.#bits, 1];
    while (bits.length % 8) bits.push(0);
    const out = [0x67];
    let zeros = 0;
    for (let i = 0; i < bits.length; i += 8) {
      const b = bits.slice(i, i + 8).reduce((a, bit) => a * 2 + bit, 0);
      if (zeros >= 2 && b <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    return Uint8Array.from(out);
  }
}

interface SpsFields {
  profile: number;
  level?: number;
  chroma?: number;
  separatePlanes?: number;
  scaling?: (number[] | undefined)[]; // per list: deltas, or undefined for "not present"
  pocType?: number;
  pocCycle?: number[];
  pocOffsets?: [number, number];
  widthMbs: number;
  heightUnits: number;
  frameMbsOnly?: number;
  crop?: [number, number, number, number];
}

function buildSps(f: SpsFields): Uint8Array {
  const w = new SpsWriter().u(8, f.profile).u(8, 0).u(8, f.level ?? 0).ue(0);
  if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(f.profile)) {
    const chroma = f.chroma ?? 1;
    w.ue(chroma);
    if (chroma === 3) w.u(1, f.separatePlanes ?? 0);
    w.ue(0).ue(0).u(1, 0);
    w.u(1, f.scaling ? 1 : 0);
    if (f.scaling) {
      for (const deltas of f.scaling) {
        w.u(1, deltas ? 1 : 0);
        for (const d of deltas ?? []) w.se(d);
      }
    }
  }
  w.ue(0);
  const poc = f.pocType ?? 0;
  w.ue(poc);
  if (poc === 0) w.ue(2);
  if (poc === 1) {
    w.u(1, 0).se(f.pocOffsets?.[0] ?? -3).se(f.pocOffsets?.[1] ?? 5).ue(f.pocCycle!.length);
    for (const o of f.pocCycle!) w.se(o);
  }
  w.ue(1).u(1, 0).ue(f.widthMbs - 1).ue(f.heightUnits - 1);
  const fmo = f.frameMbsOnly ?? 1;
  w.u(1, fmo);
  if (!fmo) w.u(1, 0);
  w.u(1, 1);
  w.u(1, f.crop ? 1 : 0);
  if (f.crop) { for (const c of f.crop) w.ue(c); }
  w.u(1, 0); // vui_parameters_present_flag
  return w.nal();
}

// A 4x4 list that runs to the end and an 8x8 list that stops early via next_scale == 0.
const FULL_4X4 = Array.from({ length: 16 }, (_, i) => (i % 3) - 1);
const STOP_8X8 = [4, -12]; // 8 -> 12 -> 0: the rest of the list repeats the last value, no more deltas

Deno.test("parseSpsDimensions: scaling lists (4:2:0, 8 lists)", () => {
  const scaling = [
    FULL_4X4,
    undefined,
    FULL_4X4,
    [-8],
    undefined,
    FULL_4X4,
    STOP_8X8,
    FULL_4X4.concat(FULL_4X4, FULL_4X4, FULL_4X4),
  ];
  const sps = buildSps({ profile: 100, scaling, widthMbs: 80, heightUnits: 45 });
  deepEqual(parseSpsDimensions(sps), { width: 1280, height: 720 });
});

Deno.test("parseSpsDimensions: scaling lists with 4:4:4 (12 lists) and separate colour planes", () => {
  const scaling = Array.from({ length: 12 }, (_, i) => (i < 6 ? FULL_4X4 : STOP_8X8));
  const sps = buildSps({
    profile: 244,
    chroma: 3,
    separatePlanes: 1,
    scaling,
    widthMbs: 20,
    heightUnits: 12,
    crop: [1, 2, 3, 4], // ChromaArrayType 0: units of one sample
  });
  deepEqual(parseSpsDimensions(sps), { width: 320 - 3, height: 192 - 7 });
});

Deno.test("parseSpsDimensions: field coding and pic_order_cnt_type 1", () => {
  const sps = buildSps({
    profile: 77,
    pocType: 1,
    pocCycle: [1, -2, 3],
    widthMbs: 45,
    heightUnits: 18, // map units are field macroblock pairs: 18 * 32 = 576
    frameMbsOnly: 0,
    crop: [0, 0, 0, 2], // 4:2:0 field: CropUnitY = 4
  });
  deepEqual(parseSpsDimensions(sps), { width: 720, height: 568 });
});

Deno.test("parseSpsDimensions: emulation prevention bytes are removed before parsing", () => {
  // A 2^29 offset is coded with 30 leading zero bits, so the writer must escape it.
  const sps = buildSps({
    profile: 66,
    pocType: 1,
    pocOffsets: [2 ** 29, -(2 ** 29)],
    pocCycle: [],
    widthMbs: 2,
    heightUnits: 1,
    crop: [0, 0, 0, 0],
  });
  const escapes = sps.findIndex((b, i) => i > 1 && b === 3 && sps[i - 1] === 0 && sps[i - 2] === 0);
  equal(escapes > 0, true, "fixture should contain an emulation-prevention byte");
  deepEqual(parseSpsDimensions(sps), { width: 32, height: 16 });
});

Deno.test("parseSpsDimensions: rejects non-SPS, truncated and absurd input", () => {
  deepEqual(parseSpsDimensions(new Uint8Array()), undefined);
  deepEqual(parseSpsDimensions(hex("68ebe3cb22c0")), undefined); // a PPS
  const good = hex(X264_SPS[1][1]);
  // Cut anywhere: either too short (undefined) or long enough to hold every field read (right answer).
  let firstGood = -1;
  for (let n = 0; n <= good.length; n++) {
    const dims = parseSpsDimensions(good.subarray(0, n));
    if (dims && firstGood < 0) firstGood = n;
    deepEqual(dims, firstGood < 0 ? undefined : { width: 1920, height: 1080 });
  }
  equal(firstGood > 6, true);
  deepEqual(parseSpsDimensions(hex("6764002800000000000000")), undefined); // runs of zeros: bad ue
  deepEqual(
    parseSpsDimensions(buildSps({ profile: 100, chroma: 7, widthMbs: 1, heightUnits: 1 })),
    undefined,
  );
  deepEqual(parseSpsDimensions(buildSps({ profile: 66, widthMbs: 2000, heightUnits: 1 })), undefined);
  deepEqual(
    parseSpsDimensions(buildSps({ profile: 66, widthMbs: 2, heightUnits: 2, crop: [9, 9, 0, 0] })),
    undefined,
  );
});

Deno.test("parseSpsDimensions: never throws on random bytes", () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 20000; i++) {
    const buf = Uint8Array.from({ length: rand() % 40 }, rand);
    if (buf.length) buf[0] = 0x67;
    parseSpsDimensions(buf);
  }
});
