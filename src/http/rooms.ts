/**
 * The room list as JSON (`GET /rooms`, `GET /rooms/<id>`) in the seed's shape, `{"rooms": [{id,
 * viewer_count, ...}]}`, and the room thumbnails (`GET /rooms/<id>/thumbnail.jpg[?w=]`).
 */
import { join } from "node:path";
import type { ListedRoom, RoomDirectory } from "../rooms/directory.ts";
import { resizeJpeg } from "../thumbs/thumbnailer.ts";
import { HttpError } from "./body.ts";
import type { RoomFilter } from "./auth.ts";

/** One live room as the API shows it. */
export interface RoomJson {
  id: string;
  viewer_count: number;
  created_at: string;
  video: {
    codec: string;
    profile: string | null;
    width: number | null;
    height: number | null;
    fps: number | null;
  };
  audio: { codec: string } | null;
  bitrate_kbps: number;
  thumbnail_url: string | null;
  takeovers: number;
  /** Simulcast: the publisher's layers (empty for one encoding). */
  layers: {
    encoding_id: string;
    width: number | null;
    height: number | null;
    bitrate_kbps: number;
    active: boolean;
  }[];
}

/** A listed room in API form. */
export function roomJson(room: ListedRoom): RoomJson {
  return {
    id: room.id,
    viewer_count: room.viewerCount,
    created_at: room.createdAt,
    video: {
      codec: room.video.codec,
      // VP8 has no profiles.
      profile: room.video.profile || null,
      width: room.video.width ?? null,
      height: room.video.height ?? null,
      fps: room.video.fps ?? null,
    },
    audio: room.audio,
    bitrate_kbps: room.bitrateKbps,
    thumbnail_url: room.thumbnail
      ? `/rooms/${encodeURIComponent(room.id)}/thumbnail.jpg?v=${Date.parse(room.thumbnail.updatedAt)}`
      : null,
    takeovers: room.takeovers ?? 0,
    layers: (room.layers ?? []).map((l) => ({
      encoding_id: l.encodingId,
      width: l.width ?? null,
      height: l.height ?? null,
      bitrate_kbps: l.bitrateKbps,
      active: l.active,
    })),
  };
}

/** The live rooms in API form, oldest first; with `filter`, only those it shows. */
export function roomsJson(directory: RoomDirectory, filter?: RoomFilter): { rooms: RoomJson[] } {
  const rooms = directory.list();
  return { rooms: (filter ? rooms.filter((r) => filter.shows(r.id)) : rooms).map(roomJson) };
}

/** Widths `?w=` may ask for; others are refused so the cache stays small. */
export const THUMBNAIL_WIDTHS = [160, 320, 480];

/** Serves thumbnails from STORAGE_DIR with ETag/Last-Modified revalidation and cached small sizes. */
export class ThumbnailFiles {
  #storageDir: string;
  #directory: RoomDirectory;
  #resized = new Map<string, Uint8Array>();

  constructor(storageDir: string, directory: RoomDirectory) {
    this.#storageDir = storageDir;
    this.#directory = directory;
    directory.onChange((event) => {
      if (event.type === "room-closed" || event.type === "thumbnail-updated") {
        const prefix = `${event.roomId}|`;
        for (const key of this.#resized.keys()) if (key.startsWith(prefix)) this.#resized.delete(key);
      }
    });
  }

  async serve(req: Request, roomId: string, url: URL): Promise<Response> {
    const room = this.#directory.get(roomId);
    if (!room) throw new HttpError(404, `room "${roomId}" is not live`);
    if (!room.thumbnail) throw new HttpError(404, `room "${roomId}" has no thumbnail yet`);
    const widthParam = url.searchParams.get("w");
    const width = widthParam === null ? undefined : Number(widthParam);
    if (width !== undefined && !THUMBNAIL_WIDTHS.includes(width)) {
      throw new HttpError(400, `w must be one of ${THUMBNAIL_WIDTHS.join(", ")}`);
    }
    const updated = Date.parse(room.thumbnail.updatedAt);
    const etag = `"${updated.toString(36)}-${width ?? "full"}"`;
    const headers = {
      "Content-Type": "image/jpeg",
      "Cache-Control": "no-cache",
      ETag: etag,
      "Last-Modified": new Date(updated).toUTCString(),
    };
    if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
    let body: Uint8Array;
    try {
      body = await Deno.readFile(join(this.#storageDir, `${roomId}.jpg`));
    } catch {
      throw new HttpError(404, `room "${roomId}" has no thumbnail yet`);
    }
    if (width !== undefined) {
      const key = `${roomId}|${width}|${updated}`;
      let small = this.#resized.get(key);
      if (!small) {
        small = await resizeJpeg(body, width);
        this.#resized.set(key, small);
      }
      body = small;
    }
    return new Response(req.method === "HEAD" ? null : body as Uint8Array<ArrayBuffer>, { headers });
  }
}
