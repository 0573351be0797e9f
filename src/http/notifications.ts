/**
 * `GET /notifications`: the room list as Server-Sent Events, each client seeing the rooms its
 * {@link RoomFilter} shows (private rooms only with a token that opens them). The full list is sent on connect, after every
 * change (coalesced to at most one event per {@link COALESCE_MS}), and every {@link REFRESH_MS} so a client
 * that missed one is corrected; a comment line every {@link HEARTBEAT_MS} keeps proxies from closing it.
 */
import type { RoomDirectory } from "../rooms/directory.ts";
import { roomsJson } from "./rooms.ts";
import { HttpError } from "./body.ts";
import { publicRooms, type RoomFilter } from "./auth.ts";

export const COALESCE_MS = 250;
export const REFRESH_MS = 30_000;
export const HEARTBEAT_MS = 15_000;

/** The timers the feed runs on: the platform's by default, a manual clock in tests. */
export interface FeedTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(id: unknown): void;
}

const PLATFORM_TIMERS: FeedTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as number),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (id) => clearInterval(id as number),
};

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** A snapshot is waiting because the client was not reading. */
  pending: boolean;
  filter: RoomFilter;
  /** Key of the client's address (per-address cap). */
  address: string;
}

const EVERY_ROOM = publicRooms(undefined);

/** Fans the room list out to SSE clients. */
export class RoomFeed {
  #directory: RoomDirectory;
  #clients = new Set<Client>();
  #maxClients: number;
  #timers: FeedTimers;
  #flushTimer: unknown;
  #refreshTimer: unknown;
  #heartbeatTimer: unknown;
  #maxPerAddress: number;
  #perAddress = new Map<string, number>();
  #unsubscribe: () => void;
  #encoder = new TextEncoder();
  #coalesceMs: number;

  /** `coalesceMs`, `refreshMs` and `heartbeatMs` default to the exported constants; `timers` to the platform's. */
  constructor(
    directory: RoomDirectory,
    options: {
      maxClients?: number;
      maxPerAddress?: number;
      coalesceMs?: number;
      refreshMs?: number;
      heartbeatMs?: number;
      timers?: FeedTimers;
    } = {},
  ) {
    this.#directory = directory;
    const timers = this.#timers = options.timers ?? PLATFORM_TIMERS;
    this.#maxClients = options.maxClients ?? 1000;
    this.#maxPerAddress = options.maxPerAddress ?? 100;
    this.#coalesceMs = options.coalesceMs ?? COALESCE_MS;
    this.#unsubscribe = directory.onChange((event) => {
      if (event.type !== "keyframe") this.#scheduleFlush();
    });
    this.#refreshTimer = timers.setInterval(() => this.#broadcast(), options.refreshMs ?? REFRESH_MS);
    this.#heartbeatTimer = timers.setInterval(
      () => this.#sendAll(this.#encoder.encode(": heartbeat\n\n")),
      options.heartbeatMs ?? HEARTBEAT_MS,
    );
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * Opens an event stream for one client; it ends when the client goes away (the body is cancelled), when
   * `signal` aborts, or on {@link close}. `address` is the key of the client's address (at most
   * `maxPerAddress` streams each, 429 beyond); `filter` says which rooms it sees.
   */
  connect(options: { address?: string; filter?: RoomFilter; signal?: AbortSignal } = {}): Response {
    const address = options.address ?? "";
    const held = this.#perAddress.get(address) ?? 0;
    if (held >= this.#maxPerAddress) {
      throw new HttpError(
        429,
        `your address has ${this.#maxPerAddress} notification streams open (MAX_SSE_PER_ADDRESS)`,
        { "Retry-After": "10" },
      );
    }
    if (this.#clients.size >= this.#maxClients) {
      throw new HttpError(503, "too many notification clients", { "Retry-After": "10" });
    }
    let client: Client | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = { controller, pending: false, filter: options.filter ?? EVERY_ROOM, address };
        this.#clients.add(client);
        this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
        controller.enqueue(this.#encoder.encode("retry: 2000\n\n"));
        controller.enqueue(this.#snapshot(client.filter));
      },
      pull: () => {
        // The client caught up: give it the snapshot it missed while it was slow.
        if (client?.pending) {
          client.pending = false;
          client.controller.enqueue(this.#snapshot(client.filter));
        }
      },
      cancel: () => {
        this.#forget(client);
      },
    }, { highWaterMark: 4 });
    options.signal?.addEventListener("abort", () => this.#drop(client), { once: true });
    return new Response(body, {
      headers: {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
      },
    });
  }

  close(): void {
    this.#unsubscribe();
    this.#timers.clearInterval(this.#refreshTimer);
    this.#timers.clearInterval(this.#heartbeatTimer);
    if (this.#flushTimer !== undefined) this.#timers.clearTimeout(this.#flushTimer);
    for (const client of [...this.#clients]) this.#drop(client);
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = this.#timers.setTimeout(() => {
      this.#flushTimer = undefined;
      this.#broadcast();
    }, this.#coalesceMs);
  }

  #broadcast(): void {
    if (this.#clients.size === 0) return;
    // One snapshot per kind of filter, shared by the clients that see the same rooms.
    const snapshots = new Map<string, Uint8Array>();
    this.#sendAll((filter) => {
      let data = snapshots.get(filter.key);
      if (!data) snapshots.set(filter.key, data = this.#snapshot(filter));
      return data;
    });
  }

  #sendAll(message: Uint8Array | ((filter: RoomFilter) => Uint8Array)): void {
    for (const client of this.#clients) {
      const room = client.controller.desiredSize ?? 0;
      // A slow client holds at most a few queued messages: further snapshots are replaced by one pending
      // flag, and the latest list is sent when it reads again.
      if (room <= 0) {
        client.pending = true;
        continue;
      }
      try {
        client.controller.enqueue(typeof message === "function" ? message(client.filter) : message);
      } catch {
        this.#drop(client);
      }
    }
  }

  #snapshot(filter: RoomFilter): Uint8Array {
    return this.#encoder.encode(`data: ${JSON.stringify(roomsJson(this.#directory, filter))}\n\n`);
  }

  /** Removes a client from the set and its address's count; false when it was already gone. */
  #forget(client: Client | undefined): boolean {
    if (!client || !this.#clients.delete(client)) return false;
    const left = (this.#perAddress.get(client.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(client.address, left);
    else this.#perAddress.delete(client.address);
    return true;
  }

  #drop(client: Client | undefined): void {
    if (!client || !this.#forget(client)) return;
    try {
      client.controller.close();
    } catch { /* already closed or errored */ }
  }
}
