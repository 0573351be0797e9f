import assert from "node:assert/strict";
import { RateLimiter } from "./rate_limit.ts";

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
