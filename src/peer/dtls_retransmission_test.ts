/**
 * A Peer's DTLS handshake when the client retransmits its flights, as a loaded browser does (libwebrtc starts
 * its DTLS retransmission timer at 50 ms on loopback): the copies must not change the server's keys. Driven
 * by werift's DTLS client in process, with datagrams passed by hand.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  classes,
  createSelfSignedCertificate,
  DtlsClient,
  keyLength,
  Message,
  methods,
  saltLength,
} from "werift";
import { clientDtlsTransport } from "./dtls_transport.ts";
import { certificateFingerprint, Peer, type PeerAddress, pemToDer, UNDECRYPTABLE_AFTER } from "./peer.ts";
import { createSrtpContext } from "../srtp/context.ts";

const SERVER = { ufrag: "srvU", pwd: "server-password-0123456789" };
const CLIENT = { ufrag: "cliU", pwd: "client-password-0123456789" };
const FROM: PeerAddress = { hostname: "127.0.0.1", port: 40000 };

function check(): Uint8Array {
  const request = new Message(methods.BINDING, classes.REQUEST);
  request.setAttribute("USERNAME", `${SERVER.ufrag}:${CLIENT.ufrag}`);
  request.setAttribute("PRIORITY", 1853817087);
  request.setAttribute("ICE-CONTROLLING", 5n);
  request.setAttribute("USE-CANDIDATE", null);
  request.addMessageIntegrity(Buffer.from(SERVER.pwd));
  request.addFingerprint();
  return new Uint8Array(request.bytes);
}

/** The handshake type of a datagram's first record, when it is an epoch-0 handshake record. */
function firstHandshakeType(data: Uint8Array): number | undefined {
  return data[0] === 22 && data[3] === 0 && data[4] === 0 ? data[13] : undefined;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether a datagram holds an epoch-1 record (the client's Finished). */
function hasEncryptedRecord(data: Uint8Array): boolean {
  for (let at = 0; at + 13 <= data.length; at += 13 + ((data[at + 11] << 8) | data[at + 12])) {
    if (data[at + 3] !== 0 || data[at + 4] !== 0) return true;
  }
  return false;
}

/**
 * What the network does to the handshake: nothing; a copy of the client's flight 5 (Certificate ..
 * Finished, one datagram as Chromium sends it) in the same batch of reads as the original, or in a later
 * wake-up; a copy of the client's first ClientHello after flight 5; the server's ChangeCipherSpec and
 * Finished lost once (the client retransmits flight 5 and must be answered again).
 */
type Scenario =
  | "no copy"
  | "flight 5 copy, same batch"
  | "flight 5 copy, next wake-up"
  | "ClientHello copy after flight 5"
  | "server's flight 6 lost once";

/** Runs a handshake; returns whether both ends connected and whether the server decrypts the client's SRTP. */
async function handshakeWith(scenario: Scenario, forged = 0) {
  const server = await createSelfSignedCertificate({ hash: 4, signature: 3 } as never, 23 as never);
  const client = await createSelfSignedCertificate({ hash: 4, signature: 3 } as never, 23 as never);
  let serverConnected = false;
  let closed: string | undefined;
  const flight5: Uint8Array[] = [];
  let collecting = false;
  const deliver = (data: Uint8Array) => peer.handleInput(data.slice(), "dtls", FROM, performance.now());
  let firstHello: Uint8Array | undefined;
  let flight6Lost = 0;
  const transport = clientDtlsTransport((data) => {
    firstHello ??= data;
    // Flight 5 starts with the client's Certificate (type 11) and ends with its encrypted Finished.
    if (firstHandshakeType(data) === 11) collecting = true;
    if (!collecting) {
      queueMicrotask(() => deliver(data));
      return;
    }
    flight5.push(data);
    if (!hasEncryptedRecord(data)) return; // not yet the epoch-1 Finished
    collecting = false;
    // One datagram, as Chromium sends it (werift's client sends one per record).
    const copies = [concat(flight5.splice(0))];
    queueMicrotask(() => {
      for (const d of copies) deliver(d);
      if (scenario === "flight 5 copy, same batch") { for (const d of copies) deliver(d); }
      else if (scenario === "flight 5 copy, next wake-up") setTimeout(() => copies.forEach(deliver), 0);
      else if (scenario === "ClientHello copy after flight 5") deliver(firstHello!);
    });
  });
  const peer: Peer = new Peer({
    id: "retransmits",
    localUfrag: SERVER.ufrag,
    localPwd: SERVER.pwd,
    remoteUfrag: CLIENT.ufrag,
    remotePwd: CLIENT.pwd,
    remoteFingerprint: {
      algorithm: "sha-256",
      value: certificateFingerprint(pemToDer(client.certPem), "sha-256"),
    },
    certificate: {
      certPem: server.certPem,
      keyPem: server.keyPem,
      signatureHash: { hash: 4, signature: 3 },
      fingerprint: certificateFingerprint(pemToDer(server.certPem), "sha-256"),
      generated: true,
    },
    now: 0,
    consentTimeoutMs: 30_000,
    transmit: (bytes) => {
      if (bytes[0] <= 3) return; // STUN
      // The server's first ChangeCipherSpec + Finished are lost: the client must get them again.
      if (
        scenario === "server's flight 6 lost once" && (bytes[0] === 20 || bytes[3] !== 0 || bytes[4] !== 0) &&
        flight6Lost++ < 2
      ) {
        return;
      }
      const data = Buffer.from(bytes);
      queueMicrotask(() => {
        try {
          transport.onData(data, [FROM.hostname, FROM.port]);
        } catch { /* werift's client throws on a retransmitted flight */ }
      });
    },
    events: { onConnected: () => serverConnected = true, onClosed: (_p, reason) => closed = reason },
  });
  peer.handleInput(check(), "stun", FROM, 0);
  const dtls = new DtlsClient({
    transport,
    cert: client.certPem,
    key: client.keyPem,
    signatureHash: { hash: 4, signature: 3 } as never,
    srtpProfiles: [7, 1],
    extendedMasterSecret: true,
  });
  let clientConnected = false;
  dtls.onConnect.subscribe(() => clientConnected = true);
  dtls.connect().catch(() => {});
  const deadline = performance.now() + 5000;
  while (!(clientConnected && serverConnected) && !closed && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  let decrypted = false;
  let undecryptable = true;
  const undecryptableAfterForged: boolean[] = [];
  if (clientConnected && serverConnected) {
    const profile = dtls.srtp.srtpProfile as number;
    const keys = dtls.extractSessionKeys(keyLength(profile as 1), saltLength(profile as 1));
    const srtp = createSrtpContext({
      profile,
      localMasterKey: keys.localKey,
      localMasterSalt: keys.localSalt,
      remoteMasterKey: keys.remoteKey,
      remoteMasterSalt: keys.remoteSalt,
    });
    const rtp = new Uint8Array(12 + 100);
    rtp.set([0x80, 96, 0, 1, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44]);
    const sealed = srtp.protectRtp(rtp, 12).slice();
    for (let i = 1; i <= forged; i++) {
      const copy = sealed.slice();
      copy[copy.length - 1] ^= 1; // the authentication tag no longer matches
      peer.handleInput(copy, "rtp", FROM, performance.now());
      if (i >= forged - 1) undecryptableAfterForged.push(peer.undecryptable);
    }
    decrypted = peer.handleInput(sealed, "rtp", FROM, performance.now()) === "rtp";
    srtp.close();
    undecryptable = peer.undecryptable;
  }
  const result = {
    clientConnected,
    serverConnected,
    closed,
    decrypted,
    undecryptable,
    undecryptableAfterForged,
  };
  peer.close("deleted");
  dtls.close();
  transport.closed = true;
  return result;
}

const SCENARIOS: Scenario[] = [
  "no copy",
  "flight 5 copy, same batch",
  "flight 5 copy, next wake-up",
  "ClientHello copy after flight 5",
  "server's flight 6 lost once",
];

for (const scenario of SCENARIOS) {
  Deno.test({
    name:
      `DTLS with retransmissions (${scenario}): both ends connect and the server decrypts the client's SRTP`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const result = await handshakeWith(scenario);
    assert.equal(result.closed, undefined);
    assert.ok(result.serverConnected, "the server finished the handshake");
    assert.ok(result.clientConnected, "the client accepted the server's Finished");
    assert.ok(result.decrypted, "the server decrypts the client's SRTP");
    assert.equal(result.undecryptable, false);
  });
}

Deno.test({
  name: "a connected peer counts as undecryptable once 50 SRTP packets failed and none decrypted",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const result = await handshakeWith("no copy", UNDECRYPTABLE_AFTER);
  assert.deepEqual(result.undecryptableAfterForged, [false, true], "after 49 forged packets, after 50");
  assert.ok(result.decrypted);
  assert.equal(result.undecryptable, false, "one packet that decrypts ends it");
});
