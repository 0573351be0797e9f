import assert from "node:assert/strict";
import { recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { Room, type RoomSource } from "./room.ts";
import { RoomTable } from "./room_table.ts";

const video = { payloadType: 102, name: "H264", clockRate: 90000, fmtp: "", feedback: [] };

function room(id: string): Room {
  return new Room({
    id,
    publisherSessionId: "s",
    publisher: recordingPeer(),
    video,
    audio: undefined,
    now: new Date(),
  });
}

Deno.test("one table: published and relayed rooms share ids; each kind is told apart", () => {
  const table = new RoomTable();
  const published = room("a");
  const relayed: Room<RoomSource> = room("b");
  table.addPublished(published);
  table.addRelayed(relayed);
  assert.equal(table.get("a"), published);
  assert.equal(table.get("b"), relayed);
  assert.equal(table.published("a"), published);
  assert.equal(table.published("b"), undefined, "a relayed room is not published here");
  assert.ok(table.isRelayed("b") && !table.isRelayed("a"));
  assert.deepEqual([...table.values()].map((r) => r.id), ["a", "b"]);
  assert.deepEqual([...table.publishedRooms()].map((r) => r.id), ["a"]);
  assert.equal(table.delete(room("a")), false, "another room of the same id is not removed");
  assert.equal(table.size, 2);
  assert.ok(table.delete(published));
  assert.equal(table.has("a"), false);
});
