/**
 * How many HTTP connections are open, in total and per client address, and whether one more may open.
 * Pure bookkeeping (no I/O); keys are {@link addressKey}s, so IPv4 and IPv4-mapped IPv6 share one count and
 * IPv6 counts per /64.
 */

/** Why a connection was refused. */
export type Refusal = "total" | "address";

/** The caps. */
export interface ConnectionCaps {
  /** Open connections in total. */
  maxConnections: number;
  /** Open connections from one address (key); trusted proxies are exempt. */
  maxPerAddress: number;
}

/** Counts of open connections. */
export class ConnectionLimits {
  readonly caps: ConnectionCaps;
  #perKey = new Map<string, number>();
  #total = 0;

  constructor(caps: ConnectionCaps) {
    this.caps = caps;
  }

  /** Open connections. */
  get total(): number {
    return this.#total;
  }

  /** Open connections of `key`. */
  count(key: string): number {
    return this.#perKey.get(key) ?? 0;
  }

  /** Counts one more connection of `key`, or says why it may not open (then nothing is counted). */
  admit(key: string, exempt = false): Refusal | undefined {
    if (this.#total >= this.caps.maxConnections) return "total";
    const held = this.#perKey.get(key) ?? 0;
    if (!exempt && held >= this.caps.maxPerAddress) return "address";
    this.#perKey.set(key, held + 1);
    this.#total++;
    return undefined;
  }

  /** Forgets one connection of `key` admitted earlier. */
  release(key: string): void {
    const held = this.#perKey.get(key);
    if (held === undefined) return;
    if (held <= 1) this.#perKey.delete(key);
    else this.#perKey.set(key, held - 1);
    this.#total--;
  }
}
