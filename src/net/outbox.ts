/**
 * Everything the media socket sends goes through one outbox: datagrams are copied into the `sendmmsg` slots
 * as they are produced and handed to the kernel together. The socket flushes after each datagram it handled
 * and after each timer sweep; sends that start anywhere else (a relay's read, a join replay's timer, a
 * session closing) are flushed once at the end of that task, from a microtask queued by the first datagram
 * of the batch. So batching does not depend on who called: one publisher packet's fan-out, a replay burst
 * and a relayed packet's fan-out all leave in one system call. Without the FFI path (no --allow-ffi, IPv6)
 * each datagram is a copy sent with Deno's own `send`.
 */
import type { SendTo } from "./udp_sendto.ts";

/** A UDP destination. */
export interface OutboxAddress {
  hostname: string;
  port: number;
}

/** What the outbox counts (shared with the socket's counters). */
export interface OutboxCounters {
  datagramsOut: number;
  bytesOut: number;
  sendErrors: number;
  /** `sendmmsg` batches handed to the kernel. */
  batches: number;
}

/** The socket's send side. */
export class Outbox {
  #sendTo: SendTo | undefined;
  #conn: Deno.DatagramConn;
  #counters: OutboxCounters;
  #queued = 0;
  #flushQueued = false;
  #closed = false;
  /** The send path's `batches` and `dropped` already added to the counters: a full batch is flushed inside
   * {@link SendTo.reserve}, outside {@link flush}, and must be counted too. */
  #batchesCounted = 0;
  #droppedCounted = 0;
  #onSendError = (): void => {
    this.#counters.sendErrors++;
  };
  /** The microtask that flushes what a task outside the socket's own handling queued. */
  #flushLater = (): void => {
    this.#flushQueued = false;
    this.flush();
  };

  constructor(conn: Deno.DatagramConn, sendTo: SendTo | undefined, counters: OutboxCounters) {
    this.#conn = conn;
    this.#sendTo = sendTo;
    this.#counters = counters;
  }

  /** Queues one datagram. `data` is only read during the call, so callers may reuse their buffer. */
  push(data: Uint8Array, to: OutboxAddress): void {
    if (this.#closed) return;
    const counters = this.#counters;
    counters.datagramsOut++;
    counters.bytesOut += data.length;
    const sendTo = this.#sendTo;
    if (sendTo !== undefined) {
      if (sendTo.queue(data, to)) {
        if (this.#queued++ === 0 && !this.#flushQueued) {
          this.#flushQueued = true;
          queueMicrotask(this.#flushLater);
        }
        return;
      }
      // Not batchable (IPv6, oversize): sent alone, after what is queued, so order is kept.
      this.flush();
      if (sendTo.send(data, to)) return;
    }
    // Deno reads the buffer after this returns, and callers may reuse theirs: send a copy.
    this.#conn.send(data.slice(), { transport: "udp", hostname: to.hostname, port: to.port }).catch(
      this.#onSendError,
    );
  }

  /**
   * A batch slot addressed to `to` for a datagram written in place (the room seals a viewer's SRTP straight
   * into it), then {@link commit}ted; undefined when the datagram must go through {@link push} instead.
   */
  reserve(to: OutboxAddress): Uint8Array | undefined {
    if (this.#closed || this.#sendTo === undefined) return undefined;
    return this.#sendTo.reserve(to);
  }

  /** Queues the `length` bytes written into the slot from {@link reserve}. */
  commit(length: number): void {
    const counters = this.#counters;
    counters.datagramsOut++;
    counters.bytesOut += length;
    this.#sendTo!.commit(length);
    if (this.#queued++ === 0 && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushLater);
    }
  }

  /** Hands what is queued to the kernel. */
  flush(): void {
    if (this.#queued === 0) return;
    const sendTo = this.#sendTo!;
    sendTo.flush();
    this.#queued = 0;
    this.#counters.batches += sendTo.batches - this.#batchesCounted;
    this.#batchesCounted = sendTo.batches;
    this.#counters.sendErrors += sendTo.dropped - this.#droppedCounted;
    this.#droppedCounted = sendTo.dropped;
  }

  /** Flushes and stops sending. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }
}
