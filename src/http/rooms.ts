/** The room list as JSON (`GET /rooms`), in the seed's shape: `{"rooms": [{id, viewer_count, ...}]}`. */
import type { SessionManager } from "../rooms/sessions.ts";

/** One live room as the API shows it. */
export interface RoomJson {
  id: string;
  viewer_count: number;
  created_at: string;
  video: { codec: string };
  audio: { codec: string } | null;
}

/** The live rooms, oldest first. */
export function roomsJson(sessions: SessionManager): { rooms: RoomJson[] } {
  const rooms: RoomJson[] = [];
  for (const room of sessions.rooms.values()) {
    if (!room.live) continue;
    rooms.push({
      id: room.id,
      viewer_count: room.viewers.size,
      created_at: room.createdAt.toISOString(),
      video: { codec: "H264" },
      audio: room.audio ? { codec: "opus" } : null,
    });
  }
  return { rooms };
}
