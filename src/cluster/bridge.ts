/**
 * The cluster bridge: this node's room bus in, Redis out, and back. It registers the rooms published here,
 * keeps this node's viewer counts in Redis, follows the other nodes over pub/sub plus a periodic full read,
 * and posts the merged list on the directory's channel ({@link clusterBusName}), so `/rooms` and
 * `/notifications` show the whole cluster with the single-node message types and JSON.
 */
import { clusterBusName, RoomBus, type RoomEvent } from "../rooms/bus.ts";
import type { Log } from "../log.ts";
import { ClusterRoomTable, type RoomEntry } from "./room_table.ts";
import type { ClusterMessage } from "./messages.ts";
import type { RedisDirectory } from "./redis_directory.ts";

/** How the bridge is driven. */
export interface ClusterBridgeOptions {
  nodeId: string;
  /** The node's room bus (sessions and thumbnails post there). */
  busName: string;
  redis: RedisDirectory;
  /** Registrations expire after this long without a refresh (remote rooms are trusted no longer). */
  ttlMs: number;
  /** How often registrations are refreshed and the cluster read again. */
  refreshMs: number;
  log: Log;
  /** True for rooms whose media reaches this node through a relay right now. */
  isRelayed: (roomId: string) => boolean;
}

/** Keeps Redis and this node's directory in step. */
export class ClusterBridge {
  readonly table: ClusterRoomTable;
  #options: ClusterBridgeOptions;
  #mediaBus: RoomBus;
  #directoryBus: RoomBus;
  #relayIds = new Set<string>();
  #timer: ReturnType<typeof setInterval>;
  #lastRead = -Infinity;
  #closedListeners = new Set<(roomId: string) => void>();
  #refusedLogged = new Set<string>();
  #reading = false;
  #readAgain = false;
  #closed = false;

  constructor(options: ClusterBridgeOptions) {
    this.#options = options;
    this.table = new ClusterRoomTable(options.nodeId);
    this.#mediaBus = new RoomBus(options.busName);
    this.#directoryBus = new RoomBus(clusterBusName(options.busName));
    this.#mediaBus.subscribe((event) => this.#onLocalEvent(event));
    this.#timer = setInterval(() => this.#tick(), options.refreshMs);
  }

  /** Called by the Redis link when it (re)connects: register everything, then read the cluster. */
  onRedisReady(): void {
    void this.#registerAll().then(() => this.#read());
  }

  /** Called with each message of another node. */
  onRedisMessage(message: ClusterMessage): void {
    const table = this.table;
    switch (message.type) {
      case "room":
        // A node not seen yet (it just started): read Redis again, which validates its PUBLIC_URL.
        if (!table.setRemoteRoom(message.entry)) void this.#read();
        break;
      case "room-closed":
        table.deleteRemoteRoom(message.nodeId, message.roomId);
        break;
      case "viewers":
        table.setRemoteViewers(message.nodeId, message.roomId, message.count ?? undefined);
        break;
      case "node-left":
        table.deleteNode(message.nodeId);
        break;
    }
    this.#flush();
  }

  /** Calls `listener` with the id of every room that leaves the merged list (relays end with it). */
  onRoomClosed(listener: (roomId: string) => void): () => void {
    this.#closedListeners.add(listener);
    return () => this.#closedListeners.delete(listener);
  }

  /**
   * Live nodes this node sees, itself included. Without Redis the others count only until their
   * registrations could have expired, the same rule that drops their rooms from the list.
   */
  get nodeCount(): number {
    const stale = !this.#options.redis.ready && performance.now() - this.#lastRead > this.#options.ttlMs;
    return 1 + (stale ? 0 : this.table.remoteNodeCount);
  }

  /** Stops refreshing and deregisters this node (its rooms leave the other nodes' lists at once). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#mediaBus.close();
    this.#directoryBus.close();
    await this.#options.redis.close(this.table.localRoomIds());
  }

  #onLocalEvent(event: RoomEvent): void {
    const redis = this.#options.redis;
    switch (event.type) {
      case "room-opened":
      case "room-changed": {
        if (event.room.origin) {
          // A room relayed here: only this node's viewer count of it is ours to report.
          this.#relayIds.add(event.room.id);
          this.table.setRelayViewers(event.room.id, event.room.viewerCount);
          this.#write(() => redis.putViewers(event.room.id, event.room.viewerCount));
          break;
        }
        const before = this.table.localEntry(event.room.id);
        const viewersBefore = this.table.localViewers().get(event.room.id);
        this.table.setLocalRoom(event.room);
        const after = this.table.localEntry(event.room.id)!;
        if (!before || JSON.stringify(before.info) !== JSON.stringify(after.info)) this.#writeRoom(after);
        if (viewersBefore !== event.room.viewerCount) {
          this.#write(() => redis.putViewers(event.room.id, event.room.viewerCount));
        }
        break;
      }
      case "room-closed":
        if (this.#relayIds.delete(event.roomId)) {
          this.table.setRelayViewers(event.roomId, undefined);
          this.#write(() => redis.putViewers(event.roomId, undefined));
        } else if (this.table.localEntry(event.roomId)) {
          this.table.deleteLocalRoom(event.roomId);
          this.#write(() => redis.deleteRoom(event.roomId));
          this.#write(() => redis.putViewers(event.roomId, undefined));
        }
        break;
      case "thumbnail-updated":
        if (
          this.table.setLocalThumbnail(event.roomId, {
            updatedAt: event.updatedAt,
            width: event.width,
            height: event.height,
          })
        ) this.#writeRoom(this.table.localEntry(event.roomId)!);
        break;
      default:
        return;
    }
    this.#flush();
  }

  #writeRoom(entry: RoomEntry): void {
    this.#write(async () => {
      if (!(await this.#options.redis.putRoom(entry))) this.#logRefused(entry.info.id);
    });
  }

  /** Runs one Redis write; while Redis is down it is skipped (everything is written again on return). */
  #write(action: () => Promise<void>): void {
    if (this.#closed || !this.#options.redis.ready) return;
    action().catch(() => {});
  }

  async #registerAll(): Promise<void> {
    if (this.#closed || !this.#options.redis.ready) return;
    const rooms = this.table.localRoomIds().map((id) => this.table.localEntry(id)!);
    try {
      const refused = await this.#options.redis.register(rooms, this.table.localViewers());
      for (const id of refused) this.#logRefused(id);
    } catch { /* the link logs the outage; the next tick tries again */ }
  }

  /** Reads the whole cluster state from Redis (coalesced: one read at a time, one more if asked meanwhile). */
  async #read(): Promise<void> {
    if (this.#closed || !this.#options.redis.ready) return;
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    try {
      do {
        this.#readAgain = false;
        const snapshot = await this.#options.redis.snapshot();
        if (this.#closed) return;
        this.table.applySnapshot(snapshot, this.#options.isRelayed);
        this.#lastRead = performance.now();
        this.#flush();
      } while (this.#readAgain);
    } catch {
      /* the link logs the outage */
    } finally {
      this.#reading = false;
    }
  }

  #tick(): void {
    if (this.#options.redis.ready) {
      void this.#registerAll().then(() => this.#read());
      return;
    }
    // Without Redis nothing says the other nodes' rooms are still live once their registrations would
    // have expired; rooms still arriving here through a relay are live by definition.
    if (performance.now() - this.#lastRead > this.#options.ttlMs) {
      this.table.forgetRemote(this.#options.isRelayed);
      this.#flush();
    }
  }

  /** Posts what changed in the merged list on the directory's channel. */
  #flush(): void {
    if (this.#closed) return;
    for (const event of this.table.diff()) {
      this.#directoryBus.publish(event);
      if (event.type === "room-closed") {
        for (const listener of this.#closedListeners) listener(event.roomId);
      }
    }
  }

  #logRefused(roomId: string): void {
    if (this.#refusedLogged.has(roomId)) return;
    this.#refusedLogged.add(roomId);
    this.#options.log(
      "warn",
      `cluster: room ${roomId} is registered by another node; it stays local to this node`,
    );
  }
}
