/**
 * A short fuzz run (the same targets and invariants as `deno task fuzz`) as part of `deno task test`:
 * ~30,000 inputs on a fixed seed, so the suite gives the same verdict on every run (FUZZ_SEED overrides it);
 * `deno task fuzz` draws a new seed each run to explore. A failure prints the seed and the input to replay.
 */
import assert from "node:assert/strict";
import { formatReport } from "./fuzz/engine.ts";
import { runSuite } from "./fuzz/suite.ts";

/** The suite's seed; changing it is a deliberate act (say why in the commit). */
const SUITE_SEED = 0x5eed_2026;

Deno.test({
  name: "fuzz: 30k random and mutated inputs at every network-facing parser",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? SUITE_SEED) >>> 0;
  console.log(`fuzz: seed ${seed} (FUZZ_SEED=${seed} reproduces this run)`);
  const report = await runSuite({ seed, count: Number(Deno.env.get("FUZZ_COUNT") ?? 30_000) });
  console.log(formatReport(report));
  assert.equal(report.failures.length, 0, `fuzz failures (seed ${seed}); see the report above`);
  assert.ok(report.total >= 25_000);
  // Garbage between collections is allowed for; a leak per input would show at this scale.
  assert.ok(report.rssAfter - report.rssBefore < 400 * 1024 * 1024, "RSS grew by more than 400 MiB");
});
