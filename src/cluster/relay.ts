/**
 * Relays: a room published on another node is pulled here once (one {@link WhepPull}) and fed into a local
 * {@link Room}, so every viewer on this node gets the keyframe cache, per-viewer rewriting and NACKs answered
 * from history exactly as for a local room; the room's PLIs, NACKs and receiver reports go upstream over the
 * pull. The relay ends a grace period after its last viewer left, or with the room.
 *
 * Which node to pull from: the room's origin; when the origin refuses (full, rate-limited), a node that
 * already relays the room (a tree). Every pull carries `X-Relay-Path` (the NODE_IDs it serves, in order),
 * and a node never pulls from a node on its own path and answers 508 to a pull that would close a loop.
 */
import type { ServerCertificate } from "../peer/certificate.ts";
import type { RoomInfo, RoomOrigin } from "../rooms/bus.ts";
import { type MediaOptions, Room } from "../rooms/room.ts";
import type { SessionManager } from "../rooms/sessions.ts";
import { HttpError } from "../http/body.ts";
import type { Log } from "../log.ts";
import type { ClusterRoomTable } from "./room_table.ts";
import { PullError, WhepPull } from "./whep_pull.ts";

/** A room fed by a pull from another node; its bus events carry the origin so nobody registers it as ours. */
export class RelayRoom extends Room<WhepPull> {
  readonly origin: RoomOrigin;

  constructor(options: ConstructorParameters<typeof Room<WhepPull>>[0] & { origin: RoomOrigin }) {
    super(options);
    this.origin = options.origin;
  }

  override info(): RoomInfo {
    return { ...super.info(), origin: this.origin };
  }
}

/** What the relays need. */
export interface RelayManagerOptions {
  nodeId: string;
  sessions: SessionManager;
  /** The cluster as this node knows it: remote rooms, live nodes and their URLs, who relays what. */
  table: ClusterRoomTable;
  certificate: ServerCertificate;
  /** UDP_ADDRESS, for the pulls' sockets. */
  bindAddress: string;
  clusterToken?: string;
  media: Partial<MediaOptions>;
  /** How long a relay without viewers stays up (a viewer reloading the page finds it still there). */
  graceMs: number;
  /** Time allowed for one pull to connect. */
  connectTimeoutMs?: number;
  log: Log;
}

interface Relay {
  roomId: string;
  /** The node being tried or pulled from. */
  parent: string;
  pending: Promise<void> | undefined;
  pull: WhepPull | undefined;
  room: RelayRoom | undefined;
  lastUsed: number;
  ended: boolean;
}

/** Upstream answers after which the next candidate node is tried. */
const TRY_NEXT = new Set([0, 404, 429, 503, 508]);

/** Starts, shares and ends this node's relays. */
export class RelayManager {
  /**
   * Since start, for `/metrics`: pulls opened towards another node (every attempt, also the refused ones),
   * and pulls that failed to connect or were lost later (the other node fell silent, socket error). A pull
   * the other node closed on purpose (its room ended, it shut down) or that this node ended is no failure.
   * `internalErrors`: exceptions under a pull's packet handling (bugs; the relay reads on).
   */
  readonly counters = { pulls: 0, failures: 0, internalErrors: 0 };
  #options: RelayManagerOptions;
  #relays = new Map<string, Relay>();
  #timer: ReturnType<typeof setInterval>;

  constructor(options: RelayManagerOptions) {
    this.#options = options;
    this.#timer = setInterval(() => this.#sweep(performance.now()), 1000);
  }

  /** Whether the room reaches this node through a live relay now. */
  isRelayed(roomId: string): boolean {
    return this.#relays.get(roomId)?.room !== undefined;
  }

  /** Number of live relays. */
  get count(): number {
    let n = 0;
    for (const relay of this.#relays.values()) if (relay.room) n++;
    return n;
  }

  /**
   * Makes `roomId` watchable here when it is published elsewhere: joins the relay running for it or starts
   * one. `path` is the incoming `X-Relay-Path` (empty for a viewer). Resolves without doing anything when
   * the room is local or unknown (the WHEP handler then answers as usual); throws 508 on a loop and 502
   * when no node could be pulled from.
   */
  async prepare(roomId: string, path: string[]): Promise<void> {
    const { nodeId, sessions, table } = this.#options;
    if (path.includes(nodeId)) {
      throw new HttpError(508, `relay loop: ${nodeId} is already on ${path.join(",")}`);
    }
    const existing = this.#relays.get(roomId);
    if (existing) {
      existing.lastUsed = performance.now();
      if (!existing.pending) return;
      // Waiting for a pull from a node on the caller's path would wait on the caller itself.
      if (path.includes(existing.parent)) {
        throw new HttpError(508, `relay loop: this node is pulling ${roomId} from ${existing.parent}`);
      }
      return await existing.pending;
    }
    if (sessions.rooms.has(roomId)) return;
    const remote = table.remoteRoom(roomId);
    if (!remote) return;
    const relay: Relay = {
      roomId,
      parent: remote.entry.nodeId,
      pending: undefined,
      pull: undefined,
      room: undefined,
      lastUsed: performance.now(),
      ended: false,
    };
    this.#relays.set(roomId, relay);
    relay.pending = this.#start(relay, path).finally(() => relay.pending = undefined);
    return await relay.pending;
  }

  /** The room left the cluster's list (origin closed it or died): its relay ends with it. */
  roomClosed(roomId: string): void {
    const relay = this.#relays.get(roomId);
    if (relay?.room) this.#end(relay, "the room closed on its origin");
  }

  /** Ends every relay (shutdown). */
  closeAll(): void {
    clearInterval(this.#timer);
    for (const relay of [...this.#relays.values()]) this.#end(relay, "shutdown");
  }

  async #start(relay: Relay, path: string[]): Promise<void> {
    const { nodeId, table, log } = this.#options;
    const remote = table.remoteRoom(relay.roomId)!;
    const origin = remote.entry.nodeId;
    // The origin first; nodes already relaying the room only when the origin refuses.
    const parents = [origin, ...table.relayingNodes(relay.roomId)]
      .filter((id, i, all) => id !== nodeId && !path.includes(id) && all.indexOf(id) === i);
    let lastError = "no node to pull from";
    for (const parent of parents) {
      // Only a live node's registered PUBLIC_URL is ever contacted.
      const url = table.nodeUrl(parent);
      if (!url || relay.ended) continue;
      relay.parent = parent;
      let pull: WhepPull;
      this.counters.pulls++;
      try {
        pull = await WhepPull.open({
          baseUrl: url,
          roomId: relay.roomId,
          relayPath: [...path, nodeId],
          clusterToken: this.#options.clusterToken,
          certificate: this.#options.certificate,
          bindAddress: this.#options.bindAddress,
          profile: remote.entry.info.video.profile,
          codec: remote.entry.info.video.codec,
          timeoutMs: this.#options.connectTimeoutMs,
        });
      } catch (e) {
        const status = e instanceof PullError ? e.status : 0;
        this.counters.failures++;
        lastError = `${parent}: ${(e as Error).message}`;
        log("warn", `relay of room ${relay.roomId}: pull from ${lastError}`);
        if (TRY_NEXT.has(status)) continue;
        break;
      }
      if (relay.ended) {
        pull.close();
        break;
      }
      try {
        this.#attach(relay, pull, { nodeId: origin, url: table.nodeUrl(origin) ?? url }, remote.entry.info);
      } catch (e) {
        // A publisher took the room id here meanwhile (409): this node is its origin now.
        pull.close();
        this.#relays.delete(relay.roomId);
        throw e;
      }
      log(
        "info",
        `relay of room ${relay.roomId} from node ${parent} up (path ${[...path, nodeId].join(",")})`,
      );
      return;
    }
    this.#relays.delete(relay.roomId);
    throw new HttpError(502, `cannot pull room "${relay.roomId}" from another node (${lastError})`);
  }

  #attach(relay: Relay, pull: WhepPull, origin: RoomOrigin, info: RoomInfo): void {
    const room = new RelayRoom({
      id: relay.roomId,
      publisherSessionId: pull.location,
      publisher: pull,
      video: pull.video,
      audio: pull.audio,
      now: new Date(info.createdAt),
      media: { ...this.#options.media, twccExtensionId: undefined },
      origin,
    });
    pull.onRtp = (packet, now) => room.handlePublisherRtp(packet, now);
    pull.onRtcp = (packet, now) => room.handlePublisherRtcp(packet, now);
    let reported = false;
    pull.onInternalError = (e) => {
      // A bug under the relay's packet path: counted for sfu_internal_errors_total, told once per relay.
      this.counters.internalErrors++;
      if (reported) return;
      reported = true;
      this.#options.log(
        "error",
        `relay of room ${relay.roomId}: internal error handling a datagram from node ${relay.parent}: ${
          e instanceof Error ? e.stack ?? e.message : String(e)
        }`,
      );
    };
    pull.onClosed = (reason) => {
      if (reason === "silent" || reason === "socket-error") this.counters.failures++;
      this.#end(relay, `pull ${reason}`);
    };
    this.#options.sessions.attachRoom(room);
    relay.pull = pull;
    relay.room = room;
  }

  #end(relay: Relay, why: string): void {
    if (relay.ended) return;
    relay.ended = true;
    if (this.#relays.get(relay.roomId) === relay) this.#relays.delete(relay.roomId);
    if (relay.room) {
      this.#options.sessions.detachRoom(relay.room);
      this.#options.log("info", `relay of room ${relay.roomId} from node ${relay.parent} ended (${why})`);
    }
    relay.pull?.close();
  }

  #sweep(now: number): void {
    for (const relay of [...this.#relays.values()]) {
      if (!relay.room) continue;
      if (relay.room.viewers.size > 0) relay.lastUsed = now;
      else if (now - relay.lastUsed >= this.#options.graceMs) this.#end(relay, "no viewers");
    }
  }
}
