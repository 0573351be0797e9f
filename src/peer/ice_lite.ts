/**
 * ICE-lite STUN handling (RFC 8445 §2.5, RFC 5389): answer connectivity checks whose USERNAME and
 * MESSAGE-INTEGRITY match a session's credentials, and build the binding requests the server sends itself
 * to prove an address and refresh consent (RFC 7675). Pure: bytes in, bytes out.
 */
import { Buffer } from "node:buffer";
import { BINDING_REQUEST, BINDING_SUCCESS, integrityValid, readStun } from "./stun.ts";
import { bindingRequestBytes, bindingSuccess } from "./stun_writer.ts";

/** The local ufrag a binding request is addressed to (`USERNAME` = "local:remote"), if any. */
export function stunLocalUfrag(data: Uint8Array): string | undefined {
  const message = readStun(data);
  if (!message || message.type !== BINDING_REQUEST || message.username === undefined) return undefined;
  const colon = message.username.indexOf(":");
  return colon > 0 ? message.username.slice(0, colon) : undefined;
}

/** Whether a datagram is a STUN binding success response (routed by address, not by ufrag). */
export function isBindingSuccess(data: Uint8Array): boolean {
  return data.length >= 20 && data[0] === 0x01 && data[1] === 0x01;
}

/** A verified connectivity check and the response to send back to its source. */
export interface CheckAnswer {
  response: Uint8Array;
  /** The controlling agent nominated this address (USE-CANDIDATE before MESSAGE-INTEGRITY). */
  nominated: boolean;
}

/**
 * Verifies a binding request against a session's credentials and builds the success response with
 * XOR-MAPPED-ADDRESS. Returns undefined (send nothing) for anything that does not verify, so a forged
 * check never gets a response and never validates an address.
 */
export function answerCheck(
  data: Uint8Array,
  credentials: { localUfrag: string; localPwd: string; remoteUfrag: string },
  from: { hostname: string; port: number },
): CheckAnswer | undefined {
  const message = readStun(data);
  if (!message || message.type !== BINDING_REQUEST) return undefined;
  if (message.username !== `${credentials.localUfrag}:${credentials.remoteUfrag}`) return undefined;
  if (!integrityValid(data, message, Buffer.from(credentials.localPwd, "utf8"))) return undefined;
  return {
    response: bindingSuccess(message.transactionId, from, credentials.localPwd),
    nominated: message.useCandidate,
  };
}

/** Credentials the server signs its own binding requests with: the client's (RFC 8445 §7.2.2). */
export interface RemoteCredentials {
  localUfrag: string;
  remoteUfrag: string;
  remotePwd: string;
}

/**
 * PRIORITY of the server's own requests: what a host candidate of component 1 has (RFC 8445 §5.1.2.1).
 * A lite agent's requests must carry one, though the client learns no candidate from it that it lacks.
 */
const REQUEST_PRIORITY = (126 << 24) + (65535 << 8) + 255;

/**
 * A binding request from the server (the controlled agent) to the client: USERNAME "remote:local", PRIORITY,
 * ICE-CONTROLLED, MESSAGE-INTEGRITY under the client's ice-pwd, FINGERPRINT (RFC 8445 §7.2.2, RFC 7675 §5.1).
 */
export function bindingRequest(
  credentials: RemoteCredentials,
  transactionId: Uint8Array,
  tieBreaker: bigint,
): Uint8Array {
  return bindingRequestBytes(
    transactionId,
    `${credentials.remoteUfrag}:${credentials.localUfrag}`,
    REQUEST_PRIORITY,
    tieBreaker,
    credentials.remotePwd,
  );
}

/**
 * The transaction id of `data` when it is a binding success response authenticated with the client's
 * ice-pwd (RFC 8445 §7.2.5.2: the responder signs with its own password); undefined otherwise.
 */
export function authenticatedResponse(data: Uint8Array, remotePwd: string): Uint8Array | undefined {
  const message = readStun(data);
  if (!message || message.type !== BINDING_SUCCESS) return undefined;
  return integrityValid(data, message, Buffer.from(remotePwd, "utf8")) ? message.transactionId : undefined;
}
