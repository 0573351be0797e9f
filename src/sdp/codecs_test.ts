import assert from "node:assert/strict";
import {
  chooseH264,
  choosePublisherVideo,
  chooseViewerVideo,
  describeVideo,
  h264DecodeRank,
  h264Profile,
  offeredEncodings,
  parseVideoCodecOrder,
  videoProfile,
} from "./codecs.ts";
import { type OfferedMedia, parseOffer } from "./offer.ts";

const fixtures = new URL("../../tests/fixtures/", import.meta.url);
const publishOffer = parseOffer(Deno.readTextFileSync(new URL("chromium_publish_offer.sdp", fixtures)));
const watchOffer = parseOffer(Deno.readTextFileSync(new URL("chromium_watch_offer.sdp", fixtures)));

/** A video m-line offering exactly these `name/fmtp` entries (payload types from 96 up). */
function videoLine(entries: string[]): OfferedMedia {
  const pts = entries.map((_, i) => 96 + i);
  const lines = [
    "v=0",
    "o=- 1 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    `m=video 9 UDP/TLS/RTP/SAVPF ${pts.join(" ")}`,
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuvwxyz",
    "a=fingerprint:sha-256 AB:CD",
    "a=mid:0",
    "a=recvonly",
    "a=rtcp-mux",
  ];
  entries.forEach((e, i) => {
    const [name, fmtp] = e.split(" ");
    lines.push(`a=rtpmap:${pts[i]} ${name}/90000`, `a=rtcp-fb:${pts[i]} nack`);
    if (fmtp) lines.push(`a=fmtp:${pts[i]} ${fmtp}`);
  });
  return parseOffer(lines.join("\r\n") + "\r\n").media[0];
}

const h264 = (profile: string, mode = 1) =>
  `H264 level-asymmetry-allowed=1;packetization-mode=${mode};profile-level-id=${profile}1f`;

Deno.test("H.264 profile ranks: a decoder of a higher rank decodes the lower ones", () => {
  assert.ok(h264DecodeRank("42e0") < h264DecodeRank("4200"));
  assert.ok(h264DecodeRank("4200") < h264DecodeRank("4d00"));
  assert.ok(h264DecodeRank("4d00") < h264DecodeRank("640c"));
  assert.ok(h264DecodeRank("640c") < h264DecodeRank("6400"));
  assert.ok(h264DecodeRank("6400") < h264DecodeRank("f400"));
});

Deno.test("a viewer without the room's H.264 profile gets the closest one that decodes it, never the first", () => {
  // A High stream; the viewer lists Constrained Baseline first, then Main, High 4:4:4 and High.
  const viewer = videoLine([h264("42e0"), h264("4d00"), h264("f400"), h264("6400")]);
  const room = chooseH264(videoLine([h264("6400")]))!;
  const exact = chooseViewerVideo(viewer, room)!;
  assert.equal(h264Profile(exact.codec), "6400");
  assert.equal(exact.note, undefined);

  const noHigh = videoLine([h264("42e0"), h264("4d00"), h264("f400")]);
  const closest = chooseViewerVideo(noHigh, room)!;
  assert.equal(h264Profile(closest.codec), "f400", "4:4:4 decodes High; Baseline and Main do not");
  assert.match(closest.note!, /no H\.264 profile 6400; answered with f400, which decodes it/);

  const onlyLow = videoLine([h264("42e0"), h264("4d00"), h264("4200")]);
  const best = chooseViewerVideo(onlyLow, room)!;
  assert.equal(h264Profile(best.codec), "4d00", "none decodes High: the most capable is answered");
  assert.match(best.note!, /able to decode 6400/);

  // A Constrained Baseline stream: the viewer's Baseline decodes it and is closer than Main.
  const cb = chooseH264(videoLine([h264("42e0")]))!;
  const forCb = chooseViewerVideo(videoLine([h264("4d00"), h264("4200")]), cb)!;
  assert.equal(h264Profile(forCb.codec), "4200");
  // Packetization mode 0 is never answered.
  assert.equal(chooseViewerVideo(videoLine([h264("6400", 0)]), room), undefined);
});

Deno.test("publisher video: the first codec of the configured order the offer has", () => {
  const chromium = publishOffer.media[0];
  assert.equal(choosePublisherVideo(chromium)!.name, "H264", "default order starts with H.264");
  const av1First = choosePublisherVideo(chromium, parseVideoCodecOrder("av1,h264"))!;
  assert.equal(av1First.name, "AV1");
  const vp9 = choosePublisherVideo(chromium, ["vp9"])!;
  assert.equal(vp9.name, "VP9");
  assert.equal(videoProfile(vp9), "0", "Chromium lists profile-id=0 first");
  assert.equal(choosePublisherVideo(chromium, ["h265"]), undefined, "this Chromium offers no H.265");
  // An offer listing VP8 only is answered with VP8 in the default order.
  const vp8 = choosePublisherVideo(videoLine(["VP8", "rtx apt=96"]))!;
  assert.equal(vp8.payloadType, 96);
  assert.deepEqual(vp8.feedback, ["nack"]);
  assert.equal(choosePublisherVideo(videoLine([h264("42e0", 0)])), undefined, "mode 0 is refused");
  const hevc = choosePublisherVideo(videoLine(["H265 profile-id=1;tier-flag=0;level-id=93"]))!;
  assert.equal(videoProfile(hevc), "1");
});

Deno.test("viewer video: same codec and profile; otherwise nothing, with a reason naming both sides", () => {
  const vp9Profile2 = choosePublisherVideo(videoLine(["VP9 profile-id=2"]))!;
  const choice = chooseViewerVideo(watchOffer.media[0], vp9Profile2)!;
  assert.equal(choice.codec.payloadType, 100, "Chromium's VP9 profile-id=2 entry");
  const vp8Only = videoLine(["VP8"]);
  assert.equal(chooseViewerVideo(vp8Only, vp9Profile2), undefined);
  assert.equal(describeVideo(vp9Profile2), "VP9 (profile-id=2)");
  assert.deepEqual(offeredEncodings(videoLine(["VP8", "rtx apt=96", "H264"])), ["VP8", "H264"]);
  const av1 = choosePublisherVideo(videoLine(["AV1"]))!;
  assert.equal(chooseViewerVideo(watchOffer.media[0], av1)?.codec.name, "AV1");
  assert.equal(describeVideo(av1), "AV1 (profile=0)");
  assert.equal(
    chooseViewerVideo(videoLine(["AV1 profile=1"]), av1),
    undefined,
    "AV1 High does not match Main",
  );
});

Deno.test("VIDEO_CODECS parsing: known names in order, aliases, no duplicates, clear errors", () => {
  assert.deepEqual(parseVideoCodecOrder("AV1, h264,vp8,av1"), ["av1", "h264", "vp8"]);
  assert.deepEqual(parseVideoCodecOrder("hevc"), ["h265"]);
  assert.throws(() => parseVideoCodecOrder("h264,theora"), /unknown video codec "theora"/);
  assert.throws(() => parseVideoCodecOrder(" , "), /names no video codec/);
});
