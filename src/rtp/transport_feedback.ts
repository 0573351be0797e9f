/**
 * Reading a viewer's transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
 * extensions-01 §3.1): which of the server's packets arrived, and when, by transport-wide sequence number.
 * One reader is reused for every feedback packet; its arrays are allocated once. Pure.
 *
 * @example
 * ```ts
 * const feedback = new TransportFeedback();
 * if (feedback.read(packet)) {
 *   for (let i = 0; i < feedback.count; i++) {
 *     const seq = (feedback.baseSequence + i) & 0xffff;
 *     const arrivedUs = feedback.arrivalUs[i]; // NaN: reported lost
 *   }
 * }
 * ```
 */

const PT_RTPFB = 205;
const FMT_TWCC = 15;
/** Statuses read from one feedback packet; a packet naming more is cut there (the rest count as unknown). */
export const MAX_FEEDBACK_STATUSES = 2048;
const DELTA_UNIT_US = 250;
const REFERENCE_UNIT_US = 64_000;

/** One transport feedback packet's content: per reported sequence number its arrival time or NaN (lost). */
export class TransportFeedback {
  /** Sequence number of the first status. */
  baseSequence = 0;
  /** Statuses read (at most {@link MAX_FEEDBACK_STATUSES}). */
  count = 0;
  /** The feedback packet counter (8 bits): a gap means feedback was lost. */
  feedbackCount = 0;
  /** Media SSRC the feedback names. */
  mediaSsrc = 0;
  /** Arrival time of `baseSequence + i` in µs on the receiver's clock, NaN when not received. */
  readonly arrivalUs = new Float64Array(MAX_FEEDBACK_STATUSES);
  readonly #symbols = new Uint8Array(MAX_FEEDBACK_STATUSES);

  /**
   * Reads one RTCP transport feedback packet (the packet itself, not a compound); false when it is not one
   * or is malformed (a short chunk list or delta list), with the fields unspecified.
   */
  read(packet: Uint8Array): boolean {
    const n = packet.length;
    if (n < 20 || packet[0] >> 6 !== 2 || (packet[0] & 0x1f) !== FMT_TWCC || packet[1] !== PT_RTPFB) {
      return false;
    }
    const end = Math.min(n, (((packet[2] << 8) | packet[3]) + 1) * 4);
    this.mediaSsrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    this.baseSequence = (packet[12] << 8) | packet[13];
    const statuses = (packet[14] << 8) | packet[15];
    // The reference time is a signed 24-bit count of 64 ms.
    let reference = (packet[16] << 16) | (packet[17] << 8) | packet[18];
    if (reference & 0x800000) reference -= 0x1000000;
    this.feedbackCount = packet[19];
    const wanted = Math.min(statuses, MAX_FEEDBACK_STATUSES);
    const symbols = this.#symbols;
    let at = 20;
    let read = 0;
    // The chunks describe all `statuses`; those beyond what is kept are walked over, their deltas not read.
    let described = 0;
    while (described < statuses) {
      if (at + 2 > end) return false;
      const chunk = (packet[at] << 8) | packet[at + 1];
      at += 2;
      if ((chunk & 0x8000) === 0) {
        // Run length chunk: one symbol repeated.
        const symbol = (chunk >> 13) & 0x03;
        const run = Math.min(chunk & 0x1fff, statuses - described);
        for (let i = 0; i < run; i++, described++) {
          if (described < wanted) symbols[read++] = symbol;
        }
      } else {
        const twoBit = (chunk & 0x4000) !== 0;
        const perChunk = twoBit ? 7 : 14;
        for (let i = 0; i < perChunk && described < statuses; i++, described++) {
          const symbol = twoBit ? (chunk >> (12 - 2 * i)) & 0x03 : (chunk >> (13 - i)) & 0x01;
          if (described < wanted) symbols[read++] = symbol;
        }
      }
    }
    let timeUs = reference * REFERENCE_UNIT_US;
    const arrivals = this.arrivalUs;
    for (let i = 0; i < read; i++) {
      const symbol = symbols[i];
      if (symbol === 1) {
        if (at + 1 > end) return false;
        timeUs += packet[at] * DELTA_UNIT_US;
        at += 1;
        arrivals[i] = timeUs;
      } else if (symbol === 2) {
        if (at + 2 > end) return false;
        let delta = (packet[at] << 8) | packet[at + 1];
        if (delta & 0x8000) delta -= 0x10000;
        timeUs += delta * DELTA_UNIT_US;
        at += 2;
        arrivals[i] = timeUs;
      } else {
        // 0: not received; 3 is reserved and carries no delta.
        arrivals[i] = NaN;
      }
    }
    this.count = read;
    return true;
  }
}
