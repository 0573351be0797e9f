/**
 * Viewer tokens for private rooms: a JWT (RFC 7519) signed with HMAC-SHA256 (`alg: HS256`) under
 * `VIEWER_TOKEN_SECRET`, carrying the room it opens (`room`) and when it stops working (`exp`, seconds since
 * the epoch). Time is passed in. Only HS256 is accepted, so a token that names another algorithm ("none")
 * is refused rather than trusted.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

/** Longest token looked at; real ones are ~150 characters. */
const MAX_TOKEN_LENGTH = 2048;

/** What a token check found. */
export type ViewerTokenCheck =
  | { ok: true; room: string; exp: number }
  | { ok: false; status: 401 | 403; reason: string };

/** Makes a token that opens `room` until `exp` (seconds since the epoch). */
export function signViewerToken(secret: string, room: string, exp: number): string {
  const head = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = base64url(JSON.stringify({ room, exp: Math.floor(exp) }));
  return `${head}.${body}.${hmac(secret, `${head}.${body}`).toString("base64url")}`;
}

/**
 * Checks `token` for `room` at `nowSeconds`: 401 when it is malformed, forged or expired, 403 when it is
 * genuine but opens another room (`room` undefined skips that comparison).
 */
export function verifyViewerToken(
  token: string,
  secret: string,
  room: string | undefined,
  nowSeconds: number,
): ViewerTokenCheck {
  const invalid = (reason: string): ViewerTokenCheck => ({ ok: false, status: 401, reason });
  if (token.length > MAX_TOKEN_LENGTH) return invalid("viewer token too long");
  const parts = token.split(".");
  if (parts.length !== 3) return invalid("viewer token is not a JWT (header.payload.signature)");
  const [head, body, signature] = parts;
  const expected = hmac(secret, `${head}.${body}`);
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return invalid("viewer token signature does not verify");
  }
  // Only now, with the signature checked, is the content worth parsing.
  const header = parseJson(head);
  if (header?.alg !== "HS256") return invalid("viewer token must be signed with HS256");
  const claims = parseJson(body);
  if (!claims || typeof claims.room !== "string" || typeof claims.exp !== "number") {
    return invalid("viewer token needs a room and an exp claim");
  }
  if (claims.exp <= nowSeconds) return invalid("viewer token expired");
  if (typeof claims.nbf === "number" && claims.nbf > nowSeconds) return invalid("viewer token not valid yet");
  if (room !== undefined && claims.room !== room) {
    return { ok: false, status: 403, reason: "viewer token is for another room" };
  }
  return { ok: true, room: claims.room, exp: claims.exp };
}

function hmac(secret: string, data: string): Buffer {
  return createHmac("sha256", secret).update(data).digest();
}

function base64url(text: string): string {
  return Buffer.from(text).toString("base64url");
}

function parseJson(part: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value && typeof value === "object" ? value : undefined;
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  // deno run --allow-env src/access/viewer_token.ts <room> [minutes]: prints a token for VIEWER_TOKEN_SECRET.
  const [room, minutes = "60"] = Deno.args;
  const secret = Deno.env.get("VIEWER_TOKEN_SECRET");
  if (!room || !secret || !(Number(minutes) > 0)) {
    console.error(
      "usage: VIEWER_TOKEN_SECRET=... deno run --allow-env src/access/viewer_token.ts <room> [minutes]",
    );
    Deno.exit(2);
  }
  console.log(signViewerToken(secret, room, Date.now() / 1000 + Number(minutes) * 60));
}
