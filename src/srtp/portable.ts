/**
 * SRTP/SRTCP ciphers from werift (node:crypto underneath), for when libcrypto cannot be loaded. werift's
 * sessions guess the rollover counter themselves and keep no replay window, so this drives werift's AES
 * transforms directly with the ROC and index {@link SrtpTransform} computes, and hands them the header
 * bytes as they are rather than re-serialising a parsed header.
 */
import { Buffer } from "node:buffer";
import { type RtpHeader, SrtpSession } from "werift";
import { AEAD_AES_128_GCM, checkMasterKey, type SrtpProfile } from "./keys.ts";
import { SrtpTransform } from "./transform.ts";

type Cipher = SrtpSession["localContext"]["cipher"];

/** Master keys of both directions, as DTLS-SRTP exports them. */
export interface MasterKeys {
  localMasterKey: Uint8Array;
  localMasterSalt: Uint8Array;
  remoteMasterKey: Uint8Array;
  remoteMasterSalt: Uint8Array;
}

/** An SRTP context whose ciphers are werift's. */
export class PortableSrtpContext extends SrtpTransform {
  readonly backend = "portable" as const;
  #local: Cipher;
  #remote: Cipher;

  constructor(profile: SrtpProfile, keys: MasterKeys, replayWindow?: number) {
    super(profile, profile === AEAD_AES_128_GCM ? 16 : 10, replayWindow);
    checkMasterKey(profile, keys.localMasterKey, keys.localMasterSalt);
    checkMasterKey(profile, keys.remoteMasterKey, keys.remoteMasterSalt);
    const session = new SrtpSession({
      keys: {
        localMasterKey: buffer(keys.localMasterKey),
        localMasterSalt: buffer(keys.localMasterSalt),
        remoteMasterKey: buffer(keys.remoteMasterKey),
        remoteMasterSalt: buffer(keys.remoteMasterSalt),
      },
      profile,
    });
    this.#local = session.localContext.cipher;
    this.#remote = session.remoteContext.cipher;
  }

  close(): void {}

  protected sealRtp(
    p: Uint8Array,
    hl: number,
    ssrc: number,
    roc: number,
    seq: number,
    out: Uint8Array,
  ): number {
    const header = headerOf(p, hl, ssrc, seq);
    const sealed = this.#local.encryptRtp(header, buffer(p.subarray(hl)), roc);
    out.set(sealed);
    return sealed.length;
  }

  protected openRtp(
    p: Uint8Array,
    hl: number,
    ssrc: number,
    roc: number,
    seq: number,
    out: Uint8Array,
  ): number {
    let plain: Buffer;
    try {
      [plain] = this.#remote.decryptRtp(buffer(p), roc, headerOf(p, hl, ssrc, seq));
    } catch {
      return -1;
    }
    out.set(plain);
    return plain.length;
  }

  protected sealRtcp(p: Uint8Array, _ssrc: number, index: number, out: Uint8Array): number {
    const sealed = this.#local.encryptRTCP(buffer(p), index);
    out.set(sealed);
    return sealed.length;
  }

  protected openRtcp(
    p: Uint8Array,
    _ssrc: number,
    _index: number,
    _encrypted: boolean,
    out: Uint8Array,
  ): number {
    let plain: Buffer;
    try {
      [plain] = this.#remote.decryptRTCP(buffer(p));
    } catch {
      return -1;
    }
    out.set(plain);
    return plain.length;
  }
}

function buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The parts of werift's RtpHeader its ciphers read. `serialize` returns the original bytes, so a header
 * extension werift would lay out differently is still protected exactly as sent.
 */
function headerOf(p: Uint8Array, hl: number, ssrc: number, seq: number): RtpHeader {
  const bytes = Buffer.from(p.subarray(0, hl));
  return {
    ssrc,
    sequenceNumber: seq,
    payloadOffset: hl,
    padding: false,
    paddingSize: 0,
    serializeSize: hl,
    serialize: () => bytes,
  } as unknown as RtpHeader;
}
