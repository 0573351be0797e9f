import assert from "node:assert/strict";
import { DOWN_HOLD_MS, LayerSelector, MAX_UP_HOLD_MS, PROBE_HOLD_MS, UP_HOLD_MS } from "./layer_selector.ts";

/** Feeds one report every 500 ms from `from` to `to` (exclusive); returns the levels seen. */
function feed(s: LayerSelector, from: number, to: number, loss: number, rtt?: number, levels = 3): number[] {
  const seen: number[] = [];
  for (let t = from; t < to; t += 500) seen.push(s.onReport(loss, rtt, levels, t));
  return seen;
}

Deno.test("layer selector: a clean link stays on the top layer", () => {
  const s = new LayerSelector(0);
  assert.ok(feed(s, 0, 60_000, 0, 20).every((l) => l === 0));
});

Deno.test("layer selector: loss steps down at once, then once per hold, never below the lowest layer", () => {
  const s = new LayerSelector(0);
  feed(s, 0, 10_000, 0, 20);
  assert.equal(s.onReport(0.2, 20, 3, 10_000), 1, "down at the first lossy report");
  assert.equal(s.onReport(0.2, 20, 3, 10_500), 1, "held while the first step takes effect");
  assert.equal(s.onReport(0.2, 20, 3, 10_000 + DOWN_HOLD_MS), 2);
  assert.equal(s.onReport(0.3, 20, 3, 20_000), 2, "three layers: level 2 is the lowest");
  assert.equal(s.onReport(0, 20, 2, 20_100), 1, "fewer layers sent: the level is bounded");
});

Deno.test("layer selector: a queue building up (RTT far above the path's) counts as congestion", () => {
  const s = new LayerSelector(0);
  feed(s, 0, 10_000, 0, 20);
  assert.equal(s.onReport(0, 60, 3, 10_000), 0, "some jitter is not congestion");
  assert.equal(s.onReport(0, 260, 3, 10_500), 0, "one late report is a stall, not a queue");
  assert.equal(s.onReport(0, 30, 3, 11_000), 0);
  assert.equal(s.onReport(0, 250, 3, 11_500), 0);
  assert.equal(s.onReport(0, 260, 3, 12_000), 1, "two in a row: a queue");
});

Deno.test("layer selector: up after a calm hold; a failed trial doubles the hold, a good one resets it", () => {
  const s = new LayerSelector(0);
  s.onReport(0.2, 20, 3, 0);
  assert.equal(s.level, 1);
  const calm = feed(s, 500, 500 + UP_HOLD_MS + 500, 0, 20);
  assert.equal(calm.at(-1), 0, "tried the top layer after the hold");
  const upAt = 500 + calm.indexOf(0) * 500;
  assert.ok(upAt - 0 >= UP_HOLD_MS);
  // The trial fails: congestion right after it.
  assert.equal(s.onReport(0.15, 20, 3, upAt + 1000), 1);
  assert.equal(s.upHoldMs, 2 * UP_HOLD_MS);
  const waiting = feed(s, upAt + 1500, upAt + 1000 + 2 * UP_HOLD_MS - 500, 0, 20);
  assert.ok(waiting.every((l) => l === 1), "no new trial before the doubled hold");
  assert.equal(feed(s, upAt + 1000 + 2 * UP_HOLD_MS, upAt + 1000 + 2 * UP_HOLD_MS + 500, 0, 20)[0], 0);
  // Failures never push the hold beyond its bound; a trial that holds resets it.
  let t = 100_000;
  s.onReport(0.2, 20, 3, t);
  for (let failures = 0; failures < 5; failures++) {
    assert.equal(s.level, 1);
    while (s.onReport(0, 20, 3, t += 500) === 1) assert.ok(t < 200_000, "a trial comes");
    s.onReport(0.2, 20, 3, t += 1000);
  }
  assert.equal(s.upHoldMs, MAX_UP_HOLD_MS);
  feed(s, 300_000, 330_000, 0, 20);
  assert.equal(s.level, 0);
  assert.equal(s.upHoldMs, UP_HOLD_MS);
});

const LADDER = [1_200_000, 400_000, 120_000];

/** Feeds one estimate every 100 ms from `from` to `to` (exclusive); returns the levels seen. */
function feedEstimates(
  s: LayerSelector,
  from: number,
  to: number,
  estimateBps: number,
  receivedBps: number,
  canProbe = true,
): number[] {
  const seen: number[] = [];
  for (let t = from; t < to; t += 100) {
    seen.push(
      s.onEstimate(
        { estimateBps, receivedBps, sentBps: 0, congestion: false, queueing: false },
        LADDER,
        canProbe,
        t,
      ),
    );
  }
  return seen;
}

Deno.test("layer selector (estimate): congestion goes straight to the best layer that fits the estimate", () => {
  const s = new LayerSelector(0);
  feedEstimates(s, 0, 10_000, 2_000_000, 1_200_000);
  assert.equal(s.level, 0);
  // A 600 kbit/s link: the cut estimate is 0.85 of it; the 400 kbit/s layer fits (with headroom).
  assert.equal(
    s.onEstimate(
      { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
      LADDER,
      true,
      10_000,
    ),
    1,
  );
  assert.equal(
    s.onEstimate(
      { estimateBps: 500_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
      LADDER,
      true,
      10_300,
    ),
    1,
    "held while the step takes effect",
  );
  // A link far below: two steps at once.
  const t = new LayerSelector(0);
  feedEstimates(t, 0, 10_000, 2_000_000, 1_200_000);
  assert.equal(
    t.onEstimate(
      { estimateBps: 200_000, receivedBps: 240_000, sentBps: 0, congestion: true, queueing: true },
      LADDER,
      true,
      10_000,
    ),
    2,
  );
  // A cut that still leaves room for the current layer keeps it (the cause was passing).
  const u = new LayerSelector(0);
  feedEstimates(u, 0, 10_000, 2_000_000, 1_200_000);
  assert.equal(
    u.onEstimate(
      { estimateBps: 1_300_000, receivedBps: 1_500_000, sentBps: 0, congestion: true, queueing: true },
      LADDER,
      true,
      10_000,
    ),
    0,
  );
});

Deno.test("layer selector (estimate): up only after a probe at the top layer's rate got through", () => {
  const s = new LayerSelector(0);
  s.onEstimate(
    { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    true,
    0,
  );
  assert.equal(s.level, 1);
  // Calm: after the hold a probe starts (extra 800 kbit/s), the layer stays meanwhile.
  feedEstimates(s, 100, PROBE_HOLD_MS, 600_000, 400_000);
  assert.equal(s.probeBps, 0, "no probe before the hold");
  feedEstimates(s, PROBE_HOLD_MS, PROBE_HOLD_MS + 100, 600_000, 400_000);
  assert.equal(s.probeBps, 800_000);
  assert.equal(s.level, 1);
  // The probe gets through: the viewer received the top layer's rate; up once its feedback is in.
  const during = feedEstimates(s, PROBE_HOLD_MS + 100, PROBE_HOLD_MS + 700, 900_000, 1_300_000);
  assert.ok(during.every((l) => l === 1));
  const after = feedEstimates(s, PROBE_HOLD_MS + 700, PROBE_HOLD_MS + 1500, 1_000_000, 400_000);
  assert.equal(s.probeBps, 0, "the probe stopped");
  assert.equal(after.at(-1), 0, "up after the probe");
  assert.equal(s.probesPassed, 1);
});

Deno.test("layer selector (estimate): a probe that meets congestion ends, keeps the layer and doubles the hold", () => {
  const s = new LayerSelector(0);
  s.onEstimate(
    { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    true,
    0,
  );
  feedEstimates(s, 100, PROBE_HOLD_MS + 100, 600_000, 400_000);
  assert.ok(s.probeBps > 0);
  // Over a 600 kbit/s link the probe fills the queue: congestion, estimate 510k (the 400k layer still fits).
  assert.equal(
    s.onEstimate(
      { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
      LADDER,
      true,
      PROBE_HOLD_MS + 400,
    ),
    1,
  );
  assert.equal(s.probeBps, 0);
  assert.equal(s.probesFailed, 1);
  assert.equal(s.probeHoldMs, 2 * PROBE_HOLD_MS);
  // A probe that just falls short with no sign of a queue sent too little: it fails, and the next one,
  // after the usual wait, sends half as much again.
  const t = new LayerSelector(0);
  t.onEstimate(
    { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    true,
    0,
  );
  feedEstimates(t, 100, PROBE_HOLD_MS + 100, 600_000, 400_000);
  assert.equal(t.probeBps, 800_000);
  feedEstimates(t, PROBE_HOLD_MS + 100, PROBE_HOLD_MS + 1000, 600_000, 600_000);
  assert.equal(t.level, 1);
  assert.equal(t.probesFailed, 1);
  assert.equal(t.probeHoldMs, PROBE_HOLD_MS, "no longer wait");
  feedEstimates(t, PROBE_HOLD_MS + 1000, 2 * PROBE_HOLD_MS + 1100, 600_000, 400_000);
  assert.equal(t.probeBps, 1_200_000);
});

Deno.test("layer selector (estimate): without probing (no RTX) the step up is a plain trial after the hold", () => {
  const s = new LayerSelector(0);
  s.onEstimate(
    { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    false,
    0,
  );
  const levels = feedEstimates(s, 100, PROBE_HOLD_MS + 500, 600_000, 400_000, false);
  assert.equal(levels.at(-1), 0);
  assert.equal(s.probeBps, 0);
  assert.equal(s.probesPassed + s.probesFailed, 0);
});

Deno.test("layer selector (estimate): congestion while the layer all arrives (a burst) keeps the layer", () => {
  const s = new LayerSelector(0);
  s.onEstimate(
    { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    true,
    0,
  );
  assert.equal(s.level, 1);
  // On the 400 kbit/s layer, a keyframe's burst delays packets: the cut estimate is 0.85 of ~400k, below
  // the layer, yet all of it arrives.
  assert.equal(
    s.onEstimate(
      { estimateBps: 340_000, receivedBps: 400_000, sentBps: 0, congestion: true, queueing: true },
      LADDER,
      true,
      5000,
    ),
    1,
  );
  // Nor does it hold back the next probe (a loaded receiver's stalls look like this too).
  feedEstimates(s, 5100, 5200, 400_000, 400_000);
  assert.ok(s.probeBps > 0, "probing");
});

Deno.test("layer selector (estimate): a probe stops at the first signs of a queue, before any cut", () => {
  const s = new LayerSelector(0);
  s.onEstimate(
    { estimateBps: 510_000, receivedBps: 600_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    true,
    0,
  );
  feedEstimates(s, 100, PROBE_HOLD_MS + 100, 600_000, 400_000);
  assert.ok(s.probeBps > 0);
  s.onEstimate(
    { estimateBps: 600_000, receivedBps: 600_000, sentBps: 0, congestion: false, queueing: true },
    LADDER,
    true,
    PROBE_HOLD_MS + 300,
  );
  assert.equal(s.probeBps, 0);
  assert.equal(s.probesFailed, 1);
  assert.equal(s.level, 1);
  assert.equal(s.congestions, 1, "not counted as congestion");
});

Deno.test("layer selector (estimate): what was sent to the viewer counts when the layer's own rate looks low", () => {
  // The publisher's layer measured low at ingress, yet with resends the viewer was sent twice what arrived.
  const s = new LayerSelector(0);
  assert.equal(
    s.onEstimate(
      { estimateBps: 255_000, receivedBps: 300_000, sentBps: 650_000, congestion: true, queueing: true },
      [280_000, 200_000, 100_000],
      true,
      0,
    ),
    1,
  );
});

Deno.test("layer selector (estimate): a probe from the lowest layer that carries only the middle one goes there", () => {
  const s = new LayerSelector(0);
  s.onEstimate(
    { estimateBps: 150_000, receivedBps: 180_000, sentBps: 0, congestion: true, queueing: true },
    LADDER,
    true,
    0,
  );
  assert.equal(s.level, 2);
  feedEstimates(s, 100, PROBE_HOLD_MS + 100, 150_000, 120_000);
  assert.equal(s.probeBps, 1_200_000 - 120_000, "probes at the top layer's rate");
  // 600 kbit/s got through, then a queue showed: the probe ends there, on the 400 kbit/s layer.
  feedEstimates(s, PROBE_HOLD_MS + 100, PROBE_HOLD_MS + 400, 200_000, 600_000);
  assert.equal(
    s.onEstimate(
      { estimateBps: 300_000, receivedBps: 600_000, sentBps: 0, congestion: false, queueing: true },
      LADDER,
      true,
      PROBE_HOLD_MS + 400,
    ),
    1,
  );
  assert.equal(s.probeBps, 0);
  // The probe's queue drains: congestion right after it is not the new layer's doing.
  assert.equal(
    s.onEstimate(
      { estimateBps: 300_000, receivedBps: 350_000, sentBps: 600_000, congestion: true, queueing: true },
      LADDER,
      true,
      PROBE_HOLD_MS + 700,
    ),
    1,
  );
});
