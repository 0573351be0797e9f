/**
 * The room bus: room events on a BroadcastChannel, so the parts of the server that care (room directory,
 * SSE feed, thumbnailer; later workers) subscribe instead of reaching into the media code. Messages are
 * plain structured-clonable objects; this table is the one place they are documented.
 *
 * | type                | posted by  | when                                                     | fields                  |
 * |---------------------|------------|----------------------------------------------------------|-------------------------|
 * | `room-opened`       | sessions   | a publisher's WHIP session is established (DTLS up)      | `room`: {@link RoomInfo}|
 * | `room-changed`      | sessions   | viewers, picture size, frame rate, bitrate; a takeover   | `room`: {@link RoomInfo}|
 * | `room-closed`       | sessions   | the publisher left (DELETE, DTLS close, consent timeout) | `roomId`                |
 * | `keyframe`          | sessions   | a complete video keyframe arrived (at most 1 per second) | `roomId`, `format` (ffmpeg `-f`: h264/hevc Annex B, ivf for VP8/VP9/AV1), `data` |
 * | `thumbnail-updated` | thumbnails | a new JPEG for the room is in STORAGE_DIR                | `roomId`, `updatedAt`, `width`, `height` |
 *
 * A BroadcastChannel does not deliver to the object that posted, so each party opens its own channel.
 *
 * Cluster mode (REDIS_URL set, src/cluster/): a room relayed from another node is also a room here, and its
 * `room-changed` events carry `room.origin`; the cluster bridge turns them into this node's viewer count
 * and never registers such a room as its own. The directory then does not listen on this channel but on
 * {@link clusterBusName}, where the bridge posts the merged cluster list with the same four message types
 * (`room-opened`, `room-changed`, `room-closed`, `thumbnail-updated`): every node's rooms, `viewerCount`
 * summed over the nodes (relay pulls not counted), and `origin` set on rooms published on another node.
 */

import type { LayerInfo } from "./layers.ts";

/** What the media side knows about a live room; the directory adds the thumbnail. */
export interface RoomInfo {
  id: string;
  createdAt: string;
  viewerCount: number;
  video: { codec: string; profile: string; width?: number; height?: number; fps?: number };
  audio: { codec: string } | null;
  bitrateKbps: number;
  /** Simulcast: the publisher's layers (absent for one encoding). */
  layers?: LayerInfo[];
  /** How many times another publisher session took the room over; absent for rooms relayed in a cluster. */
  takeovers?: number;
  /** Cluster mode: the node the publisher is on, when that is not this node (not shown in the JSON). */
  origin?: RoomOrigin;
}

/** A room's origin node in a cluster: its NODE_ID and its PUBLIC_URL as registered in Redis. */
export interface RoomOrigin {
  nodeId: string;
  url: string;
}

/** How a keyframe on the bus is packaged, as ffmpeg names the input format. */
export type KeyframeFormat = "h264" | "hevc" | "ivf";

/** A message on the room bus. */
export type RoomEvent =
  | { type: "room-opened"; room: RoomInfo }
  | { type: "room-changed"; room: RoomInfo }
  | { type: "room-closed"; roomId: string }
  | { type: "keyframe"; roomId: string; format: KeyframeFormat; data: Uint8Array }
  | { type: "thumbnail-updated"; roomId: string; updatedAt: string; width: number; height: number };

/** Name of the BroadcastChannel the room bus runs on; `suffix` separates servers in one process (tests). */
export function roomBusName(suffix: string): string {
  return `rooms:${suffix}`;
}

/** Name of the channel the cluster bridge feeds the directory on (see the table above). */
export function clusterBusName(busName: string): string {
  return `${busName}:cluster`;
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
