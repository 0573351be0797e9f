/**
 * What fan-out workers take off the main thread, without clients in the way: one process forwards a paced
 * publisher stream (`--rate` packets/s of 1,200 bytes) to `--viewers` receivers on loopback, each with its own
 * SRTP keys, either on the main thread (seal into `sendmmsg` slots, as a peer does with FANOUT_WORKERS=0) or
 * through a FanoutPool of 1 and 2 workers (as a peer does by default). The receivers are bound but never read
 * (the kernel drops what overflows their buffers), so the cost measured is the server's alone. Per case it
 * prints the main thread's CPU per forwarded packet and the workers' per packet they sealed (from
 * /proc/self/task), the share the workers sent (the rest overflowed their rings), and the main thread's worst
 * lag behind the stream's pace (0 workers: every packet is sent, late).
 *
 * `deno run --unstable-net --allow-all tests/bench/fanout_workers_bench.ts [--viewers 100,200,400]
 * [--rate 320] [--seconds 4]`
 */
import { FanoutPool } from "../../src/net/fanout.ts";
import { SendTo } from "../../src/net/udp_sendto.ts";
import { createSrtpContext, type SrtpContext } from "../../src/srtp/context.ts";
import { threadCpuMicros } from "./proc_stats.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}
const VIEWER_COUNTS = flag("viewers", "100,200,400").split(",").map(Number);
const RATE = Number(flag("rate", "320"));
const SECONDS = Number(flag("seconds", "4"));
const WORKER_COUNTS = flag("workers", "0,1,2").split(",").map(Number);

interface CaseResult {
  workers: number;
  viewers: number;
  forwardedPerSecond: number;
  mainMicrosPerPacket: number;
  /** Worker CPU per packet the workers sealed. */
  workerMicrosPerPacket: number;
  /** Packets sealed and handed to the kernel ÷ packets forwarded (below 1: the rings overflowed). */
  sentShare: number;
  lagMs: number;
  ringDrops: number;
  sendErrors: number;
}

/** CPU of this process's fan-out worker threads (named worker-N by Deno), by thread id. */
function workerThreadTimes(): Map<number, number> {
  const times = new Map<number, number>();
  for (const entry of Deno.readDirSync(`/proc/self/task`)) {
    const tid = Number(entry.name);
    if (tid === Deno.pid) continue;
    try {
      const comm = Deno.readTextFileSync(`/proc/self/task/${tid}/comm`).trim();
      if (comm.startsWith("worker-")) times.set(tid, threadCpuMicros(Deno.pid, tid));
    } catch { /* thread ended */ }
  }
  return times;
}

/** CPU the worker threads used between two snapshots (threads that ended in between are not counted). */
function workerCpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [tid, cpu] of after) sum += cpu - (before.get(tid) ?? 0);
  return sum;
}

let lastFigures: unknown = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runCase(workers: number, viewerCount: number): Promise<CaseResult> {
  const media = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const sendTo = SendTo.open((media.addr as Deno.NetAddr).port)!;
  const pool = workers > 0
    ? new FanoutPool(workers, sendTo.fd, {
      log: (level, message) => level === "error" && console.error(message),
    })
    : undefined;
  const receivers: Deno.DatagramConn[] = [];
  const viewers: { srtp: SrtpContext; to: Deno.NetAddr; seat?: ReturnType<FanoutPool["assign"]> }[] = [];
  for (let i = 0; i < viewerCount; i++) {
    const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    receivers.push(conn);
    const key = crypto.getRandomValues(new Uint8Array(16));
    const salt = crypto.getRandomValues(new Uint8Array(12));
    const srtp = createSrtpContext({
      profile: 7,
      localMasterKey: key,
      localMasterSalt: salt,
      remoteMasterKey: key,
      remoteMasterSalt: salt,
    });
    viewers.push({ srtp, to: conn.addr as Deno.NetAddr, seat: pool?.assign(7, key, salt, () => {}) });
  }
  // The workers load their modules, then a second of the stream warms up both sides.
  if (pool) {
    const deadline = performance.now() + 20_000;
    while (!pool.figures().every((f) => f.running) && performance.now() < deadline) await sleep(50);
  }
  const buffer = new Uint8Array(1200).fill(7);
  buffer.set([0x80, 96, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  let sequence = 0;
  /** One publisher packet to every viewer, the way the room's forwarder and the peers do it. */
  const forward = () => {
    const packet = buffer.subarray(0, 1200); // a new view per publisher packet, like the rewriter's
    for (let v = 0; v < viewers.length; v++) {
      const viewer = viewers[v];
      // The rewriter's per-viewer header write: sequence number and SSRC bytes in place.
      packet[2] = sequence >> 8;
      packet[3] = sequence;
      packet[10] = v >> 8;
      packet[11] = v;
      if (viewer.seat) {
        viewer.seat.send(packet, 12, viewer.to);
        continue;
      }
      const slot = sendTo.reserve(viewer.to)!;
      sendTo.commit(viewer.srtp.protectRtpInto(packet, 12, slot));
    }
    sendTo.flush();
    sequence = (sequence + 1) & 0xffff;
  };
  /** Sends `seconds` of the stream at its pace; returns the main thread's worst lag behind it. */
  const stream = async (seconds: number): Promise<number> => {
    const start = performance.now();
    const total = Math.round(RATE * seconds);
    let sent = 0;
    let lagMs = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RATE) + 1);
      lagMs = Math.max(lagMs, performance.now() - (start + (sent / RATE) * 1000));
      while (sent < due) {
        forward();
        sent++;
        await Promise.resolve(); // the end of a datagram's task: the pool wakes its workers
      }
      await sleep(1);
    }
    return lagMs;
  };
  const handled = () => (pool?.figures() ?? []).reduce((s, f) => s + f.sealed + f.ringDrops + f.orphaned, 0);
  await stream(1);
  const warmDeadline = performance.now() + 3000;
  while (pool && handled() < RATE * viewerCount && performance.now() < warmDeadline) await sleep(20);
  const handledBefore = handled();
  const before = { main: threadCpuMicros(Deno.pid, Deno.pid), workers: workerThreadTimes() };
  const figuresBefore = pool?.figures() ?? [];
  const lagMs = await stream(SECONDS);
  const total = Math.round(RATE * SECONDS);
  // The workers finish what is queued (or are given up on: a starved thread shows as a share not sent).
  const drainDeadline = performance.now() + 3000;
  while (pool && handled() - handledBefore < total * viewerCount && performance.now() < drainDeadline) {
    await sleep(20);
  }
  const after = { main: threadCpuMicros(Deno.pid, Deno.pid), workers: workerThreadTimes() };
  lastFigures = pool?.figures() ?? [];
  const figures = (pool?.figures() ?? []).map((f, i) => ({
    ...f,
    sealed: f.sealed - (figuresBefore[i]?.sealed ?? 0),
    sent: f.sent - (figuresBefore[i]?.sent ?? 0),
    ringDrops: f.ringDrops - (figuresBefore[i]?.ringDrops ?? 0),
    sendErrors: f.sendErrors - (figuresBefore[i]?.sendErrors ?? 0),
  }));
  const forwarded = total * viewerCount;
  const result: CaseResult = {
    workers,
    viewers: viewerCount,
    forwardedPerSecond: forwarded / SECONDS,
    mainMicrosPerPacket: (after.main - before.main) / forwarded,
    workerMicrosPerPacket: pool
      ? workerCpuBetween(before.workers, after.workers) / figures.reduce((s, f) => s + f.sealed, 0)
      : NaN,
    sentShare: pool ? figures.reduce((s, f) => s + f.sent, 0) / forwarded : 1,
    lagMs,
    ringDrops: figures.reduce((s, f) => s + f.ringDrops, 0),
    sendErrors: figures.reduce((s, f) => s + f.sendErrors, 0) + sendTo.dropped,
  };
  pool?.close();
  // The stopped workers' threads end before the next case, so their CPU is not counted in it.
  const exitDeadline = performance.now() + 5000;
  while (workerThreadTimes().size > 0 && performance.now() < exitDeadline) await sleep(50);
  sendTo.close();
  for (const viewer of viewers) viewer.srtp.close();
  for (const conn of [media, ...receivers]) conn.close();
  await sleep(300);
  return result;
}

const results: CaseResult[] = [];
for (const viewerCount of VIEWER_COUNTS) {
  for (const workers of WORKER_COUNTS) {
    const r = await runCase(workers, viewerCount);
    results.push(r);
    console.error(JSON.stringify(r));
    if (Deno.env.get("FANOUT_BENCH_DEBUG")) console.error(JSON.stringify(lastFigures));
  }
}
console.log(
  `\nFan-out in one process, ${RATE} publisher packets/s of 1,200 bytes, ${SECONDS} s per case; ` +
    `${navigator.hardwareConcurrency} cores, load ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}\n`,
);
console.log(
  "| viewers | workers | offered pkt/s | main thread µs/pkt | main ÷ 0 workers | workers µs per sealed pkt | " +
    "sent | main thread's worst lag | ring drops | send errors |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  const base = results.find((b) => b.viewers === r.viewers && b.workers === 0);
  console.log(
    `| ${r.viewers} | ${r.workers} | ${Math.round(r.forwardedPerSecond).toLocaleString("en")} | ` +
      `${r.mainMicrosPerPacket.toFixed(2)} | ` +
      `${base ? (r.mainMicrosPerPacket / base.mainMicrosPerPacket).toFixed(2) + "×" : "-"} | ` +
      `${Number.isNaN(r.workerMicrosPerPacket) ? "-" : r.workerMicrosPerPacket.toFixed(2)} | ` +
      `${(r.sentShare * 100).toFixed(1)} % | ${r.lagMs.toFixed(0)} ms | ${r.ringDrops} | ${r.sendErrors} |`,
  );
}
