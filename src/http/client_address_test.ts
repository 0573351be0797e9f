import assert from "node:assert/strict";
import { addressKey, clientAddress, normalizeAddress } from "./client_address.ts";

Deno.test("normalizeAddress drops ports and brackets, maps IPv4-mapped IPv6 to IPv4", () => {
  assert.equal(normalizeAddress("203.0.113.7"), "203.0.113.7");
  assert.equal(normalizeAddress(" 203.0.113.7:4711 "), "203.0.113.7");
  assert.equal(normalizeAddress("[2001:DB8::1]:443"), "2001:db8::1");
  assert.equal(normalizeAddress("[2001:db8::1]"), "2001:db8::1");
  assert.equal(normalizeAddress("::ffff:203.0.113.7"), "203.0.113.7");
  assert.equal(normalizeAddress("[::FFFF:203.0.113.7]:80"), "203.0.113.7");
  assert.equal(normalizeAddress("unknown"), undefined);
  assert.equal(normalizeAddress("999.1.1.1"), undefined);
  assert.equal(normalizeAddress("_hidden"), undefined);
});

Deno.test("clientAddress believes X-Forwarded-For only from trusted proxies, port or not", () => {
  const trusted = new Set(["10.0.0.2"]);
  // A dual-stack socket reports the proxy as IPv4-mapped; its entries may carry ports.
  assert.equal(clientAddress("::ffff:10.0.0.2", "198.51.100.9:51234", trusted), "198.51.100.9");
  assert.equal(clientAddress("10.0.0.2", "1.2.3.4, [2001:db8::7]:443", trusted), "2001:db8::7");
  // What the client wrote itself sits left of what the proxy appended.
  assert.equal(clientAddress("10.0.0.2", "6.6.6.6, 198.51.100.9", trusted), "198.51.100.9");
  assert.equal(clientAddress("10.0.0.2", "10.0.0.2, 198.51.100.9, 10.0.0.2", trusted), "198.51.100.9");
  // Not from a proxy: the header is ignored, the socket's address normalised.
  assert.equal(clientAddress("::ffff:198.51.100.9", "6.6.6.6", trusted), "198.51.100.9");
  assert.equal(clientAddress("10.0.0.2", "unknown", trusted), "10.0.0.2");
  assert.equal(clientAddress("10.0.0.2", null, trusted), "10.0.0.2");
  // Only proxies in the list: the client is the socket's peer.
  assert.equal(clientAddress("127.0.0.1", "10.0.0.9", new Set(["127.0.0.1", "10.0.0.9"])), "127.0.0.1");
});

Deno.test("addressKey: one key for IPv4 and IPv4-mapped IPv6, IPv6 by /64", () => {
  assert.equal(addressKey(normalizeAddress("::ffff:192.0.2.1")!), addressKey(normalizeAddress("192.0.2.1")!));
  assert.equal(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(addressKey("2001:0db8:0001:0002:0:0:0:1"), "2001:db8:1:2::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("fe80::1"), "fe80:0:0:0::/64");
});
