/**
 * What a room tells its publisher (or relay source), decided from what it received and the time: NACKs
 * for missing video packets, transport-wide congestion feedback, receiver reports with REMB, and keyframe
 * requests (PLI) throttled to one per 500 ms. Pure: {@link PublisherFeedback.poll} and
 * {@link PublisherFeedback.keyframeRequest} return the RTCP to send; the room sends it.
 */
import {
  buildEmptyReceiverReport,
  buildNack,
  buildPli,
  buildReceiverReport,
  buildRemb,
  compound,
  type ReportBlock,
} from "../rtp/rtcp.ts";
import type { ReceiveStream } from "../rtp/receive_stream.ts";
import type { RtpHeaderReader } from "../rtp/rtp_header.ts";
import { TwccRecorder } from "../rtp/twcc.ts";
import type { RoomCounters } from "./room_counters.ts";
import { randomSsrc } from "./viewer.ts";

/** Keyframe requests reach the publisher no more often than this (per room). */
export const KEYFRAME_REQUEST_INTERVAL_MS = 500;
/** Receiver reports (and REMB) to the publisher. */
export const RECEIVER_REPORT_INTERVAL_MS = 1000;
/** Transport-wide congestion-control feedback to the publisher. */
export const TWCC_INTERVAL_MS = 50;
/** Retry spacing of NACKs to the publisher when its RTT is unknown. */
const NACK_RETRY_MS = 40;

/** One incoming publisher stream (one SSRC of one kind). */
export interface PublisherStream {
  /** The SSRC its packets carry; -1 when a new publisher session must be treated as a new stream. */
  ssrc: number;
  clockRate: number;
  receive: ReceiveStream;
}

/** The feedback settings of a room. */
export interface PublisherFeedbackOptions {
  /** NACK the publisher's losses. */
  retransmissions: boolean;
  /** Ceiling announced with REMB (bit/s). */
  maxPublisherBitrate: number;
  /** Extension id of transport-wide sequence numbers in the publisher's packets, if negotiated. */
  twccExtensionId?: number;
  /** Send REMB with receiver reports when there is no transport-wide feedback (default true). */
  remb?: boolean;
}

/** Feedback towards one room's publisher. */
export class PublisherFeedback {
  /** SSRC the server uses as sender of its RTCP towards the publisher. */
  readonly ssrc = randomSsrc();
  /** The publisher's video stream as received (a simulcast room has none of its own). */
  video: PublisherStream | undefined;
  /** The publisher's audio stream as received. */
  audio: PublisherStream | undefined;
  #options: PublisherFeedbackOptions;
  readonly #counters: RoomCounters;
  #twcc = new TwccRecorder();
  #lastReceiverReport = 0;
  #lastTwcc = 0;
  /** SSRC of the last packet with a transport-wide sequence number. */
  #lastTransportSsrc: number | undefined;
  #lastKeyframeRequest = -Infinity;
  /** A keyframe request was throttled (or a viewer still waits for a keyframe): send it when allowed. */
  #keyframeWanted = false;

  constructor(options: PublisherFeedbackOptions, counters: RoomCounters) {
    this.#options = options;
    this.#counters = counters;
  }

  /** Records the packet's transport-wide sequence number, when that extension was negotiated. */
  recordTransportSequence(header: RtpHeaderReader, now: number): void {
    const id = this.#options.twccExtensionId;
    if (id === undefined) return;
    const at = header.findExtension(id);
    if (at < 0 || header.extensionLength < 2) return;
    const packet = header.packet;
    this.#twcc.record((packet[at] << 8) | packet[at + 1], now * 1000);
    this.#lastTransportSsrc = header.ssrc;
  }

  /**
   * The feedback due at `now` as one compound RTCP packet: NACKs for missing video, transport-wide feedback
   * every 50 ms, a receiver report (+ REMB) every second. Undefined when nothing is due.
   */
  poll(now: number): Uint8Array | undefined {
    const options = this.#options;
    const video = this.video;
    const nacksDue = video !== undefined && options.retransmissions && video.receive.missingCount > 0;
    const twccDue = options.twccExtensionId !== undefined && now - this.#lastTwcc >= TWCC_INTERVAL_MS;
    const reportDue = now - this.#lastReceiverReport >= RECEIVER_REPORT_INTERVAL_MS;
    // Most packets owe the publisher nothing: decided before anything is allocated.
    if (!nacksDue && !twccDue && !reportDue) return undefined;
    const feedback: Uint8Array[] = [];
    if (nacksDue) {
      const missing = video.receive.dueNacks(now, NACK_RETRY_MS);
      if (missing.length > 0) {
        this.#counters.nacksSent += missing.length;
        feedback.push(buildNack(this.ssrc, video.ssrc, missing));
      }
    }
    if (twccDue) {
      this.#lastTwcc = now;
      // A simulcast room has no video source of its own: the feedback names the stream last recorded (a
      // publisher ignores feedback naming no stream it sends: measured with Chromium, whose bandwidth
      // estimate then fell to 30 kbit/s within 15 s).
      const mediaSsrc = video?.ssrc ?? this.#lastTransportSsrc ?? this.audio?.ssrc ?? 0;
      const twcc = this.#twcc.buildFeedback(this.ssrc, mediaSsrc);
      if (twcc) feedback.push(twcc);
    }
    if (feedback.length === 0 && !reportDue) return undefined;
    let report: Uint8Array;
    if (reportDue) {
      this.#lastReceiverReport = now;
      const blocks: ReportBlock[] = [];
      if (video) blocks.push(video.receive.reportBlock(now));
      if (this.audio) blocks.push(this.audio.receive.reportBlock(now));
      report = buildReceiverReport(this.ssrc, blocks);
      if (options.twccExtensionId === undefined && options.remb !== false) {
        const ssrcs = blocks.map((b) => b.ssrc);
        feedback.push(buildRemb(this.ssrc, options.maxPublisherBitrate, ssrcs));
      }
    } else {
      report = buildEmptyReceiverReport(this.ssrc);
    }
    return compound(report, ...feedback);
  }

  /**
   * A keyframe request (PLI) to send now, or undefined: without a video stream, or inside 500 ms of the last
   * request (then it is remembered and {@link keyframeRequestDue} says when it may go).
   */
  keyframeRequest(now: number): Uint8Array | undefined {
    const video = this.video;
    if (!video) return undefined;
    if (now - this.#lastKeyframeRequest < KEYFRAME_REQUEST_INTERVAL_MS) {
      this.#keyframeWanted = true;
      return undefined;
    }
    this.#keyframeWanted = false;
    this.#lastKeyframeRequest = now;
    this.#counters.keyframeRequests++;
    return compound(buildEmptyReceiverReport(this.ssrc), buildPli(this.ssrc, video.ssrc));
  }

  /** Remembers that a keyframe is wanted (a viewer waits for one); it is asked for when the throttle allows. */
  wantKeyframe(): void {
    this.#keyframeWanted = true;
  }

  /** A wanted keyframe may be asked for now. */
  keyframeRequestDue(now: number): boolean {
    return this.#keyframeWanted && now - this.#lastKeyframeRequest >= KEYFRAME_REQUEST_INTERVAL_MS;
  }

  /** The next keyframe request goes at once (a new stream or a new publisher: the old throttle is moot). */
  resetKeyframeThrottle(): void {
    this.#lastKeyframeRequest = -Infinity;
  }

  /** A new publisher session: its transport-wide numbering starts afresh, under its own extension id. */
  newPublisher(twccExtensionId: number | undefined): void {
    this.#options = { ...this.#options, twccExtensionId };
    this.#twcc = new TwccRecorder();
    this.#lastKeyframeRequest = -Infinity;
  }
}
