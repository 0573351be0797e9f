/**
 * A live room: one publisher's media fanned out to its viewers. Per viewer the forwarder rewrites payload
 * type, SSRC, sequence number and timestamp, so every viewer sees one continuous stream even across a
 * publisher's encoder restart, and a joining viewer starts from the cached keyframe at once.
 */
import type { ChosenCodec } from "../sdp/codecs.ts";
import { videoCodecOf, videoProfile } from "../sdp/codecs.ts";
import type { Peer } from "../peer/peer.ts";
import {
  buildBye,
  buildEmptyReceiverReport,
  buildNack,
  buildPli,
  buildReceiverReport,
  buildRemb,
  buildSenderReport,
  compound,
  readRtcp,
  type ReportBlock,
  type SenderReport,
} from "../rtp/rtcp.ts";
import type { VideoFrame } from "../rtp/frame_buffer.ts";
import { type VideoCodecSupport, videoCodecSupport } from "../rtp/video_codec.ts";
import { GopIndex } from "../rtp/gop_index.ts";
import { PacketCache } from "../rtp/packet_cache.ts";
import { RateMeter } from "../rtp/rate_meter.ts";
import { ReceiveStream } from "../rtp/receive_stream.ts";
import { seqAdd, seqDiff, seqNewer } from "../rtp/sequence.ts";
import { TwccRecorder } from "../rtp/twcc.ts";
import { RtpHeaderReader } from "../rtp/rtp_header.ts";
import { RtpRewriter } from "../srtp/rtp_rewrite.ts";
import type { RoomInfo } from "./bus.ts";
import { CAUGHT_UP, JoinReplay, LOST, NOT_DUE } from "./join_replay.ts";
import { ResendBudget } from "./resend_budget.ts";
import { SimulcastLayers } from "./layers.ts";
import { PaddingFilter } from "../rtp/padding_filter.ts";
import { PliAnswers } from "./pli_answers.ts";

/** What a viewer receives on one kind of media and how the publisher's stream is mapped onto it. */
export interface ViewerTrack {
  payloadType: number;
  ssrc: number;
  /** Added to the publisher's sequence numbers (mod 2^16). */
  sequenceOffset: number;
  /** Added to the publisher's RTP timestamps (mod 2^32). */
  timestampOffset: number;
  /** Video waits for a keyframe before anything is forwarded, so a decoder never starts mid-GOP. */
  started: boolean;
  /** The publisher's stream changed: map the next packet sent onto this track's numbering (continuing it). */
  remap: boolean;
  lastSequence: number;
  lastTimestamp: number;
  lastSentAt: number;
  /** The last packet sent ended a frame (its marker bit): a simulcast switch may happen after it. */
  frameEnded: boolean;
  /** Simulcast: the viewer leaves this layer at the end of the current frame (see layers.ts). */
  leaving: boolean;
  /** Resends of packets sent before this sequence number are refused (they came from another stream). */
  resendFloor: number;
  packetsSent: number;
  octetsSent: number;
  /** The RTX stream (RFC 4588) resends go out on, when the viewer negotiated one. */
  rtx?: RtxStream;
  /**
   * The join replay: while `active`, video reaches the viewer only through it (in sequence order, paced);
   * afterwards its timestamps still serve resends of replayed packets until `until` (ms; by then they have
   * left the packet history). Dropped when the numbering is remapped.
   */
  replay?: { cursor: JoinReplay; active: boolean; until: number };
  /** What this viewer may still make the server resend. */
  resends?: ResendBudget;
}

/** A viewer's retransmission stream: its own payload type, SSRC and sequence numbers. */
export interface RtxStream {
  payloadType: number;
  ssrc: number;
  nextSequence: number;
}

/** What a viewer's receiver reports say about its reception. */
export interface ViewerReception {
  fractionLost: number;
  cumulativeLost: number;
  jitterMs: number;
  rttMs: number | undefined;
  nacksReceived: number;
  packetsResent: number;
  /** Report blocks about the viewer's streams received so far (the layer choice reacts to new ones). */
  reports: number;
}

/** One WHEP viewer of a room. */
export interface Viewer {
  sessionId: string;
  peer: Peer;
  video?: ViewerTrack;
  audio?: ViewerTrack;
  reception: ViewerReception;
  /** Middle 32 bits of the NTP time of SRs sent to this viewer -> when they were sent (for RTT). */
  sentReports: Map<number, number>;
  /** Another cluster node pulling the room for its own viewers: served like a viewer, not counted as one. */
  relay?: boolean;
  /** The mid of the viewer's video m-line (the WHEP layer API names media by it). */
  videoMid?: string;
}

/**
 * Where a room's media comes from and where its feedback (PLI, NACK, receiver reports) goes: the WHIP
 * publisher's peer, or a cluster relay's pull session from another node.
 */
export interface RoomSource {
  sendRtcp(packet: Uint8Array): void;
}

/** Tuning of the media path that the configuration may change. */
export interface MediaOptions {
  /** Keep the latest GOP and replay it to joining viewers. */
  keyframeCache: boolean;
  /** Answer viewers' NACKs and NACK the publisher's losses. */
  retransmissions: boolean;
  /** Ceiling announced to the publisher with REMB (bit/s). */
  maxPublisherBitrate: number;
  /** Extension id of transport-wide sequence numbers in the publisher's packets, if negotiated. */
  twccExtensionId?: number;
  /** Send REMB with receiver reports when there is no transport-wide feedback (default true). */
  remb?: boolean;
  /** Drop padding-only video packets, renumbering the rest (simulcast layer rooms: see padding_filter.ts). */
  dropPadding?: boolean;
  /** The publisher's simulcast layers (rids) and the extension id naming them; absent for one encoding. */
  simulcast?: { rids: readonly string[]; ridExtensionId: number };
}

/** Defaults of {@link MediaOptions}. */
export const DEFAULT_MEDIA_OPTIONS: MediaOptions = {
  keyframeCache: true,
  retransmissions: true,
  maxPublisherBitrate: 8_000_000,
};

/** Counters of one room, for metrics and the stats endpoint. */
export interface RoomCounters {
  keyframeRequests: number;
  keyframeCacheHits: number;
  nacksSent: number;
  nacksReceived: number;
  packetsResent: number;
  /** Bytes of those resends (RTP packets before SRTP). */
  bytesResent: number;
  /** Resends refused by a viewer's resend budget. */
  resendsRefused: number;
  sourceChanges: number;
}

/**
 * Creates a viewer's track mapping for a publisher stream; offsets start at random points. With
 * `rtxPayloadType` resends go out on an RTX stream of their own.
 */
export function newViewerTrack(
  payloadType: number,
  ssrc: number,
  isVideo: boolean,
  rtxPayloadType?: number,
): ViewerTrack {
  const random = crypto.getRandomValues(new Uint32Array(3));
  const rtx = rtxPayloadType === undefined
    ? undefined
    : { payloadType: rtxPayloadType, ssrc: randomSsrc(), nextSequence: random[2] & 0xffff };
  return {
    ...(rtx ? { rtx } : {}),
    payloadType,
    ssrc,
    sequenceOffset: random[0] & 0xffff,
    timestampOffset: random[1],
    started: !isVideo,
    remap: false,
    lastSequence: -1,
    lastTimestamp: 0,
    lastSentAt: 0,
    frameEnded: false,
    leaving: false,
    resendFloor: -1,
    packetsSent: 0,
    octetsSent: 0,
  };
}

/** Keyframe requests reach the publisher no more often than this (per room). */
const KEYFRAME_REQUEST_INTERVAL_MS = 500;
/** Receiver reports (and REMB) to the publisher. */
const RECEIVER_REPORT_INTERVAL_MS = 1000;
/** Transport-wide congestion-control feedback to the publisher. */
const TWCC_INTERVAL_MS = 50;
/** Most packets resent for one viewer RTCP packet (all its NACK items together). */
const MAX_RESENDS_PER_NACK = 64;
/** How long after a join replay a resend may still be of a replayed packet. */
const REPLAY_RESEND_WINDOW_MS = 10_000;
/** The packet history starts this large and doubles (up to the maximum) when a GOP does not fit. */
const HISTORY_PACKETS = 1024;
/** A GOP longer than this many packets is not replayed (viewers then wait for the next keyframe). */
export const MAX_HISTORY_PACKETS = 4096;
/**
 * A joining viewer of a publisher that answers PLI is replayed the GOP only when its keyframe is younger than
 * this; an older one would mean seconds of fast-forward, while a fresh keyframe is a round trip away.
 */
const REPLAY_FOR_PLI_ANSWERING_MS = 300;
/** The replay timer never wakes more often than this (each wake-up sends what became due). */
const MIN_REPLAY_WAKE_MS = 4;
/** Retry spacing of NACKs to the publisher when its RTT is unknown. */
const NACK_RETRY_MS = 40;

/** One incoming publisher stream (one SSRC of one kind). */
interface SourceStream {
  ssrc: number;
  clockRate: number;
  receive: ReceiveStream;
}

/** One publisher and its viewers. */
export class Room<Source extends RoomSource = Peer> {
  readonly id: string;
  /** The current publisher; {@link Room.replacePublisher} swaps it when the publisher reconnects. */
  publisherSessionId: string;
  publisher: Source;
  video: ChosenCodec;
  audio: ChosenCodec | undefined;
  readonly viewers = new Set<Viewer>();
  createdAt: Date;
  /** How many times a new publisher session took the room over (shown to viewers as a takeover). */
  takeovers = 0;
  live = false;
  /** SSRC the server uses as sender of its RTCP towards the publisher. */
  readonly feedbackSsrc = randomSsrc();
  /** Shared by a simulcast room with its layer rooms, so the metrics see every layer's work. */
  readonly counters: RoomCounters;
  /** Called with each complete keyframe access unit (the data is only valid during the call). */
  onKeyframe: ((frame: VideoFrame) => void) | undefined;
  /** The simulcast layers, each a room of its own for video (layers.ts); undefined for one encoding. */
  readonly layers: SimulcastLayers<Source> | undefined;
  /** A keyframe's first packet arrived, before it is forwarded (simulcast switches happen here). */
  onKeyframeStart: ((now: number) => void) | undefined;
  /** A viewer marked `leaving` was sent the last packet of a frame. */
  onFrameEnd: ((viewer: Viewer, now: number) => void) | undefined;
  /** Publisher media bytes received, for the bitrate estimate. */
  bytesIn = 0;
  /** Complete video access units received, for the frame-rate estimate. */
  accessUnits = 0;
  width: number | undefined;
  height: number | undefined;
  /** Estimates refreshed by {@link Room.updateRates}. */
  bitrateKbps = 0;
  fps = 0;

  #options: MediaOptions;
  #videoSource: SourceStream | undefined;
  #audioSource: SourceStream | undefined;
  /** Everything codec-specific of the video path (keyframes, depacketizing): chosen once per room. */
  readonly videoCodec: VideoCodecSupport;
  /** Rebuilds keyframes only (for the picture size and thumbnails); other frames are counted by marker. */
  #depacketizer;
  /** A keyframe is being rebuilt: its RTP timestamp, or -1. */
  #keyframeTimestamp = -1;
  /** The publisher packet's header, read once per packet into this reused reader. */
  #header = new RtpHeaderReader();
  /** Recent video packets: NACKs are answered and joining viewers replayed from here. */
  #history = new PacketCache(HISTORY_PACKETS);
  #gop = new GopIndex();
  #videoRate = new RateMeter();
  /** Viewers whose join replay runs. */
  #replaying = new Set<Viewer>();
  #pliAnswers = new PliAnswers();
  #twcc = new TwccRecorder();
  #rateSample = { at: 0, bytes: 0, units: 0 };
  #lastKeyframeRequest = -Infinity;
  /** A keyframe request was throttled (or a viewer still waits for a keyframe): send it when allowed. */
  #keyframeWanted = false;
  #lastReceiverReport = 0;
  #lastTwcc = 0;
  /** The packet being forwarded, stripped of header extensions; rewritten in place for each viewer. */
  #rewriter = new RtpRewriter();
  /** When the latest keyframe's first packet arrived. */
  #keyframeStartAt = -Infinity;
  /** SSRC of the last packet with a transport-wide sequence number. */
  #lastTransportSsrc: number | undefined;
  /** With {@link MediaOptions.dropPadding}: history, replays and viewers use its compact numbering. */
  #paddingFilter: PaddingFilter | undefined;

  constructor(options: {
    id: string;
    publisherSessionId: string;
    publisher: Source;
    video: ChosenCodec;
    audio: ChosenCodec | undefined;
    now: Date;
    media?: Partial<MediaOptions>;
    /** Counters to add to instead of new ones (a simulcast layer counts into its room's). */
    counters?: RoomCounters;
  }) {
    this.counters = options.counters ?? {
      keyframeRequests: 0,
      keyframeCacheHits: 0,
      nacksSent: 0,
      nacksReceived: 0,
      packetsResent: 0,
      bytesResent: 0,
      resendsRefused: 0,
      sourceChanges: 0,
    };
    this.id = options.id;
    this.publisherSessionId = options.publisherSessionId;
    this.publisher = options.publisher;
    this.video = options.video;
    this.audio = options.audio;
    this.createdAt = options.now;
    this.#options = { ...DEFAULT_MEDIA_OPTIONS, ...options.media };
    // The room keeps its codec for life: a publisher taking it over must send the same one (see sessions).
    this.videoCodec = videoCodecSupport(videoCodecOf(options.video.name) ?? "h264");
    this.#depacketizer = this.videoCodec.newDepacketizer();
    if (this.#options.dropPadding) this.#paddingFilter = new PaddingFilter();
    const simulcast = this.#options.simulcast;
    this.layers = simulcast && new SimulcastLayers<Source>({
      owner: this,
      rids: simulcast.rids,
      ridExtensionId: simulcast.ridExtensionId,
      newLayerRoom: (rid) =>
        new Room<Source>({
          ...options,
          id: `${options.id}/${rid}`,
          audio: undefined,
          counters: this.counters,
          media: {
            ...this.#options,
            simulcast: undefined,
            twccExtensionId: undefined,
            dropPadding: true,
            // Transport-wide feedback for every layer comes from this room; a layer's REMB would only cap it.
            remb: this.#options.twccExtensionId === undefined,
          },
        }),
    });
  }

  /** Forwards one decrypted publisher RTP packet to every viewer; `packet` is only valid during the call. */
  handlePublisherRtp(packet: Uint8Array, now: number): void {
    const header = this.#header;
    if (!header.read(packet)) return;
    const isVideo = header.payloadType === this.video.payloadType;
    if (!isVideo && header.payloadType !== this.audio?.payloadType) return;
    this.bytesIn += packet.length;

    if (this.#options.twccExtensionId !== undefined) this.#recordTransportSequence(header, now);
    if (isVideo && this.layers) {
      this.layers.handlePublisherRtp(packet, header, now);
      this.#sendPublisherFeedback(now);
      return;
    }
    let source = isVideo ? this.#videoSource : this.#audioSource;
    if (!source || source.ssrc !== header.ssrc) source = this.#changeSource(isVideo, header, now);
    source.receive.onPacket(header.sequenceNumber, header.timestamp, now);

    let keyframeStart = false;
    let sequenceNumber = header.sequenceNumber;
    const timestamp = header.timestamp;
    const marker = header.marker;
    if (isVideo && this.#paddingFilter) {
      sequenceNumber = this.#paddingFilter.map(
        sequenceNumber,
        header.padding && header.payloadEnd <= header.payloadStart,
      );
      if (sequenceNumber < 0) return this.#sendPublisherFeedback(now);
    }
    if (isVideo) {
      const payload = packet.subarray(header.payloadStart, header.payloadEnd);
      keyframeStart = this.videoCodec.startsKeyframe(payload);
      if (keyframeStart) this.#keyframeStartAt = now;
      this.#videoRate.add(packet.length, now);
      if (this.#options.retransmissions || this.#options.keyframeCache) {
        this.#history.store(sequenceNumber, packet);
        const keyframeBefore = this.#gop.keyframeSequence;
        this.#gop.push(sequenceNumber, timestamp, keyframeStart);
        if (this.#gop.keyframeSequence !== keyframeBefore) this.#pliAnswers.keyframe(now);
        this.#fitGop();
      }
      // The marker bit ends a picture (RFC 6184 §5.1, RFC 7741 §4.1, RFC 9628 §4.1): the frame-rate count.
      if (marker) this.accessUnits++;
      if (keyframeStart || this.#keyframeTimestamp >= 0) {
        this.#rebuildKeyframe(payload, sequenceNumber, timestamp, marker, keyframeStart);
      }
    }

    if (keyframeStart) this.onKeyframeStart?.(now);
    // Viewers negotiated no header extensions; the publisher's would be meaningless to them. Without
    // viewers nothing is copied for them.
    if (this.viewers.size > 0 && !this.#rewriter.load(packet)) return;
    let waiting = false;
    for (const viewer of this.viewers) {
      const track = isVideo ? viewer.video : viewer.audio;
      if (!track) continue;
      if (track.replay?.active) {
        // The replay sends this packet in its turn, unless its cursor is already past it (a publisher
        // retransmission filling a gap the replay skipped): that one goes now, like a resend.
        const cursor = track.replay.cursor;
        if (seqDiff(cursor.next, sequenceNumber) > 0) {
          this.#forward(viewer, track, sequenceNumber, cursor.timestamps.get(timestamp) ?? timestamp, now);
        }
        continue;
      }
      if (!track.started) {
        if (!keyframeStart) {
          waiting = true;
          continue;
        }
        track.started = true;
      }
      if (track.remap) {
        this.#continueNumbering(track, sequenceNumber, timestamp, isVideo ? 90000 : 48000, now);
      }
      this.#forward(viewer, track, sequenceNumber, timestamp, now);
      if (track.leaving && marker) this.onFrameEnd?.(viewer, now);
    }

    if (isVideo && this.#replaying.size > 0) this.pollReplays(now);

    // A viewer still waiting for a keyframe asks again once the throttle allows (a PLI can be lost).
    if (waiting) this.#keyframeWanted = true;
    if (this.#keyframeWanted && now - this.#lastKeyframeRequest >= KEYFRAME_REQUEST_INTERVAL_MS) {
      this.requestKeyframe(now);
    }
    this.#sendPublisherFeedback(now);
  }

  /**
   * Starts a connected viewer: its video starts with a replay of the history from the latest keyframe
   * (paced, in order; see {@link JoinReplay}), or waits for the next keyframe, which is asked for either
   * way. Returns when {@link pollReplays} wants to run next, or undefined.
   */
  addViewer(viewer: Viewer, now: number): number | undefined {
    this.viewers.add(viewer);
    if (this.layers) return this.layers.addViewer(viewer, now);
    const track = viewer.video;
    const gop = this.#gop;
    // A publisher that answers PLI gives a fresh keyframe sooner than an old GOP could be caught up.
    const freshKeyframeSooner = this.#pliAnswers.answersQuickly(now) &&
      now - this.#pliAnswers.keyframeAt > REPLAY_FOR_PLI_ANSWERING_MS;
    if (
      track && this.#options.keyframeCache && gop.keyframeSequence >= 0 && !freshKeyframeSooner &&
      gop.length <= this.#history.capacity && this.#history.lengthOf(gop.keyframeSequence) >= 0
    ) {
      this.counters.keyframeCacheHits++;
      track.started = true;
      const cursor = new JoinReplay({
        start: gop.keyframeSequence,
        streamBytesPerMs: this.#videoRate.bytesPerMs,
        clockRate: 90000,
        timestampOffset: track.timestampOffset,
        now,
      });
      track.replay = { cursor, active: true, until: Infinity };
      this.#replaying.add(viewer);
    }
    this.requestKeyframe(now);
    return this.pollReplays(now);
  }

  /**
   * A simulcast switch to this layer (layers.ts): the viewer continues here from this layer's latest
   * keyframe, replayed from the history like a join, numbered right after what it was last sent. False
   * (nothing changed) when that keyframe started more than `maxAgeMs` ago or is no longer held.
   */
  switchInAtKeyframe(viewer: Viewer, now: number, maxAgeMs: number): boolean {
    const track = viewer.video;
    const start = this.#gop.keyframeSequence;
    if (!track || track.lastSequence < 0 || start < 0 || now - this.#keyframeStartAt > maxAgeMs) return false;
    const first = this.#history.get(start);
    if (!first || !this.#rewriter.load(first)) return false;
    this.#continueNumbering(track, start, this.#rewriter.timestamp, 90000, now);
    track.started = true;
    const cursor = new JoinReplay({
      start,
      streamBytesPerMs: this.#videoRate.bytesPerMs,
      clockRate: 90000,
      timestampOffset: track.timestampOffset,
      now,
    });
    track.replay = { cursor, active: true, until: Infinity };
    this.viewers.add(viewer);
    this.#replaying.add(viewer);
    this.pollReplays(now);
    return true;
  }

  /**
   * Sends what the join replays have due and returns when they want to run again (undefined when none
   * runs). The owner calls it at that time; publisher packets call it too.
   */
  pollReplays(now: number): number | undefined {
    if (this.layers) return this.layers.pollReplays(now);
    if (this.#replaying.size === 0) return undefined;
    let wake = Infinity;
    for (const viewer of this.#replaying) {
      const track = viewer.video;
      const replay = track?.replay;
      if (!track || !replay?.active || !this.viewers.has(viewer)) {
        this.#replaying.delete(viewer);
        continue;
      }
      const due = this.#advanceReplay(viewer, track, replay.cursor, now);
      if (due !== undefined && due < wake) wake = due;
    }
    return wake === Infinity ? undefined : Math.max(wake, now + MIN_REPLAY_WAKE_MS);
  }

  /** Sends one viewer's due replay packets; returns when the next one is due, or undefined when it ended. */
  #advanceReplay(viewer: Viewer, track: ViewerTrack, cursor: JoinReplay, now: number): number | undefined {
    const history = this.#history;
    const rewriter = this.#rewriter;
    for (;;) {
      const seq = cursor.poll(history, this.#gop.newest, now);
      if (seq === NOT_DUE) return cursor.dueAt(history, now);
      if (seq === CAUGHT_UP || seq === LOST) {
        this.#endReplay(viewer, track, seq === LOST, now);
        return undefined;
      }
      const packet = history.get(seq)!;
      if (!rewriter.load(packet)) continue;
      this.#forward(viewer, track, seq, cursor.timestampFor(rewriter.timestamp, now), now);
    }
  }

  /**
   * Live forwarding takes over from the replay (timestamps continue from the last replayed frame), or,
   * when the history lost the replay's packets, the viewer waits for the next keyframe.
   */
  #endReplay(viewer: Viewer, track: ViewerTrack, lost: boolean, now: number): void {
    this.#replaying.delete(viewer);
    const replay = track.replay!;
    replay.active = false;
    replay.until = now + REPLAY_RESEND_WINDOW_MS;
    track.timestampOffset = (track.timestampOffset + replay.cursor.timestampShift) >>> 0;
    if (lost) {
      // Resume at the next keyframe, numbered right after what was sent.
      track.started = false;
      if (track.lastSequence >= 0) track.remap = true;
      this.requestKeyframe(now);
    }
  }

  /** Grows the history while the current GOP outgrows it (up to the bound), so joins can replay it. */
  #fitGop(): void {
    const capacity = this.#history.capacity;
    if (
      this.#options.keyframeCache && capacity < MAX_HISTORY_PACKETS && this.#gop.keyframeSequence >= 0 &&
      this.#gop.length > capacity - capacity / 8
    ) {
      this.#history.grow(capacity * 2);
    }
  }

  /** Handles RTCP from a viewer: keyframe requests, NACKs (answered from history) and receiver reports. */
  handleViewerRtcp(viewer: Viewer, packet: Uint8Array, now: number): void {
    if (this.layers) return this.layers.handleViewerRtcp(viewer, packet, now);
    const rtcp = readRtcp(packet);
    if (rtcp.keyframeRequested) this.requestKeyframe(now);
    const track = viewer.video;
    if (track && this.#options.retransmissions) {
      // One RTCP packet can name thousands of packets; answering them all would let a viewer turn a few
      // bytes into a burst of media. Beyond the cap, and beyond the viewer's budget, it recovers by keyframe.
      let allowed = MAX_RESENDS_PER_NACK;
      for (const nack of rtcp.nacks) {
        if (nack.mediaSsrc !== track.ssrc) continue;
        this.counters.nacksReceived += nack.sequenceNumbers.length;
        viewer.reception.nacksReceived += nack.sequenceNumbers.length;
        for (const sent of nack.sequenceNumbers) {
          if (allowed === 0) {
            this.counters.resendsRefused++;
            continue;
          }
          if (this.#resend(viewer, track, sent, now)) allowed--;
        }
      }
    }
    for (const block of rtcp.reportBlocks) {
      if (block.ssrc !== viewer.video?.ssrc && block.ssrc !== viewer.audio?.ssrc) continue;
      this.#onViewerReport(viewer, block, now);
    }
  }

  /** Handles RTCP from the publisher: its sender reports are translated for each viewer (lip sync). */
  handlePublisherRtcp(packet: Uint8Array, now: number): void {
    this.layers?.handlePublisherRtcp(packet, now);
    const rtcp = readRtcp(packet);
    for (const report of rtcp.senderReports) {
      const isVideo = report.ssrc === this.#videoSource?.ssrc;
      const source = isVideo
        ? this.#videoSource
        : report.ssrc === this.#audioSource?.ssrc
        ? this.#audioSource
        : undefined;
      if (!source) continue;
      source.receive.onSenderReport(report.ntpSeconds, report.ntpFraction, now);
      for (const viewer of this.viewers) this.#sendTranslatedReport(viewer, isVideo, report, now);
    }
  }

  /**
   * A new publisher session takes over the room (a reconnecting encoder): media now comes from it, with the
   * payload types it negotiated. Viewers stay; its new SSRCs are remapped onto their streams when its first
   * packets arrive, and video resumes at its first keyframe.
   */
  replacePublisher(options: {
    publisher: Source;
    publisherSessionId: string;
    video: ChosenCodec;
    audio: ChosenCodec | undefined;
    twccExtensionId: number | undefined;
  }): void {
    this.publisher = options.publisher;
    this.publisherSessionId = options.publisherSessionId;
    this.takeovers++;
    this.video = options.video;
    this.audio = options.audio;
    this.#options = { ...this.#options, twccExtensionId: options.twccExtensionId };
    this.#twcc = new TwccRecorder();
    this.#lastKeyframeRequest = -Infinity;
    this.#pliAnswers.reset();
    // The new session's streams are new even when an encoder reuses its SSRCs (simple-whip-client does):
    // an SSRC no packet can carry makes the first packet of each kind remap the viewers.
    if (this.#videoSource) this.#videoSource.ssrc = -1;
    if (this.#audioSource) this.#audioSource.ssrc = -1;
    this.layers?.replacePublisher(options);
  }

  /**
   * Asks the publisher for a keyframe (PLI), at most every 500 ms; a request inside that window is not
   * dropped but sent when the window ends (with the next publisher packet).
   */
  requestKeyframe(now: number): void {
    if (this.layers) return this.layers.requestKeyframe(now);
    if (!this.#videoSource) return;
    if (now - this.#lastKeyframeRequest < KEYFRAME_REQUEST_INTERVAL_MS) {
      this.#keyframeWanted = true;
      return;
    }
    this.#keyframeWanted = false;
    this.#lastKeyframeRequest = now;
    this.counters.keyframeRequests++;
    this.#pliAnswers.asked(now);
    this.publisher.sendRtcp(
      compound(
        buildEmptyReceiverReport(this.feedbackSsrc),
        buildPli(this.feedbackSsrc, this.#videoSource.ssrc),
      ),
    );
  }

  /** The video stream's measured rate in bytes per millisecond (0 until measured). */
  get videoBytesPerMs(): number {
    return this.layers ? this.layers.top.room.videoBytesPerMs : this.#videoRate.bytesPerMs;
  }

  /** Takes a viewer that left out of the room (and out of its simulcast layer); false when it was not in. */
  removeViewer(viewer: Viewer): boolean {
    this.layers?.removeViewer(viewer);
    return this.viewers.delete(viewer);
  }

  /** Sends a BYE for the viewer's streams (before closing it). */
  sayGoodbye(viewer: Viewer): void {
    const ssrcs = [viewer.video?.ssrc, viewer.audio?.ssrc].filter((s): s is number => s !== undefined);
    if (ssrcs.length === 0) return;
    try {
      viewer.peer.sendRtcp(compound(buildEmptyReceiverReport(ssrcs[0]), buildBye(ssrcs)));
    } catch {
      // A send failure towards one viewer must not stop the room closing.
    }
  }

  /** Sends the publisher a BYE for the server's receiver SSRC (before closing it): the room is done with it. */
  sayGoodbyeToPublisher(publisher: RoomSource): void {
    try {
      publisher.sendRtcp(
        compound(buildEmptyReceiverReport(this.feedbackSsrc), buildBye([this.feedbackSsrc])),
      );
    } catch {
      // A send failure must not stop the session closing.
    }
  }

  /** Recomputes bitrate and frame rate over the time since the last call; true when either moved >10 %. */
  updateRates(now: number): boolean {
    const sample = this.#rateSample;
    const seconds = (now - sample.at) / 1000;
    if (sample.at === 0 || seconds <= 0) {
      const units = this.layers ? this.layers.top.room.accessUnits : this.accessUnits;
      this.#rateSample = { at: now, bytes: this.bytesIn, units };
      return false;
    }
    // A simulcast room's frames are counted by its layers; the top layer's are the room's.
    const units = this.layers ? this.layers.top.room.accessUnits : this.accessUnits;
    const bitrate = Math.round(((this.bytesIn - sample.bytes) * 8) / seconds / 1000);
    const fps = Math.max(0, Math.round(((units - sample.units) / seconds) * 10) / 10);
    this.#rateSample = { at: now, bytes: this.bytesIn, units };
    const moved = (a: number, b: number) => Math.abs(a - b) > Math.max(1, b * 0.1);
    const changed = moved(bitrate, this.bitrateKbps) || moved(fps, this.fps);
    this.bitrateKbps = bitrate;
    this.fps = fps;
    return changed;
  }

  /** The room as the bus and the API describe it. */
  info(): RoomInfo {
    // A simulcast room shows its top layer's picture.
    const picture = this.layers ? this.layers.top.room : this;
    return {
      id: this.id,
      createdAt: this.createdAt.toISOString(),
      viewerCount: this.#audienceSize(),
      video: {
        codec: videoCodecOf(this.video.name)?.toUpperCase() ?? this.video.name,
        profile: videoProfile(this.video) ?? "",
        width: picture.width,
        height: picture.height,
        fps: this.fps || undefined,
      },
      audio: this.audio ? { codec: "opus" } : null,
      bitrateKbps: this.bitrateKbps,
      ...(this.layers ? { layers: this.layers.info() } : {}),
      takeovers: this.takeovers,
    };
  }

  /** Viewers not counting relay pulls by other cluster nodes (these count on their own node). */
  #audienceSize(): number {
    let count = 0;
    for (const viewer of this.viewers) if (!viewer.relay) count++;
    return count;
  }

  /**
   * Rewrites the packet loaded in the rewriter for one viewer and sends it; the rewriter's buffer is shared
   * and overwritten per viewer, only PT, sequence number, timestamp and SSRC bytes change.
   */
  #forward(viewer: Viewer, track: ViewerTrack, sequenceNumber: number, timestamp: number, now: number): void {
    const outSequence = seqAdd(sequenceNumber, track.sequenceOffset);
    const outTimestamp = (timestamp + track.timestampOffset) >>> 0;
    const rewriter = this.#rewriter;
    rewriter.setStream(track.payloadType, track.ssrc, outSequence, outTimestamp);
    viewer.peer.sendRtpPacket(rewriter.packet, rewriter.headerLength);
    if (track.lastSequence < 0 || seqNewer(outSequence, track.lastSequence)) {
      track.frameEnded = rewriter.marker;
      track.lastSequence = outSequence;
      track.lastTimestamp = outTimestamp;
      track.lastSentAt = now;
    }
    track.packetsSent++;
    track.octetsSent += rewriter.packet.length - rewriter.headerLength;
  }

  /**
   * Resends one packet a viewer NACKed, within its resend budget: on its RTX stream when it negotiated one,
   * otherwise as the original packet again. False when nothing was sent (unknown packet, refused).
   */
  #resend(viewer: Viewer, track: ViewerTrack, sentSequence: number, now: number): boolean {
    // Sent before the viewer's stream was remapped (another simulcast layer, an earlier encoder): this
    // history would answer with a different packet under that number.
    if (track.resendFloor >= 0 && seqDiff(sentSequence, track.resendFloor) < 0) return false;
    const original = seqAdd(sentSequence, -track.sequenceOffset);
    const packet = this.#history.get(original);
    // Not yet replayed to this viewer: it cannot have lost it.
    if (!packet || (track.replay?.active && !seqNewer(track.replay.cursor.next, original))) return false;
    const budget = track.resends ??= new ResendBudget();
    if (!budget.allow(original, packet.length, this.#videoRate.bytesPerMs, viewer.reception.rttMs, now)) {
      this.counters.resendsRefused++;
      return false;
    }
    const rewriter = this.#rewriter;
    if (!rewriter.load(packet)) return false;
    this.counters.packetsResent++;
    this.counters.bytesResent += packet.length;
    viewer.reception.packetsResent++;
    // A replayed packet goes again with the timestamp it was replayed with.
    const replay = track.replay && now < track.replay.until ? track.replay.cursor : undefined;
    const replayed = replay?.timestamps.get(rewriter.timestamp);
    const outTimestamp = replayed === undefined
      ? (rewriter.timestamp + track.timestampOffset) >>> 0
      : (replayed + replay!.timestampOffset) >>> 0;
    const rtx = track.rtx;
    if (!rtx) {
      this.#forward(viewer, track, original, (outTimestamp - track.timestampOffset) >>> 0, now);
      return true;
    }
    rewriter.setStream(track.payloadType, track.ssrc, sentSequence, outTimestamp);
    const packetOut = rewriter.rtxPacket(rtx.payloadType, rtx.ssrc, rtx.nextSequence);
    rtx.nextSequence = (rtx.nextSequence + 1) & 0xffff;
    viewer.peer.sendRtpPacket(packetOut, rewriter.headerLength);
    return true;
  }

  /**
   * The publisher's stream for a kind changed SSRC (encoder restart, new track): remap every viewer so
   * sequence numbers continue from the last one sent and timestamps advance by the time that passed.
   */
  #changeSource(isVideo: boolean, header: RtpHeaderReader, now: number): SourceStream {
    const clockRate = isVideo ? 90000 : 48000;
    const previous = isVideo ? this.#videoSource : this.#audioSource;
    const source = { ssrc: header.ssrc, clockRate, receive: new ReceiveStream(header.ssrc, clockRate) };
    if (isVideo) this.#videoSource = source;
    else this.#audioSource = source;
    if (!previous) return source;
    this.counters.sourceChanges++;
    if (isVideo) {
      this.#history.clear();
      this.#paddingFilter?.reset();
      this.#gop.clear();
      this.#videoRate.reset();
      this.#pliAnswers.reset();
      // Replays of the old stream end; those viewers start again at the new stream's keyframe.
      for (const viewer of this.#replaying) {
        const track = viewer.video;
        if (track?.replay?.active) this.#endReplay(viewer, track, true, now);
      }
      this.#depacketizer.reset();
      this.#keyframeTimestamp = -1;
      this.#lastKeyframeRequest = -Infinity;
      this.requestKeyframe(now);
    }
    for (const viewer of this.viewers) {
      const track = isVideo ? viewer.video : viewer.audio;
      if (!track) continue;
      if (track.lastSequence < 0) {
        if (isVideo) track.started = false;
        continue;
      }
      // Video is held until the new stream's keyframe; the numbering continues from that packet, so the
      // viewer sees no gap for the packets it never got.
      track.remap = true;
      if (isVideo) track.started = false;
    }
    return source;
  }

  /** Maps the publisher's `sequenceNumber`/`timestamp` right after what the track last sent. */
  #continueNumbering(
    track: ViewerTrack,
    sequenceNumber: number,
    timestamp: number,
    clockRate: number,
    now: number,
  ) {
    const elapsed = Math.max(1, Math.round(((now - track.lastSentAt) / 1000) * clockRate));
    track.sequenceOffset = (track.lastSequence + 1 - sequenceNumber) & 0xffff;
    track.resendFloor = (track.lastSequence + 1) & 0xffff;
    track.timestampOffset = (track.lastTimestamp + elapsed - timestamp) >>> 0;
    track.remap = false;
    track.replay = undefined;
  }

  /**
   * Feeds the depacketizer from a keyframe's first packet to the end of that picture (marker bit, or the
   * next picture's first packet): only keyframes are rebuilt, for the picture size and thumbnails.
   */
  #rebuildKeyframe(
    payload: Uint8Array,
    sequenceNumber: number,
    timestamp: number,
    marker: boolean,
    keyframeStart: boolean,
  ): void {
    // A keyframe starts with its parameter sets and again with its first slice: both start the same picture.
    if (keyframeStart && timestamp !== this.#keyframeTimestamp) {
      this.#depacketizer.reset();
      this.#keyframeTimestamp = timestamp;
    }
    const nextPicture = timestamp !== this.#keyframeTimestamp;
    const unit = this.#depacketizer.push(payload, sequenceNumber, timestamp, marker);
    if (unit || nextPicture) this.#keyframeTimestamp = -1;
    if (!unit || !unit.isKeyframe) return;
    if (unit.width && unit.height) {
      this.width = unit.width;
      this.height = unit.height;
    }
    this.onKeyframe?.(unit);
  }

  #recordTransportSequence(header: RtpHeaderReader, now: number): void {
    const at = header.findExtension(this.#options.twccExtensionId!);
    if (at < 0 || header.extensionLength < 2) return;
    const packet = header.packet;
    this.#twcc.record((packet[at] << 8) | packet[at + 1], now * 1000);
    this.#lastTransportSsrc = header.ssrc;
  }

  /** NACKs for the publisher's losses, transport-wide feedback, and periodic RR (+ REMB). */
  #sendPublisherFeedback(now: number): void {
    const video = this.#videoSource;
    const nacksDue = video !== undefined && this.#options.retransmissions && video.receive.missingCount > 0;
    const twccDue = this.#options.twccExtensionId !== undefined && now - this.#lastTwcc >= TWCC_INTERVAL_MS;
    const reportDue = now - this.#lastReceiverReport >= RECEIVER_REPORT_INTERVAL_MS;
    // Most packets owe the publisher nothing: decided before anything is allocated.
    if (!nacksDue && !twccDue && !reportDue) return;
    const feedback: Uint8Array[] = [];
    if (nacksDue) {
      const missing = video.receive.dueNacks(now, NACK_RETRY_MS);
      if (missing.length > 0) {
        this.counters.nacksSent += missing.length;
        feedback.push(buildNack(this.feedbackSsrc, video.ssrc, missing));
      }
    }
    if (twccDue) {
      this.#lastTwcc = now;
      // A simulcast room has no video source of its own: the feedback names the stream last recorded (a
      // publisher ignores feedback naming no stream it sends: measured with Chromium, whose bandwidth
      // estimate then fell to 30 kbit/s within 15 s).
      const mediaSsrc = video?.ssrc ?? this.#lastTransportSsrc ?? this.#audioSource?.ssrc ?? 0;
      const twcc = this.#twcc.buildFeedback(this.feedbackSsrc, mediaSsrc);
      if (twcc) feedback.push(twcc);
    }
    if (feedback.length === 0 && !reportDue) return;
    let report: Uint8Array;
    if (reportDue) {
      this.#lastReceiverReport = now;
      const blocks: ReportBlock[] = [];
      if (video) blocks.push(video.receive.reportBlock(now));
      if (this.#audioSource) blocks.push(this.#audioSource.receive.reportBlock(now));
      report = buildReceiverReport(this.feedbackSsrc, blocks);
      if (this.#options.twccExtensionId === undefined && this.#options.remb !== false) {
        const ssrcs = blocks.map((b) => b.ssrc);
        feedback.push(buildRemb(this.feedbackSsrc, this.#options.maxPublisherBitrate, ssrcs));
      }
    } else {
      report = buildEmptyReceiverReport(this.feedbackSsrc);
    }
    this.publisher.sendRtcp(compound(report, ...feedback));
  }

  #sendTranslatedReport(viewer: Viewer, isVideo: boolean, report: SenderReport, now: number): void {
    const track = isVideo ? viewer.video : viewer.audio;
    // Replayed video runs on its own clock until live takes over; a report now would mislead lip sync.
    if (!track || track.packetsSent === 0 || track.replay?.active) return;
    const sr = buildSenderReport({
      ssrc: track.ssrc,
      ntpSeconds: report.ntpSeconds,
      ntpFraction: report.ntpFraction,
      rtpTimestamp: (report.rtpTimestamp + track.timestampOffset) >>> 0,
      packetCount: track.packetsSent,
      octetCount: track.octetsSent,
    });
    const middle = ((report.ntpSeconds & 0xffff) << 16 | (report.ntpFraction >>> 16)) >>> 0;
    viewer.sentReports.set(middle, now);
    if (viewer.sentReports.size > 16) viewer.sentReports.delete(viewer.sentReports.keys().next().value!);
    viewer.peer.sendRtcp(sr);
  }

  #onViewerReport(viewer: Viewer, block: ReportBlock, now: number): void {
    const reception = viewer.reception;
    const isVideo = block.ssrc === viewer.video?.ssrc;
    reception.reports++;
    if (isVideo || !viewer.video) {
      reception.fractionLost = block.fractionLost / 256;
      reception.cumulativeLost = block.cumulativeLost;
      reception.jitterMs = (block.jitter / (isVideo ? 90000 : 48000)) * 1000;
    }
    const sentAt = block.lastSenderReport === 0 ? undefined : viewer.sentReports.get(block.lastSenderReport);
    if (sentAt !== undefined) {
      const rtt = now - sentAt - (block.delaySinceLastSenderReport / 65536) * 1000;
      if (rtt >= 0) reception.rttMs = Math.round(rtt * 10) / 10;
    }
  }
}

/** A fresh reception record for a viewer. */
export function newReception(): ViewerReception {
  return {
    fractionLost: 0,
    cumulativeLost: 0,
    jitterMs: 0,
    rttMs: undefined,
    nacksReceived: 0,
    packetsResent: 0,
    reports: 0,
  };
}

/** A random non-zero 32-bit SSRC. */
export function randomSsrc(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
}
