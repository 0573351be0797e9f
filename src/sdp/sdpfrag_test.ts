import assert from "node:assert/strict";
import { buildIceFragment, parseIceFragment } from "./sdpfrag.ts";
import { SdpError } from "./offer.ts";

const PWD = "0123456789abcdefABCDEF+/";

Deno.test("a trickle fragment as simple-whip-client sends it", () => {
  const f = parseIceFragment(
    `a=ice-ufrag:QNAI3sq1UKsJtroZ\r\na=ice-pwd:${PWD}\r\nm=video 9 RTP/AVP 0\r\na=mid:video0\r\n` +
      "a=candidate:1 1 UDP 2015363327 192.0.2.2 54843 typ host\r\n" +
      "a=candidate:2 1 TCP 1015021823 192.0.2.2 9 typ host tcptype active\r\n",
  );
  assert.deepEqual(f, { iceUfrag: "QNAI3sq1UKsJtroZ", icePwd: PWD, candidates: 2, endOfCandidates: false });
});

Deno.test("media-level credentials, LF line ends and end-of-candidates", () => {
  const f = parseIceFragment(
    `m=audio 9 UDP/TLS/RTP/SAVPF 0\na=mid:0\na=ice-ufrag:abcd\na=end-of-candidates\n`,
  );
  assert.deepEqual(f, { iceUfrag: "abcd", candidates: 0, endOfCandidates: true });
});

Deno.test("a restart fragment with credentials only (whip.js)", () => {
  const f = parseIceFragment(`a=ice-ufrag:wxyz\r\na=ice-pwd:${PWD}\r\n`);
  assert.equal(f.iceUfrag, "wxyz");
  assert.equal(f.candidates, 0);
});

Deno.test("bad fragments are refused with a one-line reason", () => {
  for (
    const [text, reason] of [
      ["hello", /malformed fragment line/],
      ["a=ice-ufrag:ab", /malformed a=ice-ufrag/],
      ["a=ice-ufrag:abcd\na=ice-pwd:short", /malformed a=ice-pwd/],
      ["a=ice-ufrag:abcd\na=ice-ufrag:efgh", /two different a=ice-ufrag/],
      [`a=ice-pwd:${PWD}`, /without a=ice-ufrag/],
      ["a=candidate:x\n".repeat(1001), /more than 1000 lines/],
    ] as const
  ) {
    assert.throws(() => parseIceFragment(text), (e: unknown) => {
      assert.ok(e instanceof SdpError);
      assert.match(e.message, reason);
      return true;
    });
  }
});

Deno.test("the restart answer carries credentials and candidates on the first bundled m-line", () => {
  const text = buildIceFragment({
    iceUfrag: "NEWufrag",
    icePwd: PWD,
    candidates: [{ address: "192.0.2.1", port: 8443 }, { address: "127.0.0.1", port: 8443 }],
    bundle: { kind: "video", mid: "0", payloadType: 102, mids: ["0", "1"] },
  });
  assert.equal(
    text,
    [
      "a=ice-lite",
      "a=group:BUNDLE 0 1",
      "m=video 9 UDP/TLS/RTP/SAVPF 102",
      "a=mid:0",
      "a=ice-ufrag:NEWufrag",
      `a=ice-pwd:${PWD}`,
      "a=candidate:1 1 udp 2130706431 192.0.2.1 8443 typ host",
      "a=candidate:2 1 udp 2130706430 127.0.0.1 8443 typ host",
      "a=end-of-candidates",
      "",
    ].join("\r\n"),
  );
  // What a client reads back from it.
  assert.deepEqual(parseIceFragment(text), {
    iceUfrag: "NEWufrag",
    icePwd: PWD,
    candidates: 2,
    endOfCandidates: true,
  });
});
