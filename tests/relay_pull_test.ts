/**
 * The relay pull (src/cluster/whep_pull.ts) against a real server process: an exception in
 * what the pull feeds (the relayed room) is a counted, reported internal error, and the pull reads on;
 * before, it ended the read loop and with it the relay for every viewer on the node. Consent keeps a quiet
 * pull up, and a vanished node ends it as silent (the timer of src/peer/client_socket.ts re-arms even when it
 * fires a little early).
 */
import assert from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";
import { createClientCertificate, LightClient, syntheticVideoPacket } from "./bench/light_client.ts";
import { WhepPull } from "../src/cluster/whep_pull.ts";

Deno.test({
  name: "relay pull: an exception in the room it feeds is counted and reported; the pull reads on",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess();
  const certificate = await createClientCertificate();
  let publisher: LightClient | undefined;
  let pull: WhepPull | undefined;
  let sending: ReturnType<typeof setInterval> | undefined;
  try {
    publisher = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "publisher",
      room: "guarded",
      token: server.token,
      certificate,
    });
    let seq = 0;
    const send = () => publisher!.sendRtp(syntheticVideoPacket(publisher!, seq, seq++ % 30 === 0));
    send();
    sending = setInterval(send, 10);
    await waitFor(
      "room live",
      async () => (await fetch(`${server.baseUrl}/rooms/guarded`)).status,
      (s) => s === 200,
    );

    pull = await WhepPull.open({
      baseUrl: server.baseUrl,
      roomId: "guarded",
      relayPath: ["test-node"],
      certificate: { ...certificate, signatureHash: { hash: 4, signature: 3 }, generated: true },
      bindAddress: "127.0.0.1",
    });
    const reported: unknown[] = [];
    let closedBy: string | undefined;
    let handled = 0;
    pull.onInternalError = (e) => reported.push(e);
    pull.onClosed = (reason) => closedBy = reason;
    pull.onRtp = () => {
      // The first three packets hit a bug in the room; the rest are handled.
      if (++handled <= 3) throw new TypeError(`a bug in the relayed room (${handled})`);
    };
    await waitFor("media after the exceptions", () => handled, (n) => n >= 30 || closedBy !== undefined);
    assert.equal(closedBy, undefined, "the pull is still up");
    assert.equal(pull.counters.internalErrors, 3);
    assert.equal(reported.length, 3);
    assert.match(String(reported[0]), /a bug in the relayed room \(1\)/);
    assert.equal(pull.counters.decryptFailures, 0);
  } finally {
    clearInterval(sending);
    pull?.close();
    await publisher?.close();
    await server.stop();
  }
});

Deno.test({
  name: "relay pull: consent keeps it up; when the other node vanishes it ends as silent after silenceMs",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess();
  const certificate = await createClientCertificate();
  let sending: ReturnType<typeof setInterval> | undefined;
  let pull: WhepPull | undefined;
  try {
    const publisher = await LightClient.connect({
      baseUrl: server.baseUrl,
      role: "publisher",
      room: "vanishing",
      token: server.token,
      certificate,
    });
    let seq = 0;
    sending = setInterval(
      () => publisher.sendRtp(syntheticVideoPacket(publisher, seq, seq++ % 30 === 0)),
      10,
    );
    await waitFor(
      "room live",
      async () => (await fetch(`${server.baseUrl}/rooms/vanishing`)).status,
      (s) => s === 200,
    );
    pull = await WhepPull.open({
      baseUrl: server.baseUrl,
      roomId: "vanishing",
      relayPath: ["test-node"],
      certificate: { ...certificate, signatureHash: { hash: 4, signature: 3 }, generated: true },
      bindAddress: "127.0.0.1",
      silenceMs: 3000,
    });
    let closedBy: string | undefined;
    pull.onClosed = (reason) => closedBy = reason;
    await waitFor("media", () => pull!.counters.rtpIn, (n) => n > 20);
    // The publisher stops: only consent answers keep the pull alive now, for longer than silenceMs.
    clearInterval(sending);
    const quietSince = pull.counters.rtpIn;
    // Nothing to await: the pull must stay up for longer than silenceMs on consent answers (every 2 s) alone.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.equal(
      closedBy,
      undefined,
      `consent answers keep the pull up (${pull.counters.rtpIn - quietSince} RTP)`,
    );
    Deno.kill(server.pid, "SIGKILL");
    const killedAt = performance.now();
    await waitFor("the pull to end", () => closedBy, (reason) => reason !== undefined, 10_000);
    assert.equal(closedBy, "silent");
    console.log(`pull ended ${Math.round(performance.now() - killedAt)} ms after the node was killed`);
  } finally {
    clearInterval(sending);
    pull?.close();
    await server.stop().catch(() => {});
  }
});
