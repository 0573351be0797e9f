import assert from "node:assert/strict";
import { httpConnectionLimits } from "./connection_budget.ts";

const auto = { maxHttpConnections: 0, maxHttpConnectionsPerAddress: 256 };

Deno.test("the connection caps follow the open-file limit, three descriptors per connection", () => {
  assert.deepEqual(httpConnectionLimits(auto, 20_000), {
    maxConnections: 6624,
    maxPerAddress: 256,
    basis: "open-file limit 20000",
    lowered: false,
  });
  const small = httpConnectionLimits(auto, 256);
  assert.equal(small.maxConnections, 42);
  assert.equal(small.maxPerAddress, 21); // one address never holds more than half
  assert.equal(httpConnectionLimits(auto, undefined).maxConnections, 298); // assumed 1024
});

Deno.test("MAX_HTTP_CONNECTIONS above what the descriptors allow is lowered, below it is kept", () => {
  const over = httpConnectionLimits({ maxHttpConnections: 1000, maxHttpConnectionsPerAddress: 1000 }, 1024);
  assert.equal(over.maxConnections, 298);
  assert.equal(over.lowered, true);
  assert.match(over.basis, /lowered to fit the open-file limit 1024/);
  const under = httpConnectionLimits({ maxHttpConnections: 100, maxHttpConnectionsPerAddress: 256 }, 1024);
  assert.deepEqual([under.maxConnections, under.maxPerAddress, under.lowered], [100, 50, false]);
  // Unknown limit (no FFI): the setting is taken as given.
  assert.equal(
    httpConnectionLimits({ maxHttpConnections: 5000, maxHttpConnectionsPerAddress: 9 }, undefined)
      .maxConnections,
    5000,
  );
});
