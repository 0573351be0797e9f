import assert from "node:assert/strict";
import { parseOffer } from "../sdp/offer.ts";
import { SessionError } from "./errors.ts";
import { bundleHead, negotiatePublisher, negotiateViewer, parseOfferOrRefuse } from "./negotiation.ts";

// Offers captured from Chromium (a WHIP publish and a WHEP watch page), H.264/VP8/VP9/AV1 video and Opus audio.
const publishOffer = parseOffer(
  Deno.readTextFileSync(new URL("../../tests/fixtures/chromium_publish_offer.sdp", import.meta.url)),
);
const watchOffer = parseOffer(
  Deno.readTextFileSync(new URL("../../tests/fixtures/chromium_watch_offer.sdp", import.meta.url)),
);
const ALL = ["h264", "vp8", "vp9", "av1", "h265"] as const;

function refusal(kind: string, text: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof SessionError, String(e));
    assert.equal(e.refusal, kind);
    assert.match(e.message, text);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  };
}

Deno.test("publisher: Chromium's offer gets its first H.264 mode 1, Opus, transport-cc, both lines recvonly", () => {
  const { sections, media, audioWithoutOpus } = negotiatePublisher(publishOffer, {
    codecOrder: ALL,
    transportCc: true,
  });
  assert.equal(media.video.name, "H264");
  assert.equal(media.video.payloadType, 102);
  assert.ok(media.video.feedback.includes("transport-cc"));
  assert.equal(media.audio?.name, "opus");
  assert.equal(media.twccExtensionId, 4);
  assert.equal(media.simulcast, undefined);
  assert.equal(audioWithoutOpus, undefined);
  assert.deepEqual(sections.map((s) => [s.accepted, s.accepted && s.direction]), [
    [true, "recvonly"],
    [true, "recvonly"],
  ]);
  assert.deepEqual(bundleHead(sections), { kind: "video", mid: "0", payloadType: 102, mids: ["0", "1"] });
});

Deno.test("publisher: the configured order decides, a room's codec first; without transport-cc none is taken", () => {
  const vp8 = negotiatePublisher(publishOffer, { codecOrder: ["vp8", "h264"], transportCc: false });
  assert.equal(vp8.media.video.name, "VP8");
  assert.equal(vp8.media.twccExtensionId, undefined);
  assert.ok(!vp8.media.video.feedback.includes("transport-cc"));
  const takeover = negotiatePublisher(publishOffer, {
    codecOrder: ["vp8", "h264"],
    roomCodec: "h264",
    transportCc: true,
  });
  assert.equal(takeover.media.video.name, "H264", "a publisher taking over keeps the viewers' codec");
  assert.throws(
    () => negotiatePublisher(publishOffer, { codecOrder: ["h265"], transportCc: true }),
    refusal("unacceptable", /none of the codecs this server takes \(H\.265/),
  );
});

Deno.test("viewer: Chromium's watch offer gets the room's H.264 with RTX, and Opus, on fresh SSRCs", () => {
  const publisher = negotiatePublisher(publishOffer, { codecOrder: ALL, transportCc: true }).media;
  const room = { id: "r1", video: publisher.video, audio: publisher.audio };
  const viewer = negotiateViewer(watchOffer, room, { retransmissions: true, transportCc: true });
  assert.equal(viewer.videoMid, "0");
  assert.equal(viewer.notes.length, 0);
  const [video, audio] = viewer.sections;
  assert.ok(video.accepted && audio.accepted);
  assert.equal(video.direction, "sendonly");
  assert.equal(video.codec.name, "H264");
  assert.equal(video.sent?.ssrc, viewer.video.ssrc);
  assert.equal(video.sent?.rtxSsrc, viewer.video.rtx?.ssrc);
  assert.equal(viewer.video.payloadType, video.codec.payloadType);
  assert.equal(viewer.video.rtx?.payloadType, video.codec.rtxPayloadType);
  assert.equal(audio.codec.name, "opus");
  assert.equal(viewer.audio?.ssrc, audio.sent?.ssrc);
  assert.ok(video.codec.feedback.includes("transport-cc"));
  assert.equal(viewer.transportCcExtensionId, video.extensions?.[0].id, "its feedback drives the estimate");
  const plain = negotiateViewer(watchOffer, room, { retransmissions: false, transportCc: false });
  assert.equal(plain.video.rtx, undefined);
  assert.equal(plain.transportCcExtensionId, undefined);
  assert.ok(!plain.sections[0].accepted || !plain.sections[0].codec.feedback.includes("transport-cc"));
});

Deno.test("viewer: a room without audio answers the audio line inactive; a codec it cannot receive is refused", () => {
  const publisher = negotiatePublisher(publishOffer, { codecOrder: ALL, transportCc: true }).media;
  const silent = negotiateViewer(watchOffer, { id: "r2", video: publisher.video, audio: undefined }, {
    retransmissions: true,
    transportCc: false,
  });
  assert.equal(silent.audio, undefined);
  const audio = silent.sections[1];
  assert.ok(audio.accepted && audio.direction === "inactive", "aiortc 1.4 cannot take a rejected line");
  const h265 = { payloadType: 49, name: "H265", clockRate: 90000, fmtp: "", feedback: [] };
  assert.throws(
    () =>
      negotiateViewer(watchOffer, { id: "r3", video: h265, audio: undefined }, {
        retransmissions: true,
        transportCc: true,
      }),
    refusal("unacceptable", /room "r3" sends H\.265.*the offer can receive/),
  );
});

Deno.test("malformed SDP is refused as invalid with a one-line reason", () => {
  assert.throws(() => parseOfferOrRefuse("v=0\r\nnonsense"), refusal("invalid", /^malformed SDP: /));
});
