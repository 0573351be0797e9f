import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { classes, Message, methods } from "werift";
import { BINDING_REQUEST, crc32, integrityValid, readStun } from "./stun.ts";
import { answerCheck } from "./ice_lite.ts";

const credentials = { localUfrag: "srvU", localPwd: "server-password-0123456789", remoteUfrag: "cliU" };
const from = { hostname: "192.0.2.7", port: 50000 };

/** A consent check as a client sends it: no USE-CANDIDATE. */
function check(): Uint8Array {
  const request = new Message(methods.BINDING, classes.REQUEST);
  request.setAttribute("USERNAME", "srvU:cliU");
  request.setAttribute("PRIORITY", 1853817087);
  request.setAttribute("ICE-CONTROLLING", 5n);
  request.addMessageIntegrity(Buffer.from(credentials.localPwd));
  request.addFingerprint();
  return new Uint8Array(request.bytes);
}

/**
 * What an on-path attacker can make of a sniffed check: drop its FINGERPRINT, append attributes after
 * MESSAGE-INTEGRITY, fix the header length and append a new (keyless) FINGERPRINT.
 */
function appendAfterIntegrity(sniffed: Uint8Array, attributes: number[]): Uint8Array {
  const withoutFingerprint = sniffed.subarray(0, sniffed.length - 8);
  const out = new Uint8Array(withoutFingerprint.length + attributes.length + 8);
  out.set(withoutFingerprint);
  out.set(attributes, withoutFingerprint.length);
  const view = new DataView(out.buffer);
  view.setUint16(2, out.length - 20);
  const at = out.length - 8;
  view.setUint16(at, 0x8028);
  view.setUint16(at + 2, 4);
  view.setUint32(at + 4, (crc32(out.subarray(0, at)) ^ 0x5354554e) >>> 0);
  return out;
}

const USE_CANDIDATE = [0x00, 0x25, 0x00, 0x00];

Deno.test("USE-CANDIDATE appended after MESSAGE-INTEGRITY does not nominate (RFC 5389 §15.4)", () => {
  const sniffed = check();
  assert.equal(answerCheck(sniffed, credentials, from)?.nominated, false);
  const forged = appendAfterIntegrity(sniffed, USE_CANDIDATE);
  const message = readStun(forged);
  assert.ok(message, "well-formed: the FINGERPRINT was recomputed");
  assert.equal(message.useCandidate, false);
  assert.ok(integrityValid(forged, message, Buffer.from(credentials.localPwd)), "the integrity still holds");
  const answer = answerCheck(forged, credentials, from);
  assert.ok(answer, "still a valid check");
  assert.equal(answer.nominated, false, "but not a nomination");

  // The same attribute before MESSAGE-INTEGRITY does nominate.
  const real = new Message(methods.BINDING, classes.REQUEST);
  real.setAttribute("USERNAME", "srvU:cliU");
  real.setAttribute("USE-CANDIDATE", null);
  real.addMessageIntegrity(Buffer.from(credentials.localPwd));
  real.addFingerprint();
  assert.equal(answerCheck(new Uint8Array(real.bytes), credentials, from)?.nominated, true);
});

Deno.test("a USERNAME after MESSAGE-INTEGRITY is ignored too", () => {
  // Integrity over a request with no USERNAME, then "srvU:cliU" appended: the check names no session.
  const request = new Message(methods.BINDING, classes.REQUEST);
  request.addMessageIntegrity(Buffer.from(credentials.localPwd));
  request.addFingerprint();
  const name = new TextEncoder().encode("srvU:cliU");
  const attribute = [0x00, 0x06, 0x00, name.length, ...name, 0, 0, 0].slice(0, 4 + ((name.length + 3) & ~3));
  const forged = appendAfterIntegrity(new Uint8Array(request.bytes), attribute);
  assert.equal(readStun(forged)?.username, undefined);
  assert.equal(answerCheck(forged, credentials, from), undefined);
});

Deno.test("malformed STUN is refused: bad FINGERPRINT, FINGERPRINT not last, overrunning attribute", () => {
  const good = check();
  assert.equal(readStun(good)?.type, BINDING_REQUEST);
  const badFingerprint = good.slice();
  badFingerprint[badFingerprint.length - 1] ^= 1;
  assert.equal(readStun(badFingerprint), undefined);

  const notLast = new Uint8Array(good.length + 4);
  notLast.set(good);
  notLast.set(USE_CANDIDATE, good.length);
  new DataView(notLast.buffer).setUint16(2, notLast.length - 20);
  assert.equal(readStun(notLast), undefined);

  const overrun = good.slice();
  new DataView(overrun.buffer).setUint16(22, 400); // USERNAME claims 400 bytes
  assert.equal(readStun(overrun), undefined);
  assert.equal(readStun(good.subarray(0, good.length - 4)), undefined, "length field disagrees");
  assert.equal(readStun(new Uint8Array(20)), undefined, "no magic cookie");
});
