/**
 * The cluster's room list as one node sees it: its own rooms (from its room bus), the other nodes' rooms
 * and viewer counts (from Redis), merged into the list the directory shows. Pure: state in, bus events out,
 * no Redis, no clock.
 */
import type { RoomEvent, RoomInfo } from "../rooms/bus.ts";

/** A room's latest thumbnail, as `thumbnail-updated` describes it. */
export interface ThumbnailInfo {
  updatedAt: string;
  width: number;
  height: number;
}

/** A room as its origin node registers it in Redis (the viewer count there is the origin's own). */
export interface RoomEntry {
  nodeId: string;
  info: RoomInfo;
  thumbnail: ThumbnailInfo | null;
}

/** What one read of Redis found: live nodes, their rooms and their per-room viewer counts. */
export interface ClusterSnapshot {
  /** NODE_ID -> PUBLIC_URL of every node whose registration has not expired. */
  nodes: Map<string, string>;
  rooms: RoomEntry[];
  /** NODE_ID -> room id -> viewers on that node. */
  viewers: Map<string, Map<string, number>>;
}

interface LocalRoom {
  info: RoomInfo;
  thumbnail: ThumbnailInfo | null;
}

interface Posted {
  info: string;
  thumbnail: string;
}

/** Merges this node's rooms with the cluster's and says what changed since the last {@link diff}. */
export class ClusterRoomTable {
  readonly nodeId: string;
  #local = new Map<string, LocalRoom>();
  /** Viewers on this node per room, for rooms published here and rooms relayed here. */
  #localViewers = new Map<string, number>();
  #nodes = new Map<string, string>();
  #remote = new Map<string, RoomEntry>();
  #remoteViewers = new Map<string, Map<string, number>>();
  #posted = new Map<string, Posted>();

  constructor(nodeId: string) {
    this.nodeId = nodeId;
  }

  /** A room published on this node opened or changed (its viewer count is taken as this node's). */
  setLocalRoom(info: RoomInfo): void {
    const previous = this.#local.get(info.id);
    this.#local.set(info.id, { info: withoutViewers(info), thumbnail: previous?.thumbnail ?? null });
    this.#localViewers.set(info.id, info.viewerCount);
  }

  /** A room published on this node closed. */
  deleteLocalRoom(roomId: string): void {
    this.#local.delete(roomId);
    this.#localViewers.delete(roomId);
  }

  /** A new thumbnail of a room published here; false when the room is not one of them. */
  setLocalThumbnail(roomId: string, thumbnail: ThumbnailInfo): boolean {
    const room = this.#local.get(roomId);
    if (!room) return false;
    room.thumbnail = thumbnail;
    return true;
  }

  /** The registration of a room published here, or undefined. */
  localEntry(roomId: string): RoomEntry | undefined {
    const room = this.#local.get(roomId);
    if (!room) return undefined;
    return { nodeId: this.nodeId, info: room.info, thumbnail: room.thumbnail };
  }

  /** Rooms published on this node. */
  localRoomIds(): string[] {
    return [...this.#local.keys()];
  }

  /** Viewers on this node of a room relayed here (undefined: the relay ended). */
  setRelayViewers(roomId: string, count: number | undefined): void {
    if (count === undefined) this.#localViewers.delete(roomId);
    else this.#localViewers.set(roomId, count);
  }

  /** This node's viewer counts by room (published or relayed here). */
  localViewers(): Map<string, number> {
    return new Map(this.#localViewers);
  }

  /**
   * Replaces everything known about other nodes with a fresh read of Redis. A room missing from it that
   * `keep` vouches for (its media still arrives here through a relay) stays, with its origin's URL: after a
   * Redis outage the origin may not have registered again yet, and a dead origin ends the relay anyway.
   */
  applySnapshot(snapshot: ClusterSnapshot, keep: (roomId: string) => boolean = () => false): void {
    const kept: { entry: RoomEntry; url: string }[] = [];
    for (const [id, entry] of this.#remote) {
      const url = this.#nodes.get(entry.nodeId);
      if (url !== undefined && keep(id)) kept.push({ entry, url });
    }
    this.#nodes = new Map(snapshot.nodes);
    this.#nodes.delete(this.nodeId);
    this.#remote.clear();
    for (const entry of snapshot.rooms) this.setRemoteRoom(entry);
    for (const { entry, url } of kept) {
      if (this.#remote.has(entry.info.id)) continue;
      if (!this.#nodes.has(entry.nodeId)) this.#nodes.set(entry.nodeId, url);
      this.#remote.set(entry.info.id, entry);
    }
    this.#remoteViewers.clear();
    for (const [nodeId, rooms] of snapshot.viewers) {
      if (nodeId !== this.nodeId && this.#nodes.has(nodeId)) this.#remoteViewers.set(nodeId, new Map(rooms));
    }
  }

  /** Another node's room opened or changed. False (ignored) when that node is not known to be live. */
  setRemoteRoom(entry: RoomEntry): boolean {
    if (entry.nodeId === this.nodeId || !this.#nodes.has(entry.nodeId)) return false;
    this.#remote.set(entry.info.id, { ...entry, info: withoutViewers(entry.info) });
    return true;
  }

  /** Another node's room closed (only that node can close it). */
  deleteRemoteRoom(nodeId: string, roomId: string): void {
    if (this.#remote.get(roomId)?.nodeId === nodeId) this.#remote.delete(roomId);
    this.#remoteViewers.get(nodeId)?.delete(roomId);
  }

  /** Another node's viewer count of a room changed (undefined: that node no longer holds the room). */
  setRemoteViewers(nodeId: string, roomId: string, count: number | undefined): void {
    if (nodeId === this.nodeId || !this.#nodes.has(nodeId)) return;
    let rooms = this.#remoteViewers.get(nodeId);
    if (!rooms) this.#remoteViewers.set(nodeId, rooms = new Map());
    if (count === undefined) rooms.delete(roomId);
    else rooms.set(roomId, count);
  }

  /** A node left (shut down, or its registration expired): its rooms and counts go. */
  deleteNode(nodeId: string): void {
    this.#nodes.delete(nodeId);
    this.#remoteViewers.delete(nodeId);
    for (const [id, entry] of this.#remote) if (entry.nodeId === nodeId) this.#remote.delete(id);
  }

  /**
   * Forgets other nodes' rooms that `keep` does not vouch for (Redis has been unreachable too long to
   * trust them); `keep` is true for rooms whose media still arrives here through a relay.
   */
  forgetRemote(keep: (roomId: string) => boolean): void {
    for (const id of this.#remote.keys()) if (!keep(id)) this.#remote.delete(id);
    for (const rooms of this.#remoteViewers.values()) {
      for (const id of rooms.keys()) if (!keep(id)) rooms.delete(id);
    }
  }

  /** Whether a node is registered and live, and its PUBLIC_URL. */
  nodeUrl(nodeId: string): string | undefined {
    return this.#nodes.get(nodeId);
  }

  /** A room published on another (live) node, with that node's PUBLIC_URL. */
  remoteRoom(roomId: string): { entry: RoomEntry; url: string } | undefined {
    if (this.#local.has(roomId)) return undefined;
    const entry = this.#remote.get(roomId);
    const url = entry && this.#nodes.get(entry.nodeId);
    return entry && url ? { entry, url } : undefined;
  }

  /** Other nodes than the origin that hold the room (they report a viewer count for it: a relay). */
  relayingNodes(roomId: string): string[] {
    const origin = this.#remote.get(roomId)?.nodeId;
    const nodes: string[] = [];
    for (const [nodeId, rooms] of this.#remoteViewers) {
      if (nodeId !== origin && rooms.has(roomId) && this.#nodes.has(nodeId)) nodes.push(nodeId);
    }
    return nodes;
  }

  /** The merged list: every live room of the cluster, viewer counts summed over nodes. */
  rooms(): { info: RoomInfo; thumbnail: ThumbnailInfo | null }[] {
    const out: { info: RoomInfo; thumbnail: ThumbnailInfo | null }[] = [];
    for (const [id, room] of this.#local) {
      out.push({ info: { ...room.info, viewerCount: this.#viewers(id) }, thumbnail: room.thumbnail });
    }
    for (const [id, entry] of this.#remote) {
      const url = this.#nodes.get(entry.nodeId);
      if (this.#local.has(id) || url === undefined) continue;
      out.push({
        info: { ...entry.info, viewerCount: this.#viewers(id), origin: { nodeId: entry.nodeId, url } },
        thumbnail: entry.thumbnail,
      });
    }
    return out;
  }

  /** Other nodes known to be live (this node not included). */
  get remoteNodeCount(): number {
    return this.#nodes.size;
  }

  /** How many rooms {@link rooms} lists, without building the list. */
  roomCount(): number {
    let n = this.#local.size;
    for (const [id, entry] of this.#remote) {
      if (!this.#local.has(id) && this.#nodes.has(entry.nodeId)) n++;
    }
    return n;
  }

  /** Room-bus events that turn the list last reported into the current one (then remembers it). */
  diff(): RoomEvent[] {
    const events: RoomEvent[] = [];
    const seen = new Set<string>();
    for (const { info, thumbnail } of this.rooms()) {
      seen.add(info.id);
      const now: Posted = { info: JSON.stringify(info), thumbnail: JSON.stringify(thumbnail) };
      const before = this.#posted.get(info.id);
      if (!before) events.push({ type: "room-opened", room: info });
      else if (before.info !== now.info) events.push({ type: "room-changed", room: info });
      if (thumbnail && before?.thumbnail !== now.thumbnail) {
        events.push({ type: "thumbnail-updated", roomId: info.id, ...thumbnail });
      }
      this.#posted.set(info.id, now);
    }
    for (const id of this.#posted.keys()) {
      if (seen.has(id)) continue;
      this.#posted.delete(id);
      events.push({ type: "room-closed", roomId: id });
    }
    return events;
  }

  #viewers(roomId: string): number {
    let total = this.#localViewers.get(roomId) ?? 0;
    for (const [nodeId, rooms] of this.#remoteViewers) {
      if (this.#nodes.has(nodeId)) total += rooms.get(roomId) ?? 0;
    }
    return total;
  }
}

function withoutViewers(info: RoomInfo): RoomInfo {
  const { origin: _origin, ...rest } = info;
  return { ...rest, viewerCount: 0 };
}
