/**
 * A Peer driven by a real DTLS client (werift's, in process), with datagrams passed by hand so each one's
 * source address is chosen by the test. Browsers with several host candidates move to a better pair while
 * the handshake is under way; the handshake must follow them to an address they prove, and only to such.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { classes, createSelfSignedCertificate, DtlsClient, Message, methods, parseMessage } from "werift";
import { clientDtlsTransport } from "./dtls_transport.ts";
import { certificateFingerprint, type CloseReason, Peer, type PeerAddress, pemToDer } from "./peer.ts";
import type { ServerCertificate } from "./certificate.ts";

const SERVER = { ufrag: "srvU", pwd: "server-password-0123456789" };
const CLIENT = { ufrag: "cliU", pwd: "client-password-0123456789" };

async function certificates() {
  const server = await createSelfSignedCertificate({ hash: 4, signature: 3 } as never, 23 as never);
  const client = await createSelfSignedCertificate({ hash: 4, signature: 3 } as never, 23 as never);
  const serverCertificate: ServerCertificate = {
    certPem: server.certPem,
    keyPem: server.keyPem,
    signatureHash: { hash: 4, signature: 3 },
    fingerprint: certificateFingerprint(pemToDer(server.certPem), "sha-256"),
    generated: true,
  };
  return {
    serverCertificate,
    client,
    clientFingerprint: certificateFingerprint(pemToDer(client.certPem), "sha-256"),
  };
}

/** The client's connectivity check, signed with the server's password. */
function check(nominate: boolean): Uint8Array {
  const request = new Message(methods.BINDING, classes.REQUEST);
  request.setAttribute("USERNAME", `${SERVER.ufrag}:${CLIENT.ufrag}`);
  request.setAttribute("PRIORITY", 1853817087);
  request.setAttribute("ICE-CONTROLLING", 5n);
  if (nominate) request.setAttribute("USE-CANDIDATE", null);
  request.addMessageIntegrity(Buffer.from(SERVER.pwd));
  request.addFingerprint();
  return new Uint8Array(request.bytes);
}

/** The client's answer to the server's binding request, signed with the client's password. */
function answer(requestBytes: Uint8Array, from: PeerAddress): Uint8Array | undefined {
  const request = parseMessage(Buffer.from(requestBytes), Buffer.from(CLIENT.pwd));
  if (!request || request.messageClass !== classes.REQUEST) return undefined;
  const response = new Message(methods.BINDING, classes.RESPONSE, request.transactionId);
  response.setAttribute("XOR-MAPPED-ADDRESS", [from.hostname, from.port]);
  response.addMessageIntegrity(Buffer.from(CLIENT.pwd));
  response.addFingerprint();
  return new Uint8Array(response.bytes);
}

const key = (a: PeerAddress) => `${a.hostname}:${a.port}`;

/**
 * Runs a handshake where the client's first flight comes from `first` and everything after from `second`;
 * the client answers the server's binding requests only at the addresses in `answersAt`.
 */
async function handshakeAcrossPairs(
  first: PeerAddress,
  second: PeerAddress,
  answersAt: PeerAddress[],
  waitMs: number,
) {
  const { serverCertificate, client, clientFingerprint } = await certificates();
  const start = performance.now();
  const now = () => performance.now() - start;
  const dtlsSentTo = new Map<string, number>();
  const requestsSentTo = new Map<string, number>();
  let closed: CloseReason | undefined;
  let connected = false;
  const transport = clientDtlsTransport((data) => {
    const from = flights++ === 0 ? first : second;
    // Moving to the other pair, the client nominates it (ICE checks with USE-CANDIDATE).
    if (flights === 2) queueMicrotask(() => peer.handleStun(check(true), second, now()));
    queueMicrotask(() => peer.handleDtls(data, from, now()));
  });
  let flights = 0;
  const peer: Peer = new Peer({
    id: "pair-switch",
    localUfrag: SERVER.ufrag,
    localPwd: SERVER.pwd,
    remoteUfrag: CLIENT.ufrag,
    remotePwd: CLIENT.pwd,
    remoteFingerprint: { algorithm: "sha-256", value: clientFingerprint },
    certificate: serverCertificate,
    now: 0,
    consentTimeoutMs: 30_000,
    connectTimeoutMs: 10_000,
    transmit: (bytes, to) => {
      const data = bytes.slice();
      if (data[0] <= 3) {
        if (data[0] !== 0 || data[1] !== 1) return; // check responses
        requestsSentTo.set(key(to), (requestsSentTo.get(key(to)) ?? 0) + 1);
        if (!answersAt.some((a) => key(a) === key(to))) return;
        const response = answer(data, to);
        if (response) queueMicrotask(() => peer.handleStun(response, to, now()));
        return;
      }
      dtlsSentTo.set(key(to), (dtlsSentTo.get(key(to)) ?? 0) + data.length);
      queueMicrotask(() => {
        try {
          transport.onData(Buffer.from(data), [to.hostname, to.port]);
        } catch { /* werift's client throws on a retransmitted flight; it carries on with the next */ }
      });
    },
    events: {
      onConnected: () => connected = true,
      onClosed: (_peer, reason) => closed = reason,
    },
  });
  // Both pairs pass their checks before DTLS starts; the first one is nominated first.
  peer.handleStun(check(true), first, 0);
  peer.handleStun(check(false), second, 0);
  const timers = setInterval(() => peer.checkTimeout(now()), 50);
  const dtls = new DtlsClient({
    transport,
    cert: client.certPem,
    key: client.keyPem,
    signatureHash: { hash: 4, signature: 3 } as never,
    srtpProfiles: [7, 1],
    extendedMasterSecret: true,
  });
  dtls.connect().catch(() => {});
  const deadline = performance.now() + waitMs;
  while (!connected && !closed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  clearInterval(timers);
  const result = { connected, closed, selected: peer.selected, dtlsSentTo, requestsSentTo };
  peer.close("deleted");
  dtls.close();
  transport.closed = true;
  return result;
}

const A = { hostname: "192.0.2.10", port: 40000 };
const B = { hostname: "192.0.2.10", port: 40002 };

Deno.test({
  name: "the handshake follows a client that switches pairs once the new address answers the server",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const result = await handshakeAcrossPairs(A, B, [A, B], 8000);
  assert.equal(result.closed, undefined);
  assert.ok(result.connected, "connected");
  assert.deepEqual(result.selected, B, "media goes where the handshake finished");
  assert.ok((result.requestsSentTo.get(key(B)) ?? 0) >= 1, "B was asked before the handshake moved there");
  assert.ok((result.dtlsSentTo.get(key(B)) ?? 0) > 500, "the certificate flight went to B");
});

Deno.test({
  name: "the handshake does not move to an address that does not answer the server's request",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // B passed a check, but its source was forged: requests to it go unanswered.
  const result = await handshakeAcrossPairs(A, B, [A], 3000);
  assert.equal(result.connected, false);
  assert.equal(result.dtlsSentTo.get(key(B)) ?? 0, 0, "no DTLS to the unproven address");
  const requests = result.requestsSentTo.get(key(B)) ?? 0;
  assert.ok(requests >= 1 && requests <= 4, `a bounded probe: ${requests} requests`);
  assert.ok((result.dtlsSentTo.get(key(A)) ?? 0) < 100, "only the cookie exchange went to A");
});

Deno.test("handleInput returns what a datagram amounted to: a newly validated address once, nothing for junk", async () => {
  const { serverCertificate, clientFingerprint } = await certificates();
  const sent: PeerAddress[] = [];
  const peer = new Peer({
    id: "inputs",
    localUfrag: SERVER.ufrag,
    localPwd: SERVER.pwd,
    remoteUfrag: CLIENT.ufrag,
    remotePwd: CLIENT.pwd,
    remoteFingerprint: { algorithm: "sha-256", value: clientFingerprint },
    certificate: serverCertificate,
    now: 0,
    consentTimeoutMs: 30_000,
    transmit: (_bytes, to) => sent.push(to),
    events: { onConnected: () => {}, onClosed: () => {} },
  });
  assert.equal(peer.handleInput(check(false), "stun", A, 0), "address-validated", "route A to this peer");
  assert.equal(peer.handleInput(check(true), "stun", A, 10), "none", "A is routed already");
  assert.deepEqual(sent, [A, A], "both checks answered");
  const forged = check(false);
  forged[forged.length - 1] ^= 1; // FINGERPRINT no longer matches
  assert.equal(peer.handleInput(forged, "stun", B, 20), "none", "a bad check proves nothing");
  assert.equal(peer.handleInput(new Uint8Array(40).fill(0x80), "rtp", A, 30), "none", "no SRTP before DTLS");
  assert.equal(peer.state, "checking");
  peer.close("deleted");
});
