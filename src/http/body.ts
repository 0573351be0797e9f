/** Reading request bodies with a size cap, and the errors the HTTP edge turns into responses. */

/** An error with the HTTP status and one-line reason the client should get. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** The body did not arrive within the body timeout (HTTP_BODY_TIMEOUT). */
export class BodyTimeoutError extends Error {
  override name = "BodyTimeoutError";
}

/**
 * `req` with a body that fails with {@link BodyTimeoutError} unless it has been read to its end within
 * `timeoutMs`: a client trickling its body holds a connection and a handler for no more than that. Requests
 * without a body are returned as they are.
 */
export function timeBody(req: Request, timeoutMs: number): Request {
  if (req.body === null) return req;
  const reader = req.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setTimeout(() => {
        controller.error(new BodyTimeoutError(`request body not received within ${timeoutMs / 1000} s`));
        reader.cancel().catch(() => {});
      }, timeoutMs);
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          clearTimeout(timer);
          controller.close();
        } else controller.enqueue(value);
      } catch (e) {
        clearTimeout(timer);
        controller.error(e);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  });
  return new Request(
    req.url,
    { method: req.method, headers: req.headers, body, duplex: "half" } as RequestInit,
  );
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
    } catch (e) {
      if (e instanceof BodyTimeoutError) throw new HttpError(408, e.message, { Connection: "close" });
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
