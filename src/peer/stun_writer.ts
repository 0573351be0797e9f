/**
 * Writing the two STUN messages an ICE-lite server sends (RFC 5389 §6, §15; RFC 8445 §7.2.2): the success
 * response to a check (XOR-MAPPED-ADDRESS) and its own binding request (USERNAME, PRIORITY, ICE-CONTROLLED),
 * both with MESSAGE-INTEGRITY and FINGERPRINT. Pure: values in, bytes out.
 */
import { createHmac } from "node:crypto";
import { crc32 } from "./stun.ts";

const MAGIC_COOKIE = 0x2112a442;
const HEADER_BYTES = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_PRIORITY = 0x0024;
const ATTR_FINGERPRINT = 0x8028;
const ATTR_ICE_CONTROLLED = 0x8029;
const ATTR_ICE_CONTROLLING = 0x802a;
const ATTR_USE_CANDIDATE = 0x0025;
const FINGERPRINT_XOR = 0x5354554e;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

const utf8 = new TextEncoder();

/** A message being written: attributes are appended, then integrity and fingerprint close it. */
class StunWriter {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #length = HEADER_BYTES;

  constructor(type: number, transactionId: Uint8Array) {
    if (transactionId.length !== 12) throw new RangeError("a STUN transaction id has 12 bytes");
    this.#view.setUint16(0, type);
    this.#view.setUint32(4, MAGIC_COOKIE);
    this.#bytes.set(transactionId, 8);
  }

  /** Appends an attribute whose value `write` fills (`length` bytes, padded to a multiple of 4). */
  attribute(type: number, length: number, write: (view: DataView, at: number) => void): void {
    const padded = (length + 3) & ~3;
    if (this.#length + 4 + padded > this.#bytes.length) throw new RangeError("STUN message too long");
    this.#view.setUint16(this.#length, type);
    this.#view.setUint16(this.#length + 2, length);
    write(this.#view, this.#length + 4);
    this.#length += 4 + padded;
  }

  /** MESSAGE-INTEGRITY under `key`, then FINGERPRINT; returns the finished message. */
  finish(key: string): Uint8Array {
    // The header's length covers each of the two attributes when it is computed (RFC 5389 §15.4, §15.5).
    this.#view.setUint16(2, this.#length - HEADER_BYTES + 24);
    const mac = createHmac("sha1", key).update(this.#bytes.subarray(0, this.#length)).digest();
    this.attribute(ATTR_MESSAGE_INTEGRITY, 20, (_view, at) => this.#bytes.set(mac, at));
    this.#view.setUint16(2, this.#length - HEADER_BYTES + 8);
    const fingerprint = (crc32(this.#bytes.subarray(0, this.#length)) ^ FINGERPRINT_XOR) >>> 0;
    this.attribute(ATTR_FINGERPRINT, 4, (view, at) => view.setUint32(at, fingerprint));
    return this.#bytes.slice(0, this.#length);
  }
}

/**
 * The success response to a verified check: XOR-MAPPED-ADDRESS of the check's source (IPv4 or IPv6),
 * signed with the server's own ice-pwd.
 */
export function bindingSuccess(
  transactionId: Uint8Array,
  from: { hostname: string; port: number },
  localPwd: string,
): Uint8Array {
  const message = new StunWriter(BINDING_SUCCESS, transactionId);
  const v4 = IPV4.exec(from.hostname);
  const address = v4 ? v4.slice(1).map(Number) : ipv6Bytes(from.hostname);
  message.attribute(ATTR_XOR_MAPPED_ADDRESS, 4 + address.length, (view, at) => {
    view.setUint8(at, 0);
    view.setUint8(at + 1, v4 ? 0x01 : 0x02);
    view.setUint16(at + 2, from.port ^ (MAGIC_COOKIE >>> 16));
    // The address is XORed with the magic cookie, then (IPv6) the transaction id (RFC 5389 §15.2).
    for (let i = 0; i < address.length; i++) {
      const mask = i < 4 ? (MAGIC_COOKIE >>> (24 - 8 * i)) & 0xff : transactionId[i - 4];
      view.setUint8(at + 4 + i, address[i] ^ mask);
    }
  });
  return message.finish(localPwd);
}

/**
 * The server's own binding request (it is the controlled agent): USERNAME "remote:local", PRIORITY,
 * ICE-CONTROLLED with its tie-breaker, signed with the client's ice-pwd.
 */
export function bindingRequestBytes(
  transactionId: Uint8Array,
  username: string,
  priority: number,
  tieBreaker: bigint,
  remotePwd: string,
): Uint8Array {
  return signedBindingRequest(
    transactionId,
    username,
    priority,
    ATTR_ICE_CONTROLLED,
    tieBreaker,
    false,
    remotePwd,
  );
}

/**
 * A client's (controlling agent's) connectivity or consent check: USERNAME "remote:local", PRIORITY,
 * ICE-CONTROLLING with its tie-breaker, USE-CANDIDATE when `nominate` (RFC 8445 §7.1.1, §8.1.1), signed
 * with the server's ice-pwd.
 */
export function controllingRequestBytes(
  transactionId: Uint8Array,
  username: string,
  priority: number,
  tieBreaker: bigint,
  nominate: boolean,
  remotePwd: string,
): Uint8Array {
  return signedBindingRequest(
    transactionId,
    username,
    priority,
    ATTR_ICE_CONTROLLING,
    tieBreaker,
    nominate,
    remotePwd,
  );
}

/**
 * A binding request of either ICE role: USERNAME, PRIORITY, the role attribute with the tie-breaker,
 * USE-CANDIDATE when `nominate`, signed with `remotePwd` (MESSAGE-INTEGRITY, FINGERPRINT).
 */
function signedBindingRequest(
  transactionId: Uint8Array,
  username: string,
  priority: number,
  roleAttribute: number,
  tieBreaker: bigint,
  nominate: boolean,
  remotePwd: string,
): Uint8Array {
  const message = new StunWriter(BINDING_REQUEST, transactionId);
  const name = utf8.encode(username);
  message.attribute(ATTR_USERNAME, name.length, (view, at) => {
    for (let i = 0; i < name.length; i++) view.setUint8(at + i, name[i]);
  });
  message.attribute(ATTR_PRIORITY, 4, (view, at) => view.setUint32(at, priority));
  message.attribute(roleAttribute, 8, (view, at) => view.setBigUint64(at, tieBreaker));
  if (nominate) message.attribute(ATTR_USE_CANDIDATE, 0, () => {});
  return message.finish(remotePwd);
}

/** The 16 bytes of an IPv6 address in text form ("::" shorthand and an embedded IPv4 tail allowed). */
function ipv6Bytes(text: string): number[] {
  const zone = text.indexOf("%");
  const address = zone >= 0 ? text.slice(0, zone) : text;
  const halves = address.split("::");
  if (halves.length > 2) throw new RangeError(`not an IP address: ${text}`);
  const groups = (part: string): number[] => {
    if (part === "") return [];
    const out: number[] = [];
    for (const group of part.split(":")) {
      const v4 = IPV4.exec(group);
      if (v4) {
        const [a, b, c, d] = v4.slice(1).map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(group)) out.push(parseInt(group, 16));
      else throw new RangeError(`not an IP address: ${text}`);
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) {
    throw new RangeError(`not an IP address: ${text}`);
  }
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}
