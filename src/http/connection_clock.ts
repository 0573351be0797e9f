/**
 * The deadlines of one HTTP connection, without I/O or clock reads (`now` is passed in, in milliseconds).
 *
 * - Header timeout: a request's headers must be complete within `headerTimeoutMs` of its first byte (for the
 *   first request, of the connection's opening: a silent connection is a slot held for nothing).
 * - Idle timeout: a connection on which nothing moved for `idleTimeoutMs`, in either direction, is closed.
 *   A connection carrying a Server-Sent-Events stream is exempt from both (the stream ends when the client
 *   leaves; the number of streams is capped elsewhere).
 * - The body timeout is enforced where the body is read (see `timeBody` in body.ts), not here.
 *
 * Whether a request is "in flight" comes from the HTTP handler (`requestStarted`/`requestEnded`); bytes seen
 * from the client while none is in flight start the next request's header clock. This needs no parsing of
 * the byte stream, so it holds for TLS too.
 */

/** Why a connection is being closed. */
export type Expiry = "header" | "idle";

/** The timeouts one connection is held to. */
export interface ConnectionTimeouts {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Deadlines of one connection. */
export class ConnectionClock {
  #timeouts: ConnectionTimeouts;
  #headerDeadline: number | undefined;
  #lastActivity: number;
  #inFlight = 0;
  #streaming = false;

  constructor(timeouts: ConnectionTimeouts, openedAt: number) {
    this.#timeouts = timeouts;
    this.#headerDeadline = openedAt + timeouts.headerTimeoutMs;
    this.#lastActivity = openedAt;
  }

  /** Requests being handled now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The client sent bytes. */
  clientBytes(now: number): void {
    this.#lastActivity = now;
    if (this.#inFlight === 0 && this.#headerDeadline === undefined && !this.#streaming) {
      this.#headerDeadline = now + this.#timeouts.headerTimeoutMs;
    }
  }

  /** The server sent bytes. */
  serverBytes(now: number): void {
    this.#lastActivity = now;
  }

  /** A request's headers arrived (the handler was called). */
  requestStarted(now: number): void {
    this.#inFlight++;
    this.#headerDeadline = undefined;
    this.#lastActivity = now;
  }

  /** The handler returned its response. */
  requestEnded(now: number): void {
    if (this.#inFlight > 0) this.#inFlight--;
    this.#lastActivity = now;
  }

  /** The connection carries an event stream: no idle timeout from now on. */
  markStreaming(): void {
    this.#streaming = true;
  }

  /** Why the connection must close at `now`, or undefined while it may stay open. */
  expired(now: number): Expiry | undefined {
    if (this.#headerDeadline !== undefined && now >= this.#headerDeadline) return "header";
    if (!this.#streaming && now - this.#lastActivity >= this.#timeouts.idleTimeoutMs) return "idle";
    return undefined;
  }
}
