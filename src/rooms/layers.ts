/**
 * The simulcast layers of one room. Each layer (one rid of the publisher's video) is received by a room of
 * its own, so it keeps everything a single-encoding room keeps: receive statistics, NACKs to the publisher,
 * packet history and keyframe cache, PLI throttle. A viewer's video is forwarded by exactly one layer room
 * at a time and keeps its one SSRC: a switch waits until the target layer starts a keyframe while the
 * viewer's last packet closed a frame, or else ends the current layer at its next frame end and waits for
 * the target's next keyframe, so no partial frame is ever forwarded; the layer room continues the viewer's
 * sequence numbers and timestamps across the switch (its remap). The room that owns these layers keeps
 * audio, transport-wide feedback and the viewer list.
 *
 * Packets are told apart by SSRC; an SSRC not seen before is named by its RTP stream id header extension
 * (RFC 8852), which senders put in their first packets.
 */
import type { RtpHeaderReader } from "../rtp/rtp_header.ts";
import type { Room, RoomSource, Viewer } from "./room.ts";
import { RateMeter } from "../rtp/rate_meter.ts";
import { LayerSelector } from "./layer_selector.ts";

/** A layer stops counting as sent when none of its packets arrived for this long (ms). */
export const LAYER_IDLE_MS = 1500;
/** How often viewers' layer choices are reviewed, driven by arriving packets (ms). */
const REVIEW_INTERVAL_MS = 250;
/** A leaving viewer catches up on the target's keyframe from history when it started this recently (ms). */
const RECENT_KEYFRAME_MS = 1000;
/** Most redundant copies of each video packet a probe sends (a probe from the lowest layer needs ~3). */
const MAX_PROBE_COPIES = 4;
/** SSRCs remembered per layer (a publisher restarting its encoder brings new ones). */
const SSRCS_PER_LAYER = 4;

/** One received layer. */
export interface Layer<Source extends RoomSource = RoomSource> {
  rid: string;
  room: Room<Source>;
  /** When its last packet arrived (ms), -Infinity before the first. */
  lastPacketAt: number;
  packets: number;
  bytes: number;
  /**
   * The layer's media rate without padding: browsers probe for bandwidth with padding on one layer
   * (measured: Chromium's 320x180 layer at 1.7-2.3 Mbit/s with it), which says nothing about the layer.
   */
  mediaRate: RateMeter;
  /** Packets arrived within {@link LAYER_IDLE_MS} at the last review. */
  active: boolean;
}

/** What the layer API and the rooms API show of a layer. */
export interface LayerInfo {
  encodingId: string;
  width?: number;
  height?: number;
  bitrateKbps: number;
  active: boolean;
}

/** A viewer's layer choice as the stats endpoint shows it. */
export interface ViewerLayerState {
  /** The layer being switched to, and the pinned one. */
  target: string | null;
  pinned: string | null;
  /** The automatic level (steps below the top) and the congestion events that set it. */
  level: number;
  congestions: number;
  /** A probe for the next layer's rate runs; probes that led up, and that failed. */
  probing: boolean;
  probesPassed: number;
  probesFailed: number;
}

/** Where one viewer's video comes from. */
interface ViewerLayer<Source extends RoomSource> {
  layer: Layer<Source>;
  /** The layer it is switching to, until the switch is done. */
  target: Layer<Source> | undefined;
  /** A layer the viewer asked for; undefined lets the server choose. */
  pinned: Layer<Source> | undefined;
  /** The server's choice from the viewer's receiver reports. */
  selector: LayerSelector;
}

/** The layers of a simulcast room and which viewer watches which. */
export class SimulcastLayers<Source extends RoomSource = RoomSource> {
  readonly layers: Layer<Source>[];
  readonly #owner: Room<Source>;
  readonly #ridExtensionId: number;
  readonly #bySsrc = new Map<number, Layer<Source>>();
  readonly #viewers = new Map<Viewer, ViewerLayer<Source>>();
  #nextReview = 0;
  #top: Layer<Source> | undefined;
  /** The active layers' media rates (bit/s), best first, as of the last review: the estimate's ladder. */
  #ladderBps: number[] = [];
  /** Reused for each estimate handed to a viewer's selector. */
  readonly #estimate = {
    estimateBps: 0,
    receivedBps: 0,
    sentBps: 0,
    congestion: false,
    queueing: false,
  };

  constructor(options: {
    owner: Room<Source>;
    rids: readonly string[];
    ridExtensionId: number;
    newLayerRoom: (rid: string) => Room<Source>;
  }) {
    this.#owner = options.owner;
    this.#ridExtensionId = options.ridExtensionId;
    this.layers = options.rids.map((rid) => {
      const layer: Layer<Source> = {
        rid,
        room: options.newLayerRoom(rid),
        lastPacketAt: -Infinity,
        packets: 0,
        bytes: 0,
        mediaRate: new RateMeter(),
        active: false,
      };
      // Set once per layer: no closure is made per packet.
      layer.room.onKeyframeStart = (now) => this.#keyframeStarted(layer, now);
      layer.room.onFrameEnd = (viewer, now) => this.#frameEnded(viewer, now);
      layer.room.onKeyframe = (frame) => {
        if (layer === this.top) this.#owner.onKeyframe?.(frame);
      };
      return layer;
    });
  }

  /** The rids, in the publisher's order. */
  get rids(): string[] {
    return this.layers.map((l) => l.rid);
  }

  /** The best layer being sent (largest picture, else highest rate); the first layer before any arrived. */
  get top(): Layer<Source> {
    return this.#top ?? this.layers[0];
  }

  /** Routes one publisher video packet to its layer's room; packets of unknown streams are dropped. */
  handlePublisherRtp(packet: Uint8Array, header: RtpHeaderReader, now: number): void {
    const layer = this.#bySsrc.get(header.ssrc) ?? this.#learnSsrc(header);
    if (layer) {
      layer.lastPacketAt = now;
      layer.packets++;
      layer.bytes += packet.length;
      // Padding-only probes are not media: a packet counts up to its padding (payloadEnd), and one with no
      // payload not at all (its header alone, ~28 bytes at Chromium's ~1,000 probes a second, made the
      // 320x180 layer look like 220 kbit/s, above the 640x360 one).
      layer.mediaRate.add(header.payloadEnd > header.payloadStart ? header.payloadEnd : 0, now);
      layer.room.handlePublisherRtp(packet, now);
    }
    if (now >= this.#nextReview) this.review(now);
  }

  /** Handles the publisher's RTCP for the layers (sender reports per layer SSRC). */
  handlePublisherRtcp(packet: Uint8Array, now: number): void {
    for (const layer of this.layers) layer.room.handlePublisherRtcp(packet, now);
  }

  /** A connected viewer starts on the top layer (with its join replay); returns the replay's wake time. */
  addViewer(viewer: Viewer, now: number): number | undefined {
    this.#refreshTop(now);
    const layer = this.top;
    this.#viewers.set(viewer, {
      layer,
      target: undefined,
      pinned: undefined,
      selector: new LayerSelector(now),
    });
    return layer.room.addViewer(viewer, now);
  }

  /**
   * Pins a viewer to the layer `rid` (undefined: the server chooses); the switch starts at once. False when
   * the viewer or the layer is unknown.
   */
  pin(viewer: Viewer, rid: string | undefined, now: number): boolean {
    const state = this.#viewers.get(viewer);
    const layer = rid === undefined ? undefined : this.layers.find((l) => l.rid === rid);
    if (!state || (rid !== undefined && !layer)) return false;
    state.pinned = layer;
    this.review(now);
    return true;
  }

  /** Forgets a viewer that left. */
  removeViewer(viewer: Viewer): void {
    const state = this.#viewers.get(viewer);
    if (!state) return;
    state.layer.room.viewers.delete(viewer);
    this.#viewers.delete(viewer);
  }

  /** A viewer's layer state for the stats endpoint. */
  viewerState(
    viewer: Viewer,
  ): ViewerLayerState | undefined {
    const state = this.#viewers.get(viewer);
    if (!state) return undefined;
    const selector = state.selector;
    return {
      target: state.target?.rid ?? null,
      pinned: state.pinned?.rid ?? null,
      level: selector.level,
      congestions: selector.congestions,
      probing: selector.probeBps > 0,
      probesPassed: selector.probesPassed,
      probesFailed: selector.probesFailed,
    };
  }

  /** The layer a viewer's video currently comes from. */
  layerOf(viewer: Viewer): Layer<Source> | undefined {
    return this.#viewers.get(viewer)?.layer;
  }

  /** Viewer RTCP goes to the layer room forwarding its video (NACKs are answered from that layer's history). */
  handleViewerRtcp(viewer: Viewer, packet: Uint8Array, now: number): void {
    const state = this.#viewers.get(viewer);
    if (!state) return;
    const reception = viewer.reception;
    const reports = reception.reports;
    const bandwidth = viewer.bandwidth;
    const feedbacks = bandwidth?.feedbacks ?? 0;
    state.layer.room.handleViewerRtcp(viewer, packet, now);
    const selector = state.selector;
    const level = selector.level;
    if (bandwidth && bandwidth.feedbacks > 0) {
      // The viewer's own transport-wide feedback decides; its receiver reports are not needed.
      if (bandwidth.feedbacks === feedbacks) return;
      const estimator = bandwidth.estimator;
      const estimate = this.#estimate;
      estimate.estimateBps = estimator.estimateBps;
      estimate.receivedBps = estimator.arrivingBps;
      estimate.sentBps = estimator.sentWindowBps;
      estimate.congestion = bandwidth.congestion;
      estimate.queueing = estimator.queueing;
      selector.onEstimate(estimate, this.#ladderBps, viewer.video?.rtx !== undefined, now);
      const currentBps = state.layer.mediaRate.bytesPerMs * 8000;
      bandwidth.probeCopies = selector.probeBps > 0 && currentBps > 0
        ? Math.min(MAX_PROBE_COPIES, Math.ceil(selector.probeBps / currentBps))
        : 0;
    } else {
      if (reception.reports === reports) return;
      let active = 0;
      for (const layer of this.layers) if (layer.active) active++;
      selector.onReport(reception.fractionLost, reception.rttMs, active, now);
    }
    if (selector.level !== level) this.review(now);
  }

  /** Runs the layer rooms' join replays; returns the earliest wake time. */
  pollReplays(now: number): number | undefined {
    let wake: number | undefined;
    for (const layer of this.layers) {
      const at = layer.room.pollReplays(now);
      if (at !== undefined && (wake === undefined || at < wake)) wake = at;
    }
    return wake;
  }

  /** Asks the top layer for a keyframe (thumbnails come from it). */
  requestKeyframe(now: number): void {
    this.top.room.requestKeyframe(now);
  }

  /** A new publisher session: its SSRCs are learnt anew; the layer rooms remap viewers at its keyframes. */
  replacePublisher(options: Parameters<Room<Source>["replacePublisher"]>[0]): void {
    this.#bySsrc.clear();
    for (const layer of this.layers) {
      layer.room.replacePublisher({ ...options, audio: undefined, twccExtensionId: undefined });
      layer.lastPacketAt = -Infinity;
    }
  }

  /** Each layer as the APIs show it. */
  info(): LayerInfo[] {
    return this.layers.map((layer) => ({
      encodingId: layer.rid,
      width: layer.room.width,
      height: layer.room.height,
      bitrateKbps: Math.round(layer.mediaRate.bytesPerMs * 8),
      active: layer.active,
    }));
  }

  /**
   * Moves viewers towards the layer they should get: the pinned one when it is sent, otherwise the top
   * layer. Called every {@link REVIEW_INTERVAL_MS} from arriving packets.
   */
  review(now: number): void {
    this.#nextReview = now + REVIEW_INTERVAL_MS;
    this.#refreshTop(now);
    // Best first: the automatic choice is `level` steps down this ladder.
    const ladder = this.layers.filter((l) => l.active).sort((a, b) =>
      better(a, b) ? -1 : better(b, a) ? 1 : 0
    );
    this.#ladderBps = ladder.map((l) => l.mediaRate.bytesPerMs * 8000);
    const owner = this.#owner;
    for (const [viewer, state] of this.#viewers) {
      if (!owner.viewers.has(viewer)) {
        this.removeViewer(viewer);
        continue;
      }
      const pinned = state.pinned && now - state.pinned.lastPacketAt < LAYER_IDLE_MS
        ? state.pinned
        : undefined;
      const wanted = pinned ?? ladder[Math.min(state.selector.level, ladder.length - 1)] ?? this.top;
      if (wanted === state.layer) {
        if (state.target) this.#cancelSwitch(viewer, state);
      } else if (wanted !== state.target) {
        this.#startSwitch(viewer, state, wanted, now);
      } else {
        // Still waiting: a PLI can be lost (the layer room throttles the repeats).
        wanted.room.requestKeyframe(now);
      }
    }
  }

  #startSwitch(viewer: Viewer, state: ViewerLayer<Source>, to: Layer<Source>, now: number): void {
    const track = viewer.video;
    if (!track) return;
    track.leaving = false;
    state.target = to;
    // Nothing of the current layer reached the viewer yet: it can simply wait for the target's keyframe.
    if (!track.started && !track.replay?.active) this.#move(viewer, state);
    to.room.requestKeyframe(now);
  }

  #cancelSwitch(viewer: Viewer, state: ViewerLayer<Source>): void {
    state.target = undefined;
    if (viewer.video) viewer.video.leaving = false;
  }

  /**
   * The target layer starts a keyframe: viewers switching to it whose last packet ended a frame switch now
   * (the layer room forwards this keyframe to them); the others leave their layer at its next frame end.
   */
  #keyframeStarted(layer: Layer<Source>, _now: number): void {
    for (const [viewer, state] of this.#viewers) {
      if (state.target !== layer || !viewer.video) continue;
      if (viewer.video.frameEnded && !viewer.video.replay?.active) this.#move(viewer, state);
      else viewer.video.leaving = true;
    }
  }

  /**
   * A leaving viewer's frame is complete: it continues on its target from the keyframe that just started
   * there (replayed from that layer's history), or, when that is gone, waits there for the next one.
   */
  #frameEnded(viewer: Viewer, now: number): void {
    const state = this.#viewers.get(viewer);
    const track = viewer.video;
    if (!state?.target || !track) {
      if (track) track.leaving = false;
      return;
    }
    const from = state.layer;
    if (state.target.room.switchInAtKeyframe(viewer, now, RECENT_KEYFRAME_MS)) {
      this.#countSwitch(from, state.target);
      from.room.viewers.delete(viewer);
      track.leaving = false;
      state.layer = state.target;
      state.target = undefined;
      return;
    }
    this.#move(viewer, state);
  }

  #move(viewer: Viewer, state: ViewerLayer<Source>): void {
    const track = viewer.video!;
    const to = state.target!;
    this.#countSwitch(state.layer, to);
    state.layer.room.viewers.delete(viewer);
    track.leaving = false;
    track.replay = undefined;
    // The target layer room continues the numbering from what was sent (remap) at its keyframe.
    track.started = false;
    track.remap = track.lastSequence >= 0;
    to.room.viewers.add(viewer);
    state.layer = to;
    state.target = undefined;
  }

  /** Counts a switch as up (to a better picture) or down, for the metrics. */
  #countSwitch(from: Layer<Source>, to: Layer<Source>): void {
    if (better(to, from)) this.#owner.counters.layerSwitchesUp++;
    else this.#owner.counters.layerSwitchesDown++;
  }

  #learnSsrc(header: RtpHeaderReader): Layer<Source> | undefined {
    const at = header.findExtension(this.#ridExtensionId);
    if (at < 0) return undefined;
    const rid = ridText(header.packet.subarray(at, at + header.extensionLength));
    const layer = this.layers.find((l) => l.rid === rid);
    if (!layer) return undefined;
    let count = 0;
    for (const [ssrc, known] of this.#bySsrc) {
      if (known === layer && ++count >= SSRCS_PER_LAYER) this.#bySsrc.delete(ssrc);
    }
    this.#bySsrc.set(header.ssrc, layer);
    return layer;
  }

  #refreshTop(now: number): void {
    let best: Layer<Source> | undefined;
    for (const layer of this.layers) {
      layer.active = now - layer.lastPacketAt < LAYER_IDLE_MS;
      if (!layer.active) continue;
      if (!best || better(layer, best)) best = layer;
    }
    if (best) this.#top = best;
  }
}

/** Whether layer `a` carries a better picture than `b`: more pixels when both are known, else more bits. */
function better<S extends RoomSource>(a: Layer<S>, b: Layer<S>): boolean {
  const pa = (a.room.width ?? 0) * (a.room.height ?? 0);
  const pb = (b.room.width ?? 0) * (b.room.height ?? 0);
  if (pa > 0 && pb > 0 && pa !== pb) return pa > pb;
  return a.mediaRate.bytesPerMs > b.mediaRate.bytesPerMs;
}

/** An RTP stream id extension's value (ASCII; RFC 8852 §3.1 allows trailing NUL padding). */
function ridText(payload: Uint8Array): string {
  let end = payload.length;
  while (end > 0 && payload[end - 1] === 0) end--;
  let text = "";
  for (let i = 0; i < end && i < 16; i++) text += String.fromCharCode(payload[i]);
  return text;
}
