/** A live room: one publisher's media fanned out to its viewers, with per-viewer SSRC/PT/sequence rewrite. */
import { Buffer } from "node:buffer";
import { RtpHeader } from "werift";
import type { ChosenCodec } from "../sdp/codecs.ts";
import type { Peer } from "../peer/peer.ts";
import { buildBye, buildEmptyReceiverReport, buildPli, compound, readFeedback } from "../rtp/rtcp.ts";
import { type AccessUnit, H264Depacketizer } from "../rtp/h264_depacketizer.ts";
import type { RoomInfo } from "./bus.ts";
import { h264Profile } from "../sdp/codecs.ts";

/** What a viewer receives on one kind of media: its payload type, the SSRC it was told, a sequence offset. */
export interface ViewerTrack {
  payloadType: number;
  ssrc: number;
  /** Added to the publisher's sequence numbers so each viewer's stream starts at a random point. */
  sequenceOffset: number;
}

/** One WHEP viewer of a room. */
export interface Viewer {
  sessionId: string;
  peer: Peer;
  video?: ViewerTrack;
  audio?: ViewerTrack;
}

/** Receives one publisher packet; lets the thumbnailer and stats see media without reaching into Room. */
export type MediaTap = (kind: "video" | "audio", header: RtpHeader, payload: Uint8Array, now: number) => void;

/** Keyframe requests reach the publisher no more often than this (per room). */
const KEYFRAME_REQUEST_INTERVAL_MS = 500;

/** One publisher and its viewers. */
export class Room {
  readonly id: string;
  readonly publisherSessionId: string;
  readonly publisher: Peer;
  readonly video: ChosenCodec;
  readonly audio: ChosenCodec | undefined;
  readonly viewers = new Set<Viewer>();
  createdAt: Date;
  live = false;
  /** SSRC the server uses as sender of its RTCP towards the publisher. */
  readonly feedbackSsrc = randomSsrc();
  keyframeRequests = 0;
  taps: MediaTap[] = [];
  /** Called with each complete keyframe access unit (the data is only valid during the call). */
  onKeyframe: ((unit: AccessUnit) => void) | undefined;
  /** Publisher media bytes received, for the bitrate estimate. */
  bytesIn = 0;
  /** Complete video access units received, for the frame-rate estimate. */
  accessUnits = 0;
  width: number | undefined;
  height: number | undefined;
  /** Estimates refreshed by {@link Room.updateRates}. */
  bitrateKbps = 0;
  fps = 0;

  #depacketizer = new H264Depacketizer();
  #rateSample = { at: 0, bytes: 0, units: 0 };

  #publisherVideoSsrc: number | undefined;
  #lastKeyframeRequest = -Infinity;

  constructor(options: {
    id: string;
    publisherSessionId: string;
    publisher: Peer;
    video: ChosenCodec;
    audio: ChosenCodec | undefined;
    now: Date;
  }) {
    this.id = options.id;
    this.publisherSessionId = options.publisherSessionId;
    this.publisher = options.publisher;
    this.video = options.video;
    this.audio = options.audio;
    this.createdAt = options.now;
  }

  /** Forwards one decrypted publisher RTP packet to every connected viewer. */
  handlePublisherRtp(packet: Uint8Array, now: number): void {
    let header: RtpHeader;
    try {
      header = RtpHeader.deSerialize(packet as Buffer);
    } catch {
      return;
    }
    if (header.payloadOffset > packet.length) return;
    const payload = packet.subarray(header.payloadOffset);
    const isVideo = header.payloadType === this.video.payloadType;
    if (!isVideo && header.payloadType !== this.audio?.payloadType) return;
    this.bytesIn += packet.length;
    if (isVideo) {
      this.#publisherVideoSsrc = header.ssrc;
      const unit = this.#depacketizer.push(payload, header.sequenceNumber, header.timestamp, header.marker);
      if (unit) this.#onAccessUnit(unit);
    }
    for (const tap of this.taps) tap(isVideo ? "video" : "audio", header, payload, now);

    // Viewers negotiated no header extensions; the publisher's would be meaningless to them.
    header.extension = false;
    header.extensions = [];
    const sequenceNumber = header.sequenceNumber;
    for (const viewer of this.viewers) {
      const track = isVideo ? viewer.video : viewer.audio;
      if (!track) continue;
      header.payloadType = track.payloadType;
      header.ssrc = track.ssrc;
      header.sequenceNumber = (sequenceNumber + track.sequenceOffset) & 0xffff;
      viewer.peer.sendRtp(header, payload);
    }
  }

  #onAccessUnit(unit: AccessUnit): void {
    this.accessUnits++;
    if (unit.width && unit.height) {
      this.width = unit.width;
      this.height = unit.height;
    }
    if (unit.isKeyframe) this.onKeyframe?.(unit);
  }

  /** Recomputes bitrate and frame rate over the time since the last call; true when either moved >10 %. */
  updateRates(now: number): boolean {
    const sample = this.#rateSample;
    const seconds = (now - sample.at) / 1000;
    if (sample.at === 0 || seconds <= 0) {
      this.#rateSample = { at: now, bytes: this.bytesIn, units: this.accessUnits };
      return false;
    }
    const bitrate = Math.round(((this.bytesIn - sample.bytes) * 8) / seconds / 1000);
    const fps = Math.round(((this.accessUnits - sample.units) / seconds) * 10) / 10;
    this.#rateSample = { at: now, bytes: this.bytesIn, units: this.accessUnits };
    const moved = (a: number, b: number) => Math.abs(a - b) > Math.max(1, b * 0.1);
    const changed = moved(bitrate, this.bitrateKbps) || moved(fps, this.fps);
    this.bitrateKbps = bitrate;
    this.fps = fps;
    return changed;
  }

  /** The room as the bus and the API describe it. */
  info(): RoomInfo {
    return {
      id: this.id,
      createdAt: this.createdAt.toISOString(),
      viewerCount: this.viewers.size,
      video: {
        codec: "H264",
        profile: h264Profile(this.video),
        width: this.width,
        height: this.height,
        fps: this.fps || undefined,
      },
      audio: this.audio ? { codec: "opus" } : null,
      bitrateKbps: this.bitrateKbps,
    };
  }

  /** Handles RTCP from a viewer: keyframe requests go to the publisher (throttled). */
  handleViewerRtcp(packet: Uint8Array, now: number): void {
    if (readFeedback(packet).keyframeRequested) this.requestKeyframe(now);
  }

  /** Asks the publisher for a keyframe (PLI), at most every 500 ms. */
  requestKeyframe(now: number): void {
    if (this.#publisherVideoSsrc === undefined) return;
    if (now - this.#lastKeyframeRequest < KEYFRAME_REQUEST_INTERVAL_MS) return;
    this.#lastKeyframeRequest = now;
    this.keyframeRequests++;
    this.publisher.sendRtcp(
      compound(
        buildEmptyReceiverReport(this.feedbackSsrc),
        buildPli(this.feedbackSsrc, this.#publisherVideoSsrc),
      ),
    );
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
}

/** A random non-zero 32-bit SSRC. */
export function randomSsrc(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
}
