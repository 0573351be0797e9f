/** RTP sequence-number arithmetic modulo 2^16 (RFC 3550 §A.1), in one place. */

/** Signed distance from `b` to `a` in the 16-bit sequence space: positive when `a` is newer. */
export function seqDiff(a: number, b: number): number {
  const d = (a - b) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

/** Whether `a` comes after `b`. */
export function seqNewer(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

/** `seq + n` wrapped to 16 bits. */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) & 0xffff;
}

/** Signed distance between two 32-bit RTP timestamps: positive when `a` is later. */
export function timestampDiff(a: number, b: number): number {
  return ((a - b) | 0);
}
