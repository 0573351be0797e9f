/**
 * The fuzz loop: runs each target's share of `count` inputs, each input from its own seeded generator, and
 * records what escaped (a throw, a broken invariant) and what was slow. It yields to the event loop every few
 * inputs so sends, timers and promises the targets start can complete, which keeps memory bounded.
 */
import { Rng } from "./mutate.ts";

/** One parser or entry point under test. */
export interface FuzzTarget {
  name: string;
  /** Relative share of the inputs. */
  weight: number;
  /** Runs one input. A throw (or rejected promise) is a failure. */
  run(rng: Rng, index: number): void | Promise<void>;
  /** Extra figures to print (e.g. how many inputs reached a deep path). */
  stats?(): Record<string, number>;
}

/** A failing or slow input, enough to regenerate it. */
export interface FuzzFailure {
  target: string;
  index: number;
  kind: "exception" | "slow";
  message: string;
  /** How many inputs failed the same way (same target, kind and first message line). */
  count?: number;
}

/** Per-target counts. */
export interface TargetReport {
  inputs: number;
  failures: number;
  slow: number;
  totalMs: number;
  maxMs: number;
  stats: Record<string, number>;
}

/** What a run did. */
export interface FuzzReport {
  seed: number;
  total: number;
  elapsedMs: number;
  targets: Record<string, TargetReport>;
  failures: FuzzFailure[];
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
}

/** Options for {@link runFuzz}. */
export interface FuzzOptions {
  seed: number;
  count: number;
  targets: FuzzTarget[];
  /** An input slower than this counts as a hang (default 250 ms). */
  slowMs?: number;
  /** Run only these targets (by name). */
  only?: string[];
  /** Replay a single input of one target. */
  replay?: { target: string; index: number };
  /** Called with "target index" every `progressEvery` inputs (the watchdog listens to this). */
  onProgress?: (target: string, index: number, done: number) => void;
  progressEvery?: number;
  /** Keep at most this many failures in the report. */
  maxFailures?: number;
}

const YIELD_EVERY = 64;
const TIMERS_EVERY = 4096;

// setTimeout(0) is clamped to milliseconds once nested; a MessageChannel round trip lets pending I/O (the
// sends targets start) complete in microseconds. Every few thousand inputs a real timer tick lets timers run.
function yieldToLoop(channel: MessageChannel, withTimers: boolean): Promise<void> {
  if (withTimers) return new Promise((resolve) => setTimeout(resolve, 0));
  return new Promise((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(0);
  });
}

/** Runs the targets and reports; never throws for a failing input. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const slowMs = options.slowMs ?? 250;
  const maxFailures = options.maxFailures ?? 50;
  const targets = options.targets.filter((t) => !options.only || options.only.includes(t.name));
  const weights = targets.reduce((n, t) => n + t.weight, 0);
  const report: FuzzReport = {
    seed: options.seed,
    total: 0,
    elapsedMs: 0,
    targets: {},
    failures: [],
    rssBefore: 0,
    rssAfter: 0,
    heapBefore: 0,
    heapAfter: 0,
  };
  (globalThis as { gc?: () => void }).gc?.();
  const memoryBefore = Deno.memoryUsage();
  report.rssBefore = memoryBefore.rss;
  report.heapBefore = memoryBefore.heapUsed;
  const started = performance.now();
  const progressEvery = options.progressEvery ?? 1000;
  const channel = new MessageChannel();

  for (const target of targets) {
    const stream = streamId(target.name);
    const share = options.replay
      ? (options.replay.target === target.name ? 1 : 0)
      : Math.max(1, Math.ceil(options.count * target.weight / weights));
    const r: TargetReport = { inputs: 0, failures: 0, slow: 0, totalMs: 0, maxMs: 0, stats: {} };
    report.targets[target.name] = r;
    for (let i = 0; i < share; i++) {
      const index = options.replay ? options.replay.index : i;
      const rng = new Rng(options.seed, stream, index);
      if (progressEvery === 1) options.onProgress?.(target.name, index, report.total);
      const t0 = performance.now();
      try {
        const result = target.run(rng, index);
        if (result instanceof Promise) await result;
      } catch (e) {
        r.failures++;
        record(
          report.failures,
          { target: target.name, index, kind: "exception", message: describe(e) },
          maxFailures,
        );
      }
      const ms = performance.now() - t0;
      r.inputs++;
      r.totalMs += ms;
      if (ms > r.maxMs) r.maxMs = ms;
      // A busy machine or a major GC can stall one input; a hang stalls it again when run a second time.
      if (ms > slowMs && !(await fastOnRetry(target, options.seed, stream, index, slowMs))) {
        r.slow++;
        const message = `took ${ms.toFixed(0)} ms (limit ${slowMs} ms)`;
        record(report.failures, { target: target.name, index, kind: "slow", message }, maxFailures);
      }
      report.total++;
      if (report.total % YIELD_EVERY === 0) await yieldToLoop(channel, report.total % TIMERS_EVERY === 0);
      if (progressEvery > 1 && report.total % progressEvery === 0) {
        options.onProgress?.(target.name, index, report.total);
      }
    }
    r.stats = target.stats?.() ?? {};
  }
  channel.port1.close();
  channel.port2.close();
  // Let the targets' outstanding sends and timers settle, and collect garbage (when run with
  // --v8-flags=--expose-gc, as `deno task fuzz` does) so the heap figure is what is still reachable.
  await new Promise((resolve) => setTimeout(resolve, 50));
  (globalThis as { gc?: () => void }).gc?.();
  const memoryAfter = Deno.memoryUsage();
  report.rssAfter = memoryAfter.rss;
  report.heapAfter = memoryAfter.heapUsed;
  report.elapsedMs = performance.now() - started;
  return report;
}

/** The report as printable lines. */
export function formatReport(report: FuzzReport): string {
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const lines = [
    `fuzz seed ${report.seed}: ${report.total} inputs in ${(report.elapsedMs / 1000).toFixed(1)} s, ` +
    `${report.failures.length === 0 ? "no failures" : `${report.failures.length} FAILURES`}`,
    `  RSS ${mb(report.rssBefore)} -> ${mb(report.rssAfter)}, heap ${mb(report.heapBefore)} -> ${
      mb(report.heapAfter)
    }`,
  ];
  for (const [name, t] of Object.entries(report.targets)) {
    const extra = Object.entries(t.stats).map(([k, v]) => `${k}=${v}`).join(" ");
    lines.push(
      `  ${name.padEnd(16)} ${String(t.inputs).padStart(8)} inputs  ${
        (t.totalMs / Math.max(1, t.inputs) * 1000).toFixed(0).padStart(6)
      } µs avg  max ${t.maxMs.toFixed(1).padStart(7)} ms  failures ${t.failures} slow ${t.slow}  ${extra}`,
    );
  }
  for (const f of report.failures) {
    const times = (f.count ?? 1) > 1 ? ` (and ${f.count! - 1} more like it)` : "";
    lines.push(
      `  FAIL ${f.kind} ${f.target}#${f.index}${times}: ${f.message}\n    replay: FUZZ_SEED=${report.seed} ` +
        `FUZZ_REPLAY=${f.target}:${f.index} deno task fuzz`,
    );
  }
  return lines.join("\n");
}

async function fastOnRetry(
  target: FuzzTarget,
  seed: number,
  stream: number,
  index: number,
  slowMs: number,
): Promise<boolean> {
  const t0 = performance.now();
  try {
    await target.run(new Rng(seed, stream, index), index);
  } catch { /* the first run already reported how it failed */ }
  return performance.now() - t0 <= slowMs;
}

/** Adds a failure, folding it into an earlier one of the same kind (one dead session fails every later input). */
function record(failures: FuzzFailure[], failure: FuzzFailure, max: number): void {
  const key = (f: FuzzFailure) =>
    `${f.target}|${f.kind}|${f.kind === "slow" ? "" : f.message.split("\n")[0]}`;
  const same = failures.find((f) => key(f) === key(failure));
  if (same) same.count = (same.count ?? 1) + 1;
  else if (failures.length < max) failures.push({ ...failure, count: 1 });
}

function streamId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}\n${e.stack?.split("\n").slice(1, 6).join("\n")}`;
  return String(e);
}
