/**
 * Who may publish, watch and see which rooms: the master key (`WHIP_TOKEN`), per-room stream keys
 * (`STREAM_KEYS_FILE`), viewer tokens for private rooms (`VIEWER_TOKEN_SECRET`, `PRIVATE_ROOMS`) and the auth
 * webhook (`AUTH_WEBHOOK_URL`). Refusals are {@link HttpError}s: 401 for a missing or invalid credential,
 * 403 for a genuine one that does not open what was asked.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { HttpError } from "./body.ts";
import { StreamKeys } from "../access/stream_keys.ts";
import { verifyViewerToken } from "../access/viewer_token.ts";
import type { AuthQuestion, AuthWebhook } from "../access/auth_webhook.ts";

/** Throws 401 unless the request carries `Authorization: Bearer <token>`. */
export function requireBearer(req: Request, token: string): void {
  const given = bearerToken(req);
  if (given === undefined) throw missingBearer();
  if (!tokensEqual(given, token)) throw invalidBearer("invalid bearer token");
}

/** Compares two secrets without leaking where they differ or their length (both are hashed first). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(req: Request): string | undefined {
  const match = /^Bearer\s+(\S{1,4096})$/i.exec(req.headers.get("authorization")?.trim() ?? "");
  return match ? match[1] : undefined;
}

/** Where a request comes from, as the access checks and the webhook see it. */
export interface ClientIdentity {
  ip: string;
  userAgent: string | null;
}

/** Settings of {@link AccessPolicy}. */
export interface AccessOptions {
  /** `WHIP_TOKEN`: publishes to any room, manages any session, sees every room. */
  masterKey: string;
  /** The current stream keys (the key file is reread while the server runs). */
  streamKeys?: () => StreamKeys;
  /** Rooms whose viewers need a viewer token. */
  privateRooms?: ReadonlySet<string>;
  /** `VIEWER_TOKEN_SECRET`; without it private rooms admit only the master key. */
  viewerTokenSecret?: string;
  webhook?: AuthWebhook;
}

/**
 * Which rooms a room list shows a request: public ones, plus the private room its viewer token opens, or all.
 * Requests with the same `key` see the same rooms (the SSE feed builds one snapshot per key).
 */
export interface RoomFilter {
  key: string;
  shows(roomId: string): boolean;
}

/** The filter of a request without a token: public rooms only. */
export function publicRooms(privateRooms: ReadonlySet<string> | undefined): RoomFilter {
  return { key: "public", shows: (id) => !privateRooms?.has(id) };
}

const NO_KEYS = new StreamKeys();

/** The access rules of one server. */
export class AccessPolicy {
  readonly #options: AccessOptions;

  constructor(options: AccessOptions) {
    this.#options = options;
  }

  /** Whether `room` needs a viewer token. */
  isPrivate(room: string): boolean {
    return this.#options.privateRooms?.has(room) ?? false;
  }

  /** Whether `token` may publish somewhere (the master key or any stream key); for TURN credentials. */
  mayPublishSomewhere(token: string): boolean {
    return tokensEqual(token, this.#options.masterKey) ||
      this.#keys().match(token, undefined).kind === "room";
  }

  /**
   * Checks a WHIP offer's bearer token for `room` (undefined: the server names the room, or the stream key
   * says which). The master key opens every room; a stream key opens its own room; other tokens are put to
   * the webhook when there is one. Returns the room to publish to and the session's owner tag (a digest
   * of the token) that {@link mayManage} later compares.
   */
  async authorizePublish(
    req: Request,
    room: string | undefined,
    client: ClientIdentity,
    now: number,
  ): Promise<{ room: string | undefined; owner: string }> {
    const token = bearerToken(req);
    if (token === undefined) throw missingBearer();
    const owner = ownerTag(token);
    if (tokensEqual(token, this.#options.masterKey)) return { room, owner };
    const match = this.#keys().match(token, room);
    if (match.kind === "other-room") {
      throw new HttpError(403, `this stream key is not the key of room "${room}"`);
    }
    if (match.kind === "unknown" && !this.#options.webhook) throw invalidBearer("invalid bearer token");
    const named = match.kind === "room" ? match.room : room;
    await this.#askWebhook({ action: "publish", room: named ?? null, token, ...identity(client) }, now);
    return { room: named, owner };
  }

  /**
   * Checks a WHEP offer for `room`: a private room needs a viewer token for it (or the master key), as
   * `Authorization: Bearer` or `?token=`; then the webhook, when there is one, has the last word.
   */
  async authorizeWatch(
    req: Request,
    url: URL,
    room: string,
    client: ClientIdentity,
    now: number,
  ): Promise<void> {
    const token = bearerToken(req) ?? url.searchParams.get("token") ?? undefined;
    if (this.isPrivate(room)) {
      if (token === undefined) {
        throw missingBearer(`room "${room}" is private: a viewer token is required`);
      }
      if (!tokensEqual(token, this.#options.masterKey)) {
        const secret = this.#options.viewerTokenSecret;
        if (!secret) throw invalidBearer("invalid viewer token");
        const check = verifyViewerToken(token, secret, room, Date.now() / 1000);
        if (!check.ok) {
          throw check.status === 401 ? invalidBearer(check.reason) : new HttpError(403, check.reason);
        }
      }
    }
    await this.#askWebhook({ action: "watch", room, token: token ?? null, ...identity(client) }, now);
  }

  /** Throws 401 unless the request's bearer token is the master key or the one that created the session. */
  mayManage(req: Request, owner: string | undefined): void {
    const token = bearerToken(req);
    if (token === undefined) throw missingBearer();
    if (tokensEqual(token, this.#options.masterKey)) return;
    if (owner === undefined || !timingSafeEqual(Buffer.from(ownerTag(token)), Buffer.from(owner))) {
      throw invalidBearer("invalid bearer token");
    }
  }

  /**
   * The rooms a room list (`/rooms`, `/notifications`) shows this request: public ones; every one for the
   * master key; public ones plus its room for a viewer token. A token that is neither is a 401, so the
   * lists cannot be used to test guesses without spending the address's failure budget.
   */
  roomFilter(req: Request, url: URL): RoomFilter {
    const privateRooms = this.#options.privateRooms;
    const token = bearerToken(req) ?? url.searchParams.get("token") ?? undefined;
    if (token === undefined) return publicRooms(privateRooms);
    if (tokensEqual(token, this.#options.masterKey)) return { key: "all", shows: () => true };
    const secret = this.#options.viewerTokenSecret;
    const check = secret ? verifyViewerToken(token, secret, undefined, Date.now() / 1000) : undefined;
    if (!check?.ok) throw invalidBearer(check?.reason ?? "invalid token");
    const opened = check.room;
    return { key: `room:${opened}`, shows: (id) => id === opened || !privateRooms?.has(id) };
  }

  /** Whether a room list may show `room` to this request (a private room's details stay hidden: 404). */
  mayList(req: Request, url: URL, room: string): boolean {
    if (!this.isPrivate(room)) return true;
    try {
      return this.roomFilter(req, url).shows(room);
    } catch {
      return false;
    }
  }

  async #askWebhook(question: AuthQuestion, now: number): Promise<void> {
    const webhook = this.#options.webhook;
    if (!webhook) return;
    const answer = await webhook.ask(question, now);
    if (!answer.allowed) throw new HttpError(403, answer.reason);
  }

  #keys(): StreamKeys {
    return this.#options.streamKeys?.() ?? NO_KEYS;
  }
}

function identity(client: ClientIdentity): { ip: string; user_agent: string | null } {
  return { ip: client.ip, user_agent: client.userAgent?.slice(0, 512) ?? null };
}

/** A session's owner tag: the token's SHA-256, so the token itself is not kept. */
function ownerTag(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}

function missingBearer(reason = "missing Authorization: Bearer <token>"): HttpError {
  return new HttpError(401, reason, { "WWW-Authenticate": "Bearer" });
}

function invalidBearer(reason: string): HttpError {
  return new HttpError(401, reason, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
}
