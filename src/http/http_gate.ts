/**
 * The public TCP port: an accept loop in front of `Deno.serve` that counts and times every connection.
 *
 * `Deno.serve` has no header, body or idle timeouts and no connection caps, and its accept loop ends the
 * process on `EMFILE`; it cannot be handed an accepted connection either (`Deno.serveHttp` is gone in Deno 2;
 * `node:http` has such knobs, but `Deno.serve` is the server's HTTP host). So this module owns the public
 * listener and relays each connection's bytes to a `Deno.serve` bound to 127.0.0.1 on a private port (TLS,
 * when configured, passes through untouched and is terminated by `Deno.serve`). Here:
 * - connections over the total cap or the per-address cap are closed at once (plain HTTP gets a 503 line);
 * - accept errors (`EMFILE`, `ENFILE`) are logged once per burst and accepting resumes when it can;
 * - each connection's {@link ConnectionClock} closes it on the header or idle timeout;
 * - the private connection is opened only when the client sends its first byte, so an idle connection costs
 *   one descriptor and 2 KiB (an active one three descriptors and 18 KiB).
 * The handler wrapped by {@link HttpGate.wrap} learns which public connection a request came on (by the
 * private connection's source port), so it sees the client's real address and marks requests in flight.
 */
import { ConnectionClock, type ConnectionTimeouts, type Expiry } from "./connection_clock.ts";
import { ConnectionLimits, type Refusal } from "./connection_limits.ts";
import { addressKey, normalizeAddress } from "./client_address.ts";
import type { Log } from "../log.ts";
import { ErrorBurst } from "./error_burst.ts";

/** Settings of the gate. */
export interface HttpGateOptions extends ConnectionTimeouts {
  hostname: string;
  port: number;
  maxConnections: number;
  maxPerAddress: number;
  /** Normalised addresses exempt from the per-address cap (reverse proxies carry many clients). */
  trustedProxies: ReadonlySet<string>;
  /** The public port speaks TLS: refusals are a plain close instead of a 503 line. */
  tls: boolean;
  log: Log;
}

/** What the gate has done since start, for /metrics. */
export interface HttpGateCounters {
  accepted: number;
  refusedTotal: number;
  refusedAddress: number;
  closedHeaderTimeout: number;
  closedIdleTimeout: number;
  acceptErrors: number;
}

/** The part of a request's origin the wrapped handler gets. */
export interface GateClientInfo {
  remoteAddr: { hostname: string };
}

interface Connection {
  client: Deno.TcpConn;
  backend: Deno.Conn | undefined;
  backendPort: number;
  address: string;
  key: string;
  clock: ConnectionClock;
  closed: boolean;
}

/** Client-to-server reads (requests are small: headers and SDP); also the first read of an idle connection. */
const REQUEST_READ_BYTES = 2048;
/** Server-to-client reads (pages, thumbnails). An active connection thus holds 18 KiB of buffers. */
const RESPONSE_READ_BYTES = 16 * 1024;
const MAX_PENDING_REFUSALS = 8;
/** A burst of accept errors ends after this long without one. */
const ERROR_BURST_QUIET_MS = 10_000;
const SPARE_BACKENDS = 4;
const encoder = new TextEncoder();

/** The accept loop and connection relay in front of `Deno.serve`. */
export class HttpGate {
  readonly counters: HttpGateCounters = {
    accepted: 0,
    refusedTotal: 0,
    refusedAddress: 0,
    closedHeaderTimeout: 0,
    closedIdleTimeout: 0,
    acceptErrors: 0,
  };
  readonly limits: ConnectionLimits;
  #options: HttpGateOptions;
  #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  #backendPort = 0;
  #connections = new Set<Connection>();
  #byBackendPort = new Map<number, Connection>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #acceptErrors = new ErrorBurst(ERROR_BURST_QUIET_MS);
  #backendErrors = new ErrorBurst(ERROR_BURST_QUIET_MS);
  #pendingRefusals = 0;
  #spares: Deno.TcpConn[] = [];
  #refilling = false;
  #running: Promise<void> | undefined;

  /** Binds the public port (throws like `Deno.listen` when it cannot). */
  constructor(options: HttpGateOptions) {
    this.#options = options;
    this.limits = new ConnectionLimits({
      maxConnections: options.maxConnections,
      maxPerAddress: options.maxPerAddress,
    });
    this.#listener = Deno.listen({ hostname: options.hostname, port: options.port });
  }

  /** The public port. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Open public connections. */
  get openConnections(): number {
    return this.limits.total;
  }

  /** Starts accepting; requests are relayed to `backendPort` on 127.0.0.1. */
  start(backendPort: number): void {
    this.#backendPort = backendPort;
    const { headerTimeoutMs, idleTimeoutMs } = this.#options;
    // A quarter of the shortest timeout, so a connection overstays by at most 25 %.
    const tick = Math.min(1000, Math.max(20, Math.min(headerTimeoutMs, idleTimeoutMs) / 4));
    this.#sweeper = setInterval(() => this.#sweep(), tick);
    this.#refillSpares();
    this.#running = this.#acceptLoop();
  }

  /** Relays new connections to another `Deno.serve` port (the old one stopped accepting). */
  setBackend(backendPort: number): void {
    this.#backendPort = backendPort;
    // Spares wait in the old listener's backlog, which nobody accepts from any more.
    for (const spare of this.#spares.splice(0)) spare.close();
    this.#refillSpares();
  }

  /**
   * Wraps the router for `Deno.serve`: finds the public connection a request came on, tells its clock, and
   * passes the client's address on. A connection to the private port that did not come through the gate
   * (another local process) is refused.
   */
  wrap(
    handler: (req: Request, info: GateClientInfo) => Promise<Response>,
  ): (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Promise<Response> {
    return async (req, info) => {
      const connection = this.#byBackendPort.get(info.remoteAddr.port);
      if (!connection || info.remoteAddr.hostname !== "127.0.0.1") {
        return new Response("connect through the public port\n", {
          status: 403,
          headers: { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
        });
      }
      connection.clock.requestStarted(performance.now());
      let response: Response;
      try {
        response = await handler(req, { remoteAddr: { hostname: connection.address } });
      } finally {
        connection.clock.requestEnded(performance.now());
      }
      if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
        connection.clock.markStreaming();
      }
      return response;
    };
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const connection of [...this.#connections]) this.#end(connection);
    for (const spare of this.#spares.splice(0)) spare.close();
    await this.#running;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        this.counters.acceptErrors++;
        const earlier = this.#acceptErrors.occurred(performance.now());
        if (earlier !== undefined) {
          const code = (e as { code?: string }).code ?? (e as Error).name;
          this.#options.log(
            "error",
            `HTTP: cannot accept connections (${code}: ${(e as Error).message}); ` +
              `${this.limits.total} open, still serving them and retrying` +
              (earlier > 0 ? ` (the previous burst had ${earlier} more)` : ""),
            { code },
          );
        }
        // The pending connection stays in the backlog and would fail again at once: give descriptors time
        // to come back (a timeout or a client leaving) instead of spinning.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.#admit(client);
    }
  }

  #admit(client: Deno.TcpConn): void {
    const hostname = client.remoteAddr.hostname;
    const address = normalizeAddress(hostname) ?? hostname;
    const key = addressKey(address);
    const refusal = this.limits.admit(key, this.#options.trustedProxies.has(address));
    if (refusal) {
      this.#refuse(client, refusal);
      return;
    }
    this.counters.accepted++;
    const connection: Connection = {
      client,
      backend: undefined,
      backendPort: 0,
      address,
      key,
      clock: new ConnectionClock(this.#options, performance.now()),
      closed: false,
    };
    this.#connections.add(connection);
    void this.#relay(connection);
  }

  #refuse(client: Deno.Conn, refusal: Refusal): void {
    if (refusal === "total") this.counters.refusedTotal++;
    else this.counters.refusedAddress++;
    // Under a flood the 503 writes would hold descriptors while they complete: past a few, just close.
    if (this.#options.tls || this.#pendingRefusals >= MAX_PENDING_REFUSALS) {
      client.close();
      return;
    }
    this.#pendingRefusals++;
    const reason = refusal === "total"
      ? "too many open connections, try again later"
      : "too many open connections from your address";
    const body = `${reason}\n`;
    const head = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${body.length}\r\nRetry-After: 10\r\nX-Content-Type-Options: nosniff\r\n` +
      "Connection: close\r\n\r\n";
    // A fresh socket's send buffer is empty, so this short write completes at once.
    client.write(encoder.encode(head + body)).catch(() => {}).finally(() => {
      this.#pendingRefusals--;
      try {
        client.close();
      } catch { /* already closed */ }
    });
  }

  async #relay(connection: Connection): Promise<void> {
    const { client } = connection;
    try {
      const first = new Uint8Array(REQUEST_READ_BYTES);
      const n = await client.read(first);
      if (n === null || connection.closed) return;
      connection.clock.clientBytes(performance.now());
      let backend: Deno.TcpConn;
      try {
        backend = this.#spares.pop() ?? await this.#connectBackend();
        this.#refillSpares();
      } catch (e) {
        // Out of descriptors, most likely: say so once per burst, not once per connection.
        if (this.#backendErrors.occurred(performance.now()) !== undefined) {
          this.#options.log("error", `HTTP: cannot reach the request handler: ${(e as Error).message}`);
        }
        return;
      }
      if (connection.closed) {
        backend.close();
        return;
      }
      backend.setNoDelay(true);
      client.setNoDelay(true);
      connection.backend = backend;
      connection.backendPort = backend.localAddr.port;
      this.#byBackendPort.set(connection.backendPort, connection);
      await writeAll(backend, first.subarray(0, n));
      await Promise.all([
        this.#pump(client, backend, connection, first),
        this.#pump(backend, client, connection, new Uint8Array(RESPONSE_READ_BYTES)),
      ]);
    } catch {
      // A reset or a close from the other side (or from a timeout): the connection is over either way.
    } finally {
      this.#end(connection);
    }
  }

  #connectBackend(): Promise<Deno.TcpConn> {
    return Deno.connect({ hostname: "127.0.0.1", port: this.#backendPort });
  }

  /**
   * Keeps a few connections to the private port open ahead of need: a loopback connect costs 0.7-1.4 ms in
   * Deno on a busy machine, which would otherwise be paid by every new client connection (measured in
   * tests/bench/http_gate_bench.ts).
   */
  #refillSpares(): void {
    if (this.#refilling || this.#closed) return;
    this.#refilling = true;
    (async () => {
      try {
        while (!this.#closed && this.#spares.length < SPARE_BACKENDS) {
          const conn = await this.#connectBackend();
          if (this.#closed) conn.close();
          else this.#spares.push(conn);
        }
      } catch { /* out of descriptors: connect on demand instead */ }
      this.#refilling = false;
    })();
  }

  /** Copies one direction until end of stream, then half-closes the other side. */
  async #pump(from: Deno.Conn, to: Deno.Conn, connection: Connection, buffer: Uint8Array): Promise<void> {
    const fromClient = from === connection.client;
    const clock = connection.clock;
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      if (fromClient) clock.clientBytes(performance.now());
      else clock.serverBytes(performance.now());
      await writeAll(to, buffer.subarray(0, n));
    }
    if (!fromClient) {
      // The handler side finished the connection: nothing more will be answered.
      this.#end(connection);
      return;
    }
    try {
      await to.closeWrite();
    } catch { /* already closed */ }
  }

  #sweep(): void {
    const now = performance.now();
    for (const connection of this.#connections) {
      const expiry: Expiry | undefined = connection.clock.expired(now);
      if (expiry === undefined) continue;
      if (expiry === "header") this.counters.closedHeaderTimeout++;
      else this.counters.closedIdleTimeout++;
      this.#end(connection);
    }
  }

  #end(connection: Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    this.#connections.delete(connection);
    this.limits.release(connection.key);
    if (connection.backend) {
      this.#byBackendPort.delete(connection.backendPort);
      try {
        connection.backend.close();
      } catch { /* already closed */ }
    }
    try {
      connection.client.close();
    } catch { /* already closed */ }
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}
