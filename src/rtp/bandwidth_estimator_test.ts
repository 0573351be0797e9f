import assert from "node:assert/strict";
import { BandwidthEstimator } from "./bandwidth_estimator.ts";
import { SentPackets } from "./sent_packets.ts";
import { TransportFeedback } from "./transport_feedback.ts";
import { TwccRecorder } from "./twcc.ts";

/**
 * A sender of 30 frames a second through a bottleneck (a FIFO draining at `linkBps`, dropping what would
 * wait over 200 ms) to a receiver that answers with real transport feedback packets every 50 ms. The send
 * rate each frame comes from `sendBps(now, estimate)`; the link's impairments from the options.
 */
function simulate(options: {
  durationMs: number;
  linkBps: (now: number) => number;
  sendBps: (now: number, estimateBps: number) => number;
  /** Random loss before the bottleneck (0..1). */
  loss?: number;
  /**
   * Extra random delay per packet (ms, uniform 0..jitter): reorders packets of a frame. (The recorder, like
   * a browser, reports a packet that arrives after the feedback covering it as lost: kept small.)
   */
  jitterMs?: number;
  onFeedback?: (now: number, estimator: BandwidthEstimator, congestion: boolean) => void;
}): BandwidthEstimator {
  const estimator = new BandwidthEstimator(1_500_000);
  const sent = new SentPackets(65_000);
  const recorder = new TwccRecorder();
  const feedback = new TransportFeedback();
  let random = 12345;
  const rand = () => ((random = (random * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let linkFreeAt = 0;
  /** Arrivals not yet reported: [arrival ms, sequence]. */
  const inFlight: [number, number][] = [];
  const pendingFeedback: [number, Uint8Array][] = [];
  let nextFrame = 0;
  let nextFeedback = 50;
  for (let now = 0; now < options.durationMs; now += 1) {
    if (now >= nextFrame) {
      nextFrame += 1000 / 30;
      const frameBytes = options.sendBps(now, estimator.estimateBps) / 8 / 30;
      for (let left = frameBytes; left > 0; left -= 1200) {
        const size = Math.min(1200, Math.max(100, left));
        const sequence = sent.record(size, now);
        if (options.loss && rand() < options.loss) continue;
        const start = Math.max(now, linkFreeAt);
        if (start - now > 200) continue; // the queue is full
        linkFreeAt = start + (size * 8 * 1000) / options.linkBps(now);
        inFlight.push([linkFreeAt + 10 + (options.jitterMs ? rand() * options.jitterMs : 0), sequence]);
      }
    }
    for (let i = inFlight.length - 1; i >= 0; i--) {
      if (inFlight[i][0] <= now) {
        recorder.record(inFlight[i][1], inFlight[i][0] * 1000);
        inFlight.splice(i, 1);
      }
    }
    if (now >= nextFeedback) {
      nextFeedback += 50;
      const packet = recorder.buildFeedback(1, 2);
      if (packet) pendingFeedback.push([now + 10, packet]);
    }
    while (pendingFeedback.length > 0 && pendingFeedback[0][0] <= now) {
      assert.ok(feedback.read(pendingFeedback.shift()![1]));
      const congestion = estimator.onFeedback(feedback, sent, now, 20);
      options.onFeedback?.(now, estimator, congestion);
    }
  }
  return estimator;
}

Deno.test("bandwidth estimator: a 1.2 Mbit/s stream into a link that falls to 600 kbit/s cuts the estimate below it within 1.5 s", () => {
  let cutAt = -1;
  let queueingAt = -1;
  let firstCutAt = -1;
  const estimates: number[] = [];
  const sentVsReceived: [number, number][] = [];
  simulate({
    durationMs: 9000,
    linkBps: (now) => now < 3000 ? 100_000_000 : 600_000,
    sendBps: () => 1_200_000,
    onFeedback: (now, e) => {
      if (now > 3000 && cutAt < 0 && e.estimateBps < 600_000) cutAt = now - 3000;
      if (now > 3000 && queueingAt < 0 && e.queueing) queueingAt = now - 3000;
      if (now > 3000 && firstCutAt < 0 && e.decreases > 0) firstCutAt = now - 3000;
      if (now > 5000) estimates.push(e.estimateBps);
      if (now > 5000) sentVsReceived.push([e.sentWindowBps, e.lastWindowBps]);
    },
  });
  // The first cut comes ~400 ms after the fall; the arriving rate it is taken from is partly smoothed (a
  // receiver's stall must not look like a slow path), so a second cut brings it below the link.
  assert.ok(cutAt > 0 && cutAt < 1500, `cut below the link ${cutAt} ms after it fell`);
  // The first signs (what a probe stops at) come within a few feedbacks, before the first cut.
  assert.ok(
    queueingAt > 0 && queueingAt < 250 && queueingAt < firstCutAt,
    `queueing ${queueingAt}, cut ${firstCutAt}`,
  );
  assert.ok(
    sentVsReceived.every(([sent, received]) => sent > 1.5 * received),
    "sends clearly more than arrives",
  );
  assert.ok(Math.max(...estimates) < 700_000, `stays near the link (max ${Math.max(...estimates)})`);
  assert.ok(Math.min(...estimates) > 250_000, `does not collapse (min ${Math.min(...estimates)})`);
});

Deno.test("bandwidth estimator: a sender following the estimate through 600 kbit/s holds near the link and climbs once it lifts", () => {
  const lift = 15_000;
  const limited: number[] = [];
  let above1200At = -1;
  simulate({
    durationMs: 30_000,
    linkBps: (now) => (now < lift ? 600_000 : 100_000_000),
    sendBps: (_now, estimate) => Math.min(estimate, 2_500_000),
    onFeedback: (now, e) => {
      if (now > 5000 && now < lift) limited.push(e.estimateBps);
      if (now > lift && above1200At < 0 && e.estimateBps > 1_200_000) above1200At = now;
    },
  });
  const mean = limited.reduce((a, b) => a + b, 0) / limited.length;
  assert.ok(mean > 400_000 && mean < 700_000, `while limited the estimate averages ${Math.round(mean)}`);
  assert.ok(
    above1200At > 0 && above1200At - lift < 12_000,
    `above 1.2 Mbit/s ${above1200At - lift} ms after the lift`,
  );
});

Deno.test("bandwidth estimator: a clean path keeps the estimate and lets it grow", () => {
  let cuts = 0;
  const e = simulate({
    durationMs: 10_000,
    linkBps: () => 100_000_000,
    sendBps: () => 1_000_000,
    onFeedback: (_now, _e, congestion) => {
      if (congestion) cuts++;
    },
  });
  assert.equal(cuts, 0);
  assert.equal(e.queueing, false);
  assert.ok(e.estimateBps >= 1_400_000, `estimate ${e.estimateBps}`);
  assert.ok(e.receivedBps > 900_000 && e.receivedBps < 1_100_000, `received ${e.receivedBps}`);
});

Deno.test("bandwidth estimator: heavy loss cuts the estimate, light loss does not", () => {
  const heavy = simulate({
    durationMs: 5000,
    linkBps: () => 100_000_000,
    sendBps: () => 1_000_000,
    loss: 0.25,
  });
  assert.ok(heavy.estimateBps < 1_000_000, `25 % loss: ${heavy.estimateBps}`);
  assert.ok(heavy.lossFraction > 0.15 && heavy.lossFraction < 0.35, `loss ${heavy.lossFraction}`);
  const light = simulate({
    durationMs: 5000,
    linkBps: () => 100_000_000,
    sendBps: () => 1_000_000,
    loss: 0.01,
  });
  assert.ok(light.estimateBps >= 1_500_000, `1 % loss: ${light.estimateBps}`);
  assert.equal(light.decreases, 0);
});

Deno.test("bandwidth estimator: reordering inside frames (jitter, no queue) is not congestion", () => {
  let cuts = 0;
  const e = simulate({
    durationMs: 10_000,
    linkBps: () => 100_000_000,
    sendBps: () => 1_000_000,
    jitterMs: 3,
    onFeedback: (_now, _e, congestion) => {
      if (congestion) cuts++;
    },
  });
  assert.equal(cuts, 0, "no cut");
  assert.ok(e.estimateBps >= 1_400_000, `estimate ${e.estimateBps}`);
});
