/**
 * The SRTP/SRTCP context both backends share: header checks, rollover counters, SRTCP indices and the
 * replay window live here; a backend only supplies the four cipher operations on bytes.
 */
import { type SrtpProfile } from "./keys.ts";
import { DEFAULT_REPLAY_WINDOW, estimateIndex, StreamTable } from "./replay.ts";

/** Which implementation does the cipher work. */
export type SrtpBackend = "native" | "portable";

/** Why an unprotect call returned undefined. */
export type SrtpFailure = "malformed" | "replay" | "auth" | "streams";

/**
 * One DTLS-SRTP session's SRTP and SRTCP state in both directions. Outputs are written to `out` when given
 * (it must hold the input plus {@link rtpOverhead}/{@link rtcpOverhead} bytes, and may be the input itself)
 * and to a new array otherwise; either way the result is a view of exactly the packet's bytes.
 */
export interface SrtpContext {
  readonly backend: SrtpBackend;
  readonly profile: SrtpProfile;
  /** Bytes `protectRtp` adds (the authentication tag). */
  readonly rtpOverhead: number;
  /** Bytes `protectRtcp` adds (tag and SRTCP index). */
  readonly rtcpOverhead: number;
  /** Why the last unprotect call failed. */
  readonly lastFailure: SrtpFailure | undefined;
  /**
   * Encrypts and authenticates an RTP packet whose header is final; `headerLength` skips parsing it.
   * Throws RangeError for a packet that is not RTP or an `out` that is too small.
   */
  protectRtp(packet: Uint8Array, headerLength?: number, out?: Uint8Array): Uint8Array;
  /**
   * {@link protectRtp} into `out` (at least the packet plus {@link rtpOverhead} bytes), returning the length
   * written instead of a view: the forwarding path seals into an outbox slot without allocating.
   */
  protectRtpInto(packet: Uint8Array, headerLength: number, out: Uint8Array): number;
  /** Verifies and decrypts an SRTP packet; undefined (see {@link lastFailure}) when it must be dropped. */
  unprotectRtp(packet: Uint8Array, out?: Uint8Array): Uint8Array | undefined;
  /** Encrypts and authenticates a (compound) RTCP packet. */
  protectRtcp(packet: Uint8Array, out?: Uint8Array): Uint8Array;
  /** Verifies and decrypts an SRTCP packet; undefined when it must be dropped. */
  unprotectRtcp(packet: Uint8Array, out?: Uint8Array): Uint8Array | undefined;
  /** Frees native resources; the context must not be used afterwards. */
  close(): void;
}

/** Length of an RTP header (fixed part, CSRCs, extension); -1 when the bytes are not a valid header. */
export function rtpHeaderLength(packet: Uint8Array): number {
  if (packet.length < 12 || (packet[0] & 0xc0) !== 0x80) return -1;
  let length = 12 + (packet[0] & 0x0f) * 4;
  if (packet[0] & 0x10) {
    if (packet.length < length + 4) return -1;
    length += 4 + ((packet[length + 2] << 8) | packet[length + 3]) * 4;
  }
  return length <= packet.length ? length : -1;
}

/** The bookkeeping half of a context; subclasses implement the ciphers. */
export abstract class SrtpTransform implements SrtpContext {
  abstract readonly backend: SrtpBackend;
  readonly profile: SrtpProfile;
  readonly rtpOverhead: number;
  readonly rtcpOverhead: number;
  lastFailure: SrtpFailure | undefined;

  #tagLength: number;
  #sendRtp: StreamTable;
  #receiveRtp: StreamTable;
  #receiveRtcp: StreamTable;
  #rtcpIndex = 0;

  constructor(profile: SrtpProfile, tagLength: number, replayWindow = DEFAULT_REPLAY_WINDOW) {
    this.profile = profile;
    this.#tagLength = tagLength;
    this.rtpOverhead = tagLength;
    this.rtcpOverhead = tagLength + 4;
    this.#sendRtp = new StreamTable(replayWindow, 1 << 16);
    this.#receiveRtp = new StreamTable(replayWindow);
    this.#receiveRtcp = new StreamTable(replayWindow);
  }

  /** Encrypts `packet` (header `headerLength` bytes) into `out`; returns the length written. */
  protected abstract sealRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    roc: number,
    seq: number,
    out: Uint8Array,
  ): number;

  /** Verifies and decrypts into `out`; returns the plaintext length, or -1 when authentication fails. */
  protected abstract openRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    roc: number,
    seq: number,
    out: Uint8Array,
  ): number;

  /** Encrypts an RTCP packet with SRTCP index `index` into `out` (E flag set); returns the length. */
  protected abstract sealRtcp(packet: Uint8Array, ssrc: number, index: number, out: Uint8Array): number;

  /** Verifies (and when `encrypted`, decrypts) an SRTCP packet; returns the RTCP length or -1. */
  protected abstract openRtcp(
    packet: Uint8Array,
    ssrc: number,
    index: number,
    encrypted: boolean,
    out: Uint8Array,
  ): number;

  abstract close(): void;

  protectRtp(packet: Uint8Array, headerLength?: number, out?: Uint8Array): Uint8Array {
    const hl = headerLength ?? rtpHeaderLength(packet);
    if (out === undefined) out = new Uint8Array(packet.length + this.#tagLength);
    const written = this.protectRtpInto(packet, hl, out);
    return written === out.length ? out : out.subarray(0, written);
  }

  protectRtpInto(packet: Uint8Array, headerLength: number, out: Uint8Array): number {
    const hl = headerLength;
    if (hl < 12 || hl > packet.length) throw new RangeError("protectRtp: not an RTP packet");
    const length = packet.length + this.#tagLength;
    if (out.length < length) {
      throw new RangeError(`protectRtp: out holds ${out.length} < ${length} bytes`);
    }
    const seq = (packet[2] << 8) | packet[3];
    const ssrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    const state = this.#sendRtp.getOrCreate(ssrc, false)!;
    let index = estimateIndex(state.highestIndex, seq);
    // A packet older than the stream's first (a late retransmission) still goes out with ROC 0.
    if (index < 0) index = seq;
    if (index > state.highestIndex) state.highestIndex = index;
    return this.sealRtp(packet, hl, ssrc, Math.floor(index / 65536), seq, out);
  }

  unprotectRtp(packet: Uint8Array, out?: Uint8Array): Uint8Array | undefined {
    const hl = rtpHeaderLength(packet);
    if (hl < 0 || packet.length < hl + this.#tagLength) return this.#fail("malformed");
    const seq = (packet[2] << 8) | packet[3];
    const ssrc = ((packet[8] << 24) | (packet[9] << 16) | (packet[10] << 8) | packet[11]) >>> 0;
    const state = this.#receiveRtp.get(ssrc);
    const index = estimateIndex(state ? state.highestIndex : -1, seq);
    if (index < 0 || (state && !state.window!.accepts(index))) return this.#fail("replay");
    const length = packet.length - this.#tagLength;
    if (out === undefined) out = new Uint8Array(length);
    else if (out.length < length) {
      throw new RangeError(`unprotectRtp: out holds ${out.length} < ${length} bytes`);
    }
    const written = this.openRtp(packet, hl, ssrc, Math.floor(index / 65536), seq, out);
    if (written < 0) return this.#fail("auth");
    const committed = state ?? this.#receiveRtp.getOrCreate(ssrc, true);
    if (!committed) return this.#fail("streams");
    committed.window!.commit(index);
    if (index > committed.highestIndex) committed.highestIndex = index;
    this.lastFailure = undefined;
    return written === out.length ? out : out.subarray(0, written);
  }

  protectRtcp(packet: Uint8Array, out?: Uint8Array): Uint8Array {
    if (packet.length < 8 || (packet[0] & 0xc0) !== 0x80) throw new RangeError("protectRtcp: not RTCP");
    const length = packet.length + this.rtcpOverhead;
    if (out === undefined) out = new Uint8Array(length);
    else if (out.length < length) {
      throw new RangeError(`protectRtcp: out holds ${out.length} < ${length} bytes`);
    }
    const ssrc = ((packet[4] << 24) | (packet[5] << 16) | (packet[6] << 8) | packet[7]) >>> 0;
    // RFC 3711 §3.4: a 31-bit counter; the keys would have to change before it wraps.
    this.#rtcpIndex = (this.#rtcpIndex + 1) & 0x7fffffff;
    const written = this.sealRtcp(packet, ssrc, this.#rtcpIndex, out);
    return written === out.length ? out : out.subarray(0, written);
  }

  unprotectRtcp(packet: Uint8Array, out?: Uint8Array): Uint8Array | undefined {
    const tag = this.#tagLength;
    if (packet.length < 8 + 4 + tag || (packet[0] & 0xc0) !== 0x80) return this.#fail("malformed");
    // GCM puts the E||index word last (RFC 7714 §9.3); AES-CM puts it before the tag (RFC 3711 §3.4).
    const at = this.profile === 7 ? packet.length - 4 : packet.length - tag - 4;
    const word = ((packet[at] << 24) | (packet[at + 1] << 16) | (packet[at + 2] << 8) | packet[at + 3]) >>> 0;
    const encrypted = word >= 0x80000000;
    const index = word & 0x7fffffff;
    const ssrc = ((packet[4] << 24) | (packet[5] << 16) | (packet[6] << 8) | packet[7]) >>> 0;
    const state = this.#receiveRtcp.get(ssrc);
    if (state && !state.window!.accepts(index)) return this.#fail("replay");
    const length = packet.length - 4 - tag;
    if (out === undefined) out = new Uint8Array(length);
    else if (out.length < length) {
      throw new RangeError(`unprotectRtcp: out holds ${out.length} < ${length} bytes`);
    }
    const written = this.openRtcp(packet, ssrc, index, encrypted, out);
    if (written < 0) return this.#fail("auth");
    const committed = state ?? this.#receiveRtcp.getOrCreate(ssrc, true);
    if (!committed) return this.#fail("streams");
    committed.window!.commit(index);
    this.lastFailure = undefined;
    return written === out.length ? out : out.subarray(0, written);
  }

  #fail(reason: SrtpFailure): undefined {
    this.lastFailure = reason;
    return undefined;
  }
}
