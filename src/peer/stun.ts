/**
 * Reading STUN messages (RFC 5389 §6, §15) the way ICE needs them: header and attributes are walked with
 * bounds checks, and only attributes that come before MESSAGE-INTEGRITY count, because nothing after it is
 * authenticated (§15.4; FINGERPRINT is the one exception and must be last, §15.5). A check with USE-CANDIDATE
 * appended after the integrity of a sniffed one is therefore not nominated. Pure: bytes in, values out.
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** Message types (method and class) ICE uses. */
export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
export const BINDING_ERROR = 0x0111;

const MAGIC_COOKIE = 0x2112a442;
const HEADER_BYTES = 20;
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_PRIORITY = 0x0024;
const ATTR_USE_CANDIDATE = 0x0025;
const ATTR_FINGERPRINT = 0x8028;
const ATTR_ICE_CONTROLLED = 0x8029;
const ATTR_ICE_CONTROLLING = 0x802a;
/** RFC 5389 §15.3: a USERNAME is at most 513 bytes. */
const MAX_USERNAME_BYTES = 513;
const FINGERPRINT_XOR = 0x5354554e;

/** What ICE needs from a STUN message; attributes after MESSAGE-INTEGRITY are not in here. */
export interface StunMessage {
  /** Method and class, e.g. {@link BINDING_REQUEST}. */
  type: number;
  /** The 12-byte transaction id (a view into the datagram). */
  transactionId: Uint8Array;
  username?: string;
  priority?: number;
  useCandidate: boolean;
  iceControlling: boolean;
  iceControlled: boolean;
  /** Offset of the MESSAGE-INTEGRITY attribute, or -1 when there is none. */
  integrityAt: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a STUN message; undefined when it is not one (RFC 7983 lets the caller try first), when an
 * attribute overruns the message, or when a FINGERPRINT is present and wrong or not last.
 */
export function readStun(data: Uint8Array): StunMessage | undefined {
  if (data.length < HEADER_BYTES || (data[0] & 0xc0) !== 0) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const length = view.getUint16(2);
  if (view.getUint32(4) !== MAGIC_COOKIE || length % 4 !== 0 || HEADER_BYTES + length !== data.length) {
    return undefined;
  }
  const message: StunMessage = {
    type: view.getUint16(0),
    transactionId: data.subarray(8, HEADER_BYTES),
    useCandidate: false,
    iceControlling: false,
    iceControlled: false,
    integrityAt: -1,
  };
  let offset = HEADER_BYTES;
  while (offset < data.length) {
    if (offset + 4 > data.length) return undefined;
    const type = view.getUint16(offset);
    const valueLength = view.getUint16(offset + 2);
    const value = offset + 4;
    const next = value + ((valueLength + 3) & ~3);
    if (next > data.length) return undefined;
    if (type === ATTR_FINGERPRINT) {
      if (valueLength !== 4 || next !== data.length) return undefined;
      if ((crc32(data.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0 !== view.getUint32(value)) {
        return undefined;
      }
    } else if (message.integrityAt >= 0) {
      // Not covered by MESSAGE-INTEGRITY: ignored (RFC 5389 §15.4).
    } else if (type === ATTR_MESSAGE_INTEGRITY) {
      if (valueLength !== 20) return undefined;
      message.integrityAt = offset;
    } else if (type === ATTR_USERNAME) {
      if (valueLength > MAX_USERNAME_BYTES) return undefined;
      try {
        message.username = utf8.decode(data.subarray(value, value + valueLength));
      } catch {
        return undefined;
      }
    } else if (type === ATTR_PRIORITY) {
      if (valueLength !== 4) return undefined;
      message.priority = view.getUint32(value);
    } else if (type === ATTR_USE_CANDIDATE) {
      message.useCandidate = true;
    } else if (type === ATTR_ICE_CONTROLLING) {
      message.iceControlling = true;
    } else if (type === ATTR_ICE_CONTROLLED) {
      message.iceControlled = true;
    }
    offset = next;
  }
  return message;
}

/**
 * Whether the message's MESSAGE-INTEGRITY is the HMAC-SHA1 under `key` of everything before it, with the
 * header's length counting up to the end of MESSAGE-INTEGRITY (RFC 5389 §15.4).
 */
export function integrityValid(data: Uint8Array, message: StunMessage, key: Uint8Array): boolean {
  const at = message.integrityAt;
  if (at < HEADER_BYTES) return false;
  const header = data.slice(0, HEADER_BYTES);
  const coveredLength = at - HEADER_BYTES + 24;
  header[2] = coveredLength >> 8;
  header[3] = coveredLength & 0xff;
  const mac = createHmac("sha1", key).update(header).update(data.subarray(HEADER_BYTES, at)).digest();
  return timingSafeEqual(mac, Buffer.from(data.buffer, data.byteOffset + at + 4, 20));
}

/** Whether two transaction ids are equal. */
export function sameTransaction(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC, the one FINGERPRINT uses). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
