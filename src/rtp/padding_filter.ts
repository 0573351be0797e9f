/**
 * Drops padding-only packets from a stream and closes the gaps they leave in its sequence numbers. Browsers
 * probe for bandwidth with padding-only packets on one simulcast layer (measured: Chromium's 320x180 layer
 * carried 1.7-2.3 Mbit/s of it beside ~150 kbit/s of video), which a viewer of that layer must not get: on a
 * slow link it is the padding that congests it. The packets keep their place in the publisher's numbering
 * (NACKs to the publisher stay right); what goes on is renumbered without them ("compact" numbers). A
 * padding packet arriving out of order keeps its number and goes on (its place was already given).
 *
 * Pure and allocation-free per packet.
 */
import { seqDiff } from "./sequence.ts";

/** Padding drops remembered for renumbering late packets; a packet older than all of them is dropped. */
const REMEMBERED_DROPS = 128;

/** Drops in-order padding-only packets and renumbers the rest. */
export class PaddingFilter {
  #newest = -1;
  /** Padding packets dropped since the start (mod 2^16 is enough). */
  #dropped = 0;
  /** Publisher sequence numbers of the latest drops (a ring). */
  #drops = new Int32Array(REMEMBERED_DROPS);
  #dropCount = 0;

  /** The compact sequence number for publisher sequence number `seq`, or -1 when the packet is dropped. */
  map(seq: number, paddingOnly: boolean): number {
    if (this.#newest < 0 || seqDiff(seq, this.#newest) > 0) {
      this.#newest = seq;
      if (paddingOnly) {
        this.#drops[this.#dropCount % REMEMBERED_DROPS] = seq;
        this.#dropCount++;
        this.#dropped++;
        return -1;
      }
      return (seq - this.#dropped) & 0xffff;
    }
    // Late (a retransmission or reordering): only the drops after it do not count for it.
    const remembered = Math.min(this.#dropCount, REMEMBERED_DROPS);
    let later = 0;
    for (let i = 0; i < remembered; i++) {
      if (seqDiff(this.#drops[i], seq) > 0) later++;
    }
    // Older than every remembered drop while more were forgotten: its number is unknown.
    if (later === remembered && this.#dropCount > REMEMBERED_DROPS) return -1;
    return (seq - (this.#dropped - later)) & 0xffff;
  }

  /** Starts over (a new stream). */
  reset(): void {
    this.#newest = -1;
    this.#dropped = 0;
    this.#dropCount = 0;
  }
}
