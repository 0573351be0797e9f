import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

const iceServers = (value: string) =>
  loadConfig((name) => (name === "ICE_SERVERS" ? value : undefined)).iceServers;

Deno.test("ICE_SERVERS: unset means none", () => {
  assert.deepEqual(iceServers(""), []);
});

Deno.test("ICE_SERVERS: STUN and TURN URIs with credentials in the userinfo", () => {
  assert.deepEqual(
    iceServers(
      "stun:stun.example.org:3478, turn:user:pass@turn.example.org:3478?transport=udp," +
        "turns://1700000000%3Aalice:p%40ss%2Cword@[2001:db8::1]:5349?transport=TCP,stuns:stun.example.org",
    ),
    [
      { url: "stun:stun.example.org:3478" },
      { url: "turn:turn.example.org:3478?transport=udp", username: "user", credential: "pass" },
      {
        url: "turns:[2001:db8::1]:5349?transport=tcp",
        username: "1700000000:alice",
        credential: "p@ss,word",
      },
      { url: "stuns:stun.example.org" },
    ],
  );
});

Deno.test("ICE_SERVERS: bad entries name the variable and hide the password", () => {
  for (
    const [value, reason] of [
      ["http://example.org", /must start with stun:/],
      ["stun:user:pass@stun.example.org", /take no credentials/],
      ["turn:turn.example.org:3478", /need user:password@/],
      ["turn:user@turn.example.org", /user:password@/],
      ["stun:stun.example.org:3478?transport=udp", /only query/],
      ["turn:u:secret@turn.example.org:99999", /host or host:port/],
      ["turn:u:%zz@turn.example.org", /percent-encoding/],
      ["stun:", /host or host:port/],
    ] as const
  ) {
    assert.throws(() => iceServers(value), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.ok(e.message.startsWith("ICE_SERVERS"), e.message);
      assert.match(e.message, reason);
      assert.ok(!e.message.includes("secret"), e.message);
      return true;
    });
  }
});
