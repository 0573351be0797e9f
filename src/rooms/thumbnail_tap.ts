/**
 * When a room's keyframes go to the thumbnailer, and when the publisher must be asked for one. Keyframes are
 * posted at most once a second; a thumbnail is due one interval after the last one taken, and when it is due
 * and no keyframe came by itself (a browser publisher sends one only on request) the publisher is asked, at
 * most once per interval (OBS ignores PLI; its keyframes come anyway). Pure: the caller passes `now`.
 */

/** Keyframes go onto the bus (for thumbnails) at most this often per room. */
export const KEYFRAME_POST_INTERVAL_MS = 1000;

/** One room's thumbnail timing. */
export class ThumbnailTap {
  readonly #intervalMs: number | undefined;
  #lastPostAt = -Infinity;
  #dueAt = -Infinity;
  #requestedAt = -Infinity;

  /** `intervalMs`: THUMBNAIL_INTERVAL; undefined: keyframes are posted but never asked for. */
  constructor(intervalMs: number | undefined) {
    this.#intervalMs = intervalMs;
  }

  /** A keyframe arrived: true when it goes to the thumbnailer (then the next thumbnail is due later). */
  keyframe(now: number): boolean {
    if (now - this.#lastPostAt < KEYFRAME_POST_INTERVAL_MS) return false;
    this.#lastPostAt = now;
    // The thumbnailer takes the first keyframe and then one per interval: this one is taken.
    if (now >= this.#dueAt && this.#intervalMs !== undefined) this.#dueAt = now + this.#intervalMs;
    return true;
  }

  /** True when the publisher should be asked for a keyframe now (a thumbnail is due and none came). */
  keyframeWanted(now: number): boolean {
    const interval = this.#intervalMs;
    if (interval === undefined || now < this.#dueAt || now - this.#requestedAt < interval) return false;
    this.#requestedAt = now;
    return true;
  }
}
