/**
 * A viewer's available bandwidth, estimated from its transport-wide feedback (send-side, in the manner of
 * Google congestion control, draft-ietf-rmcat-gcc-02): packets sent within {@link GROUP_MS} of each other
 * form a group; each group's arrival gap against its send gap feeds the delay trend (delay_trend.ts). A
 * growing queue (overuse) or heavy loss (over {@link LOSS_HIGH}) in the same feedback cuts the estimate at
 * once to a fraction of what actually arrived; a calm path lets it grow by 8 % a second, or by about a packet per round trip near the
 * rate of the last cut, and never far above what the viewer is actually receiving. Pure: the caller passes
 * `now` (ms); feedback is matched against the viewer's {@link SentPackets}.
 */
import { type DelaySignal, DelayTrend, NORMAL, OVERUSE, UNDERUSE } from "./delay_trend.ts";
import type { SentPackets } from "./sent_packets.ts";
import type { TransportFeedback } from "./transport_feedback.ts";
import { seqDiff } from "./sequence.ts";

/** Packets sent within this span (ms) of a group's first one belong to the group (a video frame's burst). */
const GROUP_MS = 5;
/** On overuse the estimate falls to this fraction of the rate that arrived. */
const DECREASE_FACTOR = 0.85;
/** At most one decrease per this long (ms): a cut needs a round trip to show in the feedback. */
const DECREASE_HOLD_MS = 300;
/** Multiplicative increase per second far from the last cut. */
const INCREASE_PER_SECOND = 1.08;
/** The estimate stays below this multiple of the arriving rate (plus {@link CAP_MARGIN_BPS}). */
const CAP_FACTOR = 1.5;
const CAP_MARGIN_BPS = 10_000;
/** Loss measured over at least this many reported packets. */
const LOSS_PACKETS = 40;
/** Loss above this fraction is an early sign of a queue ({@link BandwidthEstimator.queueing}). */
export const LOSS_EARLY = 0.02;
/** A feedback's packets arriving this much more spread out than they were sent (ms) is a queue growing. */
export const QUEUE_GROWTH_MS = 15;
/** Loss above this fraction is congestion. */
export const LOSS_HIGH = 0.1;
/**
 * Rates are measured over windows of at least this length (ms, on the receiver's clock for what arrived,
 * the server's for what was sent) holding at least {@link RATE_WINDOW_PACKETS} packets, or of
 * {@link MAX_RATE_WINDOW_MS}: a small layer sends ~15 packets a second, and a window of three says little.
 */
const RATE_WINDOW_MS = 250;
const RATE_WINDOW_PACKETS = 10;
const MAX_RATE_WINDOW_MS = 1000;
const MIN_BPS = 30_000;
const MAX_BPS = 50_000_000;

/** One viewer's bandwidth estimate. */
export class BandwidthEstimator {
  /** The estimate (bit/s). */
  estimateBps: number;
  /** What arrived at the viewer lately (bit/s, smoothed; 0 until measured). */
  receivedBps = 0;
  /**
   * What arrived in the last complete window (bit/s): cuts use it, since over a bottleneck that has just
   * formed the smoothed rate still remembers the faster past.
   */
  lastWindowBps = 0;
  /**
   * What the server sent, of the packets the feedback reported on (arrived or lost), over the last
   * complete window of send time (bit/s): beside {@link lastWindowBps} it shows whether the path delivers
   * what it is given.
   */
  sentWindowBps = 0;
  /** Fraction lost over the last loss window. */
  lossFraction = 0;
  /**
   * How much longer the packets of the last feedback took to arrive than to be sent (ms): a queue growing
   * right now, seen within one feedback, before the delay trend has groups enough to show it.
   */
  queueGrowthMs = 0;
  /** The delay trend's latest state. */
  signal: DelaySignal = NORMAL;
  /** Cuts of the estimate (overuse or loss), for stats. */
  decreases = 0;
  /** When the estimate was last cut (ms), -Infinity before. */
  lastDecreaseAt = -Infinity;
  readonly trend = new DelayTrend();
  #lastSequence = -1;
  /** The group being collected: first and last send time, latest arrival (ms). */
  #groupFirstSent = NaN;
  #groupLastSent = NaN;
  #groupArrival = NaN;
  /** The previous complete group. */
  #previousSent = NaN;
  #previousArrival = NaN;
  #lossReceived = 0;
  #lossLost = 0;
  #rateWindowStart = NaN;
  #rateBytes = 0;
  #ratePackets = 0;
  #sentWindowStart = NaN;
  #sentBytes = 0;
  #sentPackets = 0;
  /** The arriving rate at the last cut: increases near it are additive. */
  #rateAtDecrease = NaN;
  #lastIncreaseAt = NaN;

  constructor(initialBps: number) {
    this.estimateBps = initialBps;
  }

  /**
   * Takes one transport feedback packet, matched against what was sent; returns true when the estimate was
   * cut (congestion). Feedback about packets already reported or no longer in `sent` is skipped.
   */
  onFeedback(feedback: TransportFeedback, sent: SentPackets, now: number, rttMs = 100): boolean {
    let congestion = false;
    let firstSent = NaN;
    let firstArrival = NaN;
    let lastSent = NaN;
    let lastArrival = NaN;
    for (let i = 0; i < feedback.count; i++) {
      const sequence = (feedback.baseSequence + i) & 0xffff;
      if (this.#lastSequence >= 0 && seqDiff(sequence, this.#lastSequence) <= 0) continue;
      const sentAt = sent.sentAt(sequence);
      if (Number.isNaN(sentAt)) continue;
      this.#lastSequence = sequence;
      this.#countSent(sent.size(sequence), sentAt);
      const arrivalUs = feedback.arrivalUs[i];
      if (Number.isNaN(arrivalUs)) {
        this.#lossLost++;
        continue;
      }
      this.#lossReceived++;
      const arrival = arrivalUs / 1000;
      if (Number.isNaN(firstSent)) {
        firstSent = sentAt;
        firstArrival = arrival;
      }
      lastSent = sentAt;
      lastArrival = arrival;
      this.#countArrival(sent.size(sequence), arrival);
      this.#addToGroup(sentAt, arrival);
    }
    this.queueGrowthMs = Number.isNaN(firstSent) ? 0 : (lastArrival - firstArrival) - (lastSent - firstSent);
    // Heavy loss or a growing queue cuts the estimate to a fraction of what arrived: over a full
    // bottleneck that is the link's rate, so repeated cuts do not compound.
    let cut = this.signal === OVERUSE;
    if (this.#lossLost + this.#lossReceived >= LOSS_PACKETS) {
      this.lossFraction = this.#lossLost / (this.#lossLost + this.#lossReceived);
      this.#lossLost = 0;
      this.#lossReceived = 0;
      if (this.lossFraction > LOSS_HIGH) cut = true;
    }
    const target = cut
      ? DECREASE_FACTOR * (this.arrivingBps > 0 ? this.arrivingBps : this.estimateBps)
      : Infinity;
    if (target < Infinity) {
      congestion = this.#decrease(target, now);
    } else if (this.signal === NORMAL) {
      this.#increase(now, rttMs);
    } else {
      // Underuse: the queue drains; hold until it is empty.
      this.#lastIncreaseAt = now;
    }
    return congestion;
  }

  /**
   * What arrives, for decisions: the larger of the last window and the smoothed rate. Over a bottleneck
   * that has just formed both fall to the link's rate within a few windows; a receiver that stalls for a
   * window (a loaded machine) does not make the path look slow.
   */
  get arrivingBps(): number {
    return Math.max(this.lastWindowBps, this.receivedBps);
  }

  /**
   * Early signs of a queue, before they amount to a cut: the delay trend above half its threshold, the
   * last feedback's packets spread out by over {@link QUEUE_GROWTH_MS} on the way, or some loss
   * ({@link LOSS_EARLY}). A probe stops at them.
   */
  get queueing(): boolean {
    return this.trend.trend > this.trend.threshold / 2 || this.queueGrowthMs > QUEUE_GROWTH_MS ||
      this.#recentLoss() > LOSS_EARLY;
  }

  /** Loss in the current window so far, or the last window's when the current one is young. */
  #recentLoss(): number {
    const reported = this.#lossLost + this.#lossReceived;
    return reported >= LOSS_PACKETS / 4 ? this.#lossLost / reported : this.lossFraction;
  }

  /** Whether the last cut came within `ms` of `now`. */
  congestedWithin(ms: number, now: number): boolean {
    return now - this.lastDecreaseAt < ms;
  }

  #countArrival(size: number, arrival: number): void {
    if (Number.isNaN(this.#rateWindowStart) || arrival < this.#rateWindowStart) {
      this.#rateWindowStart = arrival;
      this.#rateBytes = 0;
    }
    const elapsed = arrival - this.#rateWindowStart;
    if (windowDone(elapsed, this.#ratePackets)) {
      const rate = (this.#rateBytes * 8 * 1000) / elapsed;
      this.receivedBps = this.receivedBps === 0 ? rate : (this.receivedBps + rate) / 2;
      this.lastWindowBps = rate;
      this.#rateWindowStart = arrival;
      this.#rateBytes = 0;
      this.#ratePackets = 0;
    }
    this.#rateBytes += size;
    this.#ratePackets++;
  }

  #countSent(size: number, sentAt: number): void {
    if (Number.isNaN(this.#sentWindowStart) || sentAt < this.#sentWindowStart) {
      this.#sentWindowStart = sentAt;
      this.#sentBytes = 0;
    }
    const elapsed = sentAt - this.#sentWindowStart;
    if (windowDone(elapsed, this.#sentPackets)) {
      this.sentWindowBps = (this.#sentBytes * 8 * 1000) / elapsed;
      this.#sentWindowStart = sentAt;
      this.#sentBytes = 0;
      this.#sentPackets = 0;
    }
    this.#sentBytes += size;
    this.#sentPackets++;
  }

  #addToGroup(sentAt: number, arrival: number): void {
    if (Number.isNaN(this.#groupFirstSent)) {
      this.#groupFirstSent = sentAt;
      this.#groupLastSent = sentAt;
      this.#groupArrival = arrival;
      return;
    }
    if (sentAt - this.#groupFirstSent <= GROUP_MS) {
      this.#groupLastSent = sentAt;
      // Packets reordered inside a group: the group is complete when its last one arrived.
      if (arrival > this.#groupArrival) this.#groupArrival = arrival;
      return;
    }
    this.#closeGroup();
    this.#groupFirstSent = sentAt;
    this.#groupLastSent = sentAt;
    this.#groupArrival = arrival;
  }

  #closeGroup(): void {
    if (!Number.isNaN(this.#previousSent)) {
      const sendGap = this.#groupLastSent - this.#previousSent;
      const arrivalGap = this.#groupArrival - this.#previousArrival;
      // A group that arrived before the previous one (reordered across groups) says nothing about queues.
      if (arrivalGap < 0) return;
      this.signal = this.trend.update(arrivalGap - sendGap, sendGap, this.#groupArrival);
    }
    this.#previousSent = this.#groupLastSent;
    this.#previousArrival = this.#groupArrival;
  }

  #decrease(to: number, now: number): boolean {
    if (now - this.lastDecreaseAt < DECREASE_HOLD_MS) return false;
    this.lastDecreaseAt = now;
    this.#lastIncreaseAt = now;
    this.decreases++;
    this.#rateAtDecrease = this.receivedBps;
    this.estimateBps = clamp(Math.min(this.estimateBps, to));
    return true;
  }

  #increase(now: number, rttMs: number): void {
    if (Number.isNaN(this.#lastIncreaseAt)) this.#lastIncreaseAt = now;
    const seconds = Math.min(now - this.#lastIncreaseAt, 1000) / 1000;
    this.#lastIncreaseAt = now;
    if (seconds <= 0) return;
    const cap = this.receivedBps > 0 ? CAP_FACTOR * this.receivedBps + CAP_MARGIN_BPS : Infinity;
    if (this.estimateBps >= cap) return;
    const near = this.#rateAtDecrease > 0 && Math.abs(this.receivedBps - this.#rateAtDecrease) <
        0.2 * this.#rateAtDecrease;
    const next = near
      // About one 1200-byte packet more per response time (a round trip plus the feedback interval).
      ? this.estimateBps + (1200 * 8 * 1000 / (rttMs + 100)) * seconds
      : this.estimateBps * Math.pow(INCREASE_PER_SECOND, seconds);
    this.estimateBps = clamp(Math.min(next, cap));
  }
}

/** Whether a rate window of `elapsed` ms holding `packets` is complete. */
function windowDone(elapsed: number, packets: number): boolean {
  return elapsed >= MAX_RATE_WINDOW_MS || (elapsed >= RATE_WINDOW_MS && packets >= RATE_WINDOW_PACKETS);
}

function clamp(bps: number): number {
  return Math.min(MAX_BPS, Math.max(MIN_BPS, bps));
}

export { NORMAL, OVERUSE, UNDERUSE };
