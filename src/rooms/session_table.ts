/**
 * The WHIP and WHEP sessions of this node: by id and by peer, their capacity limits (server, publishers'
 * share, per room, per client address), and their ICE credentials (unique ufrags, the client's earlier ones
 * after an ICE restart, the bundle head a restart answer names).
 */
import type { Peer } from "../peer/peer.ts";
import type { BundleHead } from "../sdp/sdpfrag.ts";
import { SessionError } from "./errors.ts";
import type { PublisherMedia } from "./negotiation.ts";
import type { Room, RoomSource } from "./room.ts";
import type { Viewer } from "./viewer.ts";

/** One session: a publisher feeding (or waiting to take over) a room, or a viewer of a room. */
export type Session =
  & {
    id: string;
    peer: Peer;
    /** Key of the client's address for per-address limits; absent for trusted callers. */
    address?: string;
    /** Opaque tag the HTTP edge recognises the session's owner by. */
    owner?: string;
  }
  & (
    | { kind: "whip"; room: Room; media: PublisherMedia }
    | { kind: "whep"; room: Room<RoomSource>; viewer: Viewer }
  );

/** Capacity limits; each defaults as documented in README (Configuration). */
export interface SessionLimits {
  /** Sessions (WHIP + WHEP, connecting or connected) beyond which offers are refused; default 500. */
  maxSessions?: number;
  /** Places of `maxSessions` kept for WHIP sessions; default a tenth of `maxSessions`, at least 1. */
  maxPublishers?: number;
  /** WHEP sessions per room; default 200. */
  maxViewersPerRoom?: number;
  /** WHEP sessions one client address may hold before they connect; default 20. */
  maxPendingPerAddress?: number;
  /** WHEP sessions one client address may hold, connecting or connected; default 100. */
  maxViewersPerAddress?: number;
}

/** Client ufrags remembered per session across ICE restarts (to recognise late trickle PATCHes). */
const EARLIER_UFRAGS_KEPT = 8;

/** All sessions and their limits. */
export class SessionTable {
  readonly #limits: SessionLimits;
  readonly #byId = new Map<string, Session>();
  readonly #byPeer = new Map<Peer, Session>();
  readonly #ufrags = new Set<string>();
  readonly #earlierUfrags = new WeakMap<Peer, string[]>();
  readonly #bundleHeads = new WeakMap<Peer, BundleHead>();

  constructor(limits: SessionLimits = {}) {
    this.#limits = limits;
  }

  /** The session with this id. */
  get(id: string): Session | undefined {
    return this.#byId.get(id);
  }

  /** The session a peer belongs to. */
  ofPeer(peer: Peer): Session | undefined {
    return this.#byPeer.get(peer);
  }

  /** Every session (a copy: ending sessions while walking it is safe). */
  all(): Session[] {
    return [...this.#byId.values()];
  }

  /** Number of sessions of each kind. */
  get counts(): { publishers: number; viewers: number } {
    let publishers = 0;
    for (const s of this.#byId.values()) if (s.kind === "whip") publishers++;
    return { publishers, viewers: this.#byId.size - publishers };
  }

  add(session: Session): void {
    this.#byId.set(session.id, session);
    this.#byPeer.set(session.peer, session);
  }

  /** Forgets the session of `peer` (and the peer's ufrag); returns it, or undefined when there was none. */
  removePeer(peer: Peer): Session | undefined {
    this.#ufrags.delete(peer.localUfrag);
    const session = this.#byPeer.get(peer);
    if (!session) return undefined;
    this.#byPeer.delete(peer);
    this.#byId.delete(session.id);
    return session;
  }

  /**
   * Throws when there is no place for one more session of `kind`: "full" when the publishers' or the
   * viewers' share of MAX_SESSIONS or `room` is full, "address-busy" when the viewer's address holds too many
   * sessions (unconnected, or in all). Connecting sessions count too, or a burst of offers could overshoot.
   * An offer is not the hot path and the walk is bounded by MAX_SESSIONS.
   */
  checkCapacity(
    kind: "whip" | "whep",
    room: Room<RoomSource> | undefined,
    address: string | undefined,
  ): void {
    const limits = this.#limits;
    const maxSessions = limits.maxSessions ?? 500;
    const maxPublishers = Math.min(
      maxSessions,
      limits.maxPublishers ?? Math.max(1, Math.floor(maxSessions / 10)),
    );
    let publishers = 0;
    let inRoom = 0;
    let fromAddress = 0;
    let pendingFromAddress = 0;
    for (const s of this.#byId.values()) {
      if (s.kind === "whip") {
        publishers++;
        continue;
      }
      if (s.room === room) inRoom++;
      if (address !== undefined && s.address === address) {
        fromAddress++;
        if (s.peer.state !== "connected") pendingFromAddress++;
      }
    }
    if (kind === "whip") {
      if (publishers >= maxPublishers) {
        throw new SessionError("full", `publishers full: ${maxPublishers} (MAX_PUBLISHERS); try again later`);
      }
      return;
    }
    const maxPending = limits.maxPendingPerAddress ?? 20;
    if (pendingFromAddress >= maxPending) {
      throw new SessionError(
        "address-busy",
        `your address has ${maxPending} sessions still connecting (MAX_PENDING_PER_ADDRESS); retry shortly`,
      );
    }
    const maxPerAddress = limits.maxViewersPerAddress ?? 100;
    if (fromAddress >= maxPerAddress) {
      throw new SessionError(
        "address-busy",
        `your address has ${maxPerAddress} viewer sessions (MAX_VIEWERS_PER_ADDRESS)`,
      );
    }
    const maxViewers = maxSessions - maxPublishers;
    if (this.#byId.size - publishers >= maxViewers) {
      throw new SessionError("full", `server full: ${maxSessions} sessions (MAX_SESSIONS); try again later`);
    }
    const maxInRoom = limits.maxViewersPerRoom ?? 200;
    if (inRoom >= maxInRoom) {
      throw new SessionError(
        "full",
        `room full: ${maxInRoom} viewers (MAX_VIEWERS_PER_ROOM); try again later`,
      );
    }
  }

  /** A new ICE ufrag no session here uses, reserved until its peer is removed or restarts ICE. */
  newUfrag(): string {
    let ufrag = randomIceString(8);
    while (this.#ufrags.has(ufrag)) ufrag = randomIceString(8);
    this.#ufrags.add(ufrag);
    return ufrag;
  }

  /** Remembers the answer's bundle head, which an ICE restart answer names again. */
  setBundleHead(peer: Peer, head: BundleHead): void {
    this.#bundleHeads.set(peer, head);
  }

  bundleHeadOf(peer: Peer): BundleHead | undefined {
    return this.#bundleHeads.get(peer);
  }

  /** The client's ufrags of earlier ICE sessions (before restarts), oldest first. */
  earlierRemoteUfrags(peer: Peer): readonly string[] {
    return this.#earlierUfrags.get(peer) ?? [];
  }

  /**
   * An ICE restart of `peer`: its current client ufrag becomes an earlier one, its local ufrag `oldUfrag` is
   * released for the new one the caller took with {@link newUfrag}.
   */
  restarted(peer: Peer, previousRemoteUfrag: string, oldUfrag: string): void {
    const earlier = this.#earlierUfrags.get(peer) ?? [];
    if (earlier.push(previousRemoteUfrag) > EARLIER_UFRAGS_KEPT) earlier.shift();
    this.#earlierUfrags.set(peer, earlier);
    this.#ufrags.delete(oldUfrag);
  }
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Random ICE-safe string (alphanumeric, so it is also URL-safe and a valid room name). */
export function randomIceString(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  // byte % 62 is slightly biased towards the first 8 symbols; irrelevant for identifiers this long.
  for (const b of bytes) out += ALNUM[b % 62];
  return out;
}

/** Session id with 192 bits of randomness, URL-safe. */
export function randomSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_");
}
