import assert from "node:assert/strict";
import { RoomBus } from "../rooms/bus.ts";
import type { RoomInfo } from "../rooms/bus.ts";
import { RoomDirectory } from "../rooms/directory.ts";
import { COALESCE_MS, HEARTBEAT_MS, REFRESH_MS, RoomFeed } from "./notifications.ts";
import { ManualTimers } from "../../tests/helpers/manual_timers.ts";

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

/** Reads the stream in the background into a list of events, for checks after each step of the clock. */
function collect(reader: ReadableStreamDefaultReader<Uint8Array>): string[] {
  const events: string[] = [];
  (async () => {
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      text += decoder.decode(value);
      const parts = text.split("\n\n");
      text = parts.pop()!;
      events.push(...parts);
    }
  })();
  return events;
}

/** Lets every queued chunk reach the collector (a turn of the event loop; no time passes on the clock). */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

const lists = (events: string[]) =>
  events.filter((e) => e.startsWith("data: ")).map((e) => JSON.parse(e.slice(6)));

function setup(options: ConstructorParameters<typeof RoomFeed>[1] = {}) {
  const bus = new RoomBus(`test-${crypto.randomUUID()}`);
  const directory = new RoomDirectory(bus);
  const clock = new ManualTimers();
  const feed = new RoomFeed(directory, { timers: clock, ...options });
  return {
    directory,
    feed,
    clock,
    close() {
      feed.close();
      directory.close();
      bus.close();
    },
  };
}

Deno.test("the list is sent on connect and once per burst of changes, COALESCE_MS after the first", async () => {
  const { directory, feed, clock, close } = setup();
  const abort = new AbortController();
  const events = collect(feed.connect({ signal: abort.signal }).body!.getReader());
  await settle();
  assert.deepEqual(events, ["retry: 2000", 'data: {"rooms":[]}']);
  // Ten changes inside the coalescing window make one event with the final state, at the window's end.
  directory.apply({ type: "room-opened", room: room("a") });
  for (let i = 1; i <= 9; i++) directory.apply({ type: "room-changed", room: room("a", i) });
  clock.advance(COALESCE_MS - 1);
  await settle();
  assert.equal(events.length, 2, "nothing before the window ends");
  clock.advance(1);
  await settle();
  assert.equal(events.length, 3);
  assert.equal(lists(events)[1].rooms[0].viewer_count, 9);
  clock.advance(HEARTBEAT_MS - COALESCE_MS - 1);
  await settle();
  assert.equal(events.length, 3, "one event per burst");
  abort.abort();
  assert.equal(feed.clientCount, 0, "a client that disconnects is released at once");
  close();
  assert.equal(clock.pending, 0, "close clears every timer");
});

Deno.test("a heartbeat comment every HEARTBEAT_MS and the full list every REFRESH_MS, without changes", async () => {
  const { feed, clock, close } = setup();
  const abort = new AbortController();
  const events = collect(feed.connect({ signal: abort.signal }).body!.getReader());
  await settle();
  events.length = 0;
  clock.advance(HEARTBEAT_MS - 1);
  await settle();
  assert.deepEqual(events, []);
  clock.advance(1);
  await settle();
  assert.deepEqual(events, [": heartbeat"]);
  clock.advance(REFRESH_MS - HEARTBEAT_MS);
  await settle();
  // 30 s: the second heartbeat and the refresh fall due together.
  assert.deepEqual(events.slice().sort(), [": heartbeat", ": heartbeat", 'data: {"rooms":[]}']);
  abort.abort();
  close();
});

Deno.test("a client that does not read holds a bounded queue and gets the latest list when it reads", async () => {
  const { directory, feed, clock, close } = setup();
  const abort = new AbortController();
  const reader = feed.connect({ signal: abort.signal }).body!.getReader();
  // 51 changes, each flushed on its own, while the client does not read.
  for (let i = 0; i <= 50; i++) {
    directory.apply({ type: "room-opened", room: room(`r${i}`) });
    clock.advance(COALESCE_MS);
    await settle();
  }
  // Only a handful were queued; the rest collapsed into one pending snapshot that is delivered, with the
  // latest list, as soon as the client reads.
  const sizes: number[] = [];
  while (sizes[sizes.length - 1] !== 51) {
    const [event] = await readEvents(reader, 1);
    if (event.startsWith("data: ")) sizes.push(JSON.parse(event.slice(6)).rooms.length);
    assert.ok(sizes.length <= 8, `queued lists: ${sizes}`);
  }
  abort.abort();
  close();
});

Deno.test("too many clients get 503", () => {
  const { feed, close } = setup({ maxClients: 1 });
  const abort = new AbortController();
  feed.connect({ signal: abort.signal });
  assert.throws(
    () => feed.connect({ signal: new AbortController().signal }),
    /too many notification clients/,
  );
  abort.abort();
  close();
});
