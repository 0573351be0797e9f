/** Bearer-token check for publishing, in constant time. */
import { createHash, timingSafeEqual } from "node:crypto";
import { HttpError } from "./body.ts";

/** Throws 401 unless the request carries `Authorization: Bearer <token>`. */
export function requireBearer(req: Request, token: string): void {
  const header = req.headers.get("authorization");
  if (!header) {
    throw new HttpError(401, "missing Authorization: Bearer <token>", { "WWW-Authenticate": "Bearer" });
  }
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match || !tokensEqual(match[1], token)) {
    throw new HttpError(401, "invalid bearer token", { "WWW-Authenticate": 'Bearer error="invalid_token"' });
  }
}

/** Compares two secrets without leaking where they differ or their length (both are hashed first). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}
