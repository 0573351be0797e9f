import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { classes, Message, methods } from "werift";
import { bindingRequestBytes, bindingSuccess, controllingRequestBytes } from "./stun_writer.ts";
import { BINDING_REQUEST, BINDING_SUCCESS, integrityValid, readStun } from "./stun.ts";

const txid = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);

/** werift's encoder as an independent reference for the same message. */
function weriftResponse(address: [string, number], pwd: string): Uint8Array {
  const m = new Message(methods.BINDING, classes.RESPONSE, Buffer.from(txid));
  m.setAttribute("XOR-MAPPED-ADDRESS", address);
  m.addMessageIntegrity(Buffer.from(pwd, "utf8"));
  m.addFingerprint();
  return new Uint8Array(m.bytes);
}

for (
  const [hostname, port] of [["192.0.2.7", 54321], ["127.0.0.1", 9], ["2001:db8::1:2", 40000], [
    "::1",
    5000,
  ]] as const
) {
  Deno.test(`a check's success response to ${hostname}:${port} is byte for byte what werift writes`, () => {
    const ours = bindingSuccess(txid, { hostname, port }, "server-password-0123456789");
    assert.deepEqual([...ours], [...weriftResponse([hostname, port], "server-password-0123456789")]);
    const read = readStun(ours)!; // readStun also checks FINGERPRINT
    assert.equal(read.type, BINDING_SUCCESS);
    assert.ok(integrityValid(ours, read, new TextEncoder().encode("server-password-0123456789")));
  });
}

Deno.test("the server's binding request carries USERNAME, PRIORITY, ICE-CONTROLLED and verifies", () => {
  const ours = bindingRequestBytes(
    txid,
    "clientufrag:srv1",
    2130706431,
    0x0123456789abcdefn,
    "client-pwd-xyz",
  );
  const m = new Message(methods.BINDING, classes.REQUEST, Buffer.from(txid));
  m.setAttribute("USERNAME", "clientufrag:srv1");
  m.setAttribute("PRIORITY", 2130706431);
  m.setAttribute("ICE-CONTROLLED", 0x0123456789abcdefn);
  m.addMessageIntegrity(Buffer.from("client-pwd-xyz", "utf8"));
  m.addFingerprint();
  assert.deepEqual([...ours], [...new Uint8Array(m.bytes)]);
  const read = readStun(ours)!;
  assert.equal(read.type, BINDING_REQUEST);
  assert.equal(read.username, "clientufrag:srv1");
  assert.equal(read.priority, 2130706431);
  assert.ok(read.iceControlled);
  assert.ok(integrityValid(ours, read, new TextEncoder().encode("client-pwd-xyz")));
  assert.ok(!integrityValid(ours, read, new TextEncoder().encode("another-pwd")));
});

Deno.test("a host name that is not an address is refused, not written", () => {
  assert.throws(() => bindingSuccess(txid, { hostname: "1:2:3", port: 1 }, "pwd"), RangeError);
  assert.throws(() => bindingSuccess(txid, { hostname: "fe80::1::2", port: 1 }, "pwd"), RangeError);
});

Deno.test("a client's nominating check is byte for byte what werift writes, and reads back", () => {
  for (const nominate of [true, false]) {
    const ours = controllingRequestBytes(
      txid,
      "srv1:client",
      1853824767,
      0x0123456789abcdefn,
      nominate,
      "srv-pwd",
    );
    const m = new Message(methods.BINDING, classes.REQUEST, Buffer.from(txid));
    m.setAttribute("USERNAME", "srv1:client");
    m.setAttribute("PRIORITY", 1853824767);
    m.setAttribute("ICE-CONTROLLING", 0x0123456789abcdefn);
    if (nominate) m.setAttribute("USE-CANDIDATE", null);
    m.addMessageIntegrity(Buffer.from("srv-pwd", "utf8"));
    m.addFingerprint();
    assert.deepEqual([...ours], [...new Uint8Array(m.bytes)], `nominate ${nominate}`);
    const read = readStun(ours)!;
    assert.equal(read.username, "srv1:client");
    assert.equal(read.useCandidate, nominate);
    assert.ok(read.iceControlling);
  }
});
