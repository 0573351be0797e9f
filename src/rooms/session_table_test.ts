import assert from "node:assert/strict";
import type { Peer } from "../peer/peer.ts";
import { recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { SessionError } from "./errors.ts";
import { Room } from "./room.ts";
import { type Session, SessionTable } from "./session_table.ts";
import { newReception } from "./viewer.ts";

const video = { payloadType: 102, name: "H264", clockRate: 90000, fmtp: "", feedback: [] };
const room = (id: string) =>
  new Room({
    id,
    publisherSessionId: "p",
    publisher: recordingPeer(),
    video,
    audio: undefined,
    now: new Date(),
  });

let ids = 0;
/** A session record over a stand-in peer in `state`. */
function viewerSession(room: Room, address: string | undefined, state = "connected"): Session {
  const id = `s${ids++}`;
  const peer = { id, state, localUfrag: `u${id}` } as unknown as Peer;
  const viewer = { sessionId: id, peer, reception: newReception(), sentReports: new Map() };
  return { kind: "whep", id, peer, room, viewer, address };
}

function refusal(kind: string, text: RegExp) {
  return (e: unknown) => e instanceof SessionError && e.refusal === kind && text.test(e.message);
}

Deno.test("capacity: per-address limits (connecting, then all), the room's, the viewers' share", () => {
  const table = new SessionTable({
    maxSessions: 10,
    maxPublishers: 2,
    maxViewersPerRoom: 4,
    maxPendingPerAddress: 2,
    maxViewersPerAddress: 3,
  });
  const a = room("a");
  const connecting = [viewerSession(a, "1.2.3.4", "connecting"), viewerSession(a, "1.2.3.4", "connecting")];
  for (const session of connecting) table.add(session);
  assert.throws(
    () => table.checkCapacity("whep", a, "1.2.3.4"),
    refusal("address-busy", /MAX_PENDING_PER_ADDRESS/),
  );
  table.checkCapacity("whep", a, "5.6.7.8");
  for (const session of connecting) (session.peer as { state: string }).state = "connected";
  table.add(viewerSession(a, "1.2.3.4"));
  assert.throws(
    () => table.checkCapacity("whep", room("b"), "1.2.3.4"),
    refusal("address-busy", /3 viewer sessions/),
  );
  table.add(viewerSession(a, undefined));
  assert.throws(() => table.checkCapacity("whep", a, undefined), refusal("full", /room full: 4 viewers/));
  const b = room("b");
  for (let i = 0; i < 4; i++) table.add(viewerSession(b, undefined));
  assert.throws(
    () => table.checkCapacity("whep", room("c"), undefined),
    refusal("full", /server full: 10 sessions/),
  );
  table.checkCapacity("whip", undefined, undefined); // the publishers' places stay free
  assert.deepEqual(table.counts, { publishers: 0, viewers: 8 });
});

Deno.test("ufrags are unique while held; an ICE restart remembers the client's earlier ones, eight at most", () => {
  const table = new SessionTable();
  const ufrags = new Set(Array.from({ length: 200 }, () => table.newUfrag()));
  assert.equal(ufrags.size, 200);
  const session = viewerSession(room("a"), undefined);
  table.add(session);
  assert.equal(table.ofPeer(session.peer), session);
  for (let i = 0; i < 10; i++) table.restarted(session.peer, `client${i}`, "old");
  assert.deepEqual(table.earlierRemoteUfrags(session.peer), [
    "client2",
    "client3",
    "client4",
    "client5",
    "client6",
    "client7",
    "client8",
    "client9",
  ]);
  assert.equal(table.removePeer(session.peer), session);
  assert.equal(table.get(session.id), undefined);
  assert.equal(table.removePeer(session.peer), undefined);
});
