/**
 * A {@link ClientPeer} over its own UDP socket: the read loop, one timer armed for the peer's next deadline,
 * and the waits a caller needs (ICE, then DTLS, within a deadline; a check answered). The read loop is
 * guarded like the media socket's: bad input is dropped where it is decoded, and anything thrown past that
 * (a bug here or in what `onRtp` feeds) is counted, reported through `onInternalError`, and the loop reads
 * on. Used by the relay pull and the project's test and benchmark clients.
 */
import { receiveEach } from "../net/datagrams.ts";
import type { IceAddress } from "./client_ice.ts";
import { ClientPeer, type ClientPeerOptions, DtlsFailure, PeerInput } from "./client_peer.ts";

/** Why a client session ended on its own. */
export type ClientCloseReason = "dtls-closed" | "silent" | "socket-error";

/** ICE found no candidate that answers within the deadline. */
export class IceFailure extends Error {
  override name = "IceFailure";
}

/** Socket-side settings. */
export interface ClientSocketOptions {
  /** No authentic datagram (media, RTCP, STUN answer) for this long after DTLS: the session is dead. */
  silenceMs?: number;
}

/** One client session's socket. */
export class ClientSocket {
  /** The session's ICE/DTLS/SRTP state, from {@link connect} on. */
  peer: ClientPeer | undefined;
  /** Decrypted RTP (valid only during the call). */
  onRtp: (packet: Uint8Array, now: number) => void = () => {};
  /** Decrypted compound RTCP (valid only during the call). */
  onRtcp: (packet: Uint8Array, now: number) => void = () => {};
  /** An exception under a datagram's handling that is not the datagram's fault; called for each. */
  onInternalError: (error: unknown) => void = () => {};
  /** The session ended on its own (not by {@link close}). */
  onClosed: (reason: ClientCloseReason) => void = () => {};
  readonly counters = { internalErrors: 0 };
  /** performance.now() when ICE selected a pair and when DTLS finished (0 until then). */
  iceAt = 0;
  connectedAt = 0;

  #conn: Deno.DatagramConn;
  #options: ClientSocketOptions;
  #closed = false;
  /** Reading stopped and the socket handed to another owner ({@link release}). */
  #released = false;
  #reading: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #onSelected: (() => void) | undefined;
  #checkWaiters = new Map<number, () => void>();
  #lastTo: IceAddress | undefined;
  #lastAddr: Deno.NetAddr | undefined;

  constructor(conn: Deno.DatagramConn, options: ClientSocketOptions = {}) {
    this.#conn = conn;
    this.#options = options;
  }

  /** A socket on `hostname` with a port the OS picks. */
  static bind(hostname: string, options?: ClientSocketOptions): ClientSocket {
    return new ClientSocket(Deno.listenDatagram({ transport: "udp", hostname, port: 0 }), options);
  }

  /** The local port (for the offer's candidate). */
  get port(): number {
    return (this.#conn.addr as Deno.NetAddr).port;
  }

  /**
   * Runs ICE (the first candidate to answer is the pair), calls `beforeDtls`, then DTLS; all within
   * `timeoutMs`. Rejects with {@link IceFailure} or {@link DtlsFailure}.
   */
  async connect(options: ClientPeerOptions, timeoutMs: number, beforeDtls?: () => void): Promise<ClientPeer> {
    const started = performance.now();
    const deadline = started + timeoutMs;
    const peer = new ClientPeer(options, this.send);
    this.peer = peer;
    peer.onDtlsClosed = () => this.#end("dtls-closed");
    this.#reading ??= this.#readLoop();
    const selected = new Promise<void>((resolve) => this.#onSelected = resolve);
    peer.start(started, deadline);
    this.#wake();
    const candidates = options.ice.candidates.map((c) => `${c.hostname}:${c.port}`).join(", ");
    await this.#within(selected, deadline, () => new IceFailure(`ICE checks to ${candidates} unanswered`));
    this.iceAt = performance.now();
    beforeDtls?.();
    await this.#within(
      peer.startDtls(),
      deadline,
      () =>
        new DtlsFailure(
          `DTLS handshake timed out (${peer.counters.helloVerifyRepeats} repeated HelloVerifyRequests, ` +
            `last handshake types ${peer.dtlsTrace.join(",")})`,
        ),
    );
    this.connectedAt = performance.now();
    this.#wake();
    return peer;
  }

  /**
   * Sends a check on the selected pair (retransmitted from `firstRtoMs`) and resolves once it is answered.
   * The server reads one socket in order, so it has then handled everything sent before the check.
   */
  async check(firstRtoMs: number, timeoutMs: number): Promise<void> {
    const peer = this.peer;
    if (!peer?.ice.selected || this.#closed) throw new IceFailure("no ICE pair to check");
    const now = performance.now();
    const ticket = peer.ice.check(now, now + timeoutMs, firstRtoMs, this.send);
    const answered = new Promise<void>((resolve) => this.#checkWaiters.set(ticket, resolve));
    this.#wake();
    try {
      await this.#within(answered, now + timeoutMs, () => new IceFailure("check unanswered"));
    } finally {
      this.#checkWaiters.delete(ticket);
    }
  }

  /** Sends bytes as they are (to the selected pair by default); Deno reads `data` later: do not reuse it. */
  send = (data: Uint8Array, to: IceAddress | undefined = this.peer?.ice.selected): void => {
    if (this.#closed || this.#released || !to) return;
    let addr = this.#lastAddr;
    if (to !== this.#lastTo || !addr) {
      addr = { transport: "udp", hostname: to.hostname, port: to.port };
      this.#lastTo = to;
      this.#lastAddr = addr;
    }
    this.#conn.send(data, addr).catch(() => {});
  };

  /**
   * Stops reading and timing, and closes this handle of the socket, for an owner that reads it through a
   * descriptor of its own (`adopt` must take it first, e.g. `dup` through FFI). The peer's keys stay usable.
   */
  release(adopt: (localPort: number) => void): void {
    adopt(this.port);
    this.#released = true;
    clearTimeout(this.#timer);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /**
   * Ends the session here: DTLS close_notify (unless `notify` is false: a client that vanishes, or whose
   * session the server already ended), keys dropped, socket closed.
   */
  close(notify = true): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.peer?.close(notify);
    if (!this.#released) {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
  }

  #end(reason: ClientCloseReason): void {
    if (this.#closed) return;
    this.close();
    this.onClosed(reason);
  }

  #readLoop(): Promise<void> {
    // One buffer for every read: media is decrypted in place and handed on (callers copy what they keep).
    const reading = receiveEach(
      this.#conn,
      () => this.#closed || this.#released,
      new Uint8Array(65536),
      this.#handleDatagram,
    );
    reading.catch(() => this.#end("socket-error"));
    return reading;
  }

  #handleDatagram = (data: Uint8Array, from: Deno.NetAddr): void => {
    const peer = this.peer;
    if (!peer) return;
    try {
      const now = performance.now();
      switch (peer.handleDatagram(data, from, now)) {
        case PeerInput.Rtp:
          this.onRtp(peer.packet, now);
          break;
        case PeerInput.Rtcp:
          this.onRtcp(peer.packet, now);
          break;
        case PeerInput.IceSelected:
          this.#onSelected?.();
          this.#onSelected = undefined;
          break;
        case PeerInput.CheckAnswered:
          this.#checkWaiters.get(peer.ice.answeredTicket)?.();
          break;
      }
    } catch (e) {
      this.counters.internalErrors++;
      this.onInternalError(e);
    }
  };

  /** Polls the peer and arms the timer for its next deadline (and the silence check). */
  #wake = (): void => {
    if (this.#closed || this.#released || !this.peer) return;
    const now = performance.now();
    const peer = this.peer;
    const silenceMs = this.#options.silenceMs;
    if (
      silenceMs !== undefined && peer.connected &&
      now - Math.max(peer.lastHeard, this.connectedAt) > silenceMs
    ) {
      this.#end("silent");
      return;
    }
    let next = peer.poll(now);
    if (silenceMs !== undefined && peer.connected) next = Math.min(next, now + 1000);
    if (next < this.#timerAt && next !== Infinity) {
      clearTimeout(this.#timer);
      this.#timerAt = next;
      this.#timer = setTimeout(this.#fired, Math.max(0, next - now));
    }
  };

  /** The timer ran (perhaps a little before the deadline it was armed for): it is no longer armed. */
  #fired = (): void => {
    this.#timerAt = Infinity;
    this.#wake();
  };

  async #within<T>(work: Promise<T>, deadline: number, timedOut: () => Error): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut()), Math.max(0, deadline - performance.now()));
    });
    // The work may still fail after the deadline won the race: that is no unhandled rejection.
    work.catch(() => {});
    try {
      return await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  }
}
