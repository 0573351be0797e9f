/**
 * The client side of ICE towards this kind of server (RFC 8445 as the controlling agent, aggressive
 * nomination; RFC 7675 consent): one nominating check per remote candidate, the first candidate that answers
 * is selected; the server's own checks are answered; consent checks keep the pair alive. Every check is a
 * STUN transaction retransmitted with the same transaction id and a doubling timeout (RFC 5389 §7.2.1), so
 * an answer that arrives after the next retransmission still counts. Pure: bytes and `now` in, datagrams
 * out through `send`, the next deadline returned; no socket, no clock.
 */
import { answerCheck, authenticatedResponse } from "./ice_lite.ts";
import { sameTransaction } from "./stun.ts";
import { controllingRequestBytes } from "./stun_writer.ts";

/** A UDP address. */
export interface IceAddress {
  hostname: string;
  port: number;
}

/** Where a datagram goes. */
export type SendDatagram = (data: Uint8Array, to: IceAddress) => void;

/** The two sides' credentials and where to look for the server. */
export interface ClientIceOptions {
  localUfrag: string;
  localPwd: string;
  remoteUfrag: string;
  remotePwd: string;
  /** The server's candidates (or where to reach each, e.g. through a relay). */
  candidates: IceAddress[];
  /** First retransmission timeout of a check; doubles up to {@link maxRtoMs}. Default 100 ms. */
  firstRtoMs?: number;
  /** Default 1600 ms. */
  maxRtoMs?: number;
  /** A consent check every this long once a pair is selected (RFC 7675 §5.1: about 5 s; default 2 s). */
  consentIntervalMs?: number;
}

/** What a STUN datagram did. */
export const IceInput = {
  /** Not ours, not valid, or a stale answer: dropped. */
  Ignored: 0,
  /** A check of the server's was answered. */
  CheckAnswered: 1,
  /** The first nominating check was answered: {@link ClientIce.selected} is set. */
  Selected: 2,
  /** One of our later checks (consent or {@link ClientIce.check}) was answered. */
  Answered: 3,
} as const;
/** One of {@link IceInput}. */
export type IceInput = typeof IceInput[keyof typeof IceInput];

interface Transaction {
  id: Uint8Array;
  bytes: Uint8Array;
  to: IceAddress;
  nominate: boolean;
  nextAt: number;
  rto: number;
  /** Retransmit until this time, then forget. */
  until: number;
  /** Set by {@link ClientIce.check}; reported in {@link ClientIce.answeredTicket}. */
  ticket: number;
}

/** PRIORITY of a host candidate of component 1 (RFC 8445 §5.1.2.1, type preference 126). */
const PRIORITY = (126 << 24) + (65535 << 8) + 255;
/** Open transactions at most: checks of a dead path are dropped oldest first. */
const MAX_TRANSACTIONS = 32;

/** The controlling agent of one client session. */
export class ClientIce {
  /** The candidate whose nominating check was answered first; undefined until then. */
  selected: IceAddress | undefined;
  /** When the server was last heard from over STUN (an answer or a check of its own). */
  lastHeard = -Infinity;
  /** The ticket of the last {@link check} answered. */
  answeredTicket = 0;
  #options: Required<ClientIceOptions>;
  #tieBreaker: bigint;
  #transactions: Transaction[] = [];
  #nextConsentAt = Infinity;
  #tickets = 0;

  constructor(options: ClientIceOptions) {
    this.#options = { firstRtoMs: 100, maxRtoMs: 1600, consentIntervalMs: 2000, ...options };
    const random = crypto.getRandomValues(new Uint32Array(2));
    this.#tieBreaker = (BigInt(random[0]) << 32n) | BigInt(random[1]);
  }

  /** Starts a nominating check to every candidate; retransmitted by {@link poll} until `until`. */
  start(now: number, until: number, send: SendDatagram): void {
    for (const to of this.#options.candidates) {
      this.#open(to, true, now, until, 0, this.#options.firstRtoMs, send);
    }
  }

  /**
   * A check to the selected pair, retransmitted from `firstRtoMs` until answered or `until`; returns the
   * ticket {@link answeredTicket} takes when it is answered (0 when nothing is selected).
   */
  check(now: number, until: number, firstRtoMs: number, send: SendDatagram): number {
    if (!this.selected) return 0;
    const ticket = ++this.#tickets;
    this.#open(this.selected, false, now, until, ticket, firstRtoMs, send);
    return ticket;
  }

  /** The bytes of a fresh consent check (for a caller that sends it by other means). */
  consentRequest(): Uint8Array {
    return this.#request(crypto.getRandomValues(new Uint8Array(12)), false);
  }

  /** The response to a check of the server's from `from`; undefined when it does not verify. */
  answer(data: Uint8Array, from: IceAddress): Uint8Array | undefined {
    const o = this.#options;
    return answerCheck(
      data,
      { localUfrag: o.localUfrag, localPwd: o.localPwd, remoteUfrag: o.remoteUfrag },
      from,
    )
      ?.response;
  }

  /** One STUN datagram from `from`. */
  handleStun(data: Uint8Array, from: IceAddress, now: number, send: SendDatagram): IceInput {
    if (data.length >= 2 && data[0] === 0x00 && data[1] === 0x01) {
      const response = this.answer(data, from);
      if (!response) return IceInput.Ignored;
      this.lastHeard = now;
      send(response, from);
      return IceInput.CheckAnswered;
    }
    const id = authenticatedResponse(data, this.#options.remotePwd);
    if (!id) return IceInput.Ignored;
    const list = this.#transactions;
    for (let i = 0; i < list.length; i++) {
      const t = list[i];
      if (!sameTransaction(t.id, id) || t.to.hostname !== from.hostname || t.to.port !== from.port) continue;
      list.splice(i, 1);
      this.lastHeard = now;
      if (t.ticket > 0) this.answeredTicket = t.ticket;
      if (t.nominate && !this.selected) {
        this.selected = t.to;
        // The other candidates' checks are moot now.
        this.#transactions = list.filter((other) => !other.nominate);
        this.#nextConsentAt = now + this.#options.consentIntervalMs;
        return IceInput.Selected;
      }
      return IceInput.Answered;
    }
    return IceInput.Ignored;
  }

  /** Retransmits due checks and starts due consent checks; returns when to be called next. */
  poll(now: number, send: SendDatagram): number {
    const o = this.#options;
    if (this.selected && now >= this.#nextConsentAt) {
      this.#nextConsentAt = now + o.consentIntervalMs;
      this.#open(this.selected, false, now, now + o.consentIntervalMs, 0, o.firstRtoMs, send);
    }
    let next = this.#nextConsentAt;
    const list = this.#transactions;
    for (let i = list.length - 1; i >= 0; i--) {
      const t = list[i];
      if (now >= t.until) {
        list.splice(i, 1);
        continue;
      }
      if (now >= t.nextAt) {
        send(t.bytes, t.to);
        t.rto = Math.min(t.rto * 2, o.maxRtoMs);
        t.nextAt = now + t.rto;
      }
      next = Math.min(next, t.nextAt, t.until);
    }
    return next;
  }

  /** Whether a nominating check is still being retransmitted (ICE not failed yet). */
  get checking(): boolean {
    return !this.selected && this.#transactions.some((t) => t.nominate);
  }

  #open(
    to: IceAddress,
    nominate: boolean,
    now: number,
    until: number,
    ticket: number,
    firstRtoMs: number,
    send: SendDatagram,
  ): void {
    const id = crypto.getRandomValues(new Uint8Array(12));
    const bytes = this.#request(id, nominate);
    if (this.#transactions.length >= MAX_TRANSACTIONS) this.#transactions.shift();
    this.#transactions.push({
      id,
      bytes,
      to,
      nominate,
      nextAt: now + firstRtoMs,
      rto: firstRtoMs,
      until,
      ticket,
    });
    send(bytes, to);
  }

  #request(id: Uint8Array, nominate: boolean): Uint8Array {
    const o = this.#options;
    return controllingRequestBytes(
      id,
      `${o.remoteUfrag}:${o.localUfrag}`,
      PRIORITY,
      this.#tieBreaker,
      nominate,
      o.remotePwd,
    );
  }
}
