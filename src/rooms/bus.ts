/**
 * The room bus: room lifecycle events on a BroadcastChannel, so the parts of the server that care (room
 * list, SSE feed, thumbnailer, later workers or other processes) subscribe instead of reaching into the
 * media code. Messages are plain structured-clonable objects:
 *
 * | type            | sent when                                                   | fields            |
 * |-----------------|-------------------------------------------------------------|-------------------|
 * | `room-opened`   | a publisher's WHIP session is established (DTLS up)         | `roomId`          |
 * | `room-closed`   | the publisher left (DELETE, DTLS close, consent timeout)    | `roomId`          |
 * | `room-changed`  | viewer count, codec details, bitrate or thumbnail changed   | `roomId`, `what`  |
 *
 * A BroadcastChannel does not deliver to the object that posted, so each party opens its own channel.
 */

/** A message on the room bus. */
export type RoomEvent =
  | { type: "room-opened"; roomId: string }
  | { type: "room-closed"; roomId: string }
  | { type: "room-changed"; roomId: string; what: "viewers" | "video" | "thumbnail" | "bitrate" };

/** Name of the BroadcastChannel the room bus runs on; `suffix` separates servers in one process (tests). */
export function roomBusName(suffix: string): string {
  return `rooms:${suffix}`;
}

/** One party's connection to the room bus. */
export class RoomBus {
  #channel: BroadcastChannel;
  #listeners = new Set<(event: RoomEvent) => void>();

  constructor(name: string) {
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (message: MessageEvent<RoomEvent>) => {
      for (const listener of this.#listeners) listener(message.data);
    };
  }

  /** Posts an event to every other party on the bus. */
  publish(event: RoomEvent): void {
    this.#channel.postMessage(event);
  }

  /** Calls `listener` for every event other parties post; returns the unsubscribe function. */
  subscribe(listener: (event: RoomEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#listeners.clear();
    this.#channel.close();
  }
}
