import assert from "node:assert/strict";
import { parseEntry, parseMessage, parseNodeUrl, parseViewers } from "./messages.ts";

const entry = {
  nodeId: "node-a",
  info: {
    id: "room-1",
    createdAt: "2026-01-01T00:00:00.000Z",
    viewerCount: 3,
    video: { codec: "H264", profile: "42e0", width: 640, height: 480 },
    audio: { codec: "opus" },
    bitrateKbps: 800,
  },
  thumbnail: { updatedAt: "2026-01-01T00:00:05.000Z", width: 640, height: 480 },
};

Deno.test("room entries and messages round-trip through JSON", () => {
  const parsed = parseEntry(JSON.stringify(entry))!;
  assert.equal(parsed.info.id, "room-1");
  assert.equal(parsed.info.viewerCount, 0, "an entry's own count is not trusted as the cluster's");
  assert.deepEqual(parsed.thumbnail, entry.thumbnail);
  assert.deepEqual(parseMessage(JSON.stringify({ type: "room", entry }))?.type, "room");
  assert.deepEqual(parseMessage(JSON.stringify({ type: "viewers", nodeId: "b", roomId: "r", count: null })), {
    type: "viewers",
    nodeId: "b",
    roomId: "r",
    count: null,
  });
  assert.deepEqual(parseMessage('{"type":"node-left","nodeId":"b"}'), { type: "node-left", nodeId: "b" });
  // A VP8 room has no profile.
  const vp8 = { ...entry, info: { ...entry.info, video: { codec: "VP8", profile: "" } } };
  assert.equal(parseEntry(JSON.stringify(vp8))?.info.video.codec, "VP8");
});

Deno.test("malformed or hostile data from Redis is dropped", () => {
  assert.equal(parseEntry("{"), undefined);
  assert.equal(parseEntry(JSON.stringify({ ...entry, nodeId: "a:b" })), undefined);
  assert.equal(parseEntry(JSON.stringify({ ...entry, info: { ...entry.info, id: "../x" } })), undefined);
  assert.equal(parseEntry(JSON.stringify({ ...entry, info: { ...entry.info, bitrateKbps: -1 } })), undefined);
  assert.equal(parseEntry(JSON.stringify({ ...entry, thumbnail: { updatedAt: "x" } })), undefined);
  assert.equal(parseMessage('{"type":"viewers","nodeId":"b","roomId":"r","count":"7"}'), undefined);
  assert.equal(parseMessage('{"type":"shutdown-everything"}'), undefined);
  assert.equal(parseMessage("x".repeat(20000)), undefined);
  assert.deepEqual([...parseViewers({ r1: "2", "bad:id": "3", r2: "-1", r3: "many" })], [["r1", 2]]);
});

Deno.test("only plain http(s) origins count as node URLs", () => {
  assert.equal(parseNodeUrl("http://10.0.0.5:8080"), "http://10.0.0.5:8080");
  assert.equal(parseNodeUrl("https://edge.example.org"), "https://edge.example.org");
  assert.equal(parseNodeUrl("http://10.0.0.5:8080/path"), undefined);
  assert.equal(parseNodeUrl("file:///etc/passwd"), undefined);
  assert.equal(parseNodeUrl("http://user:pw@host"), undefined);
  assert.equal(parseNodeUrl(null), undefined);
});
