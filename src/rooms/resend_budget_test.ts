import assert from "node:assert/strict";
import { RESEND_SHARE, ResendBudget } from "./resend_budget.ts";

Deno.test("resend budget: a share of the stream rate, refilled over time", () => {
  const budget = new ResendBudget();
  const stream = 400; // bytes per ms (3.2 Mbit/s)
  let sent = 0;
  for (let seq = 0; seq < 10_000; seq++) if (budget.allow(seq, 1000, stream, 5, 0)) sent++;
  assert.equal(sent, Math.floor((RESEND_SHARE * stream * 1000) / 1000), "one second's share at once");
  assert.equal(budget.refused, 10_000 - sent);
  let later = 0;
  for (let seq = 20_000; seq < 20_500; seq++) if (budget.allow(seq & 0xffff, 1000, stream, 5, 100)) later++;
  assert.equal(later, Math.floor((RESEND_SHARE * stream * 100) / 1000), "100 ms of refill");
});

Deno.test("resend budget: the same packet at most once per round trip", () => {
  const budget = new ResendBudget();
  assert.ok(budget.allow(7, 100, 400, 50, 0));
  assert.ok(!budget.allow(7, 100, 400, 50, 20), "asked again within the round trip");
  assert.ok(budget.allow(8, 100, 400, 50, 20), "another packet is fine");
  assert.ok(budget.allow(7, 100, 400, 50, 60), "a round trip later");
  assert.equal(budget.refused, 1);
});
