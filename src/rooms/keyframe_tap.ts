/**
 * Rebuilds a room's keyframes from its video packets, and only keyframes: from a keyframe's first packet to
 * the end of that picture (marker bit, or the next picture's first packet). Each complete keyframe gives the
 * picture size and goes to the thumbnailer; other frames cost nothing here.
 */
import type { VideoFrame } from "../rtp/frame_buffer.ts";
import type { VideoCodecSupport } from "../rtp/video_codec.ts";

/** Taps a video stream for its keyframes. */
export class KeyframeTap {
  /** The picture size from the latest keyframe that carried one. */
  width: number | undefined;
  height: number | undefined;
  /** Called with each complete keyframe access unit (the data is only valid during the call). */
  onKeyframe: ((frame: VideoFrame) => void) | undefined;
  readonly #depacketizer;
  /** A keyframe is being rebuilt: its RTP timestamp, or -1. */
  #keyframeTimestamp = -1;

  constructor(codec: VideoCodecSupport) {
    this.#depacketizer = codec.newDepacketizer();
  }

  /**
   * Feeds one video packet's payload; `keyframeStart` says the codec saw a keyframe begin in it. Packets
   * outside a keyframe are ignored.
   */
  push(
    payload: Uint8Array,
    sequenceNumber: number,
    timestamp: number,
    marker: boolean,
    keyframeStart: boolean,
  ): void {
    if (!keyframeStart && this.#keyframeTimestamp < 0) return;
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

  /** The stream changed: a keyframe half rebuilt is dropped. */
  reset(): void {
    this.#depacketizer.reset();
    this.#keyframeTimestamp = -1;
  }
}
