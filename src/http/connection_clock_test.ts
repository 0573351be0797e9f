import assert from "node:assert/strict";
import { ConnectionClock } from "./connection_clock.ts";
import { ConnectionLimits } from "./connection_limits.ts";

const TIMEOUTS = { headerTimeoutMs: 10_000, idleTimeoutMs: 60_000 };

Deno.test("a connection must deliver its first request's headers within the header timeout", () => {
  const clock = new ConnectionClock(TIMEOUTS, 0);
  assert.equal(clock.expired(9_999), undefined);
  assert.equal(clock.expired(10_000), "header");
  // Bytes do not extend the deadline (slowloris); only the request arriving does.
  clock.clientBytes(5_000);
  assert.equal(clock.expired(10_000), "header");
  clock.requestStarted(9_000);
  assert.equal(clock.expired(10_000), undefined);
});

Deno.test("after a response, idle time counts; the next request's first byte starts its header clock", () => {
  const clock = new ConnectionClock(TIMEOUTS, 0);
  clock.clientBytes(1);
  clock.requestStarted(2);
  clock.requestEnded(3);
  assert.equal(clock.expired(60_002), undefined);
  assert.equal(clock.expired(60_003), "idle");
  clock.serverBytes(30_000); // a long response still being sent keeps it alive
  assert.equal(clock.expired(60_003), undefined);
  clock.clientBytes(40_000);
  assert.equal(clock.expired(49_999), undefined);
  assert.equal(clock.expired(50_000), "header");
});

Deno.test("a handler in flight is not cut by the header timeout; event streams never idle out", () => {
  const clock = new ConnectionClock(TIMEOUTS, 0);
  clock.requestStarted(1);
  clock.clientBytes(2); // body bytes
  assert.equal(clock.expired(20_000), undefined);
  clock.requestEnded(3);
  clock.markStreaming();
  assert.equal(clock.expired(3_600_000), undefined);
  clock.clientBytes(3_600_000);
  assert.equal(clock.expired(3_700_000), undefined);
});

Deno.test("connection limits: a total cap and a per-address cap, trusted proxies exempt from the latter", () => {
  const limits = new ConnectionLimits({ maxConnections: 3, maxPerAddress: 2 });
  assert.equal(limits.admit("a"), undefined);
  assert.equal(limits.admit("a"), undefined);
  assert.equal(limits.admit("a"), "address");
  assert.equal(limits.admit("proxy", true), undefined);
  assert.equal(limits.admit("b"), "total");
  limits.release("a");
  assert.equal(limits.count("a"), 1);
  assert.equal(limits.admit("b"), undefined);
  assert.equal(limits.total, 3);
  limits.release("never-admitted");
  assert.equal(limits.total, 3);
});
