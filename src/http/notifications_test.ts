import assert from "node:assert/strict";
import { RoomBus } from "../rooms/bus.ts";
import type { RoomInfo } from "../rooms/bus.ts";
import { RoomDirectory } from "../rooms/directory.ts";
import { RoomFeed } from "./notifications.ts";

function room(id: string, viewerCount = 0): RoomInfo {
  return {
    id,
    createdAt: new Date(0).toISOString(),
    viewerCount,
    video: { codec: "H264", profile: "42e0" },
    audio: null,
    bitrateKbps: 0,
  };
}

async function readEvents(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<string[]> {
  const decoder = new TextDecoder();
  let text = "";
  while (text.split("\n\n").length - 1 < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  return text.split("\n\n").filter((e) => e !== "");
}

function setup(options: ConstructorParameters<typeof RoomFeed>[1] = {}) {
  const bus = new RoomBus(`test-${crypto.randomUUID()}`);
  const directory = new RoomDirectory(bus);
  const feed = new RoomFeed(directory, {
    coalesceMs: 20,
    refreshMs: 60_000,
    heartbeatMs: 60_000,
    ...options,
  });
  return {
    directory,
    feed,
    close() {
      feed.close();
      directory.close();
      bus.close();
    },
  };
}

Deno.test("the list is sent on connect and once per burst of changes", async () => {
  const { directory, feed, close } = setup();
  const abort = new AbortController();
  const reader = feed.connect(abort.signal).body!.getReader();
  const [retry, first] = await readEvents(reader, 2);
  assert.equal(retry, "retry: 2000");
  assert.deepEqual(JSON.parse(first.slice(6)), { rooms: [] });
  // Ten changes inside the coalescing window make one event with the final state.
  directory.apply({ type: "room-opened", room: room("a") });
  for (let i = 1; i <= 9; i++) directory.apply({ type: "room-changed", room: room("a", i) });
  const [update] = await readEvents(reader, 1);
  assert.equal(JSON.parse(update.slice(6)).rooms[0].viewer_count, 9);
  abort.abort();
  assert.equal(feed.clientCount, 0, "a client that disconnects is released at once");
  close();
});

Deno.test("heartbeat comments and periodic refreshes keep idle streams alive and corrected", async () => {
  const { feed, close } = setup({ heartbeatMs: 30, refreshMs: 45 });
  const abort = new AbortController();
  const reader = feed.connect(abort.signal).body!.getReader();
  const events = await readEvents(reader, 5);
  assert.ok(events.some((e) => e.startsWith(": heartbeat")), `heartbeat in ${events}`);
  assert.ok(events.filter((e) => e.startsWith("data: ")).length >= 2, "a refresh without any change");
  abort.abort();
  close();
});

Deno.test("a client that does not read holds a bounded queue and gets the latest list when it reads", async () => {
  const { directory, feed, close } = setup();
  const abort = new AbortController();
  const reader = feed.connect(abort.signal).body!.getReader();
  for (let i = 0; i < 200; i++) {
    directory.apply({ type: "room-opened", room: room(`r${i}`) });
    await new Promise((r) => setTimeout(r, 25)); // each change flushes separately
    if (i === 50) break;
  }
  // 51 flushes happened while the client did not read: only a handful were queued, the rest collapsed into
  // one pending snapshot that is delivered, with the latest list, as soon as the client reads.
  const lists: number[] = [];
  while (lists[lists.length - 1] !== 51) {
    const [event] = await readEvents(reader, 1);
    if (event.startsWith("data: ")) lists.push(JSON.parse(event.slice(6)).rooms.length);
    assert.ok(lists.length <= 8, `queued lists: ${lists}`);
  }
  abort.abort();
  close();
});

Deno.test("too many clients get 503", () => {
  const { feed, close } = setup({ maxClients: 1 });
  const abort = new AbortController();
  feed.connect(abort.signal);
  assert.throws(() => feed.connect(new AbortController().signal), /too many notification clients/);
  abort.abort();
  close();
});
