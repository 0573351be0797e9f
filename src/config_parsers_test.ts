import assert from "node:assert/strict";
import {
  address,
  bool,
  count,
  integer,
  InvalidValue,
  list,
  matching,
  oneOf,
  origin,
  type Parser,
  path,
  port,
  scaled,
  seconds,
  text,
  url,
} from "./config_parsers.ts";

/** Asserts `parse(value)` throws InvalidValue whose one-line reason matches `reason`. */
function refuses<T>(parse: Parser<T>, value: string, reason: RegExp): void {
  assert.throws(() => parse(value), (e: unknown) => {
    assert.ok(e instanceof InvalidValue, String(e));
    assert.match(e.message, reason);
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  }, value);
}

Deno.test("integer and count: whole numbers within bounds only", () => {
  const parse = integer(2, 10);
  assert.equal(parse("2"), 2);
  assert.equal(parse("10"), 10);
  for (const bad of ["1", "11", "1.5", "-3", "0x5", "5 ", "", "lots", "1e1"]) {
    refuses(parse, bad, /^must be a whole number from 2 to 10 \(got ".*"\)$/);
  }
  assert.equal(count(0)("0"), 0);
  assert.equal(count(1)("1000000"), 1_000_000);
  refuses(count(1), "1000001", /from 1 to 1000000/);
  refuses(count(1), "99999999999999999999", /from 1 to 1000000/);
});

Deno.test("port: 0-65535 (0 lets the OS pick)", () => {
  assert.equal(port("0"), 0);
  assert.equal(port("65535"), 65535);
  refuses(port, "65536", /^must be a port number 0-65535 \(got "65536"\)$/);
  refuses(port, "http", /port number/);
});

Deno.test("scaled: kbit/s to bit/s after the bounds of the unit written", () => {
  const kbit = scaled(count(100), 1000);
  assert.equal(kbit("8000"), 8_000_000);
  refuses(kbit, "99", /from 100 to/);
});

Deno.test("seconds: fractions allowed, returned in ms; zero only when allowed", () => {
  const s = seconds(86400);
  assert.equal(s("15"), 15000);
  assert.equal(s("0.5"), 500);
  assert.equal(s(".25"), 250);
  assert.equal(s("86400"), 86_400_000);
  for (const bad of ["0", "-1", "86401", "", "ten", "1,5", "Infinity"]) {
    refuses(s, bad, /^must be a number of seconds greater than 0 and at most 86400/);
  }
  const cache = seconds(3600, true);
  assert.equal(cache("0"), 0);
  refuses(cache, "3601", /from 0 to 3600/);
});

Deno.test("bool: on/off and the usual synonyms, any case", () => {
  for (const on of ["on", "ON", "true", "1", "yes"]) assert.equal(bool(on), true, on);
  for (const off of ["off", "False", "0", "no"]) assert.equal(bool(off), false, off);
  refuses(bool, "maybe", /^must be on or off \(got "maybe"\)$/);
});

Deno.test("oneOf: exact words, listed in the message", () => {
  assert.equal(oneOf(["text", "json"])("json"), "json");
  refuses(oneOf(["text", "json"]), "xml", /^must be text or json \(got "xml"\)$/);
  refuses(oneOf(["debug", "info", "warn", "error"]), "INFO", /^must be one of debug, info, warn or error/);
});

Deno.test("list: trimmed entries, empty ones skipped, each parsed, count bounded", () => {
  const addresses = list(address, 3);
  assert.deepEqual(addresses(""), []);
  assert.deepEqual(addresses(" 10.0.0.1 ,, ::1,"), ["10.0.0.1", "::1"]);
  refuses(addresses, "10.0.0.1, example.com", /^must be an IPv4 or IPv6 address \(got "example.com"\)$/);
  refuses(addresses, "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", /at most 3 entries/);
});

Deno.test("text, matching and path", () => {
  assert.equal(text(8)("long enough"), "long enough");
  refuses(text(8), "short", /^must be at least 8 characters long \(got "short"\)$/);
  refuses(text(8, true), "s3cret", /^must be at least 8 characters long$/);
  const id = matching(/^[a-z]{1,3}$/, "1-3 letters");
  assert.equal(id("abc"), "abc");
  refuses(id, "abcd", /^must be 1-3 letters \(got "abcd"\)$/);
  assert.equal(path("./storage"), "./storage");
  refuses(path, "a\0b", /NUL/);
});

Deno.test("address: IPv4/IPv6 literals, localhost as 127.0.0.1", () => {
  assert.equal(address("192.0.2.1"), "192.0.2.1");
  assert.equal(address("2001:db8::1"), "2001:db8::1");
  assert.equal(address("localhost"), "127.0.0.1");
  for (const bad of ["1.2.3", "256.1.1.1", "example.com", "not-an-ip"]) refuses(address, bad, /IPv4 or IPv6/);
});

Deno.test("url: scheme and host checked, base URLs normalised, credentials masked", () => {
  const redis = url(["redis:", "rediss:"]);
  assert.equal(redis("redis://:pw@10.0.0.2:6379/0"), "redis://:pw@10.0.0.2:6379/0");
  refuses(redis, "http://10.0.0.2", /^must be a redis:\/\/ or rediss:\/\/ URL/);
  refuses(redis, "redis://user:pw@", /\*\*\*@/);
  assert.throws(() => redis("redis://user:topsecret@"), (e: unknown) => !String(e).includes("topsecret"));
  const base = url(["http:", "https:"], { baseOnly: true });
  assert.equal(base("http://10.0.0.5:8080/"), "http://10.0.0.5:8080");
  for (const bad of ["http://10.0.0.5:8080/app", "ftp://10.0.0.5", "http://h/?x", "http://u:p@h", "h:80"]) {
    refuses(base, bad, /host\[:port\] base URL/);
  }
});

Deno.test("origin: scheme://host[:port] and nothing more", () => {
  assert.equal(origin("https://media.example.com/"), "https://media.example.com");
  assert.equal(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  for (const bad of ["https://media.example.com/app", "media.example.com", "ftp://x.org"]) {
    refuses(origin, bad, /origins like https:/);
  }
});
