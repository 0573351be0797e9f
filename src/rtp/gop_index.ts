/**
 * Where the latest group of pictures starts in a video stream's packet history: the sequence number of the
 * first packet of the latest keyframe, and the newest sequence number seen. A viewer joining mid-GOP is
 * replayed the history from that keyframe on (OBS ignores PLI, so waiting for a fresh keyframe can take a
 * whole GOP). Pure bookkeeping: the packets themselves stay in the {@link PacketCache}.
 */
import { seqDiff, seqNewer } from "./sequence.ts";

/** Keyframe position and live edge of one video stream. */
export class GopIndex {
  /** First packet of the latest keyframe, or -1 when there is none. */
  keyframeSequence = -1;
  /** Highest sequence number seen, or -1 before the first packet. */
  newest = -1;
  #keyframeTimestamp = -1;

  /** Feeds one packet (in arrival order); `startsKeyframe` says whether its payload starts a keyframe. */
  push(sequenceNumber: number, timestamp: number, startsKeyframe: boolean): void {
    if (this.newest < 0 || seqNewer(sequenceNumber, this.newest)) this.newest = sequenceNumber;
    // SPS, PPS and the IDR's slices share one timestamp: the first of them starts the keyframe.
    if (startsKeyframe && timestamp !== this.#keyframeTimestamp) {
      this.keyframeSequence = sequenceNumber;
      this.#keyframeTimestamp = timestamp;
    }
  }

  /** Packets from the latest keyframe to the newest packet, inclusive; 0 without a keyframe. */
  get length(): number {
    return this.keyframeSequence < 0 ? 0 : seqDiff(this.newest, this.keyframeSequence) + 1;
  }

  /** Forgets the stream (a new SSRC). */
  clear(): void {
    this.keyframeSequence = -1;
    this.newest = -1;
    this.#keyframeTimestamp = -1;
  }
}
