/**
 * WHIP and WHEP sessions: turns an offer into a peer plus an answer (negotiation.ts), ties publishers to
 * rooms and viewers to rooms (room_table.ts), keeps the sessions within their limits (session_table.ts),
 * and frees everything when a peer ends. Refusals are typed {@link SessionError}s; the HTTP edge maps them.
 */
import { DEFAULT_VIDEO_CODEC_ORDER, type VideoCodecName, videoCodecOf } from "../sdp/codecs.ts";
import { type AnswerSection, buildAnswer, type Candidate } from "../sdp/answer.ts";
import { buildIceFragment } from "../sdp/sdpfrag.ts";
import type { ParsedOffer } from "../sdp/offer.ts";
import {
  type CloseReason,
  type PacketSlots,
  Peer,
  type PeerAddress,
  type PeerEvents,
  type RtpOffloader,
} from "../peer/peer.ts";
import type { ServerCertificate } from "../peer/certificate.ts";
import { type MediaOptions, Room, type RoomSource } from "./room.ts";
import { newReception, type Viewer } from "./viewer.ts";
import { SessionError } from "./errors.ts";
import { ViewerBandwidth } from "./viewer_bandwidth.ts";
import type { LayerInfo } from "./layers.ts";
import type { RoomBus } from "./bus.ts";
import {
  bundleHead,
  negotiatePublisher,
  negotiateViewer,
  parseOfferOrRefuse,
  type PublisherMedia,
} from "./negotiation.ts";
import { RoomTable } from "./room_table.ts";
import { ThumbnailTap } from "./thumbnail_tap.ts";
import {
  randomIceString,
  randomSessionId,
  type Session,
  type SessionLimits,
  SessionTable,
} from "./session_table.ts";

/** What the session layer needs from the UDP transport. */
export interface PeerTransport {
  transmit(data: Uint8Array, to: PeerAddress): void;
  /** Outbox slots forwarded RTP is sealed into in place, when the socket has them. */
  readonly slots?: PacketSlots;
  /** Fan-out workers viewers' RTP is sealed and sent by, when there are any. */
  readonly fanout?: RtpOffloader;
  /** The socket owner's one timer (net/scheduler.ts): rooms' join replays run from it. */
  readonly scheduler: MediaTimer;
  /** Routes STUN for `peer.localUfrag` to the peer. */
  addPeer(peer: Peer): void;
  /** After an ICE restart: routes STUN for the peer's new `localUfrag` to it instead of `oldUfrag`. */
  renamePeer(peer: Peer, oldUfrag: string): void;
  removePeer(peer: Peer): void;
}

/**
 * Where the socket owner delivers what a peer's input returned (peer.ts `handleInput`): decrypted RTP and
 * RTCP, each valid only during the call. The session layer knows the peer's room.
 */
export interface PeerMedia {
  rtp(peer: Peer, packet: Uint8Array, now: number): void;
  rtcp(peer: Peer, packet: Uint8Array, now: number): void;
}

/** Something the media timer wakes with `now`; it returns its next deadline (ms), or undefined for none. */
export interface Wakeable {
  wake(now: number): number | undefined;
}

/** The media path's one timer, owned by the socket (net/scheduler.ts). */
export interface MediaTimer {
  /** Wakes `target` at `at` (ms on the session clock); an earlier pending deadline of it stands. */
  wakeAt(target: Wakeable, at: number): void;
  cancel(target: Wakeable): void;
}

/** Settings of the session layer. */
export interface SessionOptions extends SessionLimits {
  certificate: ServerCertificate;
  candidates: Candidate[];
  consentTimeoutMs: number;
  transport: PeerTransport;
  bus: RoomBus;
  log: (level: "debug" | "info" | "warn" | "error", message: string) => void;
  clock?: () => number;
  /** Keyframe cache, retransmissions and the publisher bitrate ceiling. */
  media?: Partial<MediaOptions>;
  /**
   * Negotiate transport-wide congestion control with publishers (their bandwidth feedback) and viewers (the
   * estimate that picks their simulcast layer); default true.
   */
  transportCc?: boolean;
  /** Video codecs taken from publishers, most preferred first (default: all, H.264 first). */
  videoCodecs?: readonly VideoCodecName[];
  /**
   * Thumbnails are refreshed this often (THUMBNAIL_INTERVAL): when one is due the publisher is asked for a
   * keyframe, since browsers send one only when asked. Undefined: no requests for thumbnails.
   */
  thumbnailIntervalMs?: number;
  /** How long a session may take to finish ICE + DTLS before it is dropped; default 10 s. */
  connectTimeoutMs?: number;
}

/** Who opened a session, as the HTTP edge knows it. */
export interface SessionClient {
  /** Key of the client's address for per-address limits; absent for trusted callers (cluster nodes). */
  address?: string;
  /** Opaque tag the edge uses to recognise the session's owner later (see {@link SessionManager.ownerOf}). */
  owner?: string;
}

/** The answer to a WHIP or WHEP offer. */
export interface CreatedSession {
  sessionId: string;
  roomId: string;
  answer: string;
  etag: string;
}

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** All WHIP/WHEP sessions and the rooms they make. */
export class SessionManager {
  /** This node's rooms: published here or relayed from another node. */
  readonly rooms = new RoomTable();
  /** Decrypted media from peers, routed to their rooms; the socket owner delivers to it. */
  readonly media: PeerMedia;
  #sessions: SessionTable;
  #options: SessionOptions;
  #clock: () => number;
  #events: PeerEvents;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#sessions = new SessionTable(options);
    this.#clock = options.clock ?? (() => performance.now());
    this.media = {
      // The socket's time of arrival comes down with the packet: no clock read per packet.
      rtp: (peer, packet, now) => {
        const session = this.#sessions.ofPeer(peer);
        if (session?.kind !== "whip") return;
        // A session waiting to take over the room feeds it from its first packet on (see publish).
        if (session.room.publisher !== peer && !this.#completeTakeover(session)) return;
        session.room.handlePublisherRtp(packet, now);
      },
      rtcp: (peer, packet, now) => {
        const session = this.#sessions.ofPeer(peer);
        if (session?.kind === "whep") session.room.handleViewerRtcp(session.viewer, packet, now);
        else if (session?.kind === "whip" && session.room.publisher === peer) {
          session.room.handlePublisherRtcp(packet, now);
        }
      },
    };
    this.#events = {
      onConnected: (peer) => this.#onConnected(peer),
      onClosed: (peer, reason) => this.#onClosed(peer, reason),
      onOffloadLost: (peer) => {
        const session = this.#sessions.ofPeer(peer);
        if (session) this.#endSession(session, "fanout-worker-lost");
        else peer.close("fanout-worker-lost");
      },
    };
  }

  /** Number of sessions of each kind. */
  get counts(): { publishers: number; viewers: number } {
    return this.#sessions.counts;
  }

  /**
   * Accepts a WHIP offer: a new room named `roomId` (or a generated name) with this publisher. For a room
   * that already has a publisher the new session waits: it takes the room over with its first media
   * packet (a reconnecting encoder), so an offer that never connects leaves the live publisher alone.
   */
  publish(offerSdp: string, roomId?: string, client: SessionClient = {}): CreatedSession {
    if (roomId !== undefined && !ROOM_ID.test(roomId)) {
      throw new SessionError("invalid", "room name must be 1-64 characters of A-Z a-z 0-9 _ -");
    }
    const offer = parseOfferOrRefuse(offerSdp);
    const id = roomId ?? this.#newRoomId();
    // A room relayed from another node cannot be published here; a local room can be taken over (below).
    if (this.rooms.isRelayed(id)) {
      throw new SessionError("conflict", `room "${id}" is relayed from another node`);
    }
    this.#sessions.checkCapacity("whip", undefined, undefined);
    // A publisher taking over a room keeps its codec when it can, so the viewers' sessions stay valid.
    const existing = this.rooms.published(id);
    const { sections, media, audioWithoutOpus } = negotiatePublisher(offer, {
      codecOrder: this.#options.videoCodecs ?? DEFAULT_VIDEO_CODEC_ORDER,
      roomCodec: existing && videoCodecOf(existing.video.name),
      transportCc: this.#options.transportCc !== false,
    });
    if (audioWithoutOpus) {
      this.#options.log(
        "info",
        `room ${id}: the publisher's audio (${audioWithoutOpus.join(", ") || "no codec"}) is not Opus, ` +
          "the only audio codec the server forwards: the room is video-only",
      );
    }
    const peer = this.#newPeer(offer);
    if (existing) {
      // Publishing to a room that already has a publisher replaces it (the room's own key or the master key
      // proves the same trust), so a reconnecting encoder (OBS after a network drop) keeps the room and its
      // viewers instead of waiting for the old session's consent timeout. The switch happens only once the
      // new session delivers media; one takeover waits per room, a newer offer replaces it.
      this.#takeovers.get(existing)?.peer.close("replaced");
      const session = { kind: "whip" as const, id: peer.id, peer, room: existing, media, ...client };
      this.#takeovers.set(existing, session);
      this.#sessions.add(session);
      this.#options.log(
        "info",
        `whip session ${short(peer.id)} will take over room ${id} at its first packet`,
      );
      return { sessionId: peer.id, roomId: id, answer: this.#answer(peer, sections), etag: etag(peer) };
    }
    const room = this.#createRoom(id, peer, media);
    this.#sessions.add({ kind: "whip", id: peer.id, peer, room, media, ...client });
    this.#options.log("info", `whip session ${short(peer.id)} created for room ${id}`);
    return { sessionId: peer.id, roomId: id, answer: this.#answer(peer, sections), etag: etag(peer) };
  }

  /**
   * Accepts a WHEP offer for a live room. `relay` marks another cluster node pulling the room: served like
   * any viewer but not counted in the room's viewer count.
   */
  watch(
    roomId: string,
    offerSdp: string,
    options: { relay?: boolean } & SessionClient = {},
  ): CreatedSession {
    const room = this.rooms.get(roomId);
    if (!room || !room.live) throw new SessionError("not-found", `room "${roomId}" is not live`);
    this.#sessions.checkCapacity("whep", room, options.address);
    const offer = parseOfferOrRefuse(offerSdp);
    const negotiated = negotiateViewer(offer, room, {
      retransmissions: this.#options.media?.retransmissions !== false,
      transportCc: this.#options.transportCc !== false,
    });
    for (const note of negotiated.notes) this.#options.log("info", note);
    const peer = this.#newPeer(offer);
    const viewer: Viewer = {
      sessionId: peer.id,
      peer,
      video: negotiated.video,
      audio: negotiated.audio,
      videoMid: negotiated.videoMid,
      reception: newReception(),
      sentReports: new Map(),
    };
    if (!negotiated.audio) delete viewer.audio;
    const transportCcId = negotiated.transportCcExtensionId;
    if (transportCcId !== undefined) viewer.bandwidth = new ViewerBandwidth(transportCcId);
    if (options.relay) viewer.relay = true;
    this.#sessions.add({
      kind: "whep",
      id: peer.id,
      peer,
      room,
      viewer,
      address: options.address,
      owner: options.owner,
    });
    this.#options.log("info", `whep session ${short(peer.id)} created for room ${room.id}`);
    return {
      sessionId: peer.id,
      roomId: room.id,
      answer: this.#answer(peer, negotiated.sections),
      etag: etag(peer),
    };
  }

  /**
   * The simulcast layers a WHEP session can choose from (WHEP layer extension): its video mid, the room's
   * layers and the one it receives. Throws "not-found" for an unknown session; `layers` is empty for one
   * encoding.
   */
  viewerLayers(sessionId: string): { mid: string; layers: LayerInfo[]; current: string | undefined } {
    const session = this.#whepSession(sessionId);
    const layers = session.room.layers;
    return {
      mid: session.viewer.videoMid ?? "",
      layers: layers?.info() ?? [],
      current: layers?.layerOf(session.viewer)?.rid,
    };
  }

  /**
   * Pins a WHEP session's video to the layer `encodingId` (empty: the server chooses again). Throws
   * "not-found" for an unknown session, "invalid" for another media or a layer the room does not have.
   */
  selectLayer(sessionId: string, mediaId: string | undefined, encodingId: string): void {
    const session = this.#whepSession(sessionId);
    const viewer = session.viewer;
    if (mediaId !== undefined && mediaId !== viewer.videoMid) {
      throw new SessionError(
        "invalid",
        `mediaId "${short(mediaId)}" is not this session's video (${viewer.videoMid})`,
      );
    }
    const layers = session.room.layers;
    if (encodingId !== "" && !layers?.rids.includes(encodingId)) {
      throw new SessionError(
        "invalid",
        layers
          ? `unknown encodingId "${short(encodingId)}": the room's layers are ${layers.rids.join(", ")}`
          : "the room has one encoding (no simulcast): only an empty encodingId is valid",
      );
    }
    layers?.pin(viewer, encodingId === "" ? undefined : encodingId, this.#clock());
  }

  #whepSession(sessionId: string): Session & { kind: "whep" } {
    const session = this.#sessions.get(sessionId);
    if (!session || session.kind !== "whep") {
      throw new SessionError("not-found", `no WHEP session ${short(sessionId)}`);
    }
    return session;
  }

  /** Ends a session of the given kind; throws "not-found" when there is none with that id. */
  end(kind: "whip" | "whep", sessionId: string): void {
    this.#endSession(this.#session(kind, sessionId), "deleted");
  }

  #session(kind: "whip" | "whep", sessionId: string): Session {
    const session = this.#sessions.get(sessionId);
    if (!session || session.kind !== kind) {
      throw new SessionError("not-found", `no ${kind.toUpperCase()} session ${short(sessionId)}`);
    }
    return session;
  }

  /** Whether a session of this kind exists. */
  has(kind: "whip" | "whep", sessionId: string): boolean {
    return this.#sessions.get(sessionId)?.kind === kind;
  }

  /** The owner tag a session was opened with (see {@link SessionClient}); undefined when there is none. */
  ownerOf(kind: "whip" | "whep", sessionId: string): string | undefined {
    const session = this.#sessions.get(sessionId);
    return session?.kind === kind ? session.owner : undefined;
  }

  /** The ICE side of a session, for PATCH (RFC 9725 §4.3): its ETag and the client's current and past ufrags. */
  iceSession(
    kind: "whip" | "whep",
    sessionId: string,
  ): { etag: string; remoteUfrag: string; earlierRemoteUfrags: readonly string[] } | undefined {
    const session = this.#sessions.get(sessionId);
    if (!session || session.kind !== kind) return undefined;
    const peer = session.peer;
    return {
      etag: etag(peer),
      remoteUfrag: peer.remoteUfrag,
      earlierRemoteUfrags: this.#sessions.earlierRemoteUfrags(peer),
    };
  }

  /**
   * ICE restart (RFC 9725 §4.3.2): the client brought new credentials, the server takes new ones too; the
   * session keeps its peer, DTLS, room and media. Returns the `application/trickle-ice-sdpfrag` answer and
   * the new ETag.
   */
  restartIce(
    kind: "whip" | "whep",
    sessionId: string,
    remoteUfrag: string,
    remotePwd: string,
  ): { fragment: string; etag: string } {
    const peer = this.#session(kind, sessionId).peer;
    const previousRemoteUfrag = peer.remoteUfrag;
    const oldUfrag = peer.localUfrag;
    peer.restartIce(this.#sessions.newUfrag(), randomIceString(32), remoteUfrag, remotePwd);
    this.#sessions.restarted(peer, previousRemoteUfrag, oldUfrag);
    this.#options.transport.renamePeer(peer, oldUfrag);
    this.#options.log("info", `${kind} session ${short(peer.id)} ICE restart`);
    const fragment = buildIceFragment({
      iceUfrag: peer.localUfrag,
      icePwd: peer.localPwd,
      candidates: this.#options.candidates,
      bundle: this.#sessions.bundleHeadOf(peer)!,
    });
    return { fragment, etag: etag(peer) };
  }

  /**
   * Refreshes every live room's bitrate/frame-rate estimate and posts `room-changed` for rooms whose
   * figures or picture size moved. The media timer calls it every couple of seconds with its `now`.
   */
  publishRoomStats(now: number): void {
    for (const room of this.rooms.publishedRooms()) {
      if (!room.live) continue;
      this.#requestThumbnailKeyframe(room, now);
      const size = `${room.width}x${room.height}`;
      const changed = room.updateRates(now);
      if (changed || size !== this.#lastSizes.get(room) || !this.#lastSizes.has(room)) {
        this.#lastSizes.set(room, size);
        this.#options.bus.publish({ type: "room-changed", room: room.info() });
      }
    }
  }

  #lastSizes = new WeakMap<Room, string>();
  /** Per room: when its keyframes go to the thumbnailer and when one is asked for (thumbnail_tap.ts). */
  #thumbnails = new WeakMap<Room, ThumbnailTap>();

  /** A room's thumbnail is due and no keyframe came by itself: ask the publisher (see {@link ThumbnailTap}). */
  #requestThumbnailKeyframe(room: Room, now: number): void {
    if (this.#thumbnails.get(room)?.keyframeWanted(now)) room.requestKeyframe(now);
  }

  /** Ends every session (shutdown): viewers first, each with an RTCP BYE and then close_notify. */
  closeAll(): void {
    for (const session of this.#sessions.all()) {
      if (session.kind === "whep") this.#endSession(session, "shutdown");
    }
    for (const session of this.#sessions.all()) this.#endSession(session, "shutdown");
    for (const room of this.rooms.values()) this.#cancelReplays(room);
  }

  /**
   * Ends a session the server decided to end: an RTCP BYE for the streams it carried (so the client's
   * track ends at once), then the peer's DTLS close_notify. Endings the client caused need neither.
   */
  #endSession(session: Session, reason: CloseReason): void {
    if (session.kind === "whep") session.room.sayGoodbye(session.viewer);
    else session.room.sayGoodbyeToPublisher(session.peer);
    session.peer.close(reason);
  }

  #newPeer(offer: ParsedOffer): Peer {
    const peer = new Peer({
      id: randomSessionId(),
      localUfrag: this.#sessions.newUfrag(),
      localPwd: randomIceString(32),
      remoteUfrag: offer.iceUfrag,
      remotePwd: offer.icePwd,
      remoteFingerprint: offer.fingerprint,
      certificate: this.#options.certificate,
      transmit: this.#options.transport.transmit,
      slots: this.#options.transport.slots,
      offload: this.#options.transport.fanout,
      events: this.#events,
      now: this.#clock(),
      consentTimeoutMs: this.#options.consentTimeoutMs,
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 10_000,
    });
    this.#options.transport.addPeer(peer);
    return peer;
  }

  #answer(peer: Peer, sections: AnswerSection[]): string {
    this.#sessions.setBundleHead(peer, bundleHead(sections));
    return buildAnswer({
      sessionId: String(Date.now()),
      iceUfrag: peer.localUfrag,
      icePwd: peer.localPwd,
      fingerprint: this.#options.certificate.fingerprint,
      candidates: this.#options.candidates,
      sections,
    });
  }

  #onConnected(peer: Peer): void {
    const session = this.#sessions.ofPeer(peer);
    if (!session) return;
    const profile = peer.srtpProfile === 7 ? "AEAD_AES_128_GCM" : "AES_CM_128_HMAC_SHA1_80";
    if (session.kind === "whip") {
      if (session.room.publisher !== peer) {
        this.#options.log(
          "info",
          `whip session ${short(peer.id)} connected (${profile}); takes over at its first packet`,
        );
        return;
      }
      if (session.room.live) {
        // A takeover: the room stays as it was (viewers, creation time), now fed by this publisher.
        this.#options.log(
          "info",
          `room ${session.room.id} resumes (publisher ${short(peer.id)}, ${profile})`,
        );
        return;
      }
      this.#goLive(session.room, peer);
    } else {
      if (!session.room.live || this.rooms.get(session.room.id) !== session.room) {
        this.#endSession(session, "publisher-left");
        return;
      }
      this.#scheduleReplays(session.room, session.room.addViewer(session.viewer, this.#clock()));
      this.#options.log("info", `viewer ${short(peer.id)} joined room ${session.room.id} (${profile})`);
      this.#options.bus.publish({ type: "room-changed", room: session.room.info() });
    }
  }

  #onClosed(peer: Peer, reason: CloseReason): void {
    this.#options.transport.removePeer(peer);
    const session = this.#sessions.removePeer(peer);
    if (!session) return;
    const room = session.room;
    if (session.kind === "whip") {
      if (this.#takeovers.get(session.room) === session) this.#takeovers.delete(session.room);
      // The publisher left while a takeover waits: the waiting session continues the room.
      if (room.publisher === peer && this.#completeTakeover(this.#takeovers.get(session.room))) return;
      if (room.publisher !== peer) {
        this.#options.log(
          "info",
          `whip session ${short(peer.id)} closed (${reason}); room ${room.id} continues`,
        );
        return;
      }
      this.rooms.delete(room);
      this.#options.log("info", `whip session ${short(peer.id)} closed (${reason}); room ${room.id} closed`);
      this.#endRoom(room);
    } else {
      const wasCounted = room.removeViewer(session.viewer);
      this.#options.log("info", `whep session ${short(peer.id)} closed (${reason})`);
      if (wasCounted && room.live) {
        this.#options.bus.publish({ type: "room-changed", room: room.info() });
      }
    }
  }

  /** Join replays are paced: the media timer wakes `room` at `at` (see {@link Room.wake}). */
  #scheduleReplays(room: Room<RoomSource>, at: number | undefined): void {
    if (at !== undefined) this.#options.transport.scheduler.wakeAt(room, at);
  }

  #cancelReplays(room: Room<RoomSource>): void {
    this.#options.transport.scheduler.cancel(room);
  }

  /** A new room `id` published by `peer`, listed in {@link rooms}; its keyframes go to the bus for thumbnails. */
  #createRoom(id: string, peer: Peer, media: PublisherMedia): Room {
    const room = new Room({
      id,
      publisherSessionId: peer.id,
      publisher: peer,
      video: media.video,
      audio: media.audio,
      now: new Date(),
      media: {
        ...this.#options.media,
        twccExtensionId: media.twccExtensionId,
        ...(media.simulcast
          ? { simulcast: { rids: media.simulcast.rids, ridExtensionId: media.simulcast.ridExtensionId } }
          : {}),
      },
    });
    const thumbnail = new ThumbnailTap(this.#options.thumbnailIntervalMs);
    this.#thumbnails.set(room, thumbnail);
    room.onKeyframe = (frame) => {
      if (!room.live || !thumbnail.keyframe(this.#clock())) return;
      // The frame's bytes are a view into the depacketizer's reused buffer: the decoder input is a copy.
      const input = room.videoCodec.decoderInput(frame);
      this.#options.bus.publish({
        type: "keyframe",
        roomId: room.id,
        format: input.format,
        data: input.data,
      });
    };
    this.rooms.addPublished(room);
    return room;
  }

  /** A room's publisher finished DTLS: the room is listed and viewers may join. */
  #goLive(room: Room, peer: Peer): void {
    const profile = peer.srtpProfile === 7 ? "AEAD_AES_128_GCM" : "AES_CM_128_HMAC_SHA1_80";
    room.live = true;
    room.createdAt = new Date();
    this.#options.log("info", `room ${room.id} live (publisher ${short(peer.id)}, ${profile})`);
    this.#options.bus.publish({ type: "room-opened", room: room.info() });
  }

  /** Sessions waiting to take over a room that has a publisher, by room. */
  #takeovers = new Map<Room, Session & { kind: "whip" }>();

  /**
   * Makes a waiting session its room's publisher (at its first packet, or when the old publisher left):
   * viewers stay, the old publisher is closed. Returns false when `session` is not waiting.
   */
  #completeTakeover(session: (Session & { kind: "whip" }) | undefined): boolean {
    if (!session || this.#takeovers.get(session.room) !== session) return false;
    let room = session.room;
    const previous = room.publisher;
    this.#takeovers.delete(room);
    // Viewers can follow a new publisher with the same codec and the same simulcast layers (or none).
    const sameLayers = room.layers?.rids.join(";") === session.media.simulcast?.rids.join(";");
    if (videoCodecOf(room.video.name) === videoCodecOf(session.media.video.name) && sameLayers) {
      room.replacePublisher({ publisher: session.peer, publisherSessionId: session.id, ...session.media });
      this.#options.log("info", `whip session ${short(session.id)} takes over room ${room.id}`);
    } else {
      // The new publisher cannot send the room's codec: the viewers cannot follow, so the room ends and
      // starts again with the new codec.
      this.#options.log(
        "info",
        `whip session ${short(session.id)} takes over room ${room.id} with ${
          describeLayers(session.media)
        } ` +
          `instead of ${room.video.name}${
            room.layers ? ` (simulcast ${room.layers.rids.join(";")})` : ""
          }: ` +
          "its viewers are ended",
      );
      this.rooms.delete(room);
      this.#endRoom(room);
      room = this.#createRoom(room.id, session.peer, session.media);
      session.room = room;
    }
    const previousSession = this.#sessions.ofPeer(previous);
    if (previousSession) this.#endSession(previousSession, "replaced");
    else previous.close("replaced");
    if (!room.live && session.peer.state === "connected") this.#goLive(room, session.peer);
    // Viewers stay; the feed's takeover count tells the pages (the watch page says so over the video).
    else if (room.live) this.#options.bus.publish({ type: "room-changed", room: room.info() });
    return true;
  }

  /** Marks a room closed, ends its viewers (connected or not) as if the publisher left, tells the bus. */
  #endRoom(room: Room<RoomSource>): void {
    const wasLive = room.live;
    room.live = false;
    this.#cancelReplays(room);
    // Connected viewers, and those still connecting, end with the room.
    for (const other of this.#sessions.all()) {
      if (other.kind === "whep" && other.room === room) this.#endSession(other, "publisher-left");
    }
    for (const viewer of [...room.viewers]) viewer.peer.close("publisher-left");
    if (wasLive) this.#options.bus.publish({ type: "room-closed", roomId: room.id });
  }

  /**
   * Adds a live room fed by something other than a WHIP session here (a cluster relay pulling it from
   * another node); viewers watch it like any room. Throws "conflict" when the id is taken.
   */
  attachRoom(room: Room<RoomSource>): void {
    if (this.rooms.has(room.id)) {
      throw new SessionError("conflict", `room "${room.id}" already exists on this node`);
    }
    room.live = true;
    this.rooms.addRelayed(room);
    this.#options.bus.publish({ type: "room-opened", room: room.info() });
  }

  /** Ends a room added with {@link attachRoom}: its viewers end as if the publisher left. */
  detachRoom(room: Room<RoomSource>): void {
    if (!this.rooms.isRelayed(room.id) || !this.rooms.delete(room)) return;
    this.#endRoom(room);
  }

  #newRoomId(): string {
    let id = randomIceString(8);
    while (this.rooms.has(id)) id = randomIceString(8);
    return id;
  }
}

function describeLayers(media: PublisherMedia): string {
  return media.video.name + (media.simulcast ? ` (simulcast ${media.simulcast.rids.join(";")})` : "");
}

function etag(peer: Peer): string {
  return `"${peer.localUfrag}"`;
}

function short(id: string): string {
  return id.slice(0, 8);
}
