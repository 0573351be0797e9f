import assert from "node:assert/strict";
import { ClientIce, type IceAddress, IceInput } from "./client_ice.ts";
import { answerCheck, bindingRequest } from "./ice_lite.ts";
import { readStun } from "./stun.ts";

const SERVER = { ufrag: "srv1", pwd: "server-password-0123456789" };
const CLIENT = { ufrag: "cli1", pwd: "client-password-0123456789" };
const A = { hostname: "192.0.2.10", port: 8443 };
const B = { hostname: "127.0.0.1", port: 8443 };

function agent(candidates: IceAddress[] = [A, B]) {
  return new ClientIce({
    localUfrag: CLIENT.ufrag,
    localPwd: CLIENT.pwd,
    remoteUfrag: SERVER.ufrag,
    remotePwd: SERVER.pwd,
    candidates,
  });
}

/** Records what the agent sends. */
function outbox() {
  const sent: { data: Uint8Array; to: IceAddress }[] = [];
  return { sent, send: (data: Uint8Array, to: IceAddress) => sent.push({ data, to }) };
}

/** What an ICE-lite server answers to a check (integrity under its own password). */
function serverAnswer(check: Uint8Array, from: IceAddress): Uint8Array {
  const answer = answerCheck(check, {
    localUfrag: SERVER.ufrag,
    localPwd: SERVER.pwd,
    remoteUfrag: CLIENT.ufrag,
  }, from);
  assert.ok(answer, "the server verifies the client's check");
  return answer.response;
}

Deno.test("a nominating check goes to every candidate and is retransmitted as the same transaction, with backoff", () => {
  const ice = agent();
  const { sent, send } = outbox();
  ice.start(0, 10_000, send);
  assert.deepEqual(sent.map((s) => s.to), [A, B]);
  const first = readStun(sent[0].data)!;
  assert.ok(first.useCandidate && first.iceControlling);
  assert.equal(first.username, "srv1:cli1");
  // Retransmissions at 100, 300, 700, 1500, 3100, 4700 ms (RTO doubling from 100 ms, capped at 1.6 s).
  const times: number[] = [];
  for (let now = 0; now <= 5000; now += 10) {
    const before = sent.length;
    ice.poll(now, send);
    if (sent.length > before) times.push(now);
  }
  assert.deepEqual(times, [100, 300, 700, 1500, 3100, 4700]);
  for (const s of sent.filter((s) => s.to === A)) assert.deepEqual([...s.data], [...sent[0].data]);
  assert.ok(ice.checking);
});

Deno.test("the first candidate to answer is selected; a late answer to an earlier retransmission counts", () => {
  const ice = agent();
  const { sent, send } = outbox();
  ice.start(0, 10_000, send);
  ice.poll(100, send);
  ice.poll(300, send); // third transmission of each
  const toB = sent.filter((s) => s.to === B);
  // The answer to B's first transmission arrives after two more retransmissions: same transaction.
  assert.equal(ice.handleStun(serverAnswer(toB[0].data, B), B, 350, send), IceInput.Selected);
  assert.deepEqual(ice.selected, B);
  assert.equal(ice.lastHeard, 350);
  assert.ok(!ice.checking);
  // A's check is dropped, and an answer from A now changes nothing.
  const count = sent.length;
  ice.poll(700, send);
  assert.equal(sent.filter((s, i) => i >= count && s.to === A).length, 0);
  const toA = sent.find((s) => s.to === A)!;
  assert.equal(ice.handleStun(serverAnswer(toA.data, A), A, 710, send), IceInput.Ignored);
  assert.deepEqual(ice.selected, B);
});

Deno.test("answers that do not verify, come from elsewhere or match no transaction are ignored", () => {
  const ice = agent([A]);
  const { sent, send } = outbox();
  ice.start(0, 10_000, send);
  const check = sent[0].data;
  const forged = answerCheck(check, {
    localUfrag: SERVER.ufrag,
    localPwd: "wrong-password-000000",
    remoteUfrag: CLIENT.ufrag,
  }, A);
  assert.equal(forged, undefined, "the check is signed with the server's password only");
  const wrongKey = serverAnswer(check, A).slice();
  wrongKey[wrongKey.length - 30] ^= 1; // inside MESSAGE-INTEGRITY
  assert.equal(ice.handleStun(wrongKey, A, 10, send), IceInput.Ignored);
  assert.equal(ice.handleStun(serverAnswer(check, A), B, 10, send), IceInput.Ignored, "from another address");
  const other = agent([A]);
  const otherSent = outbox();
  other.start(0, 10_000, otherSent.send);
  assert.equal(ice.handleStun(serverAnswer(otherSent.sent[0].data, A), A, 10, send), IceInput.Ignored);
  assert.equal(ice.selected, undefined);
});

Deno.test("the server's own checks are answered when they carry our credentials", () => {
  const ice = agent([A]);
  const { sent, send } = outbox();
  const txid = crypto.getRandomValues(new Uint8Array(12));
  const request = bindingRequest(
    { localUfrag: SERVER.ufrag, remoteUfrag: CLIENT.ufrag, remotePwd: CLIENT.pwd },
    txid,
    7n,
  );
  assert.equal(ice.handleStun(request, A, 5, send), IceInput.CheckAnswered);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].to, A);
  assert.deepEqual([...readStun(sent[0].data)!.transactionId], [...txid]);
  const stranger = bindingRequest(
    { localUfrag: SERVER.ufrag, remoteUfrag: "other", remotePwd: CLIENT.pwd },
    txid,
    7n,
  );
  assert.equal(ice.handleStun(stranger, A, 6, send), IceInput.Ignored);
  assert.equal(sent.length, 1);
});

Deno.test("after selection: consent checks on schedule, and an explicit check reports its ticket", () => {
  const ice = agent([A]);
  const { sent, send } = outbox();
  ice.start(0, 10_000, send);
  ice.handleStun(serverAnswer(sent[0].data, A), A, 20, send);
  const next = ice.poll(20, send);
  assert.equal(next, 2020, "the first consent check is due one interval after selection");
  const before = sent.length;
  ice.poll(2020, send);
  assert.equal(sent.length, before + 1);
  const consent = readStun(sent[before].data)!;
  assert.ok(!consent.useCandidate);
  assert.equal(ice.handleStun(serverAnswer(sent[before].data, A), A, 2030, send), IceInput.Answered);
  assert.equal(ice.lastHeard, 2030);

  const ticket = ice.check(3000, 4000, 200, send);
  assert.ok(ticket > 0);
  const checkBytes = sent[sent.length - 1].data;
  ice.poll(3200, send); // retransmitted after 200 ms
  assert.deepEqual([...sent[sent.length - 1].data], [...checkBytes]);
  assert.equal(ice.handleStun(serverAnswer(checkBytes, A), A, 3300, send), IceInput.Answered);
  assert.equal(ice.answeredTicket, ticket);
  // An unanswered check is retransmitted only until its deadline, then forgotten.
  ice.check(5000, 5500, 200, send);
  const late = sent[sent.length - 1].data;
  for (let now = 5000; now < 7000; now += 50) ice.poll(now, send);
  const same = sent.filter((s) => s.data === late).length;
  assert.equal(same, 2, "sent at 5000 and 5200; the next one (5600) is past its deadline");
});
