/**
 * Server-wide totals of the per-room and per-peer counters. Rooms and peers keep their own counters and are
 * dropped when they end, so their last values are folded into running totals here: counters on `/metrics`
 * never go backwards when a room closes.
 *
 * It learns about peers by standing between the session layer and the UDP transport ({@link wrap}): every
 * peer is added there when created and removed when it ends. A publisher is removed before its room leaves
 * the session table, so the room is seen then at the latest, even if it opened and closed between scrapes.
 */
import type { Peer, PeerCounters, PeerState } from "../peer/peer.ts";
import type { RoomCounters } from "../rooms/room.ts";
import { newRoomCounters } from "../rooms/room_counters.ts";

/** What the totals read of a room (a published one or one relayed from another node). */
export interface CountedRoom {
  readonly counters: RoomCounters;
}
import type { PeerTransport } from "../rooms/sessions.ts";

/** What one scrape reads. */
export interface MediaSnapshot {
  rooms: RoomCounters;
  peers: PeerCounters;
  /** Open peers by state (`closed` peers are gone and not counted). */
  sessionsByState: Record<Exclude<PeerState, "closed">, number>;
}

/** Accumulates room and peer counters across their lifetimes. */
export class MediaTotals {
  #currentRooms: () => Iterable<CountedRoom>;
  #peers = new Set<Peer>();
  #rooms = new Set<CountedRoom>();
  #closedRooms = newRoomCounters();
  #closedPeers = emptyPeerCounters();

  /** `currentRooms` lists the rooms the session layer holds now (`() => sessions.rooms.values()`: the ones published here and the ones
   * relayed from another node, which resend and ask for keyframes for this node's viewers too). */
  constructor(currentRooms: () => Iterable<CountedRoom>) {
    this.#currentRooms = currentRooms;
  }

  /** A transport that forwards everything to `transport` and tells these totals about peers. */
  wrap(transport: PeerTransport): PeerTransport {
    return {
      // The per-packet path goes straight to the socket: no extra call per datagram.
      transmit: transport.transmit.bind(transport),
      slots: transport.slots,
      fanout: transport.fanout,
      scheduler: transport.scheduler,
      addPeer: (peer) => {
        this.#peers.add(peer);
        transport.addPeer(peer);
      },
      renamePeer: (peer, oldUfrag) => transport.renamePeer(peer, oldUfrag),
      removePeer: (peer) => {
        transport.removePeer(peer);
        if (!this.#peers.delete(peer)) return;
        addPeerCounters(this.#closedPeers, peer.counters);
        this.#observeRooms();
      },
    };
  }

  /** Totals over open and ended rooms and peers, and the open peers by state. */
  snapshot(): MediaSnapshot {
    const current = this.#observeRooms();
    const rooms = { ...this.#closedRooms };
    for (const room of this.#rooms) {
      if (current.has(room)) {
        addRoomCounters(rooms, room.counters);
      } else {
        // Ended since the last look: its counters are final now.
        addRoomCounters(this.#closedRooms, room.counters);
        addRoomCounters(rooms, room.counters);
        this.#rooms.delete(room);
      }
    }
    const peers = { ...this.#closedPeers };
    const sessionsByState = { new: 0, checking: 0, connected: 0 };
    for (const peer of this.#peers) {
      addPeerCounters(peers, peer.counters);
      if (peer.state !== "closed") sessionsByState[peer.state]++;
    }
    return { rooms, peers, sessionsByState };
  }

  #observeRooms(): Set<CountedRoom> {
    const current = new Set(this.#currentRooms());
    for (const room of current) this.#rooms.add(room);
    return current;
  }
}

function emptyPeerCounters(): PeerCounters {
  return { decryptFailures: 0, rtpIn: 0, rtpOut: 0, rtpOffloaded: 0, rtcpIn: 0 };
}

function addRoomCounters(into: RoomCounters, from: RoomCounters): void {
  into.keyframeRequests += from.keyframeRequests;
  into.keyframeCacheHits += from.keyframeCacheHits;
  into.nacksSent += from.nacksSent;
  into.nacksReceived += from.nacksReceived;
  into.packetsResent += from.packetsResent;
  into.bytesResent += from.bytesResent;
  into.resendsRefused += from.resendsRefused;
  into.sourceChanges += from.sourceChanges;
  into.layerSwitchesUp += from.layerSwitchesUp;
  into.layerSwitchesDown += from.layerSwitchesDown;
}

function addPeerCounters(into: PeerCounters, from: PeerCounters): void {
  into.decryptFailures += from.decryptFailures;
  into.rtpIn += from.rtpIn;
  into.rtpOut += from.rtpOut;
  into.rtpOffloaded += from.rtpOffloaded;
  into.rtcpIn += from.rtcpIn;
}
