/** The room list as the bus tells it: live rooms with their latest info and thumbnail, for HTTP and SSE. */
import { type RoomBus, type RoomEvent, type RoomInfo } from "./bus.ts";

/** A live room as listed. */
export interface ListedRoom extends RoomInfo {
  thumbnail: { updatedAt: string; width: number; height: number } | null;
}

/** Keeps the live rooms from bus events and tells listeners when the list changed. */
export class RoomDirectory {
  #rooms = new Map<string, ListedRoom>();
  #listeners = new Set<(event: RoomEvent) => void>();
  #unsubscribe: () => void;

  constructor(bus: RoomBus) {
    this.#unsubscribe = bus.subscribe((event) => this.apply(event));
  }

  /** Applies one bus event (exposed for tests). */
  apply(event: RoomEvent): void {
    switch (event.type) {
      case "room-opened":
      case "room-changed": {
        const previous = this.#rooms.get(event.room.id);
        if (!previous && event.type === "room-changed") return; // a late change of a closed room
        this.#rooms.set(event.room.id, { ...event.room, thumbnail: previous?.thumbnail ?? null });
        break;
      }
      case "room-closed":
        if (!this.#rooms.delete(event.roomId)) return;
        break;
      case "thumbnail-updated": {
        const room = this.#rooms.get(event.roomId);
        if (!room) return;
        room.thumbnail = { updatedAt: event.updatedAt, width: event.width, height: event.height };
        break;
      }
      default:
        return;
    }
    for (const listener of this.#listeners) listener(event);
  }

  /** Live rooms, oldest first. */
  list(): ListedRoom[] {
    return [...this.#rooms.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(id: string): ListedRoom | undefined {
    return this.#rooms.get(id);
  }

  /** Calls `listener` after every change of the list; returns the unsubscribe function. */
  onChange(listener: (event: RoomEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#unsubscribe();
    this.#listeners.clear();
  }
}
