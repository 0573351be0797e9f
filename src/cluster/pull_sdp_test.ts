import assert from "node:assert/strict";
import { parseOffer } from "../sdp/offer.ts";
import {
  chooseH264,
  chooseOpus,
  choosePublisherVideo,
  chooseViewerVideo,
  h264Profile,
  videoProfile,
} from "../sdp/codecs.ts";
import { type AnswerSection, buildAnswer } from "../sdp/answer.ts";
import { buildPullOffer, parsePullAnswer } from "./pull_sdp.ts";

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, "0").toUpperCase()).join(
  ":",
);

/** Answers a pull offer the way the server's WHEP side does for a room of `profile`. */
function serverAnswer(offerSdp: string, profile: string, withAudio: boolean): string {
  const offer = parseOffer(offerSdp);
  const sections: AnswerSection[] = offer.media.map((m) => {
    const codec = m.kind === "video" ? chooseH264(m, profile) : withAudio ? chooseOpus(m) : undefined;
    return codec
      ? {
        offer: m,
        accepted: true,
        direction: "sendonly",
        codec,
        sent: { ssrc: 1234, cname: "c", streamId: "r", trackId: m.kind },
      }
      : { offer: m, accepted: false };
  });
  return buildAnswer({
    sessionId: "1",
    iceUfrag: "srvu",
    icePwd: "server-password-0123456789abcdef",
    fingerprint: FINGERPRINT,
    candidates: [{ address: "10.0.0.5", port: 8443 }, { address: "127.0.0.1", port: 8443 }],
    sections,
  });
}

Deno.test("the pull offer parses as a receive-only browser-like offer and keeps the room's profile", () => {
  const sdp = buildPullOffer({
    ufrag: "abcd",
    pwd: "p".repeat(24),
    fingerprint: FINGERPRINT,
    profile: "4d00",
  });
  const offer = parseOffer(sdp);
  assert.equal(offer.iceUfrag, "abcd");
  assert.deepEqual(offer.media.map((m) => [m.kind, m.direction]), [["video", "recvonly"], [
    "audio",
    "recvonly",
  ]]);
  const video = chooseH264(offer.media[0], "4d00")!;
  assert.equal(h264Profile(video), "4d00", "the origin can answer with the room's own profile");
  assert.ok(video.feedback.includes("nack pli"));
});

Deno.test("the server's answer gives the pull its credentials, candidates and codecs", () => {
  const offer = buildPullOffer({
    ufrag: "abcd",
    pwd: "p".repeat(24),
    fingerprint: FINGERPRINT,
    profile: "42e0",
  });
  const answer = parsePullAnswer(serverAnswer(offer, "42e0", true));
  assert.equal(answer.ufrag, "srvu");
  assert.equal(answer.setup, "passive");
  assert.deepEqual(answer.fingerprint, { algorithm: "sha-256", value: FINGERPRINT });
  assert.deepEqual(answer.candidates, [{ address: "10.0.0.5", port: 8443 }, {
    address: "127.0.0.1",
    port: 8443,
  }]);
  assert.equal(answer.video.name, "H264");
  assert.equal(h264Profile(answer.video), "42e0");
  assert.equal(answer.audio?.name, "opus");

  const videoOnly = parsePullAnswer(serverAnswer(offer, "6400", false));
  assert.equal(h264Profile(videoOnly.video), "6400");
  assert.equal(videoOnly.audio, undefined, "a rejected audio line means a room without audio");
});

Deno.test("answers the pull cannot use are refused with a reason", () => {
  assert.throws(() => parsePullAnswer("v=0\r\n"), /ICE credentials/);
  const offer = buildPullOffer({ ufrag: "abcd", pwd: "p".repeat(24), fingerprint: FINGERPRINT });
  const noCandidates = serverAnswer(offer, "42e0", true).replace(/a=candidate:[^\r\n]*\r\n/g, "");
  assert.throws(() => parsePullAnswer(noCandidates), /candidate/);
});

Deno.test("a pull of a VP8, VP9, AV1 or H.265 room offers that codec and profile, and takes the answer", () => {
  for (
    const [codec, profile, fmtp] of [
      ["VP8", "", ""],
      ["VP9", "2", "profile-id=2"],
      ["AV1", "0", "profile=0"],
      ["H265", "1", "profile-id=1"],
    ]
  ) {
    const sdp = buildPullOffer({
      ufrag: "abcd",
      pwd: "p".repeat(24),
      fingerprint: FINGERPRINT,
      codec,
      profile,
    });
    const offer = parseOffer(sdp);
    // The origin's room, as its publisher's offer made it.
    const publisherLine = parseOffer(sdp.replace("a=recvonly", "a=sendonly")).media[0];
    const room = choosePublisherVideo(publisherLine)!;
    assert.equal(room.name, codec);
    assert.equal(room.fmtp, fmtp);
    const choice = chooseViewerVideo(offer.media[0], room)!;
    assert.equal(choice.codec.name, codec, `the origin answers the ${codec} pull`);
    const answer = buildAnswer({
      sessionId: "1",
      iceUfrag: "srvu",
      icePwd: "server-password-0123456789abcdef",
      fingerprint: FINGERPRINT,
      candidates: [{ address: "127.0.0.1", port: 8443 }],
      sections: [
        { offer: offer.media[0], accepted: true, direction: "sendonly", codec: choice.codec },
        { offer: offer.media[1], accepted: false },
      ],
    });
    const pulled = parsePullAnswer(answer);
    assert.equal(pulled.video.name, codec);
    assert.equal(videoProfile(pulled.video) ?? "", profile);
  }
});
