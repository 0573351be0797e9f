/**
 * Shared pieces of the interop tests: finding the foreign tools (so a test can be ignored, with the reason,
 * only when one is missing), running a foreign process with its output kept, and waiting for conditions.
 */
import type { NetNamespace } from "../helpers/netns.ts";

/** Whether `command` is an executable on PATH (or an absolute path to one). */
export function hasCommand(command: string): boolean {
  const dirs = command.includes("/") ? [""] : (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":");
  for (const dir of dirs) {
    try {
      const info = Deno.statSync(dir ? `${dir}/${command}` : command);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Whether a GStreamer element exists (`gst-inspect-1.0 <name>` succeeds). */
export function hasGstElement(name: string): boolean {
  if (!hasCommand("gst-inspect-1.0")) return false;
  return new Deno.Command("gst-inspect-1.0", { args: [name], stdout: "null", stderr: "null" }).outputSync()
    .success;
}

/** Whether `python` can import every module in `modules`. */
export function pythonHas(python: string, modules: string[]): boolean {
  if (!hasCommand(python)) return false;
  return new Deno.Command(python, {
    args: ["-c", modules.map((m) => `import ${m}`).join("; ")],
    stdout: "null",
    stderr: "null",
  }).outputSync().success;
}

/** The first missing tool's description, or undefined when all are present; printed when a test is ignored. */
export function missing(checks: [ok: boolean, what: string][]): string | undefined {
  const absent = checks.filter(([ok]) => !ok).map(([, what]) => what);
  if (absent.length === 0) return undefined;
  console.warn(`interop test ignored: missing ${absent.join(", ")}`);
  return absent.join(", ");
}

/** A foreign process whose stdout and stderr are collected as text. */
export interface ForeignProcess {
  child: Deno.ChildProcess;
  output(): string;
  /** Sends `signal` (default SIGINT) and waits for the exit; SIGKILL after `graceMs`. */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<Deno.CommandStatus>;
  status: Promise<Deno.CommandStatus>;
}

/** Starts `command` with piped output, inside `netns` when given. */
export function spawnForeign(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  netns?: NetNamespace,
): ForeignProcess {
  const run = netns ? netns.command(command, args) : { program: command, args };
  const child = new Deno.Command(run.program, {
    args: run.args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const status = child.status.then(async (s) => {
    await drained;
    return s;
  });
  return {
    child,
    output: () => text,
    status,
    async stop(signal: Deno.Signal = "SIGINT", graceMs = 10_000) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
      const s = await status;
      clearTimeout(timer);
      return s;
    },
  };
}

/** Polls until a condition holds (shared with the other end-to-end tests). */
export { waitFor } from "../helpers/wait.ts";

/** The names of the rooms the server lists. */
export async function roomIds(baseUrl: string): Promise<string[]> {
  const body = await (await fetch(`${baseUrl}/rooms`)).json() as { rooms: { id: string }[] };
  return body.rooms.map((r) => r.id);
}

/** Builds tests/interop/soup_shim.c (see there why) into a temporary directory. */
export async function buildSoupShim(dir: string): Promise<string> {
  const source = new URL("./soup_shim.c", import.meta.url).pathname;
  const out = `${dir}/soup_shim.so`;
  const result = await new Deno.Command("cc", { args: ["-shared", "-fPIC", "-o", out, source, "-ldl"] })
    .output();
  if (!result.success) throw new Error(`cc failed: ${new TextDecoder().decode(result.stderr)}`);
  return out;
}
