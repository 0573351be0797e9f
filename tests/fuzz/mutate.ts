/**
 * Seeded randomness and input mutation for the fuzzer. Every input gets its own generator derived from
 * (seed, target, index), so one failing input can be regenerated alone.
 */

/** sfc32: small, fast, good enough for test-input generation; not for secrets. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0, index = 0) {
    this.#a = seed >>> 0;
    this.#b = (stream * 0x9e3779b9) >>> 0;
    this.#c = (index * 0x85ebca6b) >>> 0;
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A length skewed towards small values (most bugs live near boundaries), up to `max`. */
  length(max: number): number {
    const r = this.int(4);
    if (r === 0) return this.int(Math.min(max, 16) + 1);
    if (r === 1) return this.int(Math.min(max, 64) + 1);
    if (r === 2) return this.int(Math.min(max, 300) + 1);
    return this.int(max + 1);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      out[i] = v;
      if (i + 1 < n) out[i + 1] = v >>> 8;
      if (i + 2 < n) out[i + 2] = v >>> 16;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
}

const INTERESTING_8 = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0x81,
  0xfe,
  0xff,
  20,
  22,
  23,
  24,
  28,
  63,
  64,
  128,
  191,
  192,
  200,
  206,
];
const INTERESTING_16 = [0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff, 4, 8, 12, 13, 20, 100, 1200, 1500];

/** Random bytes with a first byte steered into the RFC 7983 ranges half of the time. */
export function randomDatagram(rng: Rng, max = 1500): Uint8Array {
  const data = rng.bytes(rng.length(max));
  if (data.length > 0 && rng.chance(0.5)) {
    data[0] = rng.pick([0, 1, 20, 21, 22, 23, 25, 63, 128, 129, 144, 191]);
  }
  if (data.length > 1 && rng.chance(0.3)) data[1] = rng.pick([0x01, 96, 102, 111, 200, 201, 205, 206, 0xe6]);
  return data;
}

/** Applies 1-4 random edits to a copy of `input` (bit flips, interesting values, insert, delete, splice). */
export function mutateBytes(
  rng: Rng,
  input: Uint8Array,
  others: readonly Uint8Array[] = [],
  max = 4096,
): Uint8Array {
  let data: Uint8Array = input.slice();
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const op = rng.int(11);
    const at = data.length === 0 ? 0 : rng.int(data.length);
    switch (op) {
      case 0:
        if (data.length) data[at] ^= 1 << rng.int(8);
        break;
      case 1:
        if (data.length) data[at] = rng.u32();
        break;
      case 2:
        if (data.length) data[at] = rng.pick(INTERESTING_8);
        break;
      case 3:
        if (data.length > 1) {
          const v = rng.pick(INTERESTING_16);
          const i = Math.min(at, data.length - 2);
          data[i] = v >> 8;
          data[i + 1] = v;
        }
        break;
      case 4: // insert random bytes
        data = concat(data.subarray(0, at), rng.bytes(1 + rng.int(32)), data.subarray(at));
        break;
      case 5: // delete a range
        data = concat(data.subarray(0, at), data.subarray(Math.min(data.length, at + 1 + rng.int(32))));
        break;
      case 6: // truncate
        data = data.subarray(0, at).slice();
        break;
      case 7: // duplicate a range
        {
          const end = Math.min(data.length, at + 1 + rng.int(64));
          data = concat(data.subarray(0, end), data.subarray(at, end), data.subarray(end));
        }
        break;
      case 8: // splice with another seed
        if (others.length) {
          const other = rng.pick(others);
          const from = rng.int(other.length + 1);
          data = concat(data.subarray(0, at), other.subarray(from, from + rng.int(128)));
        }
        break;
      case 9: // overwrite a run with one value
        data.fill(rng.pick(INTERESTING_8), at, at + 1 + rng.int(16));
        break;
      default: // random 32-bit word
        if (data.length > 3) {
          new DataView(data.buffer, data.byteOffset).setUint32(Math.min(at, data.length - 4), rng.u32());
        }
    }
  }
  return data.length > max ? data.subarray(0, max) : data;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const SDP_ATTRIBUTES = [
  "ice-ufrag",
  "ice-pwd",
  "fingerprint",
  "setup",
  "mid",
  "rtpmap",
  "fmtp",
  "rtcp-fb",
  "extmap",
  "sendonly",
  "recvonly",
  "sendrecv",
  "inactive",
  "rtcp-mux",
  "group",
  "ssrc",
  "msid",
  "candidate",
  "ice-options",
];

const SDP_VALUES = [
  "",
  " ",
  "0",
  "-1",
  "4294967296",
  "99999999999999999999",
  "NaN",
  "1e400",
  "102 H264/90000",
  "102 H264/90000/2",
  "128 H264/90000",
  "102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  "102 packetization-mode=1;profile-level-id=zz",
  "102 packetization-mode=;;==;",
  "111 opus/48000/2",
  "sha-256 AB",
  "sha-1 AB:CD",
  "sha-256 " + "AB:".repeat(31) + "AB",
  "actpass",
  "passive",
  "holdconn",
  "aaaa",
  "a".repeat(300),
  "ü€\u0000\u202e",
  "1 urn:ietf:params:rtp-hdrext:sdes:mid",
  "x\r",
  "\ta=ice-pwd:zzzzzzzzzzzzzzzzzzzzzzzz",
];

/** Line-level and character-level edits of an SDP text. */
export function mutateSdp(rng: Rng, sdp: string, others: readonly string[] = []): string {
  let lines = sdp.split(/\r?\n/);
  const edits = 1 + rng.int(5);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(lines.length);
    switch (rng.int(10)) {
      case 0:
        lines.splice(at, 1);
        break;
      case 1:
        lines.splice(at, 0, lines[rng.int(lines.length)]);
        break;
      case 2: {
        const b = rng.int(lines.length);
        [lines[at], lines[b]] = [lines[b], lines[at]];
        break;
      }
      case 3:
        lines.splice(at, 0, `a=${rng.pick(SDP_ATTRIBUTES)}:${rng.pick(SDP_VALUES)}`);
        break;
      case 4: {
        // Replace the value of a line, keeping its name.
        const line = lines[at] ?? "";
        const colon = line.indexOf(":");
        lines[at] = (colon > 0 ? line.slice(0, colon + 1) : line.slice(0, 2)) + rng.pick(SDP_VALUES);
        break;
      }
      case 5: {
        // Character edits inside one line.
        const bytes = new TextEncoder().encode(lines[at] ?? "");
        lines[at] = new TextDecoder().decode(mutateBytes(rng, bytes, [], 2000));
        break;
      }
      case 6:
        lines.splice(
          at,
          0,
          `m=${rng.pick(["video", "audio", "application", ""])} ${rng.pick(SDP_VALUES)} ${
            rng.pick(["UDP/TLS/RTP/SAVPF", "RTP/AVP", "UDP/DTLS/SCTP"])
          } ${rng.pick(["102", "96 97", "", "webrtc-datachannel", "abc"])}`,
        );
        break;
      case 7:
        if (others.length) {
          const other = rng.pick(others).split(/\r?\n/);
          const from = rng.int(other.length);
          lines.splice(at, rng.int(20), ...other.slice(from, from + rng.int(40)));
        }
        break;
      case 8:
        // Repeat a line many times (size and line-count limits).
        lines.splice(at, 0, ...Array(rng.pick([10, 100, 5000])).fill(lines[at] ?? "a=x"));
        break;
      default:
        lines = lines.slice(0, at);
    }
  }
  return lines.join(rng.pick(["\r\n", "\r\n", "\n", "\r"]));
}
