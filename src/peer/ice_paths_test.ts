import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { classes, Message, methods, parseMessage } from "werift";
import { IcePaths, PROBE_TRANSMISSIONS } from "./ice_paths.ts";

const credentials = { localUfrag: "srvU", remoteUfrag: "cliU", remotePwd: "client-password-0123456789" };
const client = { hostname: "192.0.2.10", port: 40000 };
const forged = { hostname: "192.0.2.99", port: 9 };
const CONSENT_TIMEOUT = 6000;

type Sent = { data: Uint8Array; to: { hostname: string; port: number } };

function recorder(): { sent: Sent[]; transmit: (data: Uint8Array, to: Sent["to"]) => void } {
  const sent: Sent[] = [];
  return { sent, transmit: (data, to) => sent.push({ data: data.slice(), to }) };
}

/** Parses what the server sent as a binding request signed with the client's password, or fails. */
function asRequest(data: Uint8Array): Message {
  const message = parseMessage(Buffer.from(data), Buffer.from(credentials.remotePwd));
  assert.ok(message, "signed with the client's ice-pwd, valid FINGERPRINT");
  assert.equal(message.messageMethod, methods.BINDING);
  assert.equal(message.messageClass, classes.REQUEST);
  assert.equal(message.getAttributeValue("USERNAME"), "cliU:srvU");
  assert.equal(typeof message.getAttributeValue("PRIORITY"), "number");
  assert.notEqual(message.getAttributeValue("ICE-CONTROLLED"), undefined);
  assert.equal(message.getAttributeValue("USE-CANDIDATE"), undefined);
  return message;
}

/** The client's answer to a request: a success response signed with its own password. */
function answer(request: Message, key = credentials.remotePwd): Uint8Array {
  const response = new Message(methods.BINDING, classes.RESPONSE, request.transactionId);
  response.setAttribute("XOR-MAPPED-ADDRESS", ["192.0.2.1", 8443]);
  response.addMessageIntegrity(Buffer.from(key));
  response.addFingerprint();
  return new Uint8Array(response.bytes);
}

/** Paths where the handshake ran with `client` at t=0. */
function connected() {
  const paths = new IcePaths(CONSENT_TIMEOUT, () => 0.5);
  const out = recorder();
  assert.equal(
    paths.check(client, true, 0, credentials, out.transmit),
    true,
    "answered before the handshake",
  );
  paths.handshakeDone(client, 0, credentials, out.transmit);
  assert.deepEqual(paths.selected, client);
  assert.equal(out.sent.length, 0);
  return { paths, out };
}

Deno.test("a forged-source nominated check gets no answer and no media, only a bounded probe", () => {
  const { paths, out } = connected();
  assert.equal(paths.check(forged, true, 100, credentials, out.transmit), false, "not answered");
  assert.deepEqual(paths.selected, client, "media stays with the client");
  assert.equal(out.sent.length, 1);
  assert.deepEqual(out.sent[0].to, forged);
  const probe = asRequest(out.sent[0].data);
  // More checks from there do not multiply the probes.
  for (let i = 0; i < 20; i++) paths.check(forged, true, 100 + i, credentials, out.transmit);
  assert.equal(out.sent.length, 1);
  // Retransmissions with the same transaction, then it gives up.
  for (let t = 100; t <= 20_000; t += 50) paths.poll(t, credentials, out.transmit);
  const toForged = out.sent.filter((s) => s.to.hostname === forged.hostname);
  assert.equal(toForged.length, PROBE_TRANSMISSIONS);
  for (const s of toForged) assert.deepEqual(asRequest(s.data).transactionId, probe.transactionId);
  // During the cooldown, checks from there are neither answered nor probed.
  const before = out.sent.length;
  assert.equal(paths.check(forged, true, 20_000, credentials, out.transmit), false);
  assert.equal(out.sent.filter((s) => s.to.hostname === forged.hostname).length, PROBE_TRANSMISSIONS);
  assert.ok(out.sent.slice(before).every((s) => s.to.port === client.port), "only consent to the client");
  assert.deepEqual(paths.selected, client);
});

Deno.test("an address that answers the probe with the client's password becomes selected", () => {
  const { paths, out } = connected();
  const moved = { hostname: "192.0.2.10", port: 40002 };
  assert.equal(paths.check(moved, true, 100, credentials, out.transmit), false);
  const probe = asRequest(out.sent[0].data);
  // A response signed with another key, or from another address, proves nothing.
  paths.response(answer(probe, "not-the-client-password-xx"), moved, 120, credentials);
  paths.response(answer(probe), forged, 120, credentials);
  assert.deepEqual(paths.selected, client);
  paths.response(answer(probe), moved, 130, credentials);
  assert.deepEqual(paths.selected, moved, "proven and nominated");
  assert.equal(paths.check(moved, false, 140, credentials, out.transmit), true, "now answered");
  // A proven address nominated again later is selected at once.
  assert.equal(paths.check(client, true, 150, credentials, out.transmit), true);
  assert.deepEqual(paths.selected, client);
});

Deno.test("consent: requests to the selected address only; answers refresh it, checks do not", () => {
  const { paths, out } = connected();
  let now = 0;
  const consentRequests = () => out.sent.filter((s) => s.to.port === client.port);
  // Answered consent keeps the peer alive well past the timeout.
  let refreshed = 0;
  for (; now < 3 * CONSENT_TIMEOUT; now += 100) {
    const n = out.sent.length;
    assert.equal(paths.poll(now, credentials, out.transmit), false, `alive at ${now}`);
    if (out.sent.length > n) {
      refreshed = now + 10;
      paths.response(answer(asRequest(out.sent.at(-1)!.data)), client, refreshed, credentials);
    }
  }
  const sent = consentRequests().length;
  assert.ok(sent >= 3 * 6 - 3 && sent <= 3 * 6 + 3, `about one request per timeout/6: ${sent}`);
  // The client stops answering but keeps sending checks (or someone forges them): consent still lapses.
  let expiredAt = 0;
  for (; now < 6 * CONSENT_TIMEOUT && !expiredAt; now += 100) {
    paths.check(client, false, now, credentials, out.transmit);
    if (paths.poll(now, credentials, out.transmit)) expiredAt = now;
  }
  assert.ok(
    expiredAt > refreshed + CONSENT_TIMEOUT && expiredAt <= refreshed + CONSENT_TIMEOUT + 100,
    `lapsed one timeout after the last answer (${refreshed}): ${expiredAt}`,
  );
  assert.ok(out.sent.every((s) => s.to.port === client.port), "nothing went anywhere else");
});

Deno.test("a validated address other than the selected one does not refresh the selected one's consent", () => {
  const { paths, out } = connected();
  const other = { hostname: "192.0.2.10", port: 40004 };
  paths.check(other, false, 0, credentials, out.transmit);
  const probe = asRequest(out.sent.splice(0)[0].data);
  paths.response(answer(probe), other, 10, credentials);
  assert.deepEqual(paths.selected, client, "proven but not nominated: not selected");
  let expiredAt = 0;
  for (let now = 0; now < 3 * CONSENT_TIMEOUT && !expiredAt; now += 100) {
    // The other address answers everything it is sent; a consent request is never sent to it.
    for (const s of out.sent.splice(0)) {
      assert.deepEqual(s.to, client);
      paths.response(answer(asRequest(s.data)), other, now, credentials);
    }
    paths.check(other, false, now, credentials, out.transmit);
    if (paths.poll(now, credentials, out.transmit)) expiredAt = now;
  }
  assert.ok(
    expiredAt > 0 && expiredAt <= CONSENT_TIMEOUT + 200,
    `consent on the selected one lapsed: ${expiredAt}`,
  );
});

Deno.test("the table of addresses a peer has checks from is bounded", () => {
  const { paths, out } = connected();
  for (let port = 1; port <= 1000; port++) {
    paths.check({ hostname: "192.0.2.50", port }, true, 10, credentials, out.transmit);
  }
  assert.ok(out.sent.length <= 4, `at most 4 probes at once: ${out.sent.length}`);
  let checked = 0;
  for (let port = 1; port <= 1000; port++) if (paths.isChecked({ hostname: "192.0.2.50", port })) checked++;
  assert.ok(checked <= 16, `checked ${checked}`);
});
