/**
 * The rooms of this node, one table for both kinds of feed: rooms published here (a WHIP session's peer is
 * the source) and rooms relayed from another cluster node (a relay's pull session is). Room ids are unique
 * across both.
 */
import type { Peer } from "../peer/peer.ts";
import type { Room, RoomSource } from "./room.ts";

type Entry = { feed: "publisher"; room: Room<Peer> } | { feed: "relay"; room: Room<RoomSource> };

/** Rooms by id, published here or relayed. */
export class RoomTable {
  readonly #entries = new Map<string, Entry>();

  /** The room with this id, whatever feeds it. */
  get(id: string): Room<RoomSource> | undefined {
    return this.#entries.get(id)?.room;
  }

  /** Whether a room with this id exists here. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Number of rooms of both kinds. */
  get size(): number {
    return this.#entries.size;
  }

  /** The room with this id when a publisher here feeds it. */
  published(id: string): Room<Peer> | undefined {
    const entry = this.#entries.get(id);
    return entry?.feed === "publisher" ? entry.room : undefined;
  }

  /** Whether the room with this id is relayed from another node. */
  isRelayed(id: string): boolean {
    return this.#entries.get(id)?.feed === "relay";
  }

  /** Every room, published or relayed. */
  *values(): IterableIterator<Room<RoomSource>> {
    for (const entry of this.#entries.values()) yield entry.room;
  }

  /** The rooms published here. */
  *publishedRooms(): IterableIterator<Room<Peer>> {
    for (const entry of this.#entries.values()) if (entry.feed === "publisher") yield entry.room;
  }

  /** Adds a room a publisher here feeds (replacing one of the same id). */
  addPublished(room: Room<Peer>): void {
    this.#entries.set(room.id, { feed: "publisher", room });
  }

  /** Adds a room relayed from another node. */
  addRelayed(room: Room<RoomSource>): void {
    this.#entries.set(room.id, { feed: "relay", room });
  }

  /** Removes `room` if it is the one listed under its id; false when it was not. */
  delete(room: Room<RoomSource>): boolean {
    if (this.#entries.get(room.id)?.room !== room) return false;
    return this.#entries.delete(room.id);
  }
}
