/**
 * `deno task fuzz`: throws random and mutated inputs at every parser that sees network bytes.
 *
 *   FUZZ_SEED=<n>        seed (default: random, printed first)
 *   FUZZ_COUNT=<n>       inputs in total (default 1,000,000)
 *   FUZZ_ONLY=a,b        only these targets (demux stun udp dtls srtp rtp h264 codecs rtcp sdp sessions http)
 *   FUZZ_REPLAY=t:i      regenerate and run one input of one target (from a failure line)
 *   FUZZ_TRACE=1         report every input to the watchdog (slower; names the exact input that hangs)
 *
 * The run happens in a child process; this parent is the watchdog: the child reports progress every 500
 * inputs, and if it goes quiet for FUZZ_HANG_MS (default 20 s) — an input that never returns — it is killed
 * and the last input it reported is named. Exit code 1 on any failure, hang or crash.
 */
import { formatReport } from "./engine.ts";
import { runSuite } from "./suite.ts";

const CHILD_FLAG = "--child";

if (Deno.args.includes(CHILD_FLAG)) {
  await child();
} else {
  await parent();
}

function options() {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? crypto.getRandomValues(new Uint32Array(1))[0]);
  const count = Number(Deno.env.get("FUZZ_COUNT") ?? 1_000_000);
  const only = Deno.env.get("FUZZ_ONLY")?.split(",").map((s) => s.trim()).filter(Boolean);
  const replayText = Deno.env.get("FUZZ_REPLAY");
  const replay = replayText
    ? { target: replayText.split(":")[0], index: Number(replayText.split(":")[1]) }
    : undefined;
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(count) || count < 1) {
    throw new Error("FUZZ_SEED and FUZZ_COUNT must be whole numbers");
  }
  return { seed: seed >>> 0, count, only: replay ? [replay.target] : only, replay };
}

async function parent(): Promise<void> {
  const { seed, count } = options();
  const hangMs = Number(Deno.env.get("FUZZ_HANG_MS") ?? 20_000);
  console.log(`fuzz: seed ${seed}, ${count} inputs (reproduce with FUZZ_SEED=${seed} FUZZ_COUNT=${count})`);
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      CHILD_FLAG,
    ],
    env: { FUZZ_SEED: String(seed) },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let last = "setup";
  let lastAt = performance.now();
  let hung = false;
  const watchdog = setInterval(() => {
    const quiet = performance.now() - lastAt;
    if (quiet > hangMs && !hung) {
      hung = true;
      console.log(`HANG: no progress for ${(quiet / 1000).toFixed(0)} s; last reported input ${last}`);
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }, 1000);
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of proc.stdout) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lastAt = performance.now();
      if (line.startsWith("@progress ")) {
        const [, target, index, done] = line.split(" ");
        last = `${target}#${index}`;
        if (Number(done) % 50_000 === 0) {
          const rss = childRss(proc.pid);
          console.log(`  ${done} inputs (at ${last})${rss ? `, child RSS ${rss}` : ""}`);
        }
      } else {
        console.log(line);
      }
    }
  }
  const status = await proc.status;
  clearInterval(watchdog);
  if (hung) Deno.exit(1);
  if (!status.success) {
    console.log(
      `fuzz child exited with code ${status.code}${
        status.signal ? ` (${status.signal})` : ""
      }; last input ${last}`,
    );
    Deno.exit(1);
  }
}

async function child(): Promise<void> {
  const { seed, count, only, replay } = options();
  const encoder = new TextEncoder();
  const report = await runSuite({
    seed,
    count,
    only,
    replay,
    trace: Deno.env.get("FUZZ_TRACE") === "1",
    onProgress: (target, index, done) => {
      Deno.stdout.writeSync(encoder.encode(`@progress ${target} ${index} ${done}\n`));
    },
  });
  console.log(formatReport(report));
  Deno.exit(report.failures.length === 0 ? 0 : 1);
}

function childRss(pid: number): string | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
    return kb ? `${(Number(kb) / 1024).toFixed(0)} MiB` : undefined;
  } catch {
    return undefined;
  }
}
