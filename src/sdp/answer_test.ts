import assert from "node:assert/strict";
import { buildAnswer } from "./answer.ts";
import { chooseH264, chooseOpus, chooseRtx, h264Profile } from "./codecs.ts";
import { parseOffer } from "./offer.ts";

const fixtures = new URL("../../tests/fixtures/", import.meta.url);
const publishOffer = parseOffer(Deno.readTextFileSync(new URL("chromium_publish_offer.sdp", fixtures)));
const watchOffer = parseOffer(Deno.readTextFileSync(new URL("chromium_watch_offer.sdp", fixtures)));
const fingerprint = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, "0").toUpperCase()).join(
  ":",
);

Deno.test("H.264 choice: the publisher's first packetization-mode=1 entry, a viewer's matching profile", () => {
  const published = chooseH264(publishOffer.media[0])!;
  assert.equal(published.payloadType, 102);
  assert.match(published.fmtp, /packetization-mode=1/);
  assert.equal(h264Profile(published), "4200");
  assert.deepEqual(published.feedback, ["nack", "nack pli", "ccm fir"]);
  const forViewer = chooseH264(watchOffer.media[0], "42e0")!;
  assert.match(forViewer.fmtp, /profile-level-id=42e01f/);
  assert.match(forViewer.fmtp, /packetization-mode=1/);
  const fallback = chooseH264(watchOffer.media[0], "6400")!;
  assert.match(fallback.fmtp, /packetization-mode=1/, "falls back to a packetization-mode=1 H.264");
  assert.equal(chooseOpus(publishOffer.media[1])?.payloadType, 111);
  assert.equal(chooseOpus(publishOffer.media[0]), undefined);
});

Deno.test("answer: ice-lite, passive DTLS, fingerprint, rtcp-mux, BUNDLE, candidates, rejected lines", () => {
  const video = chooseH264(publishOffer.media[0])!;
  const sdp = buildAnswer({
    sessionId: "1",
    iceUfrag: "abcd1234",
    icePwd: "p".repeat(32),
    fingerprint,
    candidates: [{ address: "192.0.2.1", port: 8443 }, { address: "127.0.0.1", port: 8443 }],
    sections: [
      { offer: publishOffer.media[0], accepted: true, direction: "recvonly", codec: video },
      { offer: publishOffer.media[1], accepted: false },
    ],
  });
  const lines = sdp.split("\r\n");
  assert.equal(lines[0], "v=0");
  assert.ok(sdp.endsWith("\r\n"));
  for (
    const expected of [
      "a=ice-lite",
      "a=group:BUNDLE 0",
      "a=setup:passive",
      "a=rtcp-mux",
      "a=recvonly",
      `a=fingerprint:sha-256 ${fingerprint}`,
      "a=ice-ufrag:abcd1234",
      "m=video 9 UDP/TLS/RTP/SAVPF 102",
      "a=rtpmap:102 H264/90000",
      "a=rtcp-fb:102 nack pli",
      "a=candidate:1 1 udp 2130706431 192.0.2.1 8443 typ host",
      "a=candidate:2 1 udp 2130706430 127.0.0.1 8443 typ host",
      "a=end-of-candidates",
      "m=audio 0 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    ]
  ) {
    assert.ok(lines.includes(expected), `answer has "${expected}"`);
  }
  // The answer is itself parseable SDP (a client-side sanity check of our own output).
  const reparsed = parseOffer(sdp.replace("a=setup:passive", "a=setup:active"));
  assert.equal(reparsed.media.length, 2);
  assert.equal(reparsed.media[1].port, 0);
  // aiortc 1.4 refuses an answer whose rejected m-line lacks rtcp-mux ("RTCP mux is not enabled").
  assert.equal(reparsed.media[1].rtcpMux, true, "the rejected audio line carries a=rtcp-mux");
});

Deno.test("viewer answers announce the server's SSRC and msid", () => {
  const video = chooseH264(watchOffer.media[0], "4200")!;
  const sdp = buildAnswer({
    sessionId: "1",
    iceUfrag: "abcd1234",
    icePwd: "p".repeat(32),
    fingerprint,
    candidates: [{ address: "127.0.0.1", port: 9 }],
    sections: [{
      offer: watchOffer.media[0],
      accepted: true,
      direction: "sendonly",
      codec: video,
      sent: { ssrc: 1234, cname: "c", streamId: "room", trackId: "video" },
    }, { offer: watchOffer.media[1], accepted: false }],
  });
  assert.ok(sdp.includes("a=sendonly\r\n"));
  assert.ok(sdp.includes("a=ssrc:1234 cname:c\r\n"));
  assert.ok(sdp.includes("a=msid:room video\r\n"));
});

Deno.test("a viewer offering RTX for the chosen H.264 gets its RTX payload type and an FID SSRC pair", () => {
  const video = chooseH264(watchOffer.media[0], "42e0")!;
  const rtx = chooseRtx(watchOffer.media[0], video.payloadType);
  assert.ok(rtx !== undefined, "Chromium offers rtx for every H.264 entry");
  const apt = watchOffer.media[0].codecs.find((c) => c.payloadType === rtx)!;
  assert.equal(apt.name, "rtx");
  assert.equal(apt.parameters.get("apt"), String(video.payloadType));
  assert.equal(chooseRtx(watchOffer.media[0], 1), undefined, "no RTX for a payload type nobody offered");
  video.rtxPayloadType = rtx;
  const sdp = buildAnswer({
    sessionId: "1",
    iceUfrag: "abcd1234",
    icePwd: "p".repeat(32),
    fingerprint,
    candidates: [{ address: "127.0.0.1", port: 9 }],
    sections: [{
      offer: watchOffer.media[0],
      accepted: true,
      direction: "sendonly",
      codec: video,
      sent: { ssrc: 1234, rtxSsrc: 5678, cname: "c", streamId: "room", trackId: "video" },
    }],
  });
  assert.ok(sdp.includes(`m=video 9 UDP/TLS/RTP/SAVPF ${video.payloadType} ${rtx}\r\n`));
  assert.ok(sdp.includes(`a=rtpmap:${rtx} rtx/90000\r\n`));
  assert.ok(sdp.includes(`a=fmtp:${rtx} apt=${video.payloadType}\r\n`));
  assert.ok(sdp.includes("a=ssrc-group:FID 1234 5678\r\n"));
  assert.ok(sdp.includes("a=ssrc:5678 cname:c\r\n"));
  const reparsed = parseOffer(sdp.replace("a=setup:passive", "a=setup:active")).media[0];
  assert.deepEqual(reparsed.codecs.map((c) => c.name), ["H264", "rtx"]);
});
