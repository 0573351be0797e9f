/**
 * The one UDP socket every peer shares: a read loop that demultiplexes datagrams (RFC 7983) and routes them
 * to peers by STUN username or, once ICE validated an address, by source address (see peer_table.ts). Owns
 * the media path's one timer (scheduler.ts: the peers' sweep, the rooms' join replays and room statistics run
 * from it; what they send leaves in one flush per wake-up). Datagrams are read by a receive thread into a shared ring (receive_thread.ts) when it
 * can run, otherwise with Deno's receive into one reused buffer; either way RTP and RTCP are decrypted and
 * handled in place during the call (whatever keeps a packet copies it); STUN and DTLS, which werift may hold
 * on to, get a copy of their own, and so does their source address.
 */
import { classifyDatagram } from "./demux.ts";
import { FanoutPool } from "./fanout.ts";
import { ReceiveDrain } from "./receive_drain.ts";
import { ReceiveThread } from "./receive_thread.ts";
import { Outbox } from "./outbox.ts";
import { PeerTable } from "./peer_table.ts";
import { Scheduler, type Wakeable } from "./scheduler.ts";
import { SendTo } from "./udp_sendto.ts";
import { isBindingSuccess, stunLocalUfrag } from "../peer/ice_lite.ts";
import type { Peer, PeerAddress } from "../peer/peer.ts";
import type { PeerMedia, PeerTransport } from "../rooms/sessions.ts";

/** How the socket reads (see {@link MediaSocket}'s constructor). */
export interface ReceiveOptions {
  /** Read on a thread of its own (RECEIVE_THREAD). */
  thread?: boolean;
}

/** Counters of what the socket saw and dropped. */
export interface SocketCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  junk: number;
  unknownPeer: number;
  sendErrors: number;
  /** Datagrams longer than a receive-thread slot (4 KiB), dropped. */
  oversize: number;
  /** Wake-ups of the read loop, each a batch of datagrams handled, then flushed once. */
  receiveBatches: number;
  /** Exceptions under the packet path: bugs, not bad input (each peer's first is logged). */
  internalErrors: number;
  /** `sendmmsg` batches sent (see outbox.ts). */
  batches: number;
  /** STUN from a non-loopback source at a socket bound to loopback (see {@link isLoopbackAddress}). */
  offLoopback: number;
}

/**
 * Whether `hostname` is a loopback address (127.0.0.0/8, ::1, IPv4-mapped 127/8). A socket bound to loopback
 * answers only loopback sources: anything else reaching it is the same host talking from another interface
 * (a browser's LAN candidate), and answering would send traffic to that interface for no reason.
 */
export function isLoopbackAddress(hostname: string): boolean {
  return hostname.startsWith("127.") || hostname === "::1" || hostname.startsWith("::ffff:127.");
}

/** Largest datagram read whole (the UDP maximum); the buffer is allocated once per socket. */
const RECEIVE_BUFFER_BYTES = 65536;

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
    oversize: 0,
    receiveBatches: 0,
    internalErrors: 0,
    batches: 0,
    offLoopback: 0,
  };
  /** Where decrypted media goes: the session layer, which knows each peer's room (the server sets it). */
  media: PeerMedia = { rtp() {}, rtcp() {} };
  /** Where the first internal error of each peer is reported (the server sets its log). */
  log: (level: "info" | "error", message: string) => void = (_level, message) => console.error(message);
  #conn: Deno.DatagramConn;
  #peers = new PeerTable<Peer>();
  /** Peers whose internal error was logged already (one line per peer, not per packet). */
  #loggedErrors = new WeakSet<Peer>();
  /** Peers whose SRTP never decrypted, logged once each (see {@link Peer.undecryptable}). */
  #loggedUndecryptable = new WeakSet<Peer>();
  /** The media path's one timer: everything on it is woken with `now` and flushed once per wake-up. */
  readonly scheduler: Scheduler;
  #closed = false;
  #sendTo: SendTo | undefined;
  #outbox: Outbox;
  /** Worker threads viewers' RTP is sealed and sent by (see fanout.ts); undefined: all on this thread. */
  #fanout: FanoutPool | undefined;
  /** Bound to a loopback address: only loopback sources may start ICE. */
  #loopbackOnly: boolean;
  #thread: ReceiveThread | undefined;
  /** Batch reads after Deno's receive (undefined with a receive thread, or without FFI). */
  #drain: ReceiveDrain | undefined;
  #receivePath: string;

  /**
   * Timers (consent requests, probe retransmissions, timeouts) run every `sweepIntervalMs`. `receive.thread`
   * reads the socket on a thread of its own when it can (see receive_thread.ts); otherwise Deno's receive
   * wakes the loop and what else is queued is read in one batch (receive_drain.ts).
   */
  constructor(conn: Deno.DatagramConn, sweepIntervalMs = 250, receive: ReceiveOptions = {}) {
    this.#conn = conn;
    this.#thread = receive.thread ? ReceiveThread.open(conn) : undefined;
    this.#drain = this.#thread ? undefined : ReceiveDrain.open(conn);
    this.#receivePath = this.#thread
      ? "a receive thread (poll/recvmmsg through libc into a shared ring)"
      : this.#denoReceivePath(
        receive.thread ? `receive thread unavailable: ${ReceiveThread.unavailableReason}` : "",
      );
    this.#loopbackOnly = isLoopbackAddress((conn.addr as Deno.NetAddr).hostname);
    this.#sendTo = SendTo.open((conn.addr as Deno.NetAddr).port);
    this.#outbox = new Outbox(conn, this.#sendTo, this.counters);
    this.scheduler = new Scheduler({
      afterRun: () => this.#outbox.flush(),
      onError: (e) => {
        this.counters.internalErrors++;
        this.log(
          "error",
          `internal error in a timer: ${e instanceof Error ? e.stack ?? e.message : String(e)}`,
        );
      },
    });
    const sweeper: Wakeable = {
      wake: (now) => {
        this.#sweepPeers(now);
        return now + sweepIntervalMs;
      },
    };
    this.scheduler.wakeAt(sweeper, performance.now() + sweepIntervalMs);
  }

  /** Binds the socket; throws with a clear message when the port is taken. */
  static listen(hostname: string, port: number, receive: ReceiveOptions = {}): MediaSocket {
    if (typeof Deno.listenDatagram !== "function") {
      throw new Error("Deno.listenDatagram is unavailable: run with --unstable-net (deno task start does)");
    }
    return new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname, port }), 250, receive);
  }

  /** How datagrams are read, for the start-up log (see {@link receiveReady}). */
  get receivePath(): string {
    return this.#receivePath;
  }

  /**
   * Resolves once it is known how datagrams will be read: a receive thread reports that it is running, or
   * why it is not (then {@link receivePath} names Deno's receive and the reason).
   */
  async receiveReady(): Promise<void> {
    const failure = await this.#thread?.ready();
    if (failure !== undefined && !this.#closed) {
      this.#receivePath = `Deno's receive, one op per datagram (receive thread unavailable: ${failure})`;
    }
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

  /**
   * Starts `count` fan-out workers sending on this socket's descriptor; returns one line for the start-up
   * log. They need the FFI send path (the descriptor): without it, or with 0, everything stays here.
   */
  startFanout(
    count: number,
    options: { stallMs?: number; log?: (level: "error" | "info", message: string) => void } = {},
  ): string {
    if (count === 0) return "on the main thread (FANOUT_WORKERS=0)";
    if (this.#sendTo === undefined) {
      return `on the main thread: FANOUT_WORKERS=${count} needs the FFI send path (${SendTo.unavailableReason})`;
    }
    // The workers' batches address IPv4 only (as the outbox's do); an IPv6 socket keeps Deno's send here.
    if ((this.#conn.addr as Deno.NetAddr).hostname.includes(":")) {
      return `on the main thread: FANOUT_WORKERS=${count} needs an IPv4 media socket (UDP_ADDRESS)`;
    }
    this.#fanout = new FanoutPool(count, this.#sendTo.fd, options);
    return `${count} worker thread${count === 1 ? "" : "s"} seal and send viewers' RTP (FANOUT_WORKERS)`;
  }

  /** The fan-out workers, when started. */
  get fanout(): FanoutPool | undefined {
    return this.#fanout;
  }

  /** Number of peers known to the socket. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /**
   * Reads until the socket is closed. Never throws for a bad datagram. With a receive thread, each batch
   * drained from its ring is handled datagram by datagram and flushed once; if the thread cannot start or
   * stops, Deno's receive takes over.
   */
  async run(): Promise<void> {
    const thread = this.#thread;
    if (thread) {
      const failure = await thread.ready();
      try {
        if (failure === undefined) await thread.run(this.#threadHandlers);
      } catch (e) {
        // The thread ended on its own: the socket is still open, so reading goes on without it.
        if (!this.#closed) this.log("error", `receive thread: ${(e as Error).message}; using Deno's receive`);
      }
      if (this.#closed) return;
      this.#drain = ReceiveDrain.open(this.#conn);
      if (failure === undefined) this.#receivePath = this.#denoReceivePath("the receive thread stopped");
    }
    await this.#receiveWithDeno();
  }

  #denoReceivePath(note: string): string {
    const drain = this.#drain
      ? "Deno's receive, then recvmmsg through libc for what else is queued"
      : `Deno's receive, one op per datagram (no batch reads: ${ReceiveDrain.unavailableReason})`;
    return note === "" ? drain : `${drain} (${note})`;
  }

  /**
   * Deno's receive wakes the loop; then what else is queued is read in one batch (a wake-up costs ~20–100 µs
   * here whatever it brings; see README Performance) and everything is flushed once.
   */
  async #receiveWithDeno(): Promise<void> {
    const buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
    const handlers = this.#threadHandlers;
    while (!this.#closed) {
      let received: [Uint8Array, Deno.Addr];
      try {
        received = await this.#conn.receive(buffer);
      } catch (e) {
        if (this.#closed) return;
        // ICMP errors from peers that went away (Linux reports them on the next receive) are skipped: one
        // vanished peer must not stop the loop that serves the others.
        if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset) continue;
        throw e;
      }
      this.#route(received[0], received[1] as Deno.NetAddr, performance.now());
      // Closing the socket (which closes the drain's library) may have happened while handling it.
      if (!this.#closed) this.#drain?.drain(handlers, performance.now());
      handlers.batchDone();
    }
  }

  /** What the receive thread and the batch reads call: every datagram of a batch, then one flush. */
  #threadHandlers = {
    datagram: (data: Uint8Array, from: PeerAddress, now: number): void => this.#route(data, from, now),
    batchDone: (): void => {
      this.counters.receiveBatches++;
      this.#outbox.flush();
    },
    oversize: (): void => {
      this.counters.oversize++;
    },
  };

  /**
   * Routes one datagram and sends what it produced. `data` and `from` are only valid during the call (the
   * read loop reuses them); RTP and RTCP are decrypted in place. Exposed for tests; the read loop calls it.
   */
  handleDatagram(data: Uint8Array, from: PeerAddress, now: number): void {
    try {
      this.#route(data, from, now);
    } finally {
      this.#outbox.flush();
    }
  }

  #route(data: Uint8Array, from: PeerAddress, now: number): void {
    this.counters.datagramsIn++;
    this.counters.bytesIn += data.length;
    let peer: Peer | undefined;
    try {
      switch (classifyDatagram(data)) {
        case "stun": {
          // Only STUN can validate an address (DTLS and SRTP are routed by validated addresses), so this
          // one check keeps a loopback-bound server from ever sending to another interface.
          if (this.#loopbackOnly && !isLoopbackAddress(from.hostname)) {
            this.counters.offLoopback++;
            return;
          }
          // Checks name the peer in USERNAME; answers to the server's own requests carry none and are
          // matched by the address they come from.
          if (isBindingSuccess(data)) peer = this.#peers.byAddress(from);
          else {
            const ufrag = stunLocalUfrag(data);
            peer = ufrag === undefined ? undefined : this.#peers.byUfrag(ufrag);
          }
          if (!peer) {
            this.counters.unknownPeer++;
            return;
          }
          // The source is copied: werift may keep it, and a receive thread reuses its address object.
          const source = { hostname: from.hostname, port: from.port };
          // ICE proved this source: from now on its DTLS and SRTP are routed to the peer.
          if (peer.handleInput(data.slice(), "stun", source, now) === "address-validated") {
            this.#peers.route(peer, source);
          }
          break;
        }
        case "dtls": {
          peer = this.#peers.byAddress(from);
          if (peer) peer.handleInput(data.slice(), "dtls", { hostname: from.hostname, port: from.port }, now);
          else this.counters.unknownPeer++;
          break;
        }
        case "rtp":
        case "rtcp": {
          peer = this.#peers.byAddress(from);
          if (!peer) {
            this.counters.unknownPeer++;
            return;
          }
          // One publisher packet becomes one datagram per viewer: they leave with one sendmmsg below.
          const input = peer.handleInput(data, data[1] >= 192 && data[1] <= 223 ? "rtcp" : "rtp", from, now);
          if (input === "rtp") this.media.rtp(peer, peer.received, now);
          else if (input === "rtcp") this.media.rtcp(peer, peer.received, now);
          break;
        }
        default:
          this.counters.junk++;
      }
    } catch (e) {
      // Peers turn bad input into counters, not exceptions: what arrives here is a bug. It must not take
      // down the loop or other peers, and it is told once per peer rather than once per packet.
      this.counters.internalErrors++;
      if (peer && this.#loggedErrors.has(peer)) return;
      if (peer) this.#loggedErrors.add(peer);
      this.log(
        "error",
        `internal error handling a datagram${peer ? ` of peer ${peer.id}` : ""}: ${
          e instanceof Error ? e.stack ?? e.message : String(e)
        }`,
      );
    }
  }

  /** The outbox's batch slots: forwarded RTP is sealed straight into them (see {@link Outbox.reserve}). */
  get slots(): Outbox {
    return this.#outbox;
  }

  /**
   * Queues one datagram in the outbox (sent at the end of the datagram, tick or task that produced it).
   * `data` is only read during the call, so callers may reuse their buffer.
   */
  transmit = (data: Uint8Array, to: PeerAddress): void => {
    this.#outbox.push(data, to);
  };

  addPeer(peer: Peer): void {
    this.#peers.add(peer);
  }

  renamePeer(peer: Peer, oldUfrag: string): void {
    this.#peers.rename(peer, oldUfrag);
  }

  /**
   * Routes datagrams from `address` to `peer` (see {@link PeerTable.route}). The read loop does this itself
   * when a peer's STUN input validates an address; tests route stand-in peers with it.
   */
  routeAddress(peer: Peer, address: PeerAddress): void {
    this.#peers.route(peer, address);
  }

  removePeer(peer: Peer): void {
    this.#peers.remove(peer);
  }

  /** Drops peers whose consent expired or that never connected (the scheduler runs it every sweep interval). */
  sweep(now: number): void {
    try {
      this.#sweepPeers(now);
    } finally {
      this.#outbox.flush();
    }
  }

  #sweepPeers(now: number): void {
    for (const peer of this.#peers.peers()) {
      if (peer.checkTimeout(now) || !peer.undecryptable || this.#loggedUndecryptable.has(peer)) continue;
      // Without this line such a session looks healthy (connected, live) while its media is all dropped.
      this.#loggedUndecryptable.add(peer);
      this.log(
        "error",
        `peer ${peer.id}: ${peer.counters.decryptFailures} SRTP packets failed to decrypt and none did (its keys differ from the client's)`,
      );
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.scheduler.close();
    // Close notifies and BYEs of the sessions ended at shutdown are still queued.
    this.#outbox.close();
    // Before the descriptor closes: a worker must never send on a number the kernel may hand out again.
    this.#fanout?.close();
    // The thread reads its own duplicate of the descriptor and closes it when it wakes (right away).
    this.#thread?.close();
    this.#drain?.close();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
