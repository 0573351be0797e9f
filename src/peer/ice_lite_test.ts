import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { classes, Message, methods, parseMessage } from "werift";
import { answerCheck, stunLocalUfrag } from "./ice_lite.ts";

const credentials = { localUfrag: "srvU", localPwd: "server-password-0123456789", remoteUfrag: "cliU" };
const from = { hostname: "192.0.2.7", port: 50000 };

function bindingRequest(
  options: { username?: string; key?: string; useCandidate?: boolean } = {},
): Uint8Array {
  const request = new Message(methods.BINDING, classes.REQUEST);
  request.setAttribute("USERNAME", options.username ?? "srvU:cliU");
  request.setAttribute("PRIORITY", 1853817087);
  request.setAttribute("ICE-CONTROLLING", 5n);
  if (options.useCandidate) request.setAttribute("USE-CANDIDATE", null);
  request.addMessageIntegrity(Buffer.from(options.key ?? credentials.localPwd));
  request.addFingerprint();
  return new Uint8Array(request.bytes);
}

Deno.test("the local ufrag is read from USERNAME", () => {
  assert.equal(stunLocalUfrag(bindingRequest()), "srvU");
  assert.equal(stunLocalUfrag(new Uint8Array(40)), undefined);
});

Deno.test("a valid check gets a signed success response with XOR-MAPPED-ADDRESS", () => {
  const request = bindingRequest({ useCandidate: true });
  const answer = answerCheck(request, credentials, from);
  assert.ok(answer);
  assert.equal(answer.nominated, true);
  const response = parseMessage(Buffer.from(answer.response), Buffer.from(credentials.localPwd));
  assert.ok(response, "response verifies with the local password and has a valid FINGERPRINT");
  assert.equal(response.messageClass, classes.RESPONSE);
  assert.deepEqual(response.getAttributeValue("XOR-MAPPED-ADDRESS"), ["192.0.2.7", 50000]);
  assert.deepEqual(response.transactionId, parseMessage(Buffer.from(request))!.transactionId);
  assert.equal(answerCheck(bindingRequest(), credentials, from)?.nominated, false);
});

Deno.test("checks with a wrong password, wrong username or no integrity get no response", () => {
  assert.equal(
    answerCheck(bindingRequest({ key: "not-the-password-xxxxxxx" }), credentials, from),
    undefined,
  );
  assert.equal(answerCheck(bindingRequest({ username: "srvU:other" }), credentials, from), undefined);
  const unsigned = new Message(methods.BINDING, classes.REQUEST);
  unsigned.setAttribute("USERNAME", "srvU:cliU");
  assert.equal(answerCheck(new Uint8Array(unsigned.bytes), credentials, from), undefined);
  const tampered = bindingRequest();
  tampered[tampered.length - 30] ^= 1;
  assert.equal(answerCheck(tampered, credentials, from), undefined);
});
