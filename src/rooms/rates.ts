/**
 * A room's bitrate and frame-rate estimates, recomputed from running totals (bytes received, access units
 * completed) over the time between two calls. Pure: the caller passes the totals and `now`.
 */

/** An estimate moves "noticeably" when it changes by more than this fraction (or by more than 1). */
const NOTICEABLE_CHANGE = 0.1;

/** Bitrate and frame rate of one room. */
export class RoomRates {
  /** Kilobits per second over the last interval. */
  bitrateKbps = 0;
  /** Frames per second over the last interval, one decimal. */
  fps = 0;
  #sampledAt = 0;
  #bytes = 0;
  #units = 0;

  /**
   * Recomputes both estimates from the totals `bytes` and `units` since the last call (the first call only
   * takes a sample); true when either moved noticeably, so listeners are told.
   */
  update(now: number, bytes: number, units: number): boolean {
    const seconds = (now - this.#sampledAt) / 1000;
    if (this.#sampledAt === 0 || seconds <= 0) {
      this.#sample(now, bytes, units);
      return false;
    }
    const bitrate = Math.round(((bytes - this.#bytes) * 8) / seconds / 1000);
    const fps = Math.max(0, Math.round(((units - this.#units) / seconds) * 10) / 10);
    this.#sample(now, bytes, units);
    const changed = moved(bitrate, this.bitrateKbps) || moved(fps, this.fps);
    this.bitrateKbps = bitrate;
    this.fps = fps;
    return changed;
  }

  #sample(now: number, bytes: number, units: number): void {
    this.#sampledAt = now;
    this.#bytes = bytes;
    this.#units = units;
  }
}

function moved(value: number, before: number): boolean {
  return Math.abs(value - before) > Math.max(1, before * NOTICEABLE_CHANGE);
}
