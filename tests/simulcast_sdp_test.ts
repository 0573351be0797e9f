/**
 * Simulcast offers through the session layer's real publish path: an OBS 32-style libdatachannel offer
 * (numeric rids, one SSRC per layer announced, rid + mid extensions) is answered with `a=rid:<id> recv`,
 * `a=simulcast:recv` and the extensions that name the layers; an offer the server cannot tell layers apart
 * in is answered as one encoding; a malformed `a=simulcast` is a 400 with one line.
 */
import assert from "node:assert/strict";
import { loadOrCreateCertificate } from "../src/peer/certificate.ts";
import { SessionManager } from "../src/rooms/sessions.ts";
import { SessionError } from "../src/rooms/errors.ts";
import { asHttpError } from "../src/http/session_status.ts";
import type { HttpError } from "../src/http/body.ts";
import { RoomBus, roomBusName } from "../src/rooms/bus.ts";
import type { Peer } from "../src/peer/peer.ts";
import { parseOffer } from "../src/sdp/offer.ts";
import { parseSimulcastOffer } from "../src/sdp/simulcast.ts";

const transport = {
  transmit() {},
  addPeer(_peer: Peer) {},
  renamePeer(_peer: Peer, _old: string) {},
  removePeer() {},
  scheduler: { wakeAt() {}, cancel() {} },
};

/** What libdatachannel writes for OBS 32's simulcast WHIP output (audio mid 0, video mid 1, 3 layers). */
function obsOffer(videoLines: string[] = OBS_SIMULCAST_LINES): string {
  return [
    "v=0",
    "o=rtc 2890844526 0 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=group:LS 0 1",
    "a=msid-semantic:WMS *",
    "a=ice-options:ice2,trickle",
    "a=fingerprint:sha-256 6E:50:A8:18:9C:99:A3:6D:DA:12:25:C5:E4:23:99:E3:29:E4:C9:6E:DC:38:B0:FD:66:09:1D:AA:93:FB:C6:42",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "c=IN IP4 0.0.0.0",
    "a=mid:0",
    "a=sendonly",
    "a=ssrc:3000000001 cname:Xq2kYb7mPz1wRt5u",
    "a=ssrc:3000000001 msid:Ab3dEf6hIj9kLm2n Ab3dEf6hIj9kLm2n-audio",
    "a=msid:Ab3dEf6hIj9kLm2n Ab3dEf6hIj9kLm2n-audio",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1",
    "a=setup:actpass",
    "a=ice-ufrag:u7Hk",
    "a=ice-pwd:Jq8vN2mX5pL9rT3wY6zB1cD4",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP4 0.0.0.0",
    "a=mid:1",
    "a=sendonly",
    ...videoLines,
    "a=rtcp-mux",
    "a=rtpmap:96 H264/90000",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtcp-fb:96 goog-remb",
    "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
    "a=setup:actpass",
    "a=ice-ufrag:u7Hk",
    "a=ice-pwd:Jq8vN2mX5pL9rT3wY6zB1cD4",
    "",
  ].join("\r\n");
}

const OBS_SIMULCAST_LINES = [
  "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
  "a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
  "a=ssrc:3000000002 cname:Xq2kYb7mPz1wRt5u",
  "a=ssrc:3000000002 msid:Ab3dEf6hIj9kLm2n Ab3dEf6hIj9kLm2n-video",
  "a=ssrc:3000000003 cname:Xq2kYb7mPz1wRt5u",
  "a=ssrc:3000000004 cname:Xq2kYb7mPz1wRt5u",
  "a=msid:Ab3dEf6hIj9kLm2n Ab3dEf6hIj9kLm2n-video",
  "a=rid:0 send",
  "a=rid:1 send",
  "a=rid:2 send",
  "a=simulcast:send 0;1;2",
];

async function withSessions(fn: (sessions: SessionManager) => void | Promise<void>) {
  const dir = await Deno.makeTempDir();
  const bus = new RoomBus(roomBusName(crypto.randomUUID()));
  const sessions = new SessionManager({
    certificate: await loadOrCreateCertificate(dir),
    candidates: [{ address: "127.0.0.1", port: 9 }],
    consentTimeoutMs: 10_000,
    transport,
    bus,
    log: () => {},
  });
  try {
    await fn(sessions);
  } finally {
    sessions.closeAll();
    bus.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function videoSection(answer: string): string[] {
  const lines = answer.split("\r\n");
  const start = lines.findIndex((l) => l.startsWith("m=video"));
  const end = lines.findIndex((l, i) => i > start && l.startsWith("m="));
  return lines.slice(start, end < 0 ? undefined : end);
}

Deno.test("an OBS 32-style simulcast offer (numeric rids) is answered with every layer to receive", async () => {
  await withSessions((sessions) => {
    const created = sessions.publish(obsOffer(), "obs");
    const video = videoSection(created.answer);
    assert.ok(video.includes("a=recvonly"));
    assert.deepEqual(video.filter((l) => l.startsWith("a=rid:")), [
      "a=rid:0 recv",
      "a=rid:1 recv",
      "a=rid:2 recv",
    ]);
    assert.deepEqual(video.filter((l) => l.startsWith("a=simulcast:")), ["a=simulcast:recv 0;1;2"]);
    assert.ok(video.includes("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid"));
    assert.ok(video.includes("a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"));
    const audio = created.answer.split("m=video")[0];
    assert.ok(!audio.includes("a=simulcast"), "audio is one stream");
    assert.deepEqual(sessions.rooms.get("obs")!.layers?.rids, ["0", "1", "2"]);
  });
});

Deno.test("a publisher without simulcast, or whose layers cannot be told apart, gets one encoding", async () => {
  await withSessions((sessions) => {
    const plain = sessions.publish(obsOffer(["a=ssrc:3000000002 cname:Xq2kYb7mPz1wRt5u"]), "plain");
    assert.ok(!plain.answer.includes("a=simulcast") && !plain.answer.includes("a=rid"));
    assert.equal(sessions.rooms.get("plain")!.layers, undefined);
    // No rid header extension: nothing in the packets would name the layers.
    const noRid = OBS_SIMULCAST_LINES.filter((l) => !l.includes("rtp-stream-id"));
    const answer = sessions.publish(obsOffer(noRid), "norid").answer;
    assert.ok(!answer.includes("a=simulcast"));
    assert.equal(sessions.rooms.get("norid")!.layers, undefined);
  });
});

Deno.test("a malformed a=simulcast is refused with 400 and one line", async () => {
  await withSessions((sessions) => {
    const cases = [
      ["a=simulcast:send 0;1;9", /names rid "9" without a=rid:9 send/],
      ["a=simulcast:sideways 0;1", /malformed a=simulcast/],
      ["a=simulcast:send 0;b@d", /malformed rid/],
    ] as const;
    for (const [line, reason] of cases) {
      const lines = OBS_SIMULCAST_LINES.map((l) => l.startsWith("a=simulcast") ? line : l);
      assert.throws(() => sessions.publish(obsOffer(lines), "bad"), (e: unknown) => {
        assert.ok(e instanceof SessionError);
        assert.equal(e.refusal, "invalid");
        assert.equal((asHttpError(e) as HttpError).status, 400);
        assert.match(e.message, reason);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
    }
  });
});

Deno.test("simulcast parsing: paused streams and alternatives, at most 4 layers", () => {
  const offer = parseOffer(obsOffer([
    "a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    ...["a", "b", "c", "d", "e", "f"].map((r) => `a=rid:${r} send`),
    "a=simulcast:send ~a;b,c;d;e;f",
  ]));
  const video = offer.media.find((m) => m.kind === "video")!;
  assert.deepEqual(parseSimulcastOffer(video)?.rids, ["a", "b", "d", "e"]);
});
