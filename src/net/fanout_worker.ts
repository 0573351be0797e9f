/// <reference lib="deno.worker" />
/**
 * A fan-out worker: seals its viewers' outbound RTP (SRTP) and sends it with `sendmmsg` on the main
 * thread's media socket. It reads its work from a ring (fanout_ring.ts, records in fanout_protocol.ts) and
 * never returns to its event loop: between bursts it sleeps in `Atomics.wait`, waking at least every
 * {@link IDLE_WAKE_MS} to advance its heartbeat, which is how the main thread tells a live worker from a
 * stuck one. Each viewer's SRTP context is built from the master keys the main thread hands over before the
 * viewer's first packet; SRTCP stays with the main thread (separate keys and counters, RFC 3711 §3.4).
 *
 * The SRTP code is imported without werift (the portable backend loads only when OpenSSL is missing), so a
 * worker starts in milliseconds; the record handlers are small functions rather than one loop body, so V8
 * optimizes them like any other hot function.
 */
import { FanoutRing } from "./fanout_ring.ts";
import {
  COMMAND_HANG,
  COMMAND_STOP,
  COMMAND_THROW,
  type FanoutWorkerStart,
  FIGURE_COMMAND,
  FIGURE_COUNT,
  FIGURE_HEARTBEAT,
  FIGURE_ORPHANED,
  FIGURE_SEALED,
  FIGURE_SEND_ERRORS,
  FIGURE_SENT,
  FIGURE_STOPPED,
  RECORD_ADDRESS,
  RECORD_PAYLOAD,
  RECORD_REMOVE,
  RECORD_RTP,
  RECORD_VIEWER,
} from "./fanout_protocol.ts";
import { SendTo } from "./udp_sendto.ts";
import { asSrtpProfile } from "../srtp/keys.ts";
import { libcrypto } from "../srtp/libcrypto.ts";
import { NativeSrtpContext } from "../srtp/native.ts";
import type { SrtpContext } from "../srtp/transform.ts";

/** Longest sleep between heartbeats when there is no work. */
const IDLE_WAKE_MS = 50;
/** Largest datagram a worker assembles (a `sendmmsg` slot). */
const SLOT_BYTES = 2048;

/** One viewer this worker serves. */
interface WorkerViewer {
  srtp: SrtpContext;
  /** Undefined until the first address record, or when the address cannot be sent to (IPv6). */
  to: { hostname: string; port: number } | undefined;
}

type ContextFactory = (profile: number, key: Uint8Array, salt: Uint8Array) => SrtpContext;

const ascii = new TextDecoder();

/** The worker's state and the handlers of each record type. */
class FanoutWorker {
  readonly ring: FanoutRing;
  readonly figures: Float64Array;
  readonly sendTo: SendTo;
  readonly viewers: (WorkerViewer | undefined)[];
  readonly data: Uint8Array;
  readonly payload = new Uint8Array(SLOT_BYTES);
  payloadLength = 0;
  /** The current payload's bytes, a view made once per payload record (not once per viewer). */
  payloadView: Uint8Array = this.payload.subarray(0, 0);
  sealed = 0;
  orphaned = 0;
  records = 0;
  #newContext: ContextFactory;

  constructor(start: FanoutWorkerStart, newContext: ContextFactory) {
    this.ring = new FanoutRing(start.ring);
    this.figures = new Float64Array(start.figures, 0, FIGURE_COUNT);
    this.sendTo = SendTo.onDescriptor(start.fd);
    this.viewers = new Array(start.slots);
    this.data = this.ring.data;
    this.#newContext = newContext;
  }

  /** Handles every record the ring holds, then sends what they queued. */
  drain(): void {
    const ring = this.ring;
    let type: number;
    while ((type = ring.take()) !== 0) {
      // A worker that never catches up still beats (the main thread must not take it for a stuck one) and
      // still hears a stop: a backlog of megabytes would otherwise keep it sending after it was replaced.
      if ((++this.records & 255) === 0) {
        this.figures[FIGURE_HEARTBEAT]++;
        this.publishFigures();
        if (this.figures[FIGURE_COMMAND] !== 0) break;
      }
      const at = ring.bodyOffset;
      const length = ring.bodyLength;
      if (type === RECORD_RTP) this.rtp(at, length);
      else if (type === RECORD_PAYLOAD) this.setPayload(at, length);
      else this.control(type, at, length);
      ring.release();
    }
    this.sendTo.flush();
    this.publishFigures();
  }

  /** The counters the main thread reads (also while a long backlog drains). */
  publishFigures(): void {
    const figures = this.figures;
    const dropped = this.sendTo.dropped;
    figures[FIGURE_SEALED] = this.sealed;
    figures[FIGURE_SEND_ERRORS] = dropped;
    figures[FIGURE_SENT] = this.sealed - dropped;
    figures[FIGURE_ORPHANED] = this.orphaned;
  }

  setPayload(at: number, length: number): void {
    const n = Math.min(length, SLOT_BYTES);
    this.payload.set(this.data.subarray(at, at + n));
    this.payloadLength = n;
    this.payloadView = this.payload.subarray(0, n);
  }

  /** Header from the record + the current payload, assembled in a batch slot and sealed in place. */
  rtp(at: number, length: number): void {
    const data = this.data;
    const viewer = length >= 2 ? this.viewers[data[at] | (data[at + 1] << 8)] : undefined;
    const headerLength = length - 2;
    const packetLength = headerLength + this.payloadLength;
    const to = viewer?.to;
    if (!viewer || !to || packetLength + viewer.srtp.rtpOverhead > SLOT_BYTES) {
      this.orphaned++;
      return;
    }
    const out = this.sendTo.reserve(to);
    if (!out) {
      this.orphaned++;
      return;
    }
    for (let i = 0; i < headerLength; i++) out[i] = data[at + 2 + i];
    out.set(this.payloadView, headerLength);
    this.sendTo.commit(viewer.srtp.protectRtpInto(out.subarray(0, packetLength), headerLength, out));
    this.sealed++;
  }

  control(type: number, at: number, length: number): void {
    const data = this.data;
    const slot = length >= 2 ? data[at] | (data[at + 1] << 8) : -1;
    if (slot < 0) {
      this.orphaned++;
      return;
    }
    if (type === RECORD_VIEWER) {
      const keyLength = data[at + 3];
      const saltLength = data[at + 4];
      const key = data.slice(at + 5, at + 5 + keyLength);
      const salt = data.slice(at + 5 + keyLength, at + 5 + keyLength + saltLength);
      this.viewers[slot]?.srtp.close();
      this.viewers[slot] = { srtp: this.#newContext(data[at + 2], key, salt), to: undefined };
    } else if (type === RECORD_ADDRESS) {
      const viewer = this.viewers[slot];
      if (!viewer) return;
      const port = data[at + 2] | (data[at + 3] << 8);
      viewer.to = port === 0 ? undefined : { hostname: ascii.decode(data.slice(at + 4, at + length)), port };
    } else if (type === RECORD_REMOVE) {
      this.viewers[slot]?.srtp.close();
      this.viewers[slot] = undefined;
    } else {
      this.orphaned++;
    }
  }

  close(): void {
    for (const viewer of this.viewers) viewer?.srtp.close();
    this.sendTo.close();
  }
}

/** SRTP contexts for the sending direction only (the remote half is required by the constructors). */
async function contextFactory(): Promise<ContextFactory> {
  const lib = libcrypto();
  if (lib) {
    return (profile, key, salt) =>
      NativeSrtpContext.fromMasterKeys(lib, asSrtpProfile(profile), {
        localMasterKey: key,
        localMasterSalt: salt,
        remoteMasterKey: key,
        remoteMasterSalt: salt,
      });
  }
  const { PortableSrtpContext } = await import("../srtp/portable.ts");
  return (profile, key, salt) =>
    new PortableSrtpContext(asSrtpProfile(profile), {
      localMasterKey: key,
      localMasterSalt: salt,
      remoteMasterKey: key,
      remoteMasterSalt: salt,
    });
}

/** Runs the worker until it is told to stop. */
function serve(worker: FanoutWorker): void {
  const { ring, figures } = worker;
  for (;;) {
    const command = figures[FIGURE_COMMAND];
    if (command !== 0) {
      if (command === COMMAND_THROW) throw new Error("stopped by a test (COMMAND_THROW)");
      // A hang as a stuck worker would: no heartbeat, no sends, until stopped.
      while (figures[FIGURE_COMMAND] === COMMAND_HANG) ring.sleep(ring.signal, IDLE_WAKE_MS);
      if (figures[FIGURE_COMMAND] === COMMAND_STOP) {
        worker.close();
        figures[FIGURE_STOPPED] = 1;
        return;
      }
    }
    figures[FIGURE_HEARTBEAT]++;
    const signal = ring.signal;
    worker.drain();
    ring.sleep(signal, IDLE_WAKE_MS);
  }
}

self.onmessage = async (event: MessageEvent<FanoutWorkerStart>) => {
  serve(new FanoutWorker(event.data, await contextFactory()));
};
