/**
 * Keyframe detection and depacketizers of VP8, VP9, H.265 and AV1 against streams ffmpeg encoded and
 * packetized (tests/fixtures/rtp_fixture.ts): keyframes found, frames rebuilt, a rebuilt keyframe decodes
 * with ffmpeg at the source's size, a lost packet drops only its frame, sequence numbers may wrap.
 */
import assert from "node:assert/strict";
import { videoCodecSupport } from "../../src/rtp/video_codec.ts";
import {
  decodeSize,
  type FixtureCodec,
  type FixturePacket,
  framesOf,
  rtpFixture,
} from "../fixtures/rtp_fixture.ts";

const CODECS: FixtureCodec[] = ["vp8", "vp9", "h265", "av1"];
const fixtures = new Map<FixtureCodec, FixturePacket[]>();
for (const codec of CODECS) fixtures.set(codec, await rtpFixture(codec, { frames: 10, gop: 5 }));

interface Rebuilt {
  timestamp: number;
  isKeyframe: boolean;
  width?: number;
  height?: number;
  input?: { format: string; data: Uint8Array };
}

function rebuild(codec: FixtureCodec, packets: FixturePacket[]): Rebuilt[] {
  const support = videoCodecSupport(codec);
  const depacketizer = support.newDepacketizer();
  const out: Rebuilt[] = [];
  for (const p of packets) {
    const frame = depacketizer.push(p.payload, p.seq, p.timestamp, p.marker);
    if (!frame) continue;
    out.push({
      timestamp: frame.timestamp,
      isKeyframe: frame.isKeyframe,
      width: frame.width,
      height: frame.height,
      input: frame.isKeyframe ? support.decoderInput(frame) : undefined,
    });
  }
  return out;
}

for (const codec of CODECS) {
  const packets = fixtures.get(codec)!;
  const frames = framesOf(packets);

  Deno.test(`${codec}: the fixture has 10 frames, keyframes of several packets`, () => {
    assert.equal(frames.length, 10);
    assert.ok(frames[0].length >= 2, `keyframe in ${frames[0].length} packets`);
  });

  Deno.test(`${codec}: keyframe detection flags the start of frames 0 and 5 and nothing in the others`, () => {
    const support = videoCodecSupport(codec);
    frames.forEach((frame, i) => {
      const isKey = i % 5 === 0;
      assert.equal(support.startsKeyframe(frame[0].payload), isKey, `first packet of frame ${i}`);
      if (!isKey) assert.ok(frame.every((p) => !support.startsKeyframe(p.payload)), `frame ${i}`);
    });
    assert.equal(support.startsKeyframe(new Uint8Array(0)), false);
    assert.equal(support.startsKeyframe(new Uint8Array([0xff])), false);
  });

  Deno.test(`${codec}: every frame is rebuilt; a keyframe decodes with ffmpeg at the source's size`, async () => {
    const out = rebuild(codec, packets);
    assert.equal(out.length, 10);
    assert.deepEqual(out.map((f) => f.isKeyframe), frames.map((_, i) => i % 5 === 0));
    assert.deepEqual(out.map((f) => f.timestamp), frames.map((f) => f[0].timestamp));
    assert.equal(out[0].width, 320);
    assert.equal(out[0].height, 180);
    for (const key of [out[0], out[5]]) {
      assert.deepEqual(await decodeSize(key.input!.format, key.input!.data), { width: 320, height: 180 });
    }
  });

  Deno.test(`${codec}: a lost packet drops its frame only; duplicates are ignored`, () => {
    const lost = frames[0][1];
    const out = rebuild(codec, packets.filter((p) => p !== lost));
    assert.equal(out.length, 9);
    assert.notEqual(out[0].timestamp, frames[0][0].timestamp);
    assert.equal(out[4].isKeyframe, true, "the next keyframe is rebuilt");
    const doubled = packets.flatMap((p) => [p, p]);
    assert.equal(rebuild(codec, doubled).length, 10);
  });

  Deno.test(`${codec}: sequence numbers wrapping past 65535 change nothing`, () => {
    const wrapped = packets.map((p, i) => ({ ...p, seq: (65530 + i) & 0xffff }));
    const plain = rebuild(codec, packets);
    const out = rebuild(codec, wrapped);
    assert.deepEqual(
      out.map((f) => [f.timestamp, f.isKeyframe]),
      plain.map((f) => [f.timestamp, f.isKeyframe]),
    );
    assert.deepEqual(out[5].input!.data, plain[5].input!.data);
  });
}
