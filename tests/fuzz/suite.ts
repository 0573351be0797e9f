/**
 * One fuzz run over every target: builds the in-process server, runs the engine, tears everything down.
 * Used by `deno task fuzz` (tests/fuzz/run.ts) and by the short run in `deno task test`.
 */
import { type FuzzFailure, type FuzzReport, runFuzz } from "./engine.ts";
import { createContext, createTargets } from "./targets.ts";
import { createWorld } from "./world.ts";

/** Options for {@link runSuite}. */
export interface SuiteOptions {
  seed: number;
  count: number;
  only?: string[];
  replay?: { target: string; index: number };
  slowMs?: number;
  onProgress?: (target: string, index: number, done: number) => void;
  /** Report progress before every input (to find the one that hangs). */
  trace?: boolean;
}

/** Runs the suite; asynchronous errors nobody handled (werift timers, stray promises) count as failures. */
export async function runSuite(options: SuiteOptions): Promise<FuzzReport> {
  const escaped: FuzzFailure[] = [];
  let current = { target: "setup", index: -1 };
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    escaped.push({
      ...current,
      kind: "exception",
      message: `unhandled rejection: ${describe(event.reason)}`,
    });
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    escaped.push({ ...current, kind: "exception", message: `uncaught error: ${describe(event.error)}` });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  const world = await createWorld({ viewers: 2 });
  const ctx = await createContext(world);
  try {
    const report = await runFuzz({
      seed: options.seed,
      count: options.count,
      targets: createTargets(ctx),
      only: options.only,
      replay: options.replay,
      slowMs: options.slowMs,
      progressEvery: options.trace ? 1 : 500,
      onProgress: (target, index, done) => {
        current = { target, index };
        options.onProgress?.(target, index, done);
      },
    });
    // Give werift's retransmission timers a moment to misbehave before tearing down.
    await new Promise((r) => setTimeout(r, 100));
    report.failures.push(...escaped);
    for (const f of escaped) if (report.targets[f.target]) report.targets[f.target].failures++;
    return report;
  } finally {
    for (const close of ctx.closeables) await close();
    await world.close();
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
