/**
 * Receive-side bookkeeping of one incoming RTP stream: RFC 3550 statistics for receiver reports (§A.3
 * loss, §A.8 jitter) and the list of missing packets to NACK, with bounded retries.
 */
import type { ReportBlock } from "./rtcp.ts";
import { seqDiff } from "./sequence.ts";

/** Gaps larger than this are treated as a stream jump, not as loss worth NACKing. */
const MAX_NACK_GAP = 128;
/** A missing packet is asked for at most this many times, and forgotten after this long. */
const MAX_NACK_TRIES = 3;
const NACK_GIVE_UP_MS = 1000;

interface Missing {
  firstAt: number;
  lastAskedAt: number;
  tries: number;
}

/** Statistics and loss tracking for one SSRC. */
export class ReceiveStream {
  readonly ssrc: number;
  readonly clockRate: number;
  received = 0;
  #baseSeq = -1;
  #maxSeq = 0;
  #cycles = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  #jitter = 0;
  #lastTransit: number | undefined;
  #missing = new Map<number, Missing>();
  #lastSrMiddle = 0;
  #lastSrAt = 0;
  nacksSent = 0;

  constructor(ssrc: number, clockRate: number) {
    this.ssrc = ssrc;
    this.clockRate = clockRate;
  }

  /** Records one packet arrival (`now` in ms). */
  onPacket(seq: number, timestamp: number, now: number): void {
    this.received++;
    if (this.#baseSeq < 0) {
      this.#baseSeq = seq;
      this.#maxSeq = seq;
    } else {
      const delta = seqDiff(seq, this.#maxSeq);
      if (delta > 0) {
        if (delta > 1 && delta <= MAX_NACK_GAP) {
          for (let i = 1; i < delta; i++) {
            this.#missing.set((this.#maxSeq + i) & 0xffff, {
              firstAt: now,
              lastAskedAt: -Infinity,
              tries: 0,
            });
          }
        }
        if (seq < this.#maxSeq) this.#cycles += 0x10000;
        this.#maxSeq = seq;
      } else {
        this.#missing.delete(seq);
      }
    }
    // Interarrival jitter in timestamp units (RFC 3550 §A.8).
    const arrival = (now / 1000) * this.clockRate;
    const transit = arrival - timestamp;
    if (this.#lastTransit !== undefined) {
      let d = transit - this.#lastTransit;
      if (d < 0) d = -d;
      if (d < this.clockRate * 10) this.#jitter += (d - this.#jitter) / 16;
    }
    this.#lastTransit = transit;
  }

  /** Remembers the publisher's last SR (for LSR/DLSR in our reports). */
  onSenderReport(ntpSeconds: number, ntpFraction: number, now: number): void {
    this.#lastSrMiddle = ((ntpSeconds & 0xffff) << 16 | (ntpFraction >>> 16)) >>> 0;
    this.#lastSrAt = now;
  }

  /** Sequence numbers to NACK now; each is asked for at most 3 times, `retryMs` apart. */
  dueNacks(now: number, retryMs: number): number[] {
    const due: number[] = [];
    for (const [seq, m] of this.#missing) {
      if (now - m.firstAt > NACK_GIVE_UP_MS || m.tries >= MAX_NACK_TRIES) {
        this.#missing.delete(seq);
        continue;
      }
      if (now - m.lastAskedAt >= retryMs) {
        m.lastAskedAt = now;
        m.tries++;
        due.push(seq);
      }
    }
    this.nacksSent += due.length;
    return due;
  }

  /** Packets currently believed missing. */
  get missingCount(): number {
    return this.#missing.size;
  }

  /** A report block for an RR about this stream; resets the interval counters (RFC 3550 §A.3). */
  reportBlock(now: number): ReportBlock {
    const extendedMax = this.#cycles + this.#maxSeq;
    const expected = this.#baseSeq < 0 ? 0 : extendedMax - this.#baseSeq + 1;
    const lost = Math.max(-0x800000, Math.min(0x7fffff, expected - this.received));
    const expectedInterval = expected - this.#expectedPrior;
    const receivedInterval = this.received - this.#receivedPrior;
    this.#expectedPrior = expected;
    this.#receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fractionLost = expectedInterval <= 0 || lostInterval <= 0
      ? 0
      : Math.min(255, Math.floor((lostInterval << 8) / expectedInterval));
    return {
      ssrc: this.ssrc,
      fractionLost,
      cumulativeLost: lost,
      highestSequence: extendedMax >>> 0,
      jitter: Math.floor(this.#jitter),
      lastSenderReport: this.#lastSrMiddle,
      delaySinceLastSenderReport: this.#lastSrAt === 0
        ? 0
        : Math.floor(((now - this.#lastSrAt) / 1000) * 65536),
    };
  }
}
