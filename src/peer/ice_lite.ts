/**
 * ICE-lite STUN handling (RFC 8445 §2.5, RFC 5389): answer connectivity checks whose USERNAME and
 * MESSAGE-INTEGRITY match a session's credentials. Pure: bytes in, bytes out.
 */
import { Buffer } from "node:buffer";
import { classes, Message, methods, parseMessage } from "werift";

/** The local ufrag a binding request is addressed to (`USERNAME` = "local:remote"), if any. */
export function stunLocalUfrag(data: Uint8Array): string | undefined {
  try {
    const message = parseMessage(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    if (!message || message.messageMethod !== methods.BINDING || message.messageClass !== classes.REQUEST) {
      return undefined;
    }
    const username = message.getAttributeValue("USERNAME");
    if (typeof username !== "string") return undefined;
    const colon = username.indexOf(":");
    return colon > 0 ? username.slice(0, colon) : undefined;
  } catch {
    return undefined;
  }
}

/** A verified connectivity check and the response to send back to its source. */
export interface CheckAnswer {
  response: Uint8Array;
  /** The controlling agent nominated this address (USE-CANDIDATE). */
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
  let message: Message | undefined;
  try {
    message = parseMessage(
      Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      Buffer.from(credentials.localPwd, "utf8"),
    );
  } catch {
    return undefined;
  }
  if (!message || message.messageMethod !== methods.BINDING || message.messageClass !== classes.REQUEST) {
    return undefined;
  }
  if (message.getAttributeValue("USERNAME") !== `${credentials.localUfrag}:${credentials.remoteUfrag}`) {
    return undefined;
  }
  const response = new Message(methods.BINDING, classes.RESPONSE, message.transactionId);
  response.setAttribute("XOR-MAPPED-ADDRESS", [from.hostname, from.port]);
  response.addMessageIntegrity(Buffer.from(credentials.localPwd, "utf8"));
  response.addFingerprint();
  return {
    response: new Uint8Array(response.bytes),
    nominated: message.getAttributeValue("USE-CANDIDATE") !== undefined,
  };
}
