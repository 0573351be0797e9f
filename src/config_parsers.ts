/**
 * Parsers of environment values, shared by every row of the settings table (src/config.ts). A parser turns
 * the text of a variable into a value or throws {@link InvalidValue} with the reason, written to follow the
 * variable's name: `must be a port number 0-65535 (got "80a")`. The table prefixes the name.
 */

/** Why a value cannot be used, without the variable's name (the settings table adds it). */
export class InvalidValue extends Error {
  override name = "InvalidValue";
}

/** Text of one environment variable -> its value; throws {@link InvalidValue}. */
export type Parser<T> = (text: string) => T;

/** Quotes a value for an error message, short enough to stay one readable line. */
export function quoted(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return `"${shown.replace(/[\r\n]/g, " ")}"`;
}

/** A whole number from `min` to `max`; `what` replaces "a whole number from min to max" in the message. */
export function integer(min: number, max: number, what?: string): Parser<number> {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidValue(
        `must be ${what ?? `a whole number from ${min} to ${max}`} (got ${quoted(text)})`,
      );
    }
    return n;
  };
}

/** A UDP/TCP port; 0 lets the OS pick a free one (used by tests). */
export const port: Parser<number> = integer(0, 65535, "a port number 0-65535");

/** A count of things with the project's common ceiling of one million. */
export function count(min: number): Parser<number> {
  return integer(min, 1_000_000);
}

/** `parse`'s value times `factor` (kbit/s -> bit/s). */
export function scaled(parse: Parser<number>, factor: number): Parser<number> {
  return (text) => parse(text) * factor;
}

/**
 * A duration written in seconds (fractions allowed), returned in milliseconds: greater than 0 (or from 0 with
 * `allowZero`) and at most `max`.
 */
export function seconds(max: number, allowZero = false): Parser<number> {
  const range = allowZero ? `from 0 to ${max}` : `greater than 0 and at most ${max}`;
  return (text) => {
    const s = Number(text);
    if (!/^\d*\.?\d+$/.test(text) || !Number.isFinite(s) || (allowZero ? s < 0 : s <= 0) || s > max) {
      throw new InvalidValue(`must be a number of seconds ${range}, e.g. 0.5 or 15 (got ${quoted(text)})`);
    }
    return s * 1000;
  };
}

/** on/off (also true/false, 1/0, yes/no; any case). */
export const bool: Parser<boolean> = (text) => {
  if (/^(on|true|1|yes)$/i.test(text)) return true;
  if (/^(off|false|0|no)$/i.test(text)) return false;
  throw new InvalidValue(`must be on or off (got ${quoted(text)})`);
};

/** One of a fixed set of words (exact case). */
export function oneOf<const T extends string>(values: readonly T[]): Parser<T> {
  const listed = values.length === 2
    ? `${values[0]} or ${values[1]}`
    : `one of ${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
  return (text) => {
    if (!(values as readonly string[]).includes(text)) {
      throw new InvalidValue(`must be ${listed} (got ${quoted(text)})`);
    }
    return text as T;
  };
}

/** Comma-separated entries, each trimmed and parsed by `item`; empty entries are skipped, so "" is []. */
export function list<T>(item: Parser<T>, maxEntries = 100): Parser<T[]> {
  return (text) => {
    const entries = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (entries.length > maxEntries) {
      throw new InvalidValue(`must list at most ${maxEntries} entries (got ${entries.length})`);
    }
    return entries.map(item);
  };
}

/** Any text of at least `minLength` characters; `secret` keeps the value out of the message. */
export function text(minLength = 1, secret = false): Parser<string> {
  return (value) => {
    if (value.length < minLength) {
      throw new InvalidValue(
        `must be at least ${minLength} characters long${secret ? "" : ` (got ${quoted(value)})`}`,
      );
    }
    return value;
  };
}

/** Text matching `pattern`, described as `what` in the message. */
export function matching(pattern: RegExp, what: string): Parser<string> {
  return (value) => {
    if (!pattern.test(value)) throw new InvalidValue(`must be ${what} (got ${quoted(value)})`);
    return value;
  };
}

/** A file or directory path; only its shape is checked here (the server opens it and names the variable). */
export const path: Parser<string> = (value) => {
  if (value.includes("\0")) throw new InvalidValue("must be a path without NUL characters");
  return value;
};

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** An IPv4 or IPv6 address literal; `localhost` is read as 127.0.0.1. */
export const address: Parser<string> = (value) => {
  if (IPV4.test(value) || (value.includes(":") && /^[0-9a-fA-F:.]+$/.test(value))) return value;
  if (value === "localhost") return "127.0.0.1";
  throw new InvalidValue(`must be an IPv4 or IPv6 address (got ${quoted(value)})`);
};

/** What {@link url} accepts besides the scheme. */
export interface UrlRules {
  /** Only `scheme://host[:port]` with nothing after it; the value is returned as its origin (no slash). */
  baseOnly?: boolean;
}

/**
 * A URL with one of `protocols` (e.g. `["http:", "https:"]`) and a host. The value is returned as written,
 * or as its origin with `baseOnly`. Credentials in the URL are masked in the message.
 */
export function url(protocols: readonly string[], rules: UrlRules = {}): Parser<string> {
  const schemes = protocols.map((p) => `${p}//`).join(" or ");
  const shape = rules.baseOnly ? `a ${schemes}host[:port] base URL` : `a ${schemes} URL`;
  return (value) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch { /* reported below */ }
    const ok = parsed !== undefined && protocols.includes(parsed.protocol) && parsed.hostname !== "" &&
      (!rules.baseOnly ||
        (parsed.search === "" && parsed.hash === "" && parsed.username === "" && parsed.pathname === "/" &&
          !value.includes("?") && !value.includes("#")));
    if (!ok) {
      throw new InvalidValue(`must be ${shape} (got ${quoted(value.replace(/\/\/[^/@]*@/, "//***@"))})`);
    }
    return rules.baseOnly ? parsed!.origin : value;
  };
}

/** An http(s) origin, `https://host[:port]`, returned without a trailing slash. */
export const origin: Parser<string> = (value) => {
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch { /* reported below */ }
  if (
    !parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:") ||
    parsed.origin !== value.replace(/\/$/, "")
  ) {
    throw new InvalidValue(`entries must be origins like https://media.example.com (got ${quoted(value)})`);
  }
  return parsed.origin;
};
