/**
 * The auth webhook (`AUTH_WEBHOOK_URL`): before a WHIP or WHEP offer is accepted the server POSTs
 * `{action, room, token, ip, user_agent}` as JSON; a 2xx answer allows, anything else denies. Time-outs and
 * network errors deny unless configured to allow. Allowed requests are remembered for a short time (per
 * action, room, token and address), and identical requests in flight share one call, so a crowd joining at
 * once costs the receiver one request.
 */
import { createHash } from "node:crypto";

/** What the webhook is asked about. */
export interface AuthQuestion {
  action: "publish" | "watch";
  /** The room asked for; null for a WHIP offer without `?room=` (the server names the room). */
  room: string | null;
  /** The bearer token (stream key or viewer token) the client sent, or null. */
  token: string | null;
  ip: string;
  user_agent: string | null;
}

/** The answer: allowed, or why not (one line, shown to the client). */
export type AuthAnswer = { allowed: true } | { allowed: false; reason: string };

/** Settings of the webhook client. */
export interface AuthWebhookOptions {
  url: string;
  timeoutMs: number;
  /** What a time-out or network error means. */
  onError: "deny" | "allow";
  /** How long an allow is remembered; 0 asks every time. */
  cacheMs: number;
  log: (level: "warn", message: string) => void;
  /** Most remembered allows (oldest forgotten first). */
  maxCached?: number;
}

/** Asks the webhook, with a positive cache. */
export class AuthWebhook {
  readonly #options: AuthWebhookOptions;
  /** Digest of the question -> when the allow expires (performance.now() time). */
  readonly #allowed = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<AuthAnswer>>();
  #lastErrorLog = -Infinity;

  constructor(options: AuthWebhookOptions) {
    this.#options = options;
  }

  /** Asks whether `question` is allowed; `now` is performance.now() time. */
  ask(question: AuthQuestion, now: number): Promise<AuthAnswer> {
    const key = createHash("sha256").update(JSON.stringify(question)).digest("base64");
    const until = this.#allowed.get(key);
    if (until !== undefined) {
      if (until > now) return Promise.resolve({ allowed: true });
      this.#allowed.delete(key);
    }
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#call(question).then(([answer, cacheable]) => {
        this.#inFlight.delete(key);
        if (cacheable && this.#options.cacheMs > 0) this.#remember(key, now + this.#options.cacheMs);
        return answer;
      });
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  #remember(key: string, until: number): void {
    const max = this.#options.maxCached ?? 10_000;
    if (this.#allowed.size >= max) {
      const oldest = this.#allowed.keys().next();
      if (!oldest.done) this.#allowed.delete(oldest.value);
    }
    this.#allowed.set(key, until);
  }

  /** The answer, and whether it may be remembered (only a real 2xx). */
  async #call(question: AuthQuestion): Promise<[AuthAnswer, boolean]> {
    let status: number;
    try {
      const res = await fetch(this.#options.url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(question),
        redirect: "manual",
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel();
    } catch (e) {
      const timedOut = (e as Error)?.name === "TimeoutError";
      const what = timedOut ? `no answer within ${this.#options.timeoutMs} ms` : "unreachable";
      // One line per burst of failures, not one per client.
      if (performance.now() - this.#lastErrorLog > 10_000) {
        this.#lastErrorLog = performance.now();
        this.#options.log("warn", `auth webhook ${what}: ${(e as Error)?.message ?? e}`);
      }
      return this.#options.onError === "allow"
        ? [{ allowed: true }, false]
        : [{ allowed: false, reason: `the auth webhook is ${what}; try again later` }, false];
    }
    if (status >= 200 && status < 300) return [{ allowed: true }, true];
    return [{ allowed: false, reason: `denied by the auth webhook (${status})` }, false];
  }
}
