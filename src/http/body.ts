/** Reading request bodies with a size cap, and the errors the HTTP edge turns into responses. */

/** An error with the HTTP status and one-line reason the client should get. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** Largest SDP offer accepted (RFC 9725 does not set one; real offers are 3-8 KiB). */
export const MAX_SDP_BYTES = 64 * 1024;

/** Reads the body as text, refusing (413) anything over `limit` bytes without buffering it all. */
export async function readTextCapped(req: Request, limit = MAX_SDP_BYTES): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      // The client went away or broke the framing mid-body: its problem, not a server error to log.
      throw new HttpError(400, "request body could not be read");
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, `body larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw new HttpError(400, "body is not valid UTF-8");
  }
}

/** Requires `Content-Type: <type>` (parameters allowed), else 415. */
export function requireContentType(req: Request, type: string): void {
  const got = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (got !== type) {
    throw new HttpError(415, `Content-Type must be ${type}${got ? ` (got ${got})` : ""}`);
  }
}
