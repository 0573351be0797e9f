/**
 * How much a viewer may make the server resend: a token bucket refilled at a share of the stream's own rate,
 * and each sequence number at most once per round trip. Without it one viewer's NACKs (a compound packet
 * names hundreds of packets) turned 175 KB of NACKs into 388 MB of resends, crowding out every other viewer
 * of the room. Pure: the caller passes `now` (milliseconds) and the rates.
 */

/** Resends may use at most this share of the stream's rate. */
export const RESEND_SHARE = 0.25;
/** The bucket holds this much time's worth of the share (so a burst of losses is repaired at once). */
const BUCKET_MS = 1000;
/** The stream rate assumed before it is measured (1 Mbit/s, bytes per millisecond). */
const MIN_STREAM_BYTES_PER_MS = 125;
/** A packet is resent again only after this long when the viewer's round-trip time is unknown. */
const DEFAULT_REPEAT_MS = 30;
/** ... and never more often than this. */
const MIN_REPEAT_MS = 10;
/** Recent resends remembered for the once-per-round-trip rule (by sequence number modulo this). */
const RECENT = 512;

/** One viewer's resend budget. */
export class ResendBudget {
  /** Resends refused since the viewer joined. */
  refused = 0;
  #tokens = -1;
  #refilledAt = 0;
  #recentSeqs: Int32Array | undefined;
  #recentTimes: Float64Array | undefined;

  /**
   * Whether the packet `seq` (`bytes` long) may be resent now; when it may, the resend is charged.
   * `streamBytesPerMs` is the stream's measured rate, `rttMs` the viewer's round-trip time if known.
   */
  allow(
    seq: number,
    bytes: number,
    streamBytesPerMs: number,
    rttMs: number | undefined,
    now: number,
  ): boolean {
    const rate = RESEND_SHARE * Math.max(streamBytesPerMs, MIN_STREAM_BYTES_PER_MS);
    const capacity = rate * BUCKET_MS;
    if (this.#tokens < 0) {
      this.#tokens = capacity;
    } else if (now > this.#refilledAt) {
      this.#tokens = Math.min(capacity, this.#tokens + (now - this.#refilledAt) * rate);
    }
    this.#refilledAt = Math.max(this.#refilledAt, now);
    const seqs = this.#recentSeqs ??= new Int32Array(RECENT).fill(-1);
    const times = this.#recentTimes ??= new Float64Array(RECENT);
    const slot = seq & (RECENT - 1);
    const repeatMs = Math.max(MIN_REPEAT_MS, rttMs ?? DEFAULT_REPEAT_MS);
    if ((seqs[slot] === seq && now - times[slot] < repeatMs) || this.#tokens < bytes) {
      this.refused++;
      return false;
    }
    this.#tokens -= bytes;
    seqs[slot] = seq;
    times[slot] = now;
    return true;
  }
}
