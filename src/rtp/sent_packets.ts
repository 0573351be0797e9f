/**
 * What the server sent one viewer, by transport-wide sequence number: when and how large, so the viewer's
 * transport feedback can be matched to departures. A fixed ring of typed arrays: numbering and recording a
 * packet allocates nothing. Pure: the caller passes `now` (ms).
 */

/** Packets remembered; feedback about older ones is ignored (over 4 s at 1000 packets/s). */
export const SENT_PACKETS_KEPT = 4096;
const MASK = SENT_PACKETS_KEPT - 1;

/** One viewer's transport-wide numbering and the send record it is matched against. */
export class SentPackets {
  /** The number the next packet gets. */
  nextSequence: number;
  readonly #sentAt = new Float64Array(SENT_PACKETS_KEPT);
  readonly #size = new Uint16Array(SENT_PACKETS_KEPT);
  /** The full sequence number held in each slot (-1: empty), so a stale slot is not taken for a new one. */
  readonly #sequence = new Int32Array(SENT_PACKETS_KEPT).fill(-1);

  constructor(firstSequence = 0) {
    this.nextSequence = firstSequence & 0xffff;
  }

  /** Numbers one packet of `size` bytes sent at `now` and returns its transport-wide sequence number. */
  record(size: number, now: number): number {
    const sequence = this.nextSequence;
    this.nextSequence = (sequence + 1) & 0xffff;
    const slot = sequence & MASK;
    this.#sentAt[slot] = now;
    this.#size[slot] = size;
    this.#sequence[slot] = sequence;
    return sequence;
  }

  /** When `sequence` was sent (ms), or NaN when it is not (or no longer) remembered. */
  sentAt(sequence: number): number {
    const slot = sequence & MASK;
    return this.#sequence[slot] === sequence ? this.#sentAt[slot] : NaN;
  }

  /** Size of `sequence` in bytes (0 when not remembered). */
  size(sequence: number): number {
    const slot = sequence & MASK;
    return this.#sequence[slot] === sequence ? this.#size[slot] : 0;
  }
}
