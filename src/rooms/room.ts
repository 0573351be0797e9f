/**
 * A live room: one publisher's media fanned out to its viewers. The room composes the small modules that
 * do the work and owns their lifecycle (publisher takeover, viewers joining and leaving, goodbyes):
 * - forwarder.ts: the viewer loop and each viewer's numbering; every RTP packet to a viewer leaves there;
 * - replaying_viewers.ts: joining viewers get the GOP from the packet history, paced, in order;
 * - viewer_feedback.ts: viewers' RTCP (NACK -> resend, PLI, receiver reports, RTT) and translated SRs;
 * - publisher_feedback.ts: NACK, TWCC, receiver reports, REMB and PLI towards the publisher;
 * - keyframe_tap.ts: keyframes rebuilt for the picture size and thumbnails; rates.ts: bitrate and fps;
 * - layers.ts: a simulcast publisher's layers, each received by a room of its own.
 * So every viewer sees one continuous stream even across a publisher's encoder restart, and a joining
 * viewer starts from the cached keyframe at once.
 */
import type { ChosenCodec } from "../sdp/codecs.ts";
import { videoCodecOf, videoProfile } from "../sdp/codecs.ts";
import type { Peer } from "../peer/peer.ts";
import { buildBye, buildEmptyReceiverReport, compound, readRtcp } from "../rtp/rtcp.ts";
import type { VideoFrame } from "../rtp/frame_buffer.ts";
import { type VideoCodecSupport, videoCodecSupport } from "../rtp/video_codec.ts";
import { GopIndex } from "../rtp/gop_index.ts";
import { PacketCache } from "../rtp/packet_cache.ts";
import { RateMeter } from "../rtp/rate_meter.ts";
import { ReceiveStream } from "../rtp/receive_stream.ts";
import { RtpHeaderReader } from "../rtp/rtp_header.ts";
import { PaddingFilter } from "../rtp/padding_filter.ts";
import type { RoomInfo } from "./bus.ts";
import { continueNumbering, Forwarder, remapTracks } from "./forwarder.ts";
import { KeyframeTap } from "./keyframe_tap.ts";
import { SimulcastLayers } from "./layers.ts";
import { PliAnswers } from "./pli_answers.ts";
import { PublisherFeedback, type PublisherStream } from "./publisher_feedback.ts";
import { RoomRates } from "./rates.ts";
import { ReplayingViewers } from "./replaying_viewers.ts";
import { newRoomCounters, type RoomCounters } from "./room_counters.ts";
import { ViewerFeedback } from "./viewer_feedback.ts";
import type { Viewer } from "./viewer.ts";

export type { RoomCounters } from "./room_counters.ts";
export {
  newReception,
  newViewerTrack,
  randomSsrc,
  type RtxStream,
  type Viewer,
  type ViewerReception,
  type ViewerTrack,
} from "./viewer.ts";

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
  /**
   * Drop padding-only video packets, renumbering the rest (see padding_filter.ts); default true. A browser
   * probes its uplink with them: they feed the server's feedback to it and are no use to a viewer.
   */
  dropPadding?: boolean;
  /** The publisher's simulcast layers (rids) and the extension id naming them; absent for one encoding. */
  simulcast?: { rids: readonly string[]; ridExtensionId: number };
}

/** Defaults of {@link MediaOptions}. */
export const DEFAULT_MEDIA_OPTIONS: MediaOptions = {
  keyframeCache: true,
  retransmissions: true,
  maxPublisherBitrate: 8_000_000,
  dropPadding: true,
};

/** The packet history starts this large and doubles (up to the maximum) when a GOP does not fit. */
const HISTORY_PACKETS = 1024;
/** A GOP longer than this many packets is not replayed (viewers then wait for the next keyframe). */
export const MAX_HISTORY_PACKETS = 4096;
/**
 * A joining viewer of a publisher that answers PLI is replayed the GOP only when its keyframe is younger than
 * this; an older one would mean seconds of fast-forward, while a fresh keyframe is a round trip away.
 */
const REPLAY_FOR_PLI_ANSWERING_MS = 300;

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
  /** Shared by a simulcast room with its layer rooms, so the metrics see every layer's work. */
  readonly counters: RoomCounters;
  /** The simulcast layers, each a room of its own for video (layers.ts); undefined for one encoding. */
  readonly layers: SimulcastLayers<Source> | undefined;
  /** A keyframe's first packet arrived, before it is forwarded (simulcast switches happen here). */
  onKeyframeStart: ((now: number) => void) | undefined;
  /** Publisher media bytes received, for the bitrate estimate. */
  bytesIn = 0;
  /** Complete video access units received, for the frame-rate estimate. */
  accessUnits = 0;
  /** Everything codec-specific of the video path (keyframes, depacketizing): chosen once per room. */
  readonly videoCodec: VideoCodecSupport;

  #options: MediaOptions;
  /** The publisher packet's header, read once per packet into this reused reader. */
  #header = new RtpHeaderReader();
  /** Recent video packets: NACKs are answered and joining viewers replayed from here. */
  #history = new PacketCache(HISTORY_PACKETS);
  #gop = new GopIndex();
  #videoRate = new RateMeter();
  #pliAnswers = new PliAnswers();
  #rates = new RoomRates();
  /** When the latest keyframe's first packet arrived. */
  #keyframeStartAt = -Infinity;
  /** With {@link MediaOptions.dropPadding}: history, replays and viewers use its compact numbering. */
  #paddingFilter: PaddingFilter | undefined;
  readonly #forwarder = new Forwarder();
  readonly #replays: ReplayingViewers;
  readonly #viewerFeedback: ViewerFeedback;
  readonly #publisherFeedback: PublisherFeedback;
  readonly #keyframes: KeyframeTap;

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
    this.counters = options.counters ?? newRoomCounters();
    this.id = options.id;
    this.publisherSessionId = options.publisherSessionId;
    this.publisher = options.publisher;
    this.video = options.video;
    this.audio = options.audio;
    this.createdAt = options.now;
    this.#options = { ...DEFAULT_MEDIA_OPTIONS, ...options.media };
    // The room keeps its codec for life: a publisher taking it over must send the same one (see sessions).
    this.videoCodec = videoCodecSupport(videoCodecOf(options.video.name) ?? "h264");
    this.#keyframes = new KeyframeTap(this.videoCodec);
    if (this.#options.dropPadding) this.#paddingFilter = new PaddingFilter();
    this.#publisherFeedback = new PublisherFeedback(this.#options, this.counters);
    this.#viewerFeedback = new ViewerFeedback({
      forwarder: this.#forwarder,
      history: this.#history,
      videoRate: this.#videoRate,
      counters: this.counters,
      retransmissions: this.#options.retransmissions,
    });
    this.#replays = new ReplayingViewers({
      history: this.#history,
      gop: this.#gop,
      forwarder: this.#forwarder,
      requestKeyframe: (now) => this.requestKeyframe(now),
    });
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

  /** SSRC the server uses as sender of its RTCP towards the publisher. */
  get feedbackSsrc(): number {
    return this.#publisherFeedback.ssrc;
  }

  /** Called with each complete keyframe access unit (the data is only valid during the call). */
  get onKeyframe(): ((frame: VideoFrame) => void) | undefined {
    return this.#keyframes.onKeyframe;
  }
  set onKeyframe(listener: ((frame: VideoFrame) => void) | undefined) {
    this.#keyframes.onKeyframe = listener;
  }

  /** A viewer marked `leaving` was sent the last packet of a frame. */
  get onFrameEnd(): ((viewer: Viewer, now: number) => void) | undefined {
    return this.#forwarder.onFrameEnd;
  }
  set onFrameEnd(listener: ((viewer: Viewer, now: number) => void) | undefined) {
    this.#forwarder.onFrameEnd = listener;
  }

  /** The picture size from the latest keyframe. */
  get width(): number | undefined {
    return this.#keyframes.width;
  }
  get height(): number | undefined {
    return this.#keyframes.height;
  }

  /** Bitrate estimate refreshed by {@link Room.updateRates}. */
  get bitrateKbps(): number {
    return this.#rates.bitrateKbps;
  }
  /** Frame-rate estimate refreshed by {@link Room.updateRates}. */
  get fps(): number {
    return this.#rates.fps;
  }

  /** Forwards one decrypted publisher RTP packet to every viewer; `packet` is only valid during the call. */
  handlePublisherRtp(packet: Uint8Array, now: number): void {
    const header = this.#header;
    if (!header.read(packet)) return;
    const isVideo = header.payloadType === this.video.payloadType;
    if (!isVideo && header.payloadType !== this.audio?.payloadType) return;
    this.bytesIn += packet.length;

    const feedback = this.#publisherFeedback;
    feedback.recordTransportSequence(header, now);
    if (isVideo && this.layers) {
      this.layers.handlePublisherRtp(packet, header, now);
      this.#sendPublisherFeedback(now);
      return;
    }
    let source = isVideo ? feedback.video : feedback.audio;
    if (!source || source.ssrc !== header.ssrc) source = this.#changeSource(isVideo, header, now);
    source.receive.onPacket(header.sequenceNumber, header.timestamp, now);

    let keyframeStart = false;
    let sequenceNumber = header.sequenceNumber;
    const timestamp = header.timestamp;
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
      if (header.marker) this.accessUnits++;
      this.#keyframes.push(payload, sequenceNumber, timestamp, header.marker, keyframeStart);
    }

    if (keyframeStart) this.onKeyframeStart?.(now);
    // Viewers negotiated no header extensions; the publisher's would be meaningless to them. Without
    // viewers nothing is copied for them.
    if (this.viewers.size > 0 && !this.#forwarder.load(packet)) return;
    const waiting = this.#forwarder.forwardLive(
      this.viewers,
      isVideo,
      sequenceNumber,
      timestamp,
      keyframeStart,
      now,
    );

    if (isVideo && this.#replays.size > 0) this.pollReplays(now);

    // A viewer still waiting for a keyframe asks again once the throttle allows (a PLI can be lost).
    if (waiting) feedback.wantKeyframe();
    if (feedback.keyframeRequestDue(now)) this.requestKeyframe(now);
    this.#sendPublisherFeedback(now);
  }

  /**
   * Starts a connected viewer: its video starts with a replay of the history from the latest keyframe
   * (paced, in order; see replaying_viewers.ts), or waits for the next keyframe, which is asked for either
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
      this.#replays.start(viewer, track, gop.keyframeSequence, this.#videoRate.bytesPerMs, now);
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
    if (!first || !this.#forwarder.load(first)) return false;
    continueNumbering(track, start, this.#forwarder.loadedTimestamp, 90000, now);
    this.#replays.start(viewer, track, start, this.#videoRate.bytesPerMs, now);
    this.viewers.add(viewer);
    this.pollReplays(now);
    return true;
  }

  /**
   * Sends what the join replays have due and returns when they want to run again (undefined when none
   * runs). The owner calls it at that time; publisher packets call it too.
   */
  pollReplays(now: number): number | undefined {
    if (this.layers) return this.layers.pollReplays(now);
    return this.#replays.poll(this.viewers, now);
  }

  /** The media timer wakes the room at the deadline {@link pollReplays} returned (net/scheduler.ts). */
  wake(now: number): number | undefined {
    return this.pollReplays(now);
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
    if (this.#viewerFeedback.handle(viewer, packet, now)) this.requestKeyframe(now);
  }

  /** Handles RTCP from the publisher: its sender reports are translated for each viewer (lip sync). */
  handlePublisherRtcp(packet: Uint8Array, now: number): void {
    this.layers?.handlePublisherRtcp(packet, now);
    const rtcp = readRtcp(packet);
    const { video, audio } = this.#publisherFeedback;
    for (const report of rtcp.senderReports) {
      const isVideo = report.ssrc === video?.ssrc;
      const source = isVideo ? video : report.ssrc === audio?.ssrc ? audio : undefined;
      if (!source) continue;
      source.receive.onSenderReport(report.ntpSeconds, report.ntpFraction, now);
      for (const viewer of this.viewers) {
        this.#viewerFeedback.translateSenderReport(viewer, isVideo, report, now);
      }
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
    const feedback = this.#publisherFeedback;
    feedback.newPublisher(options.twccExtensionId);
    this.#pliAnswers.reset();
    // The new session's streams are new even when an encoder reuses its SSRCs (simple-whip-client does):
    // an SSRC no packet can carry makes the first packet of each kind remap the viewers.
    if (feedback.video) feedback.video.ssrc = -1;
    if (feedback.audio) feedback.audio.ssrc = -1;
    this.layers?.replacePublisher(options);
  }

  /**
   * Asks the publisher for a keyframe (PLI), at most every 500 ms; a request inside that window is not
   * dropped but sent when the window ends (with the next publisher packet).
   */
  requestKeyframe(now: number): void {
    if (this.layers) return this.layers.requestKeyframe(now);
    const pli = this.#publisherFeedback.keyframeRequest(now);
    if (!pli) return;
    this.#pliAnswers.asked(now);
    this.publisher.sendRtcp(pli);
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
    const ssrc = this.feedbackSsrc;
    try {
      publisher.sendRtcp(compound(buildEmptyReceiverReport(ssrc), buildBye([ssrc])));
    } catch {
      // A send failure must not stop the session closing.
    }
  }

  /** Recomputes bitrate and frame rate over the time since the last call; true when either moved >10 %. */
  updateRates(now: number): boolean {
    // A simulcast room's frames are counted by its layers; the top layer's are the room's.
    const units = this.layers ? this.layers.top.room.accessUnits : this.accessUnits;
    return this.#rates.update(now, this.bytesIn, units);
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

  /** Sends the publisher the feedback that is due (NACKs, transport-wide feedback, receiver reports). */
  #sendPublisherFeedback(now: number): void {
    const feedback = this.#publisherFeedback.poll(now);
    if (feedback) this.publisher.sendRtcp(feedback);
  }

  /**
   * The publisher's stream for a kind changed SSRC (encoder restart, new track): remap every viewer so
   * sequence numbers continue from the last one sent and timestamps advance by the time that passed.
   */
  #changeSource(isVideo: boolean, header: RtpHeaderReader, now: number): PublisherStream {
    const clockRate = isVideo ? 90000 : 48000;
    const feedback = this.#publisherFeedback;
    const previous = isVideo ? feedback.video : feedback.audio;
    const source = { ssrc: header.ssrc, clockRate, receive: new ReceiveStream(header.ssrc, clockRate) };
    if (isVideo) feedback.video = source;
    else feedback.audio = source;
    if (!previous) return source;
    this.counters.sourceChanges++;
    if (isVideo) {
      this.#history.clear();
      this.#paddingFilter?.reset();
      this.#gop.clear();
      this.#videoRate.reset();
      this.#pliAnswers.reset();
      // Replays of the old stream end; those viewers start again at the new stream's keyframe.
      this.#replays.loseAll(now);
      this.#keyframes.reset();
      feedback.resetKeyframeThrottle();
      this.requestKeyframe(now);
    }
    remapTracks(this.viewers, isVideo);
    return source;
  }
}
