/**
 * The join replay of one viewer: a cursor over the packet history from the latest keyframe to the live edge,
 * paced by a token bucket so the GOP reaches the viewer in sequence order at a few times the stream's rate
 * instead of as one burst (a burst overflows a default socket buffer, and anything out of order falls out of
 * a 64-packet SRTP replay window, Pion's default). The keyframe goes out in the first burst so the first
 * picture decodes at once; the room forwards live packets to the viewer again once the cursor has caught up.
 *
 * Replayed frames get timestamps that follow the wall clock of their sending (a fast-forward through the
 * GOP), so the viewer's jitter buffer sees a steady stream and shows each frame as it arrives instead of
 * holding the GOP back to play it in real time (which would add the GOP's age to the viewer's delay).
 *
 * Pure: the caller passes `now` (milliseconds) and the history, sends what {@link JoinReplay.poll} returns
 * and wakes the replay again at {@link JoinReplay.dueAt}.
 */
import type { PacketCache } from "../rtp/packet_cache.ts";
import { seqAdd, seqDiff, timestampDiff } from "../rtp/sequence.ts";

/** {@link JoinReplay.poll}: nothing may go now (the bucket is empty). */
export const NOT_DUE = -1;
/** {@link JoinReplay.poll}: the cursor has passed the live edge; live forwarding takes over. */
export const CAUGHT_UP = -2;
/** {@link JoinReplay.poll}: the history overwrote the cursor's packets; the viewer must wait for a keyframe. */
export const LOST = -3;

/** How fast the replay goes, as a multiple of the stream's own rate (the issue asks 2–4×). */
export const REPLAY_SPEED = 3;
/** The first burst (the keyframe, usually whole) and the most the bucket holds: ~53 packets of 1,200 bytes. */
export const REPLAY_BURST_BYTES = 64 * 1024;
/** The rate assumed when the stream's own is not known yet (1 Mbit/s, in bytes per millisecond). */
const MIN_STREAM_BYTES_PER_MS = 125;
/** Most frames whose replay timestamps are remembered for resends. */
const MAX_REMEMBERED_FRAMES = 1024;

/** One viewer's replay of the packet history. */
export class JoinReplay {
  /** Publisher sequence number of the next packet to send. */
  next: number;
  /** The viewer's timestamp offset while the replay runs (replayed timestamps are sent with it). */
  readonly timestampOffset: number;
  /** Publisher timestamp -> timestamp the replayed frame was sent with (before the offset), for resends. */
  readonly timestamps = new Map<number, number>();
  #bytesPerMs: number;
  #tokens = REPLAY_BURST_BYTES;
  #refilledAt: number;
  #ticksPerMs: number;
  #startedAt = -1;
  #firstTimestamp = 0;
  #lastOriginal = -1;
  #lastMapped = 0;

  constructor(options: {
    /** Sequence number of the keyframe's first packet. */
    start: number;
    /** The stream's measured rate (0 when unknown). */
    streamBytesPerMs: number;
    clockRate: number;
    timestampOffset: number;
    now: number;
  }) {
    this.next = options.start;
    this.timestampOffset = options.timestampOffset;
    this.#bytesPerMs = REPLAY_SPEED * Math.max(options.streamBytesPerMs, MIN_STREAM_BYTES_PER_MS);
    this.#refilledAt = options.now;
    this.#ticksPerMs = options.clockRate / 1000;
  }

  /**
   * The sequence number of the next packet due now (and takes it), or {@link NOT_DUE}, {@link CAUGHT_UP}
   * or {@link LOST}. `newest` is the live edge: the highest sequence number in `history`.
   */
  poll(history: PacketCache, newest: number, now: number): number {
    this.#refill(now);
    for (;;) {
      if (seqDiff(this.next, newest) > 0) return CAUGHT_UP;
      if (seqDiff(newest, this.next) >= history.capacity) return LOST;
      const length = history.lengthOf(this.next);
      if (length < 0) {
        // Never arrived (yet): the viewer sees the gap as a loss, as it would have live.
        this.next = seqAdd(this.next, 1);
        continue;
      }
      if (this.#tokens < length) return NOT_DUE;
      this.#tokens -= length;
      const seq = this.next;
      this.next = seqAdd(seq, 1);
      return seq;
    }
  }

  /** When the packet at the cursor may go (call after {@link poll} said {@link NOT_DUE}). */
  dueAt(history: PacketCache, now: number): number {
    const length = history.lengthOf(this.next);
    const missing = (length < 0 ? 1200 : length) - this.#tokens;
    return missing <= 0 ? now : now + missing / this.#bytesPerMs;
  }

  /**
   * The timestamp a replayed packet of the frame with publisher timestamp `original` is sent with (before
   * the viewer's offset): the keyframe keeps its own, later frames advance with the time of their sending,
   * at least one tick per frame and never past their own.
   */
  timestampFor(original: number, now: number): number {
    if (original === this.#lastOriginal) return this.#lastMapped;
    let mapped: number;
    if (this.#startedAt < 0) {
      this.#startedAt = now;
      this.#firstTimestamp = original;
      mapped = original;
    } else {
      mapped = (this.#firstTimestamp + Math.round((now - this.#startedAt) * this.#ticksPerMs)) >>> 0;
      if (timestampDiff(mapped, original) > 0) mapped = original;
      const floor = (this.#lastMapped + 1) >>> 0;
      if (timestampDiff(mapped, floor) < 0) mapped = floor;
    }
    this.#lastOriginal = original;
    this.#lastMapped = mapped;
    if (this.timestamps.size < MAX_REMEMBERED_FRAMES) this.timestamps.set(original, mapped);
    return mapped;
  }

  /**
   * What to add to the viewer's timestamp offset when live forwarding takes over, so the first live frame
   * follows the last replayed one by its real distance.
   */
  get timestampShift(): number {
    return this.#lastOriginal < 0 ? 0 : timestampDiff(this.#lastMapped, this.#lastOriginal);
  }

  #refill(now: number): void {
    const elapsed = now - this.#refilledAt;
    if (elapsed <= 0) return;
    this.#refilledAt = now;
    this.#tokens = Math.min(REPLAY_BURST_BYTES, this.#tokens + elapsed * this.#bytesPerMs);
  }
}
