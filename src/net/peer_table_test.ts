import assert from "node:assert/strict";
import { PeerTable } from "./peer_table.ts";

function peer(localUfrag: string) {
  return { localUfrag, state: "connected" };
}

Deno.test("routes by ufrag and, once validated, by hostname and port", () => {
  const table = new PeerTable<ReturnType<typeof peer>>();
  const a = peer("ua");
  const b = peer("ub");
  table.add(a);
  table.add(b);
  assert.equal(table.byUfrag("ua"), a);
  assert.equal(table.byAddress({ hostname: "127.0.0.1", port: 5000 }), undefined);
  table.route(a, { hostname: "127.0.0.1", port: 5000 });
  table.route(b, { hostname: "127.0.0.1", port: 5001 });
  // Fresh address objects, as Deno hands over for every datagram.
  assert.equal(table.byAddress({ hostname: "127.0.0.1", port: 5000 }), a);
  assert.equal(table.byAddress({ hostname: "127.0.0.1", port: 5001 }), b);
  assert.equal(table.byAddress({ hostname: "127.0.0.2", port: 5000 }), undefined);
  assert.equal(table.size, 2);
});

Deno.test("an address stays with the live peer that had it first", () => {
  const table = new PeerTable<ReturnType<typeof peer>>();
  const a = peer("ua");
  const b = peer("ub");
  table.route(a, { hostname: "10.0.0.1", port: 1 });
  table.route(b, { hostname: "10.0.0.1", port: 1 });
  assert.equal(table.byAddress({ hostname: "10.0.0.1", port: 1 }), a);
  a.state = "closed";
  table.route(b, { hostname: "10.0.0.1", port: 1 });
  assert.equal(table.byAddress({ hostname: "10.0.0.1", port: 1 }), b);
});

Deno.test("remove forgets the ufrag and every address; rename moves the ufrag", () => {
  const table = new PeerTable<{ localUfrag: string; state: string }>();
  const a = peer("ua");
  table.add(a);
  table.route(a, { hostname: "::1", port: 7 });
  table.route(a, { hostname: "127.0.0.1", port: 7 });
  a.localUfrag = "ua2";
  table.rename(a, "ua");
  assert.equal(table.byUfrag("ua"), undefined);
  assert.equal(table.byUfrag("ua2"), a);
  table.remove(a);
  assert.equal(table.byUfrag("ua2"), undefined);
  assert.equal(table.byAddress({ hostname: "::1", port: 7 }), undefined);
  assert.equal(table.byAddress({ hostname: "127.0.0.1", port: 7 }), undefined);
  assert.deepEqual(table.peers(), []);
});
