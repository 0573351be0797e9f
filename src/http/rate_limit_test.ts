import assert from "node:assert/strict";
import { clientKey, RateLimiter, requestAddress } from "./rate_limit.ts";

Deno.test("a client gets perMinute requests, then 429 figures until the bucket refills", () => {
  const limiter = new RateLimiter(30);
  for (let i = 0; i < 30; i++) assert.equal(limiter.take("10.0.0.1", 1000 + i).allowed, true);
  const refused = limiter.take("10.0.0.1", 1030);
  assert.equal(refused.allowed, false);
  // One token every 2 s at 30/min.
  assert.equal(refused.retryAfterSeconds, 2);
  // Another client is not affected.
  assert.equal(limiter.take("10.0.0.2", 1030).allowed, true);
  // Two seconds later one request is allowed again, the next one is not.
  assert.equal(limiter.take("10.0.0.1", 3100).allowed, true);
  assert.equal(limiter.take("10.0.0.1", 3100).allowed, false);
  // After a minute of silence the whole budget is back.
  for (let i = 0; i < 30; i++) assert.equal(limiter.take("10.0.0.1", 70_000).allowed, true);
  assert.equal(limiter.take("10.0.0.1", 70_000).allowed, false);
});

Deno.test("0 disables limiting", () => {
  const limiter = new RateLimiter(0);
  for (let i = 0; i < 1000; i++) assert.equal(limiter.take("a", 0).allowed, true);
  assert.equal(limiter.size, 0);
});

Deno.test("memory stays bounded under many client addresses", () => {
  const limiter = new RateLimiter(5, { maxClients: 100 });
  for (let i = 0; i < 10_000; i++) limiter.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, i);
  assert.ok(limiter.size <= 100, `${limiter.size}`);
  // A client that keeps asking is never evicted in favour of ones seen longer ago.
  const small = new RateLimiter(2, { maxClients: 3 });
  small.take("busy", 0);
  small.take("busy", 0);
  small.take("x", 1);
  small.take("y", 2);
  assert.equal(small.take("busy", 3).allowed, false);
  small.take("z", 4); // evicts "x", the least recently seen
  assert.equal(small.take("busy", 5).allowed, false);
});

Deno.test("IPv6 clients share a budget per /64; IPv4 and v4-mapped are per address", () => {
  assert.equal(clientKey("203.0.113.9"), "203.0.113.9");
  assert.equal(clientKey("::ffff:203.0.113.9"), "203.0.113.9");
  assert.equal(clientKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(clientKey("2001:db8:1:2::99"), "2001:db8:1:2::/64");
  assert.equal(clientKey("2001:0db8:0001:0002:0:0:0:1"), "2001:db8:1:2::/64");
  assert.equal(clientKey("::1"), "0:0:0:0::/64");
  assert.equal(clientKey("fe80::1"), "fe80:0:0:0::/64");
});

Deno.test("requestAddress believes X-Forwarded-For only from a trusted proxy, read from the right", () => {
  const proxies = new Set(["127.0.0.1", "10.0.0.9"]);
  assert.equal(requestAddress("203.0.113.5", "198.51.100.1", proxies), "203.0.113.5", "not a proxy");
  assert.equal(requestAddress("127.0.0.1", null, proxies), "127.0.0.1");
  assert.equal(requestAddress("127.0.0.1", "198.51.100.1", proxies), "198.51.100.1");
  assert.equal(
    requestAddress("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.9", proxies),
    "198.51.100.1",
    "the client's own entries sit left of what the proxies saw",
  );
  assert.equal(requestAddress("127.0.0.1", "[2001:db8::1]:443", proxies), "2001:db8::1");
  assert.equal(requestAddress("127.0.0.1", "not-an-address", proxies), "127.0.0.1", "garbage is ignored");
  assert.equal(requestAddress("127.0.0.1", "10.0.0.9", proxies), "127.0.0.1", "only proxies: the socket's");
});
