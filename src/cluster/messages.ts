/**
 * What nodes write to Redis and say on its pub/sub channel, and the checks applied to everything read back:
 * another node's data is input like any request, so it is validated field by field before use.
 */
import type { RoomInfo } from "../rooms/bus.ts";
import type { RoomEntry, ThumbnailInfo } from "./room_table.ts";

/**
 * Redis keys and the channel (all under `sfu:`):
 *
 * | key / channel             | type    | holds                                         | lifetime                 |
 * |---------------------------|---------|-----------------------------------------------|--------------------------|
 * | `sfu:node:<node id>`      | string  | the node's PUBLIC_URL                         | TTL, refreshed           |
 * | `sfu:room:<room id>`      | hash    | `node` (origin NODE_ID), `entry` (JSON)       | TTL, refreshed by origin |
 * | `sfu:viewers:<node id>`   | hash    | room id -> viewers on that node               | TTL, refreshed           |
 * | `sfu:events`              | pub/sub | {@link ClusterMessage} as JSON                | -                        |
 */
export const KEYS = {
  node: (nodeId: string) => `sfu:node:${nodeId}`,
  room: (roomId: string) => `sfu:room:${roomId}`,
  viewers: (nodeId: string) => `sfu:viewers:${nodeId}`,
  nodePattern: "sfu:node:*",
  roomPattern: "sfu:room:*",
  channel: "sfu:events",
};

/** A message on the `sfu:events` channel; receivers ignore their own. */
export type ClusterMessage =
  /** A room published on `entry.nodeId` opened or changed (size, bitrate, thumbnail). */
  | { type: "room"; entry: RoomEntry }
  | { type: "room-closed"; nodeId: string; roomId: string }
  /** Viewers of a room on `nodeId`; null when that node no longer holds the room (its relay ended). */
  | { type: "viewers"; nodeId: string; roomId: string; count: number | null }
  /** The node shut down: drop its rooms now rather than at TTL expiry. */
  | { type: "node-left"; nodeId: string };

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whether `id` can be a NODE_ID or room id (no `:`, so keys cannot collide). */
export function isId(id: unknown): id is string {
  return typeof id === "string" && ID.test(id);
}

/** A PUBLIC_URL read from Redis as an origin (`http(s)://host[:port]`), or undefined when it is not one. */
export function parseNodeUrl(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length > 512) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.origin === value ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a room entry written by {@link RoomEntry} JSON; undefined when anything is off. */
export function parseEntry(value: unknown): RoomEntry | undefined {
  const v = typeof value === "string" ? safeJson(value) : value;
  if (!isObject(v) || !isId(v.nodeId)) return undefined;
  const info = parseInfo(v.info);
  if (!info) return undefined;
  const thumbnail = v.thumbnail === null || v.thumbnail === undefined ? null : parseThumbnail(v.thumbnail);
  if (thumbnail === undefined) return undefined;
  return { nodeId: v.nodeId, info, thumbnail };
}

/** Reads one pub/sub message; undefined when it is malformed. */
export function parseMessage(text: string): ClusterMessage | undefined {
  const v = safeJson(text);
  if (!isObject(v)) return undefined;
  switch (v.type) {
    case "room": {
      const entry = parseEntry(v.entry);
      return entry && { type: "room", entry };
    }
    case "room-closed":
      return isId(v.nodeId) && isId(v.roomId)
        ? { type: "room-closed", nodeId: v.nodeId, roomId: v.roomId }
        : undefined;
    case "viewers":
      if (!isId(v.nodeId) || !isId(v.roomId)) return undefined;
      if (v.count !== null && !isCount(v.count)) return undefined;
      return { type: "viewers", nodeId: v.nodeId, roomId: v.roomId, count: v.count };
    case "node-left":
      return isId(v.nodeId) ? { type: "node-left", nodeId: v.nodeId } : undefined;
    default:
      return undefined;
  }
}

/** Reads a viewers hash (`HGETALL sfu:viewers:<node>`). */
export function parseViewers(hash: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [roomId, value] of Object.entries(hash)) {
    const count = Number(value);
    if (isId(roomId) && isCount(count)) out.set(roomId, count);
  }
  return out;
}

function parseInfo(v: unknown): RoomInfo | undefined {
  if (!isObject(v) || !isId(v.id) || typeof v.createdAt !== "string" || v.createdAt.length > 40) {
    return undefined;
  }
  if (Number.isNaN(Date.parse(v.createdAt)) || !isCount(v.bitrateKbps)) return undefined;
  const video = v.video;
  if (!isObject(video) || !isShortString(video.codec)) return undefined;
  // VP8 has no profile: an empty one is valid.
  if (typeof video.profile !== "string" || video.profile.length > 32) return undefined;
  const optional = (x: unknown) => x === undefined || x === null || isCount(x);
  if (!optional(video.width) || !optional(video.height) || !optional(video.fps)) return undefined;
  const audio = v.audio;
  if (audio !== null && (!isObject(audio) || !isShortString(audio.codec))) return undefined;
  return {
    id: v.id,
    createdAt: v.createdAt,
    viewerCount: 0,
    video: {
      codec: video.codec,
      profile: video.profile,
      width: (video.width ?? undefined) as number | undefined,
      height: (video.height ?? undefined) as number | undefined,
      fps: (video.fps ?? undefined) as number | undefined,
    },
    audio: audio === null ? null : { codec: audio.codec as string },
    bitrateKbps: v.bitrateKbps,
  };
}

function parseThumbnail(v: unknown): ThumbnailInfo | undefined {
  if (!isObject(v) || typeof v.updatedAt !== "string" || Number.isNaN(Date.parse(v.updatedAt))) {
    return undefined;
  }
  if (!isCount(v.width) || !isCount(v.height)) return undefined;
  return { updatedAt: v.updatedAt, width: v.width, height: v.height };
}

function safeJson(text: string): unknown {
  if (text.length > 16384) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1e9;
}

function isShortString(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= 32;
}
