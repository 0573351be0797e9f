/**
 * Which client addresses a peer may send media to. A valid check only shows that someone knows the
 * session's credentials, and a viewer knows its own: with a forged source address it could point the stream
 * at a third party. So an address is only sent media once it is proven: the DTLS handshake ran there, or the
 * server's own binding request to it (signed with the client's ice-pwd) got an authenticated success response
 * from it (RFC 7675 consent, RFC 8445 §7.2). Until then the server answers no check from it and media stays
 * on the old path. Consent on the selected address is refreshed the same way (RFC 7675 §5.1) and lapses
 * after the consent timeout; checks, from any address, do not refresh it.
 *
 * Pure: addresses, datagrams and `now` come in; requests go out through the `transmit` function passed in.
 */
import { authenticatedResponse, bindingRequest, type RemoteCredentials } from "./ice_lite.ts";
import { sameTransaction } from "./stun.ts";

/** A UDP address; the shape of `Deno.NetAddr` without the transport field. */
export interface PathAddress {
  hostname: string;
  port: number;
}

type Transmit = (data: Uint8Array, to: PathAddress) => void;

/** Addresses one peer may have checks from in its life; more are ignored (checks cannot grow the tables). */
export const MAX_CHECKED_ADDRESSES = 16;
/** Unproven addresses being probed at once. */
export const MAX_PROBES = 4;
/** Transmissions of one probe (RFC 5389 §7.2.1 retransmits with a doubling RTO), then it gives up. */
export const PROBE_TRANSMISSIONS = 4;
/** First retransmission timeout of a probe; it doubles after each transmission. */
export const PROBE_RTO_MS = 500;
/** After a probe gave up, checks from that address are ignored for this long (no answer, no new probe). */
export const REFUSED_COOLDOWN_MS = 30_000;
/** RFC 7675 §5.1: a consent request every 5 s (±20 %), or more often when the timeout is shorter. */
const CONSENT_INTERVAL_MAX_MS = 5000;
const CONSENT_INTERVAL_MIN_MS = 200;
/** Consent requests whose responses are still accepted (a late response to the one before still counts). */
const CONSENT_TRANSACTIONS = 4;
const MAX_PROVEN = 8;
const MAX_REFUSED = 64;

interface Probe {
  address: PathAddress;
  transactionId: Uint8Array;
  transmissions: number;
  nextAt: number;
  /** A check from the address carried USE-CANDIDATE: select it once proven. */
  nominated: boolean;
}

/** The addresses of one peer: checked, proven, selected; and consent on the selected one. */
export class IcePaths {
  /** Where media goes: a proven address, or undefined before the handshake. */
  selected: PathAddress | undefined;
  #selectedKey = "";
  #consentTimeoutMs: number;
  #consentIntervalMs: number;
  #tieBreaker: bigint;
  #established = false;
  /** Addresses a valid check came from (routing, DTLS and SRTP are accepted from these). */
  #checked = new Map<string, PathAddress>();
  /** Proven addresses and when they last answered the server's request (or ran the handshake). */
  #provenAt = new Map<string, number>();
  #probes = new Map<string, Probe>();
  #refusedUntil = new Map<string, number>();
  /** Before the handshake: the address the client nominated last. */
  #nominatedKey: string | undefined;
  #consentTransactions: Uint8Array[] = [];
  #nextConsentAt = 0;

  constructor(consentTimeoutMs: number, random: () => number = Math.random) {
    this.#consentTimeoutMs = consentTimeoutMs;
    this.#consentIntervalMs = Math.min(
      CONSENT_INTERVAL_MAX_MS,
      Math.max(CONSENT_INTERVAL_MIN_MS, consentTimeoutMs / 6),
    );
    this.#random = random;
    this.#tieBreaker = BigInt(Math.floor(random() * 2 ** 32)) << 32n | BigInt(Math.floor(random() * 2 ** 32));
  }

  #random: () => number;

  /** Whether a valid check came from this address. */
  isChecked(address: PathAddress): boolean {
    // Media comes from the selected address: answered without building a key (the selected one is checked).
    const selected = this.selected;
    if (selected !== undefined && selected.port === address.port && selected.hostname === address.hostname) {
      return true;
    }
    return this.#checked.has(addressKey(address));
  }

  /** Whether this address is proven to want the peer's datagrams. */
  isProven(address: PathAddress): boolean {
    return this.#provenAt.has(addressKey(address));
  }

  /**
   * A check that verified came from `from`. Returns whether to answer it: before the handshake every
   * checked address is answered (ICE-lite, RFC 8445 §7.3; the handshake then proves one), afterwards only
   * proven ones, and an unproven one is probed instead.
   */
  check(
    from: PathAddress,
    nominated: boolean,
    now: number,
    credentials: RemoteCredentials,
    transmit: Transmit,
  ) {
    const key = addressKey(from);
    if (!this.#checked.has(key)) {
      // Never shrinks, so the socket's routes for this peer stay bounded too.
      if (this.#checked.size >= MAX_CHECKED_ADDRESSES) return false;
      this.#checked.set(key, { hostname: from.hostname, port: from.port });
    }
    if (!this.#established) {
      if (nominated) this.#nominatedKey = key;
      return true;
    }
    if (this.#provenRecently(key, now)) {
      if (nominated && key !== this.#selectedKey) this.#select(key);
      return true;
    }
    if (this.#refused(key, now)) return false;
    this.#probe(key, nominated, now, credentials, transmit);
    return false;
  }

  /** The DTLS handshake completed with `from`: it is proven and selected; a nominated other one is probed. */
  handshakeDone(from: PathAddress, now: number, credentials: RemoteCredentials, transmit: Transmit): void {
    const key = addressKey(from);
    this.#established = true;
    this.#checked.set(key, { hostname: from.hostname, port: from.port });
    this.#prove(key, now);
    this.#select(key);
    this.#nextConsentAt = now + this.#consentInterval();
    const nominated = this.#nominatedKey;
    if (nominated !== undefined && nominated !== key) {
      this.#probe(nominated, true, now, credentials, transmit);
    }
  }

  /**
   * Before the handshake: DTLS came from `from`, a checked address other than the one the handshake started
   * with (the client switched candidate pairs, as browsers with several host candidates do when a better
   * pair succeeds). Returns whether the handshake may move there: only once the address is proven, since a
   * check alone may carry a forged source. Until then it is probed (not nominated: media waits for the
   * handshake) and the records are dropped; the client retransmits its flight, and a copy after the proof
   * gets through.
   */
  handshakeMove(from: PathAddress, now: number, credentials: RemoteCredentials, transmit: Transmit): boolean {
    const key = addressKey(from);
    if (!this.#checked.has(key)) return false;
    if (this.#provenRecently(key, now)) return true;
    if (this.#refused(key, now)) return false;
    this.#probe(key, false, now, credentials, transmit);
    return false;
  }

  /** A STUN success response from `from`: proves the address if it answers one of the server's requests. */
  response(data: Uint8Array, from: PathAddress, now: number, credentials: RemoteCredentials): void {
    const transactionId = authenticatedResponse(data, credentials.remotePwd);
    if (!transactionId) return;
    const key = addressKey(from);
    const probe = this.#probes.get(key);
    if (probe && sameTransaction(probe.transactionId, transactionId)) {
      this.#probes.delete(key);
      this.#prove(key, now);
      if (probe.nominated) this.#select(key);
      return;
    }
    if (
      key === this.#selectedKey && this.#consentTransactions.some((t) => sameTransaction(t, transactionId))
    ) {
      this.#prove(key, now);
    }
  }

  /**
   * Timers: sends the consent request when one is due and retransmits or gives up probes. Returns true when
   * consent on the selected address lapsed (nothing answered for the consent timeout).
   */
  poll(now: number, credentials: RemoteCredentials, transmit: Transmit): boolean {
    for (const [key, probe] of this.#probes) {
      if (now < probe.nextAt) continue;
      if (probe.transmissions >= PROBE_TRANSMISSIONS) {
        this.#probes.delete(key);
        this.#refuse(key, now);
        continue;
      }
      this.#sendProbe(probe, credentials, transmit);
    }
    if (!this.#established || !this.selected) return false;
    const provenAt = this.#provenAt.get(this.#selectedKey) ?? -Infinity;
    if (now - provenAt > this.#consentTimeoutMs) return true;
    if (now >= this.#nextConsentAt) {
      this.#nextConsentAt = now + this.#consentInterval();
      const transactionId = crypto.getRandomValues(new Uint8Array(12));
      if (this.#consentTransactions.push(transactionId) > CONSENT_TRANSACTIONS) {
        this.#consentTransactions.shift();
      }
      transmit(bindingRequest(credentials, transactionId, this.#tieBreaker), this.selected);
    }
    return false;
  }

  /** ICE restart: requests in flight were signed with the old credentials; proven addresses stay. */
  restart(): void {
    this.#probes.clear();
    this.#consentTransactions.length = 0;
    this.#nextConsentAt = 0;
  }

  #probe(key: string, nominated: boolean, now: number, credentials: RemoteCredentials, transmit: Transmit) {
    const existing = this.#probes.get(key);
    if (existing) {
      existing.nominated ||= nominated;
      return;
    }
    const address = this.#checked.get(key);
    if (!address || this.#probes.size >= MAX_PROBES) return;
    const probe: Probe = {
      address,
      transactionId: crypto.getRandomValues(new Uint8Array(12)),
      transmissions: 0,
      nextAt: now,
      nominated,
    };
    this.#probes.set(key, probe);
    this.#sendProbe(probe, credentials, transmit, now);
  }

  #sendProbe(probe: Probe, credentials: RemoteCredentials, transmit: Transmit, now = probe.nextAt): void {
    // Retransmissions keep the transaction id (RFC 5389 §7.2.1).
    probe.nextAt = Math.max(now, probe.nextAt) + PROBE_RTO_MS * 2 ** probe.transmissions;
    probe.transmissions++;
    transmit(bindingRequest(credentials, probe.transactionId, this.#tieBreaker), probe.address);
  }

  #provenRecently(key: string, now: number): boolean {
    const at = this.#provenAt.get(key);
    return at !== undefined && now - at <= this.#consentTimeoutMs;
  }

  #prove(key: string, now: number): void {
    this.#provenAt.delete(key);
    this.#provenAt.set(key, now);
    this.#refusedUntil.delete(key);
    if (this.#provenAt.size > MAX_PROVEN) {
      for (const old of this.#provenAt.keys()) {
        if (old !== this.#selectedKey && old !== key) {
          this.#provenAt.delete(old);
          break;
        }
      }
    }
  }

  #select(key: string): void {
    const address = this.#checked.get(key);
    if (!address) return;
    this.selected = address;
    this.#selectedKey = key;
    this.#consentTransactions.length = 0;
  }

  #refused(key: string, now: number): boolean {
    const until = this.#refusedUntil.get(key);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#refusedUntil.delete(key);
    return false;
  }

  #refuse(key: string, now: number): void {
    this.#refusedUntil.delete(key);
    this.#refusedUntil.set(key, now + REFUSED_COOLDOWN_MS);
    if (this.#refusedUntil.size > MAX_REFUSED) {
      this.#refusedUntil.delete(this.#refusedUntil.keys().next().value!);
    }
  }

  #consentInterval(): number {
    return this.#consentIntervalMs * (0.8 + 0.4 * this.#random());
  }
}

/** The key an address is stored under. */
export function addressKey(a: PathAddress): string {
  return `${a.hostname}|${a.port}`;
}
