/**
 * STORAGE_DIR may hold files that are not ours, even `<name>.jpg` ones: start-up and shutdown delete only the
 * thumbnails the server listed in its manifest (#15 point 7).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MANIFEST, ThumbnailService } from "../src/thumbs/thumbnail_service.ts";
import { RoomBus, roomBusName } from "../src/rooms/bus.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("cleanStale deletes the listed rooms' thumbnails and temp files, nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sfu-thumbs-" });
  try {
    for (
      const name of ["mine.jpg", ".mine.0123abcd.tmp", "theirs.jpg", ".theirs.0123abcd.tmp", "notes.txt"]
    ) {
      await Deno.writeTextFile(join(dir, name), "x");
    }
    await Deno.writeTextFile(join(dir, MANIFEST), "mine\n../notes\n\n");
    assert.equal(await ThumbnailService.cleanStale(dir), 2);
    assert(!await exists(join(dir, "mine.jpg")));
    assert(!await exists(join(dir, ".mine.0123abcd.tmp")));
    assert(!await exists(join(dir, MANIFEST)));
    for (const name of ["theirs.jpg", ".theirs.0123abcd.tmp", "notes.txt"]) {
      assert(await exists(join(dir, name)), `${name} was deleted`);
    }
    // No manifest: nothing to delete.
    assert.equal(await ThumbnailService.cleanStale(dir), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a room is listed in the manifest when its first keyframe arrives", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sfu-thumbs-" });
  const busName = roomBusName(crypto.randomUUID());
  const bus = new RoomBus(busName);
  const service = new ThumbnailService({ busName, storageDir: dir, intervalMs: 60_000, log: () => {} });
  try {
    bus.publish({
      type: "keyframe",
      roomId: "stage",
      format: "h264",
      data: new Uint8Array([0, 0, 0, 1, 0x65, 0x88]),
    });
    bus.publish({
      type: "keyframe",
      roomId: "stage",
      format: "h264",
      data: new Uint8Array([0, 0, 0, 1, 0x65, 0x88]),
    });
    const text = await waitFor(
      "the manifest to list the room",
      () => Deno.readTextFile(join(dir, MANIFEST)).catch(() => ""),
      (t) => t !== "",
    );
    assert.equal(text, "stage\n");
  } finally {
    bus.close();
    await service.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the server leaves other people's .jpg files in STORAGE_DIR alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sfu-storage-" });
  const theirs = join(dir, "lobby.jpg");
  try {
    await Deno.writeTextFile(theirs, "a user's picture");
    const server = await startServerProcess({ STORAGE_DIR: dir });
    assert(await exists(theirs), "start-up deleted lobby.jpg, which the server never wrote");
    await server.stop();
    assert(await exists(theirs), "shutdown deleted lobby.jpg, which the server never wrote");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
