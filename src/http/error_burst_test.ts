import assert from "node:assert/strict";
import { ErrorBurst } from "./error_burst.ts";

Deno.test("ErrorBurst reports the first error of each burst and how many the previous one hid", () => {
  const burst = new ErrorBurst(10_000);
  assert.equal(burst.occurred(0), 0);
  for (let t = 50; t < 5_000; t += 50) assert.equal(burst.occurred(t), undefined);
  // Errors keep coming every 50 ms: still the same burst, however long it lasts.
  assert.equal(burst.occurred(14_000), undefined);
  assert.equal(burst.occurred(24_000), 100);
  assert.equal(burst.occurred(34_000), 0);
});
