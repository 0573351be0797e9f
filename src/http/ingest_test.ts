import assert from "node:assert/strict";
import { iceServerLinks } from "./ingest.ts";

const servers = [
  { url: "stun:stun.example.org:3478" },
  { url: "turn:turn.example.org?transport=tcp", username: 'a"b', credential: "c\\d" },
];

Deno.test("Link values for ICE servers (RFC 9725 §4.6), credentials quoted", () => {
  assert.deepEqual(iceServerLinks(servers, true), [
    '<stun:stun.example.org:3478>; rel="ice-server"',
    '<turn:turn.example.org?transport=tcp>; rel="ice-server"; username="a\\"b"; credential="c\\\\d"; ' +
    'credential-type="password"',
  ]);
});

Deno.test("without credentials only the servers that need none are listed", () => {
  assert.deepEqual(iceServerLinks(servers, false), ['<stun:stun.example.org:3478>; rel="ice-server"']);
  assert.deepEqual(iceServerLinks([], true), []);
});
