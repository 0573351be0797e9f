/**
 * Entry point of the SRTP module: {@link createSrtpContext} picks the native (OpenSSL via FFI) backend when
 * it can and werift's otherwise; both produce identical bytes and keep the same replay window.
 *
 * @example
 * ```ts
 * const srtp = createSrtpContext({ profile: 7, ...keysFromDtls });
 * const wire = srtp.protectRtp(rtpPacket);
 * const plain = srtp.unprotectRtp(datagram, datagram); // in place; undefined when dropped
 * ```
 */
import { asSrtpProfile } from "./keys.ts";
import { libcrypto, libcryptoUnavailableReason } from "./libcrypto.ts";
import { NativeSrtpContext } from "./native.ts";
import { type MasterKeys, PortableSrtpContext } from "./portable.ts";
import type { SrtpContext } from "./transform.ts";

export type { SrtpBackend, SrtpContext, SrtpFailure } from "./transform.ts";
export { rtpHeaderLength } from "./transform.ts";
export type { SrtpProfile } from "./keys.ts";
export { AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80, profileLengths } from "./keys.ts";

/** What a context needs: the negotiated profile and the keys DTLS exported. */
export interface SrtpContextOptions extends MasterKeys {
  /** DTLS-SRTP profile: 1 (AES_CM_128_HMAC_SHA1_80) or 7 (AEAD_AES_128_GCM). */
  profile: number;
  /** "auto" (default) takes native when available; "native" throws when it is not. */
  backend?: "auto" | "native" | "portable";
  /** Replay window in packets (multiple of 32, at least 64; default 1024). */
  replayWindow?: number;
}

/** Creates the SRTP/SRTCP context of one DTLS-SRTP session. */
export function createSrtpContext(options: SrtpContextOptions): SrtpContext {
  const profile = asSrtpProfile(options.profile);
  const choice = options.backend ?? "auto";
  if (choice !== "portable") {
    const lib = libcrypto();
    if (lib) return NativeSrtpContext.fromMasterKeys(lib, profile, options, options.replayWindow);
    if (choice === "native") throw new Error(`native SRTP unavailable: ${libcryptoUnavailableReason()}`);
  }
  return new PortableSrtpContext(profile, options, options.replayWindow);
}

/** Whether the native backend can be used in this process (loads libcrypto on first call). */
export function nativeSrtpAvailable(): boolean {
  return libcrypto() !== undefined;
}

/** One line for the start-up log saying which backend "auto" picks and why. */
export function srtpBackendName(): string {
  const lib = libcrypto();
  if (lib) return `native (${lib.version}, ${lib.path})`;
  return `portable (werift; native unavailable: ${libcryptoUnavailableReason()})`;
}
