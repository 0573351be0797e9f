/** A request the session layer refuses; `status` is the HTTP status the edge answers with. */
export class SessionError extends Error {
  override name = "SessionError";
  constructor(readonly status: 400 | 403 | 404 | 406 | 409 | 429 | 503, message: string) {
    super(message);
  }
}
