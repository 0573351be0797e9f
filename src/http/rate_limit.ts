/**
 * Per-client budgets of failed attempts at the session-creating endpoints (WHIP/WHEP `POST` answered 400,
 * 401, 403, 413 or 415): a token bucket per client address that holds `perMinute` tokens and refills
 * continuously; while it is empty every POST from the address is refused. Successful requests spend
 * nothing, so a crowd behind one address is limited by what it holds (see SessionManager), not by how
 * fast it joins. Time is passed in, so tests need no
 * clock. Memory is bounded: at most `maxClients` buckets are kept, full ones are forgotten first.
 */

import { addressKey, clientAddress } from "./client_address.ts";

/** Whether a request may proceed, and if not, how many whole seconds until it could. */
export interface RateDecision {
  allowed: boolean;
  /** Seconds to put in `Retry-After` (0 when allowed). */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per client key. A `perMinute` of 0 disables limiting. */
export class RateLimiter {
  readonly perMinute: number;
  readonly maxClients: number;
  #buckets = new Map<string, Bucket>();
  #lastSweep = -Infinity;

  constructor(perMinute: number, options: { maxClients?: number } = {}) {
    if (!Number.isInteger(perMinute) || perMinute < 0) {
      throw new RangeError("perMinute must be an integer >= 0");
    }
    this.perMinute = perMinute;
    this.maxClients = options.maxClients ?? 10_000;
  }

  /** Number of clients currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Whether `key` has a token left at time `now` (milliseconds), without spending it. */
  check(key: string, now: number): RateDecision {
    const bucket = this.#buckets.get(key);
    if (this.perMinute === 0 || !bucket) return { allowed: true, retryAfterSeconds: 0 };
    const perMs = this.perMinute / 60_000;
    const tokens = Math.min(this.perMinute, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
    if (tokens >= 1) return { allowed: true, retryAfterSeconds: 0 };
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perMs / 1000)) };
  }

  /** Spends one token of `key`'s budget at time `now` (milliseconds). */
  take(key: string, now: number): RateDecision {
    if (this.perMinute === 0) return { allowed: true, retryAfterSeconds: 0 };
    const perMs = this.perMinute / 60_000;
    let bucket = this.#buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
      bucket.at = now;
      // Re-insert so Map order is least-recently-seen first, which is the eviction order.
      this.#buckets.delete(key);
    } else {
      if (this.#buckets.size >= this.maxClients) this.#evict(now);
      bucket = { tokens: this.perMinute, at: now };
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)) };
  }

  /**
   * Frees buckets that have refilled (they equal a fresh one), at most one full scan per second so a flood
   * of new addresses costs O(1) each; otherwise drops the least recently seen.
   */
  #evict(now: number): void {
    if (now - this.#lastSweep >= 1000) {
      this.#lastSweep = now;
      const perMs = this.perMinute / 60_000;
      for (const [key, bucket] of this.#buckets) {
        if (bucket.tokens + (now - bucket.at) * perMs >= this.perMinute) this.#buckets.delete(key);
      }
    }
    if (this.#buckets.size >= this.maxClients) {
      const oldest = this.#buckets.keys().next();
      if (!oldest.done) this.#buckets.delete(oldest.value);
    }
  }
}

/** Who sent a request: its address, the key of that address for per-address limits, its User-Agent. */
export interface RequestClient {
  ip: string;
  key: string;
  userAgent: string | null;
}

/**
 * The client of `req`, which arrived from `socketAddress` (see {@link clientAddress} and
 * {@link addressKey}): its normalised address, the key per-address limits count it under, its User-Agent.
 */
export function requestClient(
  req: Request,
  socketAddress: string,
  trusted: ReadonlySet<string>,
): RequestClient {
  const ip = clientAddress(socketAddress, req.headers.get("x-forwarded-for"), trusted);
  return { ip, key: addressKey(ip), userAgent: req.headers.get("user-agent") };
}
