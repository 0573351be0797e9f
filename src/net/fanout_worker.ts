/// <reference lib="deno.worker" />
/**
 * A fan-out worker: seals its viewers' outbound RTP (SRTP) and sends it with `sendmmsg` on the main
 * thread's media socket. It reads its work from a ring (fanout_ring.ts, records in fanout_protocol.ts) and
 * never returns to its event loop: between bursts it sleeps in `Atomics.wait`, waking at least every
 * {@link IDLE_WAKE_MS} to advance its heartbeat, which is how the main thread tells a live worker from a
 * stuck one. Each viewer's SRTP context is built from the master keys the main thread hands over before the
 * viewer's first packet; SRTCP stays with the main thread (separate keys and counters, RFC 3711 §3.4).
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
  RECORD_ADDRESS,
  RECORD_PAYLOAD,
  RECORD_REMOVE,
  RECORD_RTP,
  RECORD_VIEWER,
} from "./fanout_protocol.ts";
import { SendTo } from "./udp_sendto.ts";
import { createSrtpContext, type SrtpContext } from "../srtp/context.ts";

/** Longest sleep between heartbeats when there is no work. */
const IDLE_WAKE_MS = 50;

/** One viewer this worker serves. */
interface WorkerViewer {
  srtp: SrtpContext;
  /** Undefined until the first address record, or when the address cannot be sent to (IPv6). */
  to: { hostname: string; port: number } | undefined;
}

const ascii = new TextDecoder();

/** Runs the worker until it is told to stop. */
function serve(start: FanoutWorkerStart): void {
  const ring = new FanoutRing(start.ring);
  const figures = new Float64Array(start.figures, 0, FIGURE_COUNT);
  const sendTo = SendTo.onDescriptor(start.fd);
  const viewers: (WorkerViewer | undefined)[] = new Array(start.slots);
  const data = ring.data;
  const payload = new Uint8Array(2048);
  let payloadLength = 0;
  let sealed = 0;
  let orphaned = 0;
  let records = 0;
  for (;;) {
    const command = figures[FIGURE_COMMAND];
    if (command !== 0) {
      if (command === COMMAND_THROW) throw new Error("stopped by a test (COMMAND_THROW)");
      // A hang as a stuck worker would: no heartbeat, no sends, until stopped.
      while (figures[FIGURE_COMMAND] === COMMAND_HANG) ring.sleep(ring.signal, IDLE_WAKE_MS);
      if (figures[FIGURE_COMMAND] === COMMAND_STOP) {
        for (const viewer of viewers) viewer?.srtp.close();
        sendTo.close();
        return;
      }
    }
    figures[FIGURE_HEARTBEAT]++;
    const signal = ring.signal;
    let type: number;
    while ((type = ring.take()) !== 0) {
      // A worker that never catches up still beats: the main thread must not take it for a stuck one.
      if ((++records & 255) === 0) figures[FIGURE_HEARTBEAT]++;
      const at = ring.bodyOffset;
      const length = ring.bodyLength;
      const slot = length >= 2 ? data[at] | (data[at + 1] << 8) : -1;
      switch (type) {
        case RECORD_PAYLOAD:
          payloadLength = Math.min(length, payload.length);
          payload.set(data.subarray(at, at + payloadLength));
          break;
        case RECORD_RTP: {
          const viewer = slot >= 0 ? viewers[slot] : undefined;
          const headerLength = length - 2;
          const packetLength = headerLength + payloadLength;
          const to = viewer?.to;
          if (!viewer || !to || packetLength + viewer.srtp.rtpOverhead > 2048) {
            orphaned++;
            break;
          }
          const out = sendTo.reserve(to);
          if (!out) {
            orphaned++;
            break;
          }
          // The packet is assembled in the batch slot and sealed in place (the context allows out = input).
          out.set(data.subarray(at + 2, at + length));
          out.set(payload.subarray(0, payloadLength), headerLength);
          sendTo.commit(viewer.srtp.protectRtpInto(out.subarray(0, packetLength), headerLength, out));
          sealed++;
          break;
        }
        case RECORD_VIEWER: {
          const keyLength = data[at + 3];
          const saltLength = data[at + 4];
          const key = data.slice(at + 5, at + 5 + keyLength);
          const salt = data.slice(at + 5 + keyLength, at + 5 + keyLength + saltLength);
          viewers[slot]?.srtp.close();
          // Only the local (sending) half is used here; the remote half is required by the constructor.
          viewers[slot] = {
            srtp: createSrtpContext({
              profile: data[at + 2],
              localMasterKey: key,
              localMasterSalt: salt,
              remoteMasterKey: key,
              remoteMasterSalt: salt,
            }),
            to: undefined,
          };
          break;
        }
        case RECORD_ADDRESS: {
          const viewer = viewers[slot];
          if (!viewer) break;
          const port = data[at + 2] | (data[at + 3] << 8);
          viewer.to = port === 0
            ? undefined
            : { hostname: ascii.decode(data.slice(at + 4, at + length)), port };
          break;
        }
        case RECORD_REMOVE:
          viewers[slot]?.srtp.close();
          viewers[slot] = undefined;
          break;
        default:
          orphaned++;
      }
      ring.release();
    }
    sendTo.flush();
    figures[FIGURE_SEALED] = sealed;
    figures[FIGURE_SEND_ERRORS] = sendTo.dropped;
    figures[FIGURE_SENT] = sealed - sendTo.dropped;
    figures[FIGURE_ORPHANED] = orphaned;
    ring.sleep(signal, IDLE_WAKE_MS);
  }
}

self.onmessage = (event: MessageEvent<FanoutWorkerStart>) => {
  serve(event.data);
};
