/** Thumbnails driven by the room bus: keyframes in, JPEG files and `thumbnail-updated` events out. */
import { RoomBus } from "../rooms/bus.ts";
import { type ThumbnailCounters, Thumbnailer } from "./thumbnailer.ts";

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

  constructor(options: ThumbnailServiceOptions) {
    this.#bus = new RoomBus(options.busName);
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
        this.#thumbnailer.offerKeyframe(event.roomId, event.data, performance.now(), event.format);
      } else if (event.type === "room-closed") void this.#thumbnailer.remove(event.roomId);
    });
  }

  /** Thumbnails attempted and failed since start. */
  get counters(): ThumbnailCounters {
    return this.#thumbnailer.counters;
  }

  /** Removes thumbnails left by an earlier run. */
  static cleanStale(storageDir: string): Promise<unknown> {
    return Thumbnailer.cleanStale(storageDir);
  }

  async close(): Promise<void> {
    this.#bus.close();
    await this.#thumbnailer.close();
  }
}
