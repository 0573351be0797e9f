import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import { signViewerToken, verifyViewerToken } from "./viewer_token.ts";

const SECRET = "a-secret-of-some-length";
const NOW = 1_800_000_000;

Deno.test("a viewer token opens its room until it expires", () => {
  const token = signViewerToken(SECRET, "stage", NOW + 60);
  assert.deepEqual(verifyViewerToken(token, SECRET, "stage", NOW), {
    ok: true,
    room: "stage",
    exp: NOW + 60,
  });
  assert.deepEqual(verifyViewerToken(token, SECRET, "stage", NOW + 60), {
    ok: false,
    status: 401,
    reason: "viewer token expired",
  });
  assert.deepEqual(verifyViewerToken(token, SECRET, "lobby", NOW), {
    ok: false,
    status: 403,
    reason: "viewer token is for another room",
  });
});

Deno.test("forged, re-signed with alg none, and malformed tokens are 401", () => {
  const token = signViewerToken(SECRET, "stage", NOW + 60);
  const check = (t: string) => verifyViewerToken(t, SECRET, "stage", NOW);
  assert.equal(verifyViewerToken(token, "another-secret-entirely", "stage", NOW).ok, false);
  const [head, , signature] = token.split(".");
  const widened = Buffer.from(JSON.stringify({ room: "stage", exp: NOW + 99999 })).toString("base64url");
  assert.match((check(`${head}.${widened}.${signature}`) as { reason: string }).reason, /signature/);
  const none = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
  assert.equal(check(`${none}.${widened}.`).ok, false);
  // Correctly signed but claiming another algorithm: still refused.
  const hs512 = Buffer.from(JSON.stringify({ alg: "HS512" })).toString("base64url");
  const resigned = createHmac("sha256", SECRET).update(`${hs512}.${widened}`).digest("base64url");
  assert.match((check(`${hs512}.${widened}.${resigned}`) as { reason: string }).reason, /HS256/);
  for (const bad of ["", "a.b", "a.b.c.d", "x".repeat(5000), "..."]) {
    const result = check(bad);
    assert.ok(!result.ok && result.status === 401, bad);
  }
});

Deno.test("a token without exp is refused", () => {
  const head = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  const body = Buffer.from(JSON.stringify({ room: "stage" })).toString("base64url");
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
  assert.match(
    (verifyViewerToken(`${head}.${body}.${sig}`, SECRET, "stage", NOW) as { reason: string }).reason,
    /exp/,
  );
});
