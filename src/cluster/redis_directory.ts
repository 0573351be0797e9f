/**
 * This node's link to the cluster's Redis: registers the node, its rooms and its viewer counts with a TTL,
 * publishes changes on the `sfu:events` channel, and reads everything back as a {@link ClusterSnapshot}.
 *
 * Redis being down is a normal state: commands fail at once instead of queueing (ioredis'
 * `enableOfflineQueue: false`), the client reconnects with backoff by itself, and `onReady` tells the owner
 * to register everything again. The outage and the return are logged once each.
 */
import { Redis } from "ioredis";
import type { Log } from "../log.ts";
import type { ClusterSnapshot, RoomEntry } from "./room_table.ts";
import {
  type ClusterMessage,
  isId,
  KEYS,
  parseEntry,
  parseMessage,
  parseNodeUrl,
  parseViewers,
} from "./messages.ts";

/** Settings of the Redis link. */
export interface RedisDirectoryOptions {
  url: string;
  nodeId: string;
  publicUrl: string;
  /** Lifetime of every registration; refreshed by the owner well before it runs out. */
  ttlSeconds: number;
  log: Log;
  /** A message from another node. */
  onMessage: (message: ClusterMessage) => void;
  /** Connected (first time or after an outage): register everything and read the cluster again. */
  onReady: () => void;
}

/** Writes a room only when it is free or already this node's, so two nodes cannot steal a room id. */
const PUT_ROOM = `
local owner = redis.call('HGET', KEYS[1], 'node')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'entry', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`;

/** Deletes a room only when this node owns it. */
const DELETE_ROOM = `
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Backoff between reconnection attempts: 250 ms doubling to 5 s. */
function retryDelay(attempt: number): number {
  return Math.min(250 * 2 ** Math.min(attempt, 10), 5000);
}

/** The Redis side of cluster mode. */
export class RedisDirectory {
  #options: RedisDirectoryOptions;
  #cmd: Redis;
  #sub: Redis;
  #ready = false;
  #down = false;
  #closed = false;
  #everReady = false;
  #reconnects = 0;

  constructor(options: RedisDirectoryOptions) {
    this.#options = options;
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy: retryDelay,
    };
    this.#cmd = new Redis(options.url, { ...common, connectionName: `sfu-${options.nodeId}` });
    this.#sub = new Redis(options.url, { ...common, connectionName: `sfu-${options.nodeId}-sub` });
    this.#cmd.on("error", (e: Error) => this.#onError(e));
    this.#sub.on("error", (e: Error) => this.#onError(e));
    this.#cmd.on("ready", () => {
      this.#ready = true;
      const again = this.#down || this.#everReady;
      if (again) this.#reconnects++;
      this.#down = false;
      this.#everReady = true;
      options.log(
        "info",
        `cluster: Redis ${again ? "reachable again" : "connected"}; registering node ${options.nodeId}`,
      );
      options.onReady();
    });
    this.#cmd.on("close", () => {
      this.#ready = false;
    });
    this.#sub.on("ready", () => {
      this.#sub.subscribe(KEYS.channel).catch(() => {});
      // Messages sent while the subscription was down are lost: read the whole state again.
      if (this.#ready) options.onReady();
    });
    this.#sub.on("message", (_channel: string, text: string) => {
      const message = parseMessage(text);
      if (!message) return;
      const from = message.type === "room" ? message.entry.nodeId : message.nodeId;
      if (from !== options.nodeId) options.onMessage(message);
    });
  }

  /** Starts connecting (in the background; never throws). */
  start(): void {
    this.#cmd.connect().catch(() => {});
    this.#sub.connect().catch(() => {});
  }

  /** Whether commands can be sent now. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  /** Whether both connections (commands and the pub/sub subscription) are up now, for `/metrics`. */
  get connected(): boolean {
    return this.ready && this.#sub.status === "ready";
  }

  /** Times the command connection came back after being lost (the "reachable again" log lines). */
  get reconnects(): number {
    return this.#reconnects;
  }

  /**
   * Registers (or refreshes) the node, its viewer counts and its rooms. Returns the ids of rooms another
   * node holds in Redis (this node's registration of them was refused).
   */
  async register(rooms: RoomEntry[], viewers: Map<string, number>): Promise<string[]> {
    const { nodeId, publicUrl, ttlSeconds } = this.#options;
    const multi = this.#cmd.multi();
    multi.set(KEYS.node(nodeId), publicUrl, "EX", ttlSeconds);
    multi.del(KEYS.viewers(nodeId));
    if (viewers.size > 0) {
      multi.hset(KEYS.viewers(nodeId), Object.fromEntries(viewers));
      multi.expire(KEYS.viewers(nodeId), ttlSeconds);
    }
    for (const entry of rooms) {
      multi.eval(PUT_ROOM, 1, KEYS.room(entry.info.id), nodeId, JSON.stringify(entry), ttlSeconds);
    }
    const results = await multi.exec();
    const refused: string[] = [];
    rooms.forEach((entry, i) => {
      const result = results?.[(viewers.size > 0 ? 4 : 2) + i];
      if (result && result[1] === 0) refused.push(entry.info.id);
    });
    return refused;
  }

  /** Writes one of this node's rooms and tells the others; false when another node holds the id. */
  async putRoom(entry: RoomEntry): Promise<boolean> {
    const { nodeId, ttlSeconds } = this.#options;
    const written = await this.#cmd.eval(
      PUT_ROOM,
      1,
      KEYS.room(entry.info.id),
      nodeId,
      JSON.stringify(entry),
      ttlSeconds,
    );
    if (written !== 1) return false;
    await this.#publish({ type: "room", entry });
    return true;
  }

  /** Removes one of this node's rooms and tells the others. */
  async deleteRoom(roomId: string): Promise<void> {
    const { nodeId } = this.#options;
    await this.#cmd.eval(DELETE_ROOM, 1, KEYS.room(roomId), nodeId);
    await this.#publish({ type: "room-closed", nodeId, roomId });
  }

  /** Sets this node's viewer count of a room (undefined: the node no longer holds it) and tells the others. */
  async putViewers(roomId: string, count: number | undefined): Promise<void> {
    const { nodeId, ttlSeconds } = this.#options;
    const key = KEYS.viewers(nodeId);
    if (count === undefined) await this.#cmd.hdel(key, roomId);
    else await this.#cmd.multi().hset(key, roomId, count).expire(key, ttlSeconds).exec();
    await this.#publish({ type: "viewers", nodeId, roomId, count: count ?? null });
  }

  /** Reads the live nodes, their rooms and their viewer counts. */
  async snapshot(): Promise<ClusterSnapshot> {
    const nodes = new Map<string, string>();
    const nodeKeys = await this.#scan(KEYS.nodePattern);
    if (nodeKeys.length > 0) {
      const urls = await this.#cmd.mget(...nodeKeys);
      nodeKeys.forEach((key, i) => {
        const nodeId = key.slice(KEYS.node("").length);
        const url = parseNodeUrl(urls[i]);
        if (isId(nodeId) && url) nodes.set(nodeId, url);
      });
    }
    const roomKeys = await this.#scan(KEYS.roomPattern);
    const rooms: RoomEntry[] = [];
    const viewers = new Map<string, Map<string, number>>();
    const pipeline = this.#cmd.pipeline();
    for (const key of roomKeys) pipeline.hgetall(key);
    const nodeIds = [...nodes.keys()];
    for (const nodeId of nodeIds) pipeline.hgetall(KEYS.viewers(nodeId));
    const results = (await pipeline.exec()) ?? [];
    roomKeys.forEach((key, i) => {
      const [error, hash] = results[i] ?? [];
      if (error || !hash) return;
      const { node, entry } = hash as Record<string, string>;
      const parsed = parseEntry(entry);
      // The hash's owner field is what the write script checked; the entry must agree with it and the key.
      if (parsed && parsed.nodeId === node && KEYS.room(parsed.info.id) === key) rooms.push(parsed);
    });
    nodeIds.forEach((nodeId, i) => {
      const [error, hash] = results[roomKeys.length + i] ?? [];
      if (!error && hash) viewers.set(nodeId, parseViewers(hash as Record<string, string>));
    });
    return { nodes, rooms, viewers };
  }

  /** Deregisters the node (graceful shutdown), tells the others, and disconnects. */
  async close(ownRooms: string[]): Promise<void> {
    if (this.#closed) return;
    if (this.ready) {
      const { nodeId } = this.#options;
      try {
        const multi = this.#cmd.multi().del(KEYS.node(nodeId), KEYS.viewers(nodeId));
        for (const roomId of ownRooms) multi.eval(DELETE_ROOM, 1, KEYS.room(roomId), nodeId);
        await multi.exec();
        await this.#publish({ type: "node-left", nodeId });
      } catch { /* Redis went away: the registrations expire by themselves */ }
    }
    this.#closed = true;
    this.#ready = false;
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }

  async #publish(message: ClusterMessage): Promise<void> {
    await this.#cmd.publish(KEYS.channel, JSON.stringify(message));
  }

  async #scan(pattern: string): Promise<string[]> {
    const keys = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.#cmd.scan(cursor, "MATCH", pattern, "COUNT", 500);
      cursor = next;
      for (const key of batch) keys.add(key);
    } while (cursor !== "0" && keys.size < 100_000);
    return [...keys];
  }

  #onError(e: Error): void {
    if (this.#closed || this.#down) return;
    this.#down = true;
    this.#ready = this.#cmd.status === "ready";
    this.#options.log(
      "warn",
      `cluster: Redis at ${redactUrl(this.#options.url)} unreachable (${e.message.split("\n")[0]}); ` +
        "serving this node's rooms, retrying with backoff",
    );
  }
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.href;
  } catch {
    return "(invalid URL)";
  }
}
