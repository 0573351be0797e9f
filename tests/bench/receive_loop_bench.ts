/**
 * What a Deno receive loop costs per datagram, by way of reading: a child process does nothing but read
 * 1200-byte datagrams on loopback, paced by a small C sender (`paced_sender/paced_sender.c`, each datagram at
 * its own due time), and the child's CPU (all threads, from /proc/PID/task/STAR/schedstat, ns) is divided by
 * the datagrams it read. Rates 250/s (one publisher's audio + low video), 2,500/s and 20,000/s. It separates
 * what waking up for a datagram costs from what the server does with it.
 *
 * - `deno`: `DatagramConn.receive(buffer)`, one op per datagram (the fallback path of src/net/udp.ts).
 * - `drain`: `receive(buffer)` to wait, then `recvmmsg(MSG_DONTWAIT)` through FFI until the socket is empty.
 * - `ffi-poll`: no Deno receive: a nonblocking FFI `poll` (run on Deno's blocking-thread pool) waits, then the
 *   main thread drains with `recvmmsg(MSG_DONTWAIT)`.
 * - `coalesce`: like `drain`, but after a wake-up that found 2 or more datagrams (busy), the next one is a
 *   1 ms timer instead of a receive op (adds ≤ 1 ms of latency, only when busy).
 * - `thread`: src/net/receive_thread.ts: a Worker blocks in `poll`/`recvmmsg` and fills a shared ring; the
 *   main thread waits with `Atomics.waitAsync` and drains the ring per wake-up.
 *
 * Run: `deno run --unstable-net --allow-all tests/bench/receive_loop_bench.ts [--rates 250,2500,20000]
 * [--modes deno,drain,ffi-poll,coalesce,thread] [--seconds 5] [--burst 1] [--repeat 1]`. Needs gcc (builds the sender
 * once into storage/bench-cache/). Loopback only.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { socketFd } from "../../src/net/socket_fd.ts";
import { ReceiveThread } from "../../src/net/receive_thread.ts";

const MODES = ["deno", "drain", "ffi-poll", "coalesce", "thread"] as const;
type Mode = typeof MODES[number];
const ROOT = new URL("../../", import.meta.url).pathname;
const SENDER_SOURCE = new URL("./paced_sender/paced_sender.c", import.meta.url).pathname;
/** Seconds the sender runs before the window opens. */
const WARM_UP_SECONDS = 1;
/** Seconds the idle child is measured (its cost per second is subtracted from the window). */
const IDLE_SECONDS = 2;

const BATCH = 64;
const SLOT = 2048;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;
const SYMBOLS = {
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  pollWait: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const;

/** mmsghdr array with one iovec and one 2 KiB slot per entry (no source address wanted). */
function batchHeaders(): { headers: Uint8Array; keep: unknown[] } {
  const data = new Uint8Array(BATCH * SLOT);
  const iovecs = new DataView(new ArrayBuffer(BATCH * 16));
  const headers = new Uint8Array(BATCH * 64);
  const view = new DataView(headers.buffer);
  const address = (v: ArrayBufferView) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(v)));
  for (let i = 0; i < BATCH; i++) {
    iovecs.setBigUint64(i * 16, address(data) + BigInt(i * SLOT), true);
    iovecs.setBigUint64(i * 16 + 8, BigInt(SLOT), true);
    view.setBigUint64(i * 64 + 16, address(iovecs) + BigInt(i * 16), true);
    view.setBigUint64(i * 64 + 24, 1n, true);
  }
  return { headers, keep: [data, iovecs] };
}

async function child(mode: Mode): Promise<void> {
  let received = 0;
  let wakeUps = 0;
  // The parent reads the counts and kills this process; the loops below never end.
  setInterval(() => console.log(`COUNT ${received} ${wakeUps}`), 100);
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (conn.addr as Deno.NetAddr).port;
  const buffer = new Uint8Array(65536);
  if (mode === "deno") {
    console.log(`READY ${port}`);
    for (;;) {
      await conn.receive(buffer);
      received++;
      wakeUps++;
    }
  }
  if (mode === "thread") {
    const thread = ReceiveThread.open(conn);
    if (!thread || await thread.ready()) {
      throw new Error(`no receive thread: ${ReceiveThread.unavailableReason}`);
    }
    console.log(`READY ${port}`);
    await thread.run({
      datagram: () => received++,
      batchDone: () => wakeUps++,
      oversize: () => {},
    });
    return;
  }
  const lib = Deno.dlopen("libc.so.6", SYMBOLS);
  const fd = socketFd(port)!;
  // `keep` holds the slots and iovecs the headers point at: they must outlive every recvmmsg.
  const { headers, keep } = batchHeaders();
  const drain = (): number => {
    let got = 0;
    for (;;) {
      const n = lib.symbols.recvmmsg(fd, headers, BATCH, MSG_DONTWAIT, null);
      if (n <= 0) return got;
      got += n;
      if (n < BATCH) return got;
    }
  };
  console.log(`READY ${port}`);
  globalThis.addEventListener("unload", () => keep.length);
  if (mode === "ffi-poll") {
    const pollFd = new Uint8Array(8);
    new DataView(pollFd.buffer).setInt32(0, fd, true);
    new DataView(pollFd.buffer).setInt16(4, POLLIN, true);
    for (;;) {
      await lib.symbols.pollWait(pollFd, 1n, -1);
      wakeUps++;
      received += drain();
    }
  }
  let busy = false;
  for (;;) {
    if (mode === "coalesce" && busy) await new Promise((r) => setTimeout(r, 1));
    else {
      await conn.receive(buffer);
      received++;
    }
    wakeUps++;
    const got = drain();
    received += got;
    busy = got >= 1;
  }
}

/**
 * CPU time of every thread of `pid` so far and of its main thread, µs (schedstat's first field is ns on the
 * CPU; /proc's stat has only 10 ms ticks).
 */
function threadsCpuMicros(pid: number): { all: number; main: number } {
  let ns = 0;
  let main = 0;
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const taskNs = Number(
          Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0],
        );
        ns += taskNs;
        if (task.name === String(pid)) main = taskNs;
      } catch { /* thread ended meanwhile */ }
    }
  } catch { /* the process ended */ }
  return { all: ns / 1000, main: main / 1000 };
}

/** Builds the paced sender once (cached by source hash). */
async function buildSender(): Promise<string> {
  const source = await Deno.readFile(SENDER_SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 12);
  const dir = join(ROOT, "storage/bench-cache");
  const binary = join(dir, `paced_sender-${hash}`);
  try {
    await Deno.stat(binary);
    return binary;
  } catch { /* not built yet */ }
  await Deno.mkdir(dir, { recursive: true });
  const { code, stderr } = await new Deno.Command("gcc", {
    args: ["-O2", "-o", binary, SENDER_SOURCE],
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`building the paced sender failed: ${new TextDecoder().decode(stderr)}`);
  return binary;
}

async function measure(sender: string, mode: Mode, rate: number, burst: number, seconds: number) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-all", new URL(import.meta.url).pathname, "--child", mode],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let count = 0;
  let wakeUps = 0;
  let resolvePort: (p: number) => void = () => {};
  const ready = new Promise<number>((r) => resolvePort = r);
  const reading = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of proc.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const ready = /^READY (\d+)/.exec(line);
        if (ready) resolvePort(Number(ready[1]));
        const counts = /^COUNT (\d+) (\d+)/.exec(line);
        if (counts) [count, wakeUps] = [Number(counts[1]), Number(counts[2])];
      }
    }
  })();
  const port = await ready;
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // The idle process (timers, V8's threads) costs CPU too: measured first, subtracted from the window.
  await pause(500);
  const idle0 = threadsCpuMicros(proc.pid);
  await pause(IDLE_SECONDS * 1000);
  const idle1 = threadsCpuMicros(proc.pid);
  const idleMicros = (idle1.all - idle0.all) * seconds / IDLE_SECONDS;
  const idleMainMicros = (idle1.main - idle0.main) * seconds / IDLE_SECONDS;
  const sending = new Deno.Command(sender, {
    args: [String(port), String(rate), String(WARM_UP_SECONDS + seconds + 1), String(burst)],
    stdout: "null",
  }).spawn();
  await pause(WARM_UP_SECONDS * 1000);
  const cpu0 = threadsCpuMicros(proc.pid);
  const [count0, wake0] = [count, wakeUps];
  await pause(seconds * 1000);
  const cpu1 = threadsCpuMicros(proc.pid);
  const [count1, wake1] = [count, wakeUps];
  sending.kill("SIGKILL");
  await sending.status;
  proc.kill("SIGKILL");
  await proc.status;
  await reading.catch(() => {});
  const packets = count1 - count0;
  return {
    perSecond: packets / seconds,
    microsPerDatagram: (cpu1.all - cpu0.all - idleMicros) / packets,
    mainMicrosPerDatagram: (cpu1.main - cpu0.main - idleMainMicros) / packets,
    perWakeUp: packets / Math.max(1, wake1 - wake0),
  };
}

if (Deno.args[0] === "--child") {
  await child(Deno.args[1] as Mode);
} else {
  const flag = (name: string, fallback: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : fallback;
  };
  const rates = flag("rates", "250,2500,20000").split(",").map(Number);
  const modes = flag("modes", MODES.join(",")).split(",") as Mode[];
  if (modes.some((m) => !MODES.includes(m))) throw new Error(`--modes takes ${MODES.join(",")}`);
  const seconds = Number(flag("seconds", "5"));
  const burst = Number(flag("burst", "1"));
  const repeat = Number(flag("repeat", "1"));
  const sender = await buildSender();
  const load = Deno.loadavg()[0];
  const lines = [
    `Receiving 1200-byte datagrams on loopback, paced (burst ${burst}), ${seconds} s per cell, median of ${repeat}`,
    "CPU µs per datagram of the receiving process (all threads, minus the same process idle for as long)",
    "{range over repeats} [of which the main thread] (datagrams per main-thread wake-up)",
    `| rate/s | ${modes.join(" | ")} |`,
    `|---|${modes.map(() => "---").join("|")}|`,
  ];
  type Result = Awaited<ReturnType<typeof measure>>;
  const median = (values: number[]) => {
    const sorted = values.toSorted((a, b) => a - b);
    const mid = sorted.length / 2;
    return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)];
  };
  for (const rate of rates) {
    // Repeats rotate the order of the modes, so a drift in the machine's load falls on all of them.
    const results = new Map<Mode, Result[]>(modes.map((m) => [m, []]));
    for (let r = 0; r < repeat; r++) {
      for (let i = 0; i < modes.length; i++) {
        const mode = modes[(i + r) % modes.length];
        results.get(mode)!.push(await measure(sender, mode, rate, burst, seconds));
      }
    }
    const baseline = median(results.get(modes[0])!.map((r) => r.microsPerDatagram));
    const cells = modes.map((mode) => {
      const runs = results.get(mode)!;
      const micros = median(runs.map((r) => r.microsPerDatagram));
      const ratio = mode === modes[0] ? "" : ` ${(micros / baseline).toFixed(2)}×`;
      const perSecond = median(runs.map((r) => r.perSecond));
      const lost = perSecond < rate * 0.97 ? ` LOST ${Math.round(100 - 100 * perSecond / rate)}%` : "";
      const spread = runs.length > 1
        ? ` {${Math.min(...runs.map((r) => r.microsPerDatagram)).toFixed(0)}–${
          Math.max(...runs.map((r) => r.microsPerDatagram)).toFixed(0)
        }}`
        : "";
      return `${micros.toFixed(1)}${ratio}${spread} [${
        median(runs.map((r) => r.mainMicrosPerDatagram)).toFixed(1)
      }] (${median(runs.map((r) => r.perWakeUp)).toFixed(1)})${lost}`;
    });
    lines.push(`| ${rate} | ${cells.join(" | ")} |`);
  }
  lines.push(`load average ${load.toFixed(2)} → ${Deno.loadavg()[0].toFixed(2)}; ratios vs ${modes[0]}`);
  console.log(lines.join("\n"));
}
