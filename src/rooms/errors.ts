/**
 * Why the session layer refuses a request. The kinds say what went wrong, not how a protocol reports it:
 * the HTTP edge maps each to a status (src/http/session_status.ts).
 */
export type SessionRefusal =
  /** The request is malformed: bad SDP, a bad room name, a layer or media the session does not have. */
  | "invalid"
  /** No such session, or the room is not live. */
  | "not-found"
  /** The offer has no codec the server takes or the room carries. */
  | "unacceptable"
  /** The room exists in a way that excludes the request (relayed from another node, already attached). */
  | "conflict"
  /** The client's address holds too many sessions (it may retry shortly). */
  | "address-busy"
  /** The server, the publishers' share or the room is full. */
  | "full";

/** A request the session layer refuses, with a one-line reason for the client. */
export class SessionError extends Error {
  override name = "SessionError";
  constructor(readonly refusal: SessionRefusal, message: string) {
    super(message);
  }
}
