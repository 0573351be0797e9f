import assert from "node:assert/strict";
import { ClientPeer, isHelloVerifyRequest, PeerInput } from "./client_peer.ts";
import type { IceAddress } from "./client_ice.ts";
import { answerCheck } from "./ice_lite.ts";

const SERVER = { ufrag: "srv1", pwd: "server-password-0123456789" };
const CLIENT = { ufrag: "cli1", pwd: "client-password-0123456789" };
const SERVER_ADDRESS = { hostname: "127.0.0.1", port: 8443 };
const ELSEWHERE = { hostname: "127.0.0.1", port: 9999 };

/** A peer whose ICE selected SERVER_ADDRESS (the server answered its nominating check). */
function selectedPeer(): { peer: ClientPeer; sent: { data: Uint8Array; to: IceAddress }[] } {
  const sent: { data: Uint8Array; to: IceAddress }[] = [];
  const peer = new ClientPeer({
    ice: {
      localUfrag: CLIENT.ufrag,
      localPwd: CLIENT.pwd,
      remoteUfrag: SERVER.ufrag,
      remotePwd: SERVER.pwd,
      candidates: [SERVER_ADDRESS],
    },
    certificate: { certPem: "", keyPem: "" },
  }, (data, to) => sent.push({ data, to }));
  peer.start(0, 5000);
  const answer = answerCheck(
    sent[0].data,
    { localUfrag: SERVER.ufrag, localPwd: SERVER.pwd, remoteUfrag: CLIENT.ufrag },
    SERVER_ADDRESS,
  )!;
  assert.equal(peer.handleDatagram(answer.response, { ...SERVER_ADDRESS }, 10), PeerInput.IceSelected);
  assert.equal(peer.lastHeard, 10);
  return { peer, sent };
}

/** An epoch-0 DTLS handshake record of message type `type` (3: HelloVerifyRequest). */
function handshakeRecord(type: number): Uint8Array {
  const record = new Uint8Array(40);
  record.set([22, 0xfe, 0xfd, 0, 0], 0);
  record[13] = type;
  return record;
}

Deno.test("ICE selects the pair that answered; nothing is sent before, media waits for DTLS", () => {
  const { peer } = selectedPeer();
  assert.deepEqual(peer.ice.selected, SERVER_ADDRESS);
  assert.equal(peer.connected, false);
  assert.equal(peer.sendRtp(new Uint8Array(20)), false, "no keys yet");
  const rtp = new Uint8Array(40);
  rtp[0] = 0x80;
  rtp[1] = 96;
  assert.equal(peer.handleDatagram(rtp, SERVER_ADDRESS, 20), PeerInput.None);
});

Deno.test("DTLS and media from an address ICE did not select are dropped unread", () => {
  const { peer } = selectedPeer();
  for (const _ of [1, 2]) peer.handleDatagram(handshakeRecord(3), ELSEWHERE, 20);
  assert.deepEqual(peer.dtlsTrace, [], "not even traced");
  assert.equal(peer.counters.helloVerifyRepeats, 0);
  const srtp = new Uint8Array(40);
  srtp[0] = 0x80;
  assert.equal(peer.handleDatagram(srtp, ELSEWHERE, 20), PeerInput.None);
  assert.equal(peer.lastHeard, 10, "nothing from elsewhere counts as hearing from the server");
});

Deno.test("a repeated HelloVerifyRequest is not passed on (werift would give the handshake up)", () => {
  const { peer } = selectedPeer();
  assert.ok(isHelloVerifyRequest(handshakeRecord(3)));
  assert.ok(!isHelloVerifyRequest(handshakeRecord(2)), "ServerHello");
  const epoch1 = handshakeRecord(3);
  epoch1[4] = 1;
  assert.ok(!isHelloVerifyRequest(epoch1), "only epoch 0");
  peer.handleDatagram(handshakeRecord(3), SERVER_ADDRESS, 20);
  peer.handleDatagram(handshakeRecord(3), SERVER_ADDRESS, 30);
  peer.handleDatagram(handshakeRecord(3), SERVER_ADDRESS, 40);
  assert.equal(peer.counters.helloVerifyRepeats, 2);
  assert.deepEqual(peer.dtlsTrace, [3, 3, 3]);
});

Deno.test("an answer that arrives from another address than its check went to neither counts nor refreshes", () => {
  const { peer, sent } = selectedPeer();
  const before = peer.lastHeard;
  const consent = peer.poll(2010); // first consent check due 2 s after selection
  assert.ok(consent > 2010);
  const check = sent[sent.length - 1];
  assert.deepEqual(check.to, SERVER_ADDRESS);
  const answer = answerCheck(
    check.data,
    { localUfrag: SERVER.ufrag, localPwd: SERVER.pwd, remoteUfrag: CLIENT.ufrag },
    ELSEWHERE,
  )!.response;
  assert.equal(peer.handleDatagram(answer, ELSEWHERE, 2020), PeerInput.None);
  assert.equal(peer.lastHeard, before);
  assert.equal(peer.handleDatagram(answer, SERVER_ADDRESS, 2030), PeerInput.CheckAnswered);
  assert.equal(peer.lastHeard, 2030);
});
