/**
 * The one UDP socket every peer shares: a read loop that demultiplexes datagrams (RFC 7983) and routes them
 * to peers by STUN username or, once ICE validated an address, by source address. Owns the consent timer.
 */
import { classifyDatagram } from "./demux.ts";
import { datagrams } from "./datagrams.ts";
import { SendTo } from "./udp_sendto.ts";
import { isBindingSuccess, stunLocalUfrag } from "../peer/ice_lite.ts";
import type { Peer, PeerAddress } from "../peer/peer.ts";
import type { PeerTransport } from "../rooms/sessions.ts";

/** Counters of what the socket saw and dropped. */
export interface SocketCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  junk: number;
  unknownPeer: number;
  sendErrors: number;
}

/** The shared media socket. */
export class MediaSocket implements PeerTransport {
  readonly counters: SocketCounters = {
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    junk: 0,
    unknownPeer: 0,
    sendErrors: 0,
  };
  #conn: Deno.DatagramConn;
  #byUfrag = new Map<string, Peer>();
  #byAddress = new Map<string, Peer>();
  #timer: ReturnType<typeof setInterval>;
  #closed = false;
  #onSendError = (): void => {
    this.counters.sendErrors++;
  };

  #sendTo: SendTo | undefined;
  /** Datagrams go into the sendmmsg batch instead of out one by one. */
  #batching = false;

  /** Timers (consent requests, probe retransmissions, timeouts) run this often. */
  constructor(conn: Deno.DatagramConn, sweepIntervalMs = 250) {
    this.#conn = conn;
    this.#sendTo = SendTo.open((conn.addr as Deno.NetAddr).port);
    this.#timer = setInterval(() => this.sweep(performance.now()), sweepIntervalMs);
  }

  /** Binds the socket; throws with a clear message when the port is taken. */
  static listen(hostname: string, port: number): MediaSocket {
    if (typeof Deno.listenDatagram !== "function") {
      throw new Error("Deno.listenDatagram is unavailable: run with --unstable-net (deno task start does)");
    }
    return new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname, port }));
  }

  /** The bound port (useful when 0 was asked for). */
  get port(): number {
    return (this.#conn.addr as Deno.NetAddr).port;
  }

  /** Which send path is in use, for the start-up log: libc `sendmmsg` through FFI, or Deno's send and why. */
  get sendPath(): string {
    return this.#sendTo
      ? `sendto/sendmmsg through libc (fd ${this.#sendTo.fd})`
      : `Deno's send, one op per datagram (fast path unavailable: ${SendTo.unavailableReason})`;
  }

  /** Number of peers known to the socket. */
  get peerCount(): number {
    return this.#byUfrag.size;
  }

  /** Reads until the socket is closed. Never throws for a bad datagram. */
  async run(): Promise<void> {
    for await (const [data, from] of datagrams(this.#conn, () => this.#closed)) {
      this.handleDatagram(data, from, performance.now());
    }
  }

  /** Routes one datagram. Exposed for tests; the read loop calls it. */
  handleDatagram(data: Uint8Array, from: PeerAddress, now: number): void {
    this.counters.datagramsIn++;
    this.counters.bytesIn += data.length;
    try {
      switch (classifyDatagram(data)) {
        case "stun": {
          // Checks name the peer in USERNAME; answers to the server's own requests carry none and are
          // matched by the address they come from.
          let peer: Peer | undefined;
          if (isBindingSuccess(data)) peer = this.#byAddress.get(addressKey(from));
          else {
            const ufrag = stunLocalUfrag(data);
            peer = ufrag === undefined ? undefined : this.#byUfrag.get(ufrag);
          }
          if (peer) peer.handleStun(data, from, now);
          else this.counters.unknownPeer++;
          return;
        }
        case "dtls": {
          const peer = this.#byAddress.get(addressKey(from));
          if (peer) peer.handleDtls(data, from, now);
          else this.counters.unknownPeer++;
          return;
        }
        case "rtp":
        case "rtcp": {
          const peer = this.#byAddress.get(addressKey(from));
          if (!peer) {
            this.counters.unknownPeer++;
            return;
          }
          // One publisher packet becomes one datagram per viewer: queue them and hand them to the kernel
          // with a single sendmmsg.
          this.#batching = this.#sendTo !== undefined;
          try {
            peer.handleSrtp(data, data[1] >= 192 && data[1] <= 223, from, now);
          } finally {
            this.#flushBatch();
          }
          return;
        }
        default:
          this.counters.junk++;
      }
    } catch {
      // Nothing a datagram carries may take down the loop or other peers.
      this.counters.junk++;
    }
  }

  /** Sends one datagram. `data` is only read during the call, so callers may reuse their buffer. */
  transmit = (data: Uint8Array, to: PeerAddress): void => {
    if (this.#closed) return;
    this.counters.datagramsOut++;
    this.counters.bytesOut += data.length;
    if (this.#batching ? this.#sendTo!.queue(data, to) : this.#sendTo?.send(data, to)) return;
    // Deno reads the buffer after this returns, and callers may reuse theirs: send a copy.
    this.#conn.send(data.slice(), { transport: "udp", hostname: to.hostname, port: to.port }).catch(
      this.#onSendError,
    );
  };

  #flushBatch(): void {
    if (!this.#batching) return;
    this.#batching = false;
    const sendTo = this.#sendTo!;
    const dropped = sendTo.dropped;
    sendTo.flush();
    this.counters.sendErrors += sendTo.dropped - dropped;
  }

  addPeer(peer: Peer): void {
    this.#byUfrag.set(peer.localUfrag, peer);
  }

  renamePeer(peer: Peer, oldUfrag: string): void {
    if (this.#byUfrag.get(oldUfrag) === peer) this.#byUfrag.delete(oldUfrag);
    this.#byUfrag.set(peer.localUfrag, peer);
  }

  /**
   * Routes datagrams from `address` to `peer`. An address stays with the live peer that had it first: a
   * check forged with another client's address must not divert that client's media, DTLS or consent answers.
   */
  routeAddress(peer: Peer, address: PeerAddress): void {
    const key = addressKey(address);
    const owner = this.#byAddress.get(key);
    if (owner && owner !== peer && owner.state !== "closed") return;
    this.#byAddress.set(key, peer);
  }

  removePeer(peer: Peer): void {
    if (this.#byUfrag.get(peer.localUfrag) === peer) this.#byUfrag.delete(peer.localUfrag);
    for (const [key, p] of this.#byAddress) if (p === peer) this.#byAddress.delete(key);
  }

  /** Drops peers whose consent expired or that never connected. */
  sweep(now: number): void {
    for (const peer of [...this.#byUfrag.values()]) peer.checkTimeout(now);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

function addressKey(a: PeerAddress): string {
  return `${a.hostname}|${a.port}`;
}
