/**
 * Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1):
 * the server records when each publisher packet arrived and reports it back, so the publisher's
 * send-side bandwidth estimator (Chromium's GCC) can probe and ramp up to its target bitrate.
 */
import { seqDiff } from "./sequence.ts";

/** The header extension URI that carries the transport-wide sequence number. */
export const TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

const PT_RTPFB = 205;
const FMT_TWCC = 15;
/** One feedback packet describes at most this many sequence numbers (keeps it well under the MTU). */
const MAX_STATUSES = 1000;
const DELTA_UNIT_US = 250;

/** Arrival times of one publisher's packets, turned into feedback packets. */
export class TwccRecorder {
  #arrivals = new Map<number, number>();
  #base = -1;
  #max = -1;
  #feedbackCount = 0;

  /** Records the arrival (µs, any monotonic clock) of the packet with this transport sequence number. */
  record(sequenceNumber: number, arrivalUs: number): void {
    if (this.#base < 0) {
      this.#base = sequenceNumber;
      this.#max = sequenceNumber;
    } else if (seqDiff(sequenceNumber, this.#base) < 0) {
      return; // already reported as lost; too late to matter
    } else if (seqDiff(sequenceNumber, this.#max) > 0) {
      this.#max = sequenceNumber;
    }
    if (this.#arrivals.size < 4 * MAX_STATUSES) this.#arrivals.set(sequenceNumber, arrivalUs);
  }

  /** Builds a feedback packet for everything recorded since the last one, or undefined when nothing is new. */
  buildFeedback(senderSsrc: number, mediaSsrc: number): Uint8Array | undefined {
    if (this.#base < 0 || this.#arrivals.size === 0) return undefined;
    const count = Math.min(seqDiff(this.#max, this.#base) + 1, MAX_STATUSES);
    if (count <= 0) return undefined;
    // Reference time: the first received packet's arrival, in multiples of 64 ms.
    let firstArrival = -1;
    for (let i = 0; i < count && firstArrival < 0; i++) {
      const at = this.#arrivals.get((this.#base + i) & 0xffff);
      if (at !== undefined) firstArrival = at;
    }
    if (firstArrival < 0) {
      this.#advance(count);
      return undefined;
    }
    const referenceTime = Math.floor(firstArrival / 64000);
    let previous = referenceTime * 64000;
    const symbols: number[] = [];
    const deltas: number[] = [];
    for (let i = 0; i < count; i++) {
      const at = this.#arrivals.get((this.#base + i) & 0xffff);
      if (at === undefined) {
        symbols.push(0);
        continue;
      }
      let delta = Math.round((at - previous) / DELTA_UNIT_US);
      delta = Math.max(-32768, Math.min(32767, delta));
      previous += delta * DELTA_UNIT_US;
      symbols.push(delta >= 0 && delta <= 255 ? 1 : 2);
      deltas.push(delta);
    }
    // Status vector chunks with 2-bit symbols, 7 per chunk: always valid, simple to get right.
    const chunks = Math.ceil(symbols.length / 7);
    let deltaBytes = 0;
    for (const symbol of symbols) deltaBytes += symbol === 1 ? 1 : symbol === 2 ? 2 : 0;
    const unpadded = 20 + chunks * 2 + deltaBytes;
    const length = Math.ceil(unpadded / 4) * 4;
    const out = new Uint8Array(length);
    const view = new DataView(out.buffer);
    out[0] = 0x80 | FMT_TWCC;
    out[1] = PT_RTPFB;
    view.setUint16(2, length / 4 - 1);
    view.setUint32(4, senderSsrc >>> 0);
    view.setUint32(8, mediaSsrc >>> 0);
    view.setUint16(12, this.#base);
    view.setUint16(14, count);
    view.setUint32(16, ((referenceTime & 0xffffff) << 8 | (this.#feedbackCount & 0xff)) >>> 0);
    let at = 20;
    for (let c = 0; c < chunks; c++) {
      let chunk = 0xc000;
      for (let s = 0; s < 7; s++) {
        const symbol = symbols[c * 7 + s] ?? 0;
        chunk |= symbol << (12 - s * 2);
      }
      view.setUint16(at, chunk);
      at += 2;
    }
    let d = 0;
    for (const symbol of symbols) {
      if (symbol === 1) out[at++] = deltas[d++];
      else if (symbol === 2) {
        view.setInt16(at, deltas[d++]);
        at += 2;
      }
    }
    this.#feedbackCount++;
    this.#advance(count);
    return out;
  }

  #advance(count: number): void {
    for (let i = 0; i < count; i++) this.#arrivals.delete((this.#base + i) & 0xffff);
    this.#base = (this.#base + count) & 0xffff;
    if (seqDiff(this.#max, this.#base) < 0) this.#max = (this.#base - 1) & 0xffff;
  }
}
