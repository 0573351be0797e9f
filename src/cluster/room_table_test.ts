import assert from "node:assert/strict";
import type { RoomInfo } from "../rooms/bus.ts";
import { ClusterRoomTable, type RoomEntry } from "./room_table.ts";

function info(id: string, viewerCount = 0, createdAt = "2026-01-01T00:00:00.000Z"): RoomInfo {
  return {
    id,
    createdAt,
    viewerCount,
    video: { codec: "H264", profile: "42e0" },
    audio: { codec: "opus" },
    bitrateKbps: 500,
  };
}

function entry(nodeId: string, id: string, viewerCount = 0): RoomEntry {
  return { nodeId, info: info(id, viewerCount), thumbnail: null };
}

const nodes = new Map([["a", "http://a:8080"], ["b", "http://b:8080"], ["c", "http://c:8080"]]);

Deno.test("local and remote rooms merge with viewer counts summed over nodes", () => {
  const table = new ClusterRoomTable("b");
  table.setLocalRoom(info("here", 2));
  table.applySnapshot({
    nodes,
    rooms: [entry("a", "there", 5)],
    viewers: new Map([["a", new Map([["there", 1]])], ["c", new Map([["there", 4], ["here", 1]])]]),
  });
  table.setRelayViewers("there", 3);
  const events = table.diff();
  assert.deepEqual(events.map((e) => e.type), ["room-opened", "room-opened"]);
  const byId = new Map(table.rooms().map((r) => [r.info.id, r.info]));
  assert.equal(byId.get("here")!.viewerCount, 3, "2 here + 1 on c");
  assert.equal(byId.get("here")!.origin, undefined);
  assert.equal(byId.get("there")!.viewerCount, 8, "1 on a + 4 on c + 3 relayed here");
  assert.deepEqual(byId.get("there")!.origin, { nodeId: "a", url: "http://a:8080" });
  assert.deepEqual(table.relayingNodes("there"), ["c"]);
  assert.deepEqual(table.diff(), [], "nothing changed since");
});

Deno.test("entries of unknown nodes are ignored and a node's rooms leave with it", () => {
  const table = new ClusterRoomTable("b");
  table.applySnapshot({ nodes, rooms: [entry("x", "forged"), entry("a", "r1")], viewers: new Map() });
  assert.deepEqual(table.rooms().map((r) => r.info.id), ["r1"]);
  assert.equal(table.roomCount(), 1);
  assert.equal(table.remoteNodeCount, 2, "a and c; the table's own node is not counted");
  assert.equal(table.setRemoteRoom(entry("y", "late")), false);
  assert.equal(table.remoteRoom("forged"), undefined);
  assert.equal(table.remoteRoom("r1")!.url, "http://a:8080");
  table.diff();
  table.deleteNode("a");
  assert.deepEqual(table.diff(), [{ type: "room-closed", roomId: "r1" }]);
  assert.equal(table.remoteRoom("r1"), undefined);
  assert.equal(table.roomCount(), 0);
  assert.equal(table.remoteNodeCount, 1);
});

Deno.test("changes, thumbnails and closes become bus events once", () => {
  const table = new ClusterRoomTable("a");
  table.setLocalRoom(info("r", 0));
  table.diff();
  table.setLocalRoom(info("r", 1));
  assert.deepEqual(table.diff().map((e) => e.type), ["room-changed"]);
  assert.ok(table.setLocalThumbnail("r", { updatedAt: "2026-01-01T00:00:01.000Z", width: 640, height: 480 }));
  assert.deepEqual(table.diff(), [{
    type: "thumbnail-updated",
    roomId: "r",
    updatedAt: "2026-01-01T00:00:01.000Z",
    width: 640,
    height: 480,
  }]);
  assert.equal(table.localEntry("r")!.thumbnail!.width, 640);
  table.deleteLocalRoom("r");
  assert.deepEqual(table.diff(), [{ type: "room-closed", roomId: "r" }]);
});

Deno.test("a local room wins over a remote entry of the same id; forgetting keeps vouched rooms", () => {
  const table = new ClusterRoomTable("b");
  table.applySnapshot({
    nodes,
    rooms: [entry("a", "same"), entry("a", "relayed"), entry("c", "gone")],
    viewers: new Map(),
  });
  table.setLocalRoom(info("same", 0));
  assert.equal(table.remoteRoom("same"), undefined);
  assert.equal(table.rooms().filter((r) => r.info.id === "same").length, 1);
  assert.equal(table.roomCount(), 3, "same counted once");
  table.forgetRemote((id) => id === "relayed");
  assert.deepEqual(table.rooms().map((r) => r.info.id).sort(), ["relayed", "same"]);
  assert.equal(table.roomCount(), 2);
});

Deno.test("a relayed room missing from a read of Redis stays until the relay says otherwise", () => {
  const table = new ClusterRoomTable("b");
  table.applySnapshot({ nodes, rooms: [entry("a", "relayed"), entry("a", "other")], viewers: new Map() });
  table.diff();
  const empty = { nodes: new Map<string, string>(), rooms: [], viewers: new Map() };
  table.applySnapshot(empty, (id) => id === "relayed");
  assert.deepEqual(table.diff(), [{ type: "room-closed", roomId: "other" }]);
  assert.equal(table.remoteRoom("relayed")!.url, "http://a:8080");
  table.applySnapshot(empty, () => false);
  assert.deepEqual(table.diff(), [{ type: "room-closed", roomId: "relayed" }]);
});
