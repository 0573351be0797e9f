/** MSB-first bit reading for codec headers (H.264/H.265 SPS, VP9 frame header, AV1 sequence header). */

/** Thrown when a read runs past the end; callers turn it into "no result". */
export class Truncated extends Error {}

/** MSB-first bit reader with exp-Golomb decoding (escapes already removed for H.26x RBSPs). */
export class BitReader {
  #bytes: Uint8Array;
  #pos = 0; // in bits

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  bit(): number {
    const byte = this.#pos >>> 3;
    if (byte >= this.#bytes.length) throw new Truncated();
    const value = (this.#bytes[byte] >>> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return value;
  }

  bits(n: number): number {
    let value = 0;
    for (let i = 0; i < n; i++) value = value * 2 + this.bit();
    return value;
  }

  /** ue(v), H.264 9.1. More than 31 leading zeros cannot encode a legal header value. */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 31) throw new Truncated();
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.bits(zeros);
  }

  /** se(v), H.264 9.1.1. */
  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -(k / 2);
  }
}

/** Drops the 0x03 of each 00 00 03 sequence (H.264 7.4.1, H.265 7.4.2 emulation_prevention_three_byte). */
export function unescapeRbsp(nal: Uint8Array, start: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, nal.length - start));
  let n = 0;
  let zeros = 0;
  for (let i = start; i < nal.length; i++) {
    const b = nal[i];
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[n++] = b;
  }
  return out.subarray(0, n);
}
