/**
 * `GET /notifications`: the room list as Server-Sent Events. The full list is sent on connect, after every
 * change (coalesced to at most one event per {@link COALESCE_MS}), and every {@link REFRESH_MS} so a client
 * that missed one is corrected; a comment line every {@link HEARTBEAT_MS} keeps proxies from closing it.
 */
import type { RoomDirectory } from "../rooms/directory.ts";
import { roomsJson } from "./rooms.ts";
import { HttpError } from "./body.ts";

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
}

/** Fans the room list out to SSE clients. */
export class RoomFeed {
  #directory: RoomDirectory;
  #clients = new Set<Client>();
  #maxClients: number;
  #timers: FeedTimers;
  #flushTimer: unknown;
  #refreshTimer: unknown;
  #heartbeatTimer: unknown;
  #unsubscribe: () => void;
  #encoder = new TextEncoder();
  #coalesceMs: number;

  /** `coalesceMs`, `refreshMs` and `heartbeatMs` default to the exported constants; `timers` to the platform's. */
  constructor(
    directory: RoomDirectory,
    options: {
      maxClients?: number;
      coalesceMs?: number;
      refreshMs?: number;
      heartbeatMs?: number;
      timers?: FeedTimers;
    } = {},
  ) {
    this.#directory = directory;
    const timers = this.#timers = options.timers ?? PLATFORM_TIMERS;
    this.#maxClients = options.maxClients ?? 1000;
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
   * `signal` aborts, or on {@link close}.
   */
  connect(signal?: AbortSignal): Response {
    if (this.#clients.size >= this.#maxClients) {
      throw new HttpError(503, "too many notification clients", { "Retry-After": "10" });
    }
    let client: Client | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = { controller, pending: false };
        this.#clients.add(client);
        controller.enqueue(this.#encoder.encode("retry: 2000\n\n"));
        controller.enqueue(this.#snapshot());
      },
      pull: () => {
        // The client caught up: give it the snapshot it missed while it was slow.
        if (client?.pending) {
          client.pending = false;
          client.controller.enqueue(this.#snapshot());
        }
      },
      cancel: () => {
        if (client) this.#clients.delete(client);
      },
    }, { highWaterMark: 4 });
    signal?.addEventListener("abort", () => this.#drop(client), { once: true });
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
    this.#sendAll(this.#snapshot());
  }

  #sendAll(data: Uint8Array): void {
    for (const client of this.#clients) {
      const room = client.controller.desiredSize ?? 0;
      // A slow client holds at most a few queued messages: further snapshots are replaced by one pending
      // flag, and the latest list is sent when it reads again.
      if (room <= 0) {
        client.pending = true;
        continue;
      }
      try {
        client.controller.enqueue(data);
      } catch {
        this.#drop(client);
      }
    }
  }

  #snapshot(): Uint8Array {
    return this.#encoder.encode(`data: ${JSON.stringify(roomsJson(this.#directory))}\n\n`);
  }

  #drop(client: Client | undefined): void {
    if (!client || !this.#clients.delete(client)) return;
    try {
      client.controller.close();
    } catch { /* already closed or errored */ }
  }
}
