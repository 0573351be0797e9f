/**
 * Thumbnails driven by the room bus: keyframes in, JPEG files and `thumbnail-updated` events out.
 *
 * STORAGE_DIR may hold other files, even `<name>.jpg` ones, so the service deletes only what it wrote: each
 * room is listed in {@link MANIFEST} before its first thumbnail is made, and start-up and shutdown delete
 * the listed rooms' files (an earlier run's, after a crash) and nothing else.
 */
import { join } from "node:path";
import { RoomBus } from "../rooms/bus.ts";
import { isValidRoomId, type ThumbnailCounters, Thumbnailer } from "./thumbnailer.ts";

/** The list of rooms this server made thumbnails for, one id per line, in STORAGE_DIR. */
export const MANIFEST = ".thumbnails-written";

/** Options of the thumbnail service. */
export interface ThumbnailServiceOptions {
  busName: string;
  storageDir: string;
  intervalMs: number;
  log: (level: "debug" | "info" | "warn" | "error", message: string) => void;
}

/** Subscribes a {@link Thumbnailer} to the room bus; everything it learns comes from bus messages. */
export class ThumbnailService {
  #bus: RoomBus;
  #thumbnailer: Thumbnailer;
  #manifestPath: string;
  #listed = new Set<string>();
  #manifestWrites: Promise<void> = Promise.resolve();

  constructor(options: ThumbnailServiceOptions) {
    this.#bus = new RoomBus(options.busName);
    this.#manifestPath = join(options.storageDir, MANIFEST);
    this.#thumbnailer = new Thumbnailer({
      storageDir: options.storageDir,
      intervalMs: options.intervalMs,
      log: (message) => options.log("warn", message),
      onThumbnail: (roomId, info) => {
        this.#bus.publish({
          type: "thumbnail-updated",
          roomId,
          updatedAt: info.updatedAt.toISOString(),
          width: info.width,
          height: info.height,
        });
      },
    });
    this.#bus.subscribe((event) => {
      if (event.type === "keyframe") {
        this.#list(event.roomId);
        this.#thumbnailer.offerKeyframe(event.roomId, event.data, performance.now(), event.format);
      } else if (event.type === "room-closed") void this.#thumbnailer.remove(event.roomId);
    });
  }

  /** Thumbnails attempted and failed since start. */
  get counters(): ThumbnailCounters {
    return this.#thumbnailer.counters;
  }

  /**
   * Deletes the thumbnails (and temp files) of the rooms listed in the manifest, then the manifest: at
   * start-up what an earlier run left, at shutdown what this run wrote. Returns how many files went.
   */
  static async cleanStale(storageDir: string): Promise<number> {
    const manifest = join(storageDir, MANIFEST);
    let listed: string[];
    try {
      listed = (await Deno.readTextFile(manifest)).split("\n").filter((id) => isValidRoomId(id));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return 0;
      throw e;
    }
    const rooms = new Set(listed);
    let removed = 0;
    const remove = async (name: string) => {
      try {
        await Deno.remove(join(storageDir, name));
        removed++;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    };
    for (const room of rooms) await remove(`${room}.jpg`);
    // Temp files of an interrupted write: `.<room>.<8 hex>.tmp` (see Thumbnailer), listed rooms only.
    for await (const entry of Deno.readDir(storageDir)) {
      const temp = /^\.([A-Za-z0-9_-]{1,64})\.[0-9a-f]{8}\.tmp$/.exec(entry.name);
      if (entry.isFile && temp && rooms.has(temp[1])) await remove(entry.name);
    }
    await Deno.remove(manifest).catch(() => {});
    return removed;
  }

  async close(): Promise<void> {
    this.#bus.close();
    await this.#thumbnailer.close();
    await this.#manifestWrites;
  }

  /** Lists `roomId` in the manifest before its first thumbnail is written. */
  #list(roomId: string): void {
    if (this.#listed.has(roomId) || !isValidRoomId(roomId)) return;
    this.#listed.add(roomId);
    this.#manifestWrites = this.#manifestWrites.then(() =>
      Deno.writeTextFile(this.#manifestPath, `${roomId}\n`, { append: true }).catch(() => {})
    );
  }
}
