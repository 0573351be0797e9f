import assert from "node:assert/strict";
import { RoomRates } from "./rates.ts";

Deno.test("rates: the first call samples; later ones give kbit/s and fps and say when either moved", () => {
  const rates = new RoomRates();
  assert.equal(rates.update(1000, 0, 0), false);
  assert.equal(rates.update(3000, 250_000, 60), true, "from nothing to 1 Mbit/s at 30 fps");
  assert.deepEqual([rates.bitrateKbps, rates.fps], [1000, 30]);
  assert.equal(rates.update(5000, 502_000, 120), false, "1008 kbit/s and 30 fps: within 10 %");
  assert.equal(rates.bitrateKbps, 1008);
  assert.equal(rates.update(5000, 900_000, 500), false, "no time passed: only a new sample");
  assert.equal(rates.update(6000, 900_000, 500), true, "nothing arrived for a second");
  assert.deepEqual([rates.bitrateKbps, rates.fps], [0, 0]);
});
