/** The HTTP status each kind of session refusal is answered with (NOTES: players retry differently by it). */
import { SessionError, type SessionRefusal } from "../rooms/errors.ts";
import { HttpError } from "./body.ts";

const STATUS: Record<SessionRefusal, number> = {
  "invalid": 400,
  "not-found": 404,
  "unacceptable": 406,
  "conflict": 409,
  "address-busy": 429,
  "full": 503,
};

/** Seconds a client held back by a per-address limit is asked to wait. */
const ADDRESS_BUSY_RETRY_SECONDS = "2";

/** A session refusal as the HTTP error the edge answers with; other errors are returned as they are. */
export function asHttpError(e: unknown): unknown {
  if (!(e instanceof SessionError)) return e;
  const headers: Record<string, string> = e.refusal === "address-busy"
    ? { "Retry-After": ADDRESS_BUSY_RETRY_SECONDS }
    : {};
  return new HttpError(STATUS[e.refusal], e.message, headers);
}
