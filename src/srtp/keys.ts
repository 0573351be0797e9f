/**
 * SRTP protection profiles and session-key derivation (RFC 3711 §4.3 with the AES-CM PRF; RFC 7714 §11 for
 * the 12-byte GCM master salt). Runs once per session, so it uses node:crypto and needs no FFI.
 */
import { createCipheriv } from "node:crypto";

/** DTLS-SRTP protection profile numbers (RFC 5764 §4.1.2, RFC 7714 §14.2). */
export type SrtpProfile = 1 | 7;

/** AES_CM_128_HMAC_SHA1_80. */
export const AES_CM_128_HMAC_SHA1_80 = 1 as const;
/** AEAD_AES_128_GCM. */
export const AEAD_AES_128_GCM = 7 as const;

/** Lengths a profile uses, in bytes. */
export interface ProfileLengths {
  masterKey: number;
  masterSalt: number;
  sessionSalt: number;
  /** HMAC-SHA1 key (0 for GCM, which authenticates with its own tag). */
  authKey: number;
  /** Authentication tag appended to SRTP and SRTCP packets. */
  tag: number;
}

/** Key, salt and tag lengths of a profile. */
export function profileLengths(profile: SrtpProfile): ProfileLengths {
  return profile === AEAD_AES_128_GCM
    ? { masterKey: 16, masterSalt: 12, sessionSalt: 12, authKey: 0, tag: 16 }
    : { masterKey: 16, masterSalt: 14, sessionSalt: 14, authKey: 20, tag: 10 };
}

/** Checks that a number negotiated in DTLS is a profile this module implements. */
export function asSrtpProfile(profile: number): SrtpProfile {
  if (profile !== AES_CM_128_HMAC_SHA1_80 && profile !== AEAD_AES_128_GCM) {
    throw new RangeError(`unsupported SRTP protection profile ${profile} (supported: 1 and 7)`);
  }
  return profile;
}

/** Throws a RangeError unless key and salt have the profile's lengths; returns the lengths. */
export function checkMasterKey(
  profile: SrtpProfile,
  masterKey: Uint8Array,
  masterSalt: Uint8Array,
): ProfileLengths {
  const len = profileLengths(profile);
  if (masterKey.length !== len.masterKey || masterSalt.length !== len.masterSalt) {
    throw new RangeError(
      `profile ${profile} needs a ${len.masterKey}-byte master key and ${len.masterSalt}-byte salt ` +
        `(got ${masterKey.length} and ${masterSalt.length})`,
    );
  }
  return len;
}

/** The session keys of one direction (RFC 3711 §4.3.2 labels 0-5). */
export interface SessionKeys {
  rtpKey: Uint8Array;
  rtpSalt: Uint8Array;
  /** Empty for GCM. */
  rtpAuthKey: Uint8Array;
  rtcpKey: Uint8Array;
  rtcpSalt: Uint8Array;
  /** Empty for GCM. */
  rtcpAuthKey: Uint8Array;
}

/** Derives the six session keys from a master key and salt (key derivation rate 0). */
export function deriveSessionKeys(
  profile: SrtpProfile,
  masterKey: Uint8Array,
  masterSalt: Uint8Array,
): SessionKeys {
  const len = checkMasterKey(profile, masterKey, masterSalt);
  const prf = (label: number, length: number) => aesCmPrf(masterKey, masterSalt, label, length);
  return {
    rtpKey: prf(0, 16),
    rtpAuthKey: prf(1, len.authKey),
    rtpSalt: prf(2, len.sessionSalt),
    rtcpKey: prf(3, 16),
    rtcpAuthKey: prf(4, len.authKey),
    rtcpSalt: prf(5, len.sessionSalt),
  };
}

/**
 * The AES-CM PRF of RFC 3711 §4.3.3: AES-128 in counter mode over x·2^16, where x is the master salt with
 * the label XORed into its eighth byte (key_id = label || r, r = 0 at kdr 0). A 12-byte GCM salt sits in
 * the leading bytes with zeros after it, as libsrtp and werift do.
 */
export function aesCmPrf(masterKey: Uint8Array, masterSalt: Uint8Array, label: number, length: number) {
  if (length === 0) return new Uint8Array(0);
  const iv = new Uint8Array(16);
  iv.set(masterSalt);
  iv[7] ^= label;
  const cipher = createCipheriv("aes-128-ctr", masterKey, iv);
  return new Uint8Array(cipher.update(new Uint8Array(length)));
}
