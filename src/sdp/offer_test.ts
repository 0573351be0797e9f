import assert from "node:assert/strict";
import { parseOffer, SdpError } from "./offer.ts";

const fixtures = new URL("../../tests/fixtures/", import.meta.url);
const publishOffer = Deno.readTextFileSync(new URL("chromium_publish_offer.sdp", fixtures));

Deno.test("parses a Chromium WHIP offer", () => {
  const offer = parseOffer(publishOffer);
  assert.match(offer.iceUfrag, /^[A-Za-z0-9+/]{4,}$/);
  assert.ok(offer.icePwd.length >= 22);
  assert.equal(offer.fingerprint.algorithm, "sha-256");
  assert.match(offer.fingerprint.value, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(offer.setup, "actpass");
  assert.deepEqual(offer.media.map((m) => [m.kind, m.mid, m.direction]), [
    ["video", "0", "sendonly"],
    ["audio", "1", "sendonly"],
  ]);
  const h264 = offer.media[0].codecs.find((c) => c.name === "H264")!;
  assert.equal(h264.clockRate, 90000);
  assert.equal(h264.parameters.get("packetization-mode"), "1");
  assert.ok(h264.feedback.includes("nack pli"));
  assert.equal(offer.media[0].codecs[0].name, "H264", "format order (preference) is kept");
  assert.ok(offer.media[0].extensions.some((e) => e.uri === "urn:ietf:params:rtp-hdrext:sdes:mid"));
  assert.equal(offer.media[1].codecs[0].name, "opus");
  assert.equal(offer.media[1].codecs[0].channels, 2);
});

Deno.test("rejects malformed offers with a one-line reason", () => {
  const cases: [string, RegExp][] = [
    ["", /v=0/],
    ["hello", /v=0/],
    ["v=0\r\nbad line\r\n", /malformed SDP line/],
    ["v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", /no m-lines/],
    [publishOffer.replace(/a=ice-ufrag:.*\r\n/g, ""), /ice-ufrag/],
    [publishOffer.replace(/a=ice-pwd:.*\r\n/g, ""), /ice-pwd/],
    [publishOffer.replace(/a=fingerprint:.*\r\n/g, ""), /fingerprint/],
    [publishOffer.replace(/a=fingerprint:sha-256/g, "a=fingerprint:md5"), /unsupported fingerprint/],
    [publishOffer.replace(/a=setup:actpass/g, "a=setup:passive"), /setup:passive/],
    [publishOffer.replace("m=video 9", "m=video x"), /malformed m-line/],
    [publishOffer.replace("a=rtpmap:102 H264/90000", "a=rtpmap:102 H264"), /malformed a=rtpmap/],
    ["v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".repeat(17), /more than 16 m-lines/],
  ];
  for (const [sdp, reason] of cases) {
    assert.throws(() => parseOffer(sdp), (e: unknown) => {
      assert.ok(e instanceof SdpError, `SdpError for ${reason}`);
      assert.match(e.message, reason);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("a feedback type written with a trailing space (as Pion does) is read without it", () => {
  const offer = parseOffer(
    publishOffer.replace(/a=rtcp-fb:(\d+) transport-cc\r?\n/g, "a=rtcp-fb:$1 transport-cc \r\n"),
  );
  const h264 = offer.media[0].codecs.find((c) => c.name === "H264")!;
  assert.ok(h264.feedback.includes("transport-cc"), JSON.stringify(h264.feedback));
});
