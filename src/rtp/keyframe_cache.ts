/**
 * The latest keyframe and every video packet after it, so a viewer joining mid-GOP starts decoding at once
 * instead of waiting for the publisher's next keyframe (which may never come early: OBS ignores PLI).
 */
import { startsKeyframe as h264StartsKeyframe } from "./keyframe.ts";

/** One cached packet: a private copy of the publisher's packet and where its payload starts. */
export interface CachedPacket {
  packet: Uint8Array;
  payloadOffset: number;
  timestamp: number;
  sequenceNumber: number;
}

/** Bounds: a GOP longer than this many packets or bytes is not cached (viewers then wait for a keyframe). */
export const MAX_CACHED_PACKETS = 4096;
export const MAX_CACHED_BYTES = 6 * 1024 * 1024;

/** The current group of pictures of one video stream. */
export class KeyframeCache {
  #packets: CachedPacket[] = [];
  #bytes = 0;
  #valid = false;
  #keyframeTimestamp = -1;
  #startsKeyframe: (payload: Uint8Array) => boolean;

  /** `startsKeyframe` is the stream's codec's packet-level keyframe test (H.264 by default). */
  constructor(startsKeyframe: (payload: Uint8Array) => boolean = h264StartsKeyframe) {
    this.#startsKeyframe = startsKeyframe;
  }

  /** Feeds one publisher video packet (in arrival order). */
  push(packet: Uint8Array, payloadOffset: number, sequenceNumber: number, timestamp: number): void {
    const payload = packet.subarray(payloadOffset);
    if (this.#startsKeyframe(payload) && timestamp !== this.#keyframeTimestamp) {
      this.#packets = [];
      this.#bytes = 0;
      this.#valid = true;
      this.#keyframeTimestamp = timestamp;
    }
    if (!this.#valid) return;
    if (this.#packets.length >= MAX_CACHED_PACKETS || this.#bytes + packet.length > MAX_CACHED_BYTES) {
      this.clear();
      return;
    }
    // A real copy: Buffer.prototype.slice (what werift hands out) would only make a view.
    this.#packets.push({ packet: new Uint8Array(packet), payloadOffset, timestamp, sequenceNumber });
    this.#bytes += packet.length;
  }

  /** The packets from the latest keyframe on, oldest first; empty when there is no usable keyframe. */
  get packets(): readonly CachedPacket[] {
    return this.#valid ? this.#packets : [];
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Drops the cache until the next keyframe (a new stream, or a GOP too long to keep). */
  clear(): void {
    this.#packets = [];
    this.#bytes = 0;
    this.#valid = false;
    this.#keyframeTimestamp = -1;
  }
}

/**
 * Timestamps for replaying cached frames: the latest frame keeps its timestamp and each earlier frame is
 * placed one tick before the next, so the receiver decodes the burst at once and shows the newest picture
 * instead of replaying the GOP in real time (which would add its length to the viewer's delay).
 * Returns a map from original timestamp to replay timestamp.
 */
export function squeezeTimestamps(packets: readonly CachedPacket[]): Map<number, number> {
  const order: number[] = [];
  for (const p of packets) if (order[order.length - 1] !== p.timestamp) order.push(p.timestamp);
  const mapping = new Map<number, number>();
  const last = order.length - 1;
  for (let i = last; i >= 0; i--) {
    if (!mapping.has(order[i])) mapping.set(order[i], (order[last] - (last - i)) >>> 0);
  }
  return mapping;
}
