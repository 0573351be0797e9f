/**
 * How to move decrypted RTP packets from the main thread to a fan-out worker in Deno, measured
 * (`deno run --unstable-net --allow-all tests/bench/worker_transport_bench.ts`): the main thread pushes 1200-byte packets as
 * fast as it can and one worker reads each header, copies the packet into an outbox slot and checks the
 * sequence numbers, over
 * (a) a BroadcastChannel, packets batched into one ArrayBuffer per message (structured clone copies it),
 * (b) `postMessage` with the batch's ArrayBuffer transferred (the worker hands it back for reuse),
 * (c) a SharedArrayBuffer ring of slots with Atomics (the index published and the worker woken once a batch).
 * For each it prints packets per second end to end, the main thread's µs per packet (time inside the
 * sending loop, which is all synchronous) and the process's CPU µs per packet (all threads, /proc).
 * Then a feasibility check: a worker sends datagrams on the main thread's UDP socket with libc `sendmmsg`
 * through FFI (the descriptor found by src/net/socket_fd.ts), and the main thread's receiver checks they
 * arrive from that socket's port.
 *
 * Options: --packets N (default 200000), --batches LIST (default 1,16,64).
 */
import { processCpu } from "./proc_stats.ts";
import { raiseReceiveBuffer } from "../../src/net/socket_buffer.ts";
import { RING_CONTROL_BYTES, RING_READ, RING_WRITE, type WorkerTask } from "./worker_transport_worker.ts";

const PACKET_BYTES = 1200;
const WORKER_URL = new URL("./worker_transport_worker.ts", import.meta.url).href;
const RING_SLOTS = 4096;
const RING_SLOT_BYTES = 1280;

/** One transport's figures. */
interface TransportResult {
  transport: string;
  batch: number;
  packetsPerSecond: number;
  mainMicrosPerPacket: number;
  cpuMicrosPerPacket: number;
  received: number;
  outOfOrder: number;
  /** Times the ring was full and the main thread had to wait (ring only). */
  fullWaits: number;
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function cpuMicros(): number {
  const { user, system } = processCpu(Deno.pid);
  return user + system;
}

/** The packets the main thread sends, cycled: distinct payloads, consecutive sequence numbers set on send. */
function samplePackets(): Uint8Array[] {
  return Array.from({ length: 64 }, (_, k) => {
    const p = new Uint8Array(PACKET_BYTES);
    p[0] = 0x80;
    p[1] = 96;
    for (let i = 12; i < p.length; i++) p[i] = (i + k) & 0xff;
    return p;
  });
}

/** Writes `count` packets starting at sequence `seq` into a batch buffer (packets, lengths, count). */
function fillBatch(buffer: ArrayBuffer, packets: Uint8Array[], seq: number, count: number): void {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const lengthsAt = buffer.byteLength - 2 - count * 2;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const p = packets[(seq + i) & 63];
    p[2] = ((seq + i) >> 8) & 0xff;
    p[3] = (seq + i) & 0xff;
    bytes.set(p, offset);
    view.setUint16(lengthsAt + i * 2, p.length, true);
    offset += p.length;
  }
  view.setUint16(buffer.byteLength - 2, count, true);
}

const batchBytes = (count: number) => count * PACKET_BYTES + count * 2 + 2;

function startWorker(task: WorkerTask): Promise<{ worker: Worker; done: Promise<Record<string, number>> }> {
  const worker = new Worker(WORKER_URL, { type: "module" });
  let resolveDone: (v: Record<string, number>) => void = () => {};
  const done = new Promise<Record<string, number>>((r) => resolveDone = r);
  return new Promise((resolve, reject) => {
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    worker.onmessage = (e: MessageEvent) => {
      if (e.data?.ready) resolve({ worker, done });
      else if (e.data instanceof ArrayBuffer) returned.push(e.data);
      else resolveDone(e.data);
    };
    worker.postMessage(task);
  });
}

/** Buffers the transfer worker handed back. */
const returned: ArrayBuffer[] = [];

async function run(transport: "broadcast" | "transfer" | "ring", total: number, batch: number) {
  const packets = samplePackets();
  const count = Math.floor(total / batch) * batch;
  let ring: SharedArrayBuffer | undefined;
  let channel: BroadcastChannel | undefined;
  const name = `packets-${crypto.randomUUID()}`;
  let task: WorkerTask;
  if (transport === "broadcast") {
    channel = new BroadcastChannel(name);
    task = { mode: "broadcast", channel: name, packets: count };
  } else if (transport === "transfer") task = { mode: "transfer", packets: count };
  else {
    ring = new SharedArrayBuffer(RING_CONTROL_BYTES + RING_SLOTS * 2 + RING_SLOTS * RING_SLOT_BYTES);
    task = { mode: "ring", packets: count, ring, slots: RING_SLOTS, slotBytes: RING_SLOT_BYTES };
  }
  returned.length = 0;
  const { worker, done } = await startWorker(task);
  const cpuBefore = cpuMicros();
  const t0 = performance.now();
  let mainMs = 0;
  let fullWaits = 0;
  if (transport === "ring") {
    const control = new Int32Array(ring!, 0, RING_CONTROL_BYTES / 4);
    const lengths = new Uint16Array(ring!, RING_CONTROL_BYTES, RING_SLOTS);
    const data = new Uint8Array(ring!, RING_CONTROL_BYTES + RING_SLOTS * 2);
    let write = 0;
    for (let sent = 0; sent < count; sent += batch) {
      const start = performance.now();
      // A full ring: a server would drop for this worker; here the producer waits so every packet counts.
      while (write + batch - Atomics.load(control, RING_READ) > RING_SLOTS) {
        fullWaits++;
        mainMs += performance.now() - start;
        await new Promise((r) => setTimeout(r, 0));
      }
      const resumed = performance.now();
      for (let i = 0; i < batch; i++) {
        const seq = sent + i;
        const p = packets[seq & 63];
        p[2] = (seq >> 8) & 0xff;
        p[3] = seq & 0xff;
        const slot = (write + i) % RING_SLOTS;
        data.set(p, slot * RING_SLOT_BYTES);
        lengths[slot] = p.length;
      }
      write += batch;
      Atomics.store(control, RING_WRITE, write);
      Atomics.notify(control, RING_WRITE);
      mainMs += performance.now() - resumed;
    }
  } else {
    const reused = new ArrayBuffer(batchBytes(batch));
    for (let sent = 0; sent < count; sent += batch) {
      const start = performance.now();
      if (transport === "broadcast") {
        fillBatch(reused, packets, sent, batch);
        channel!.postMessage(reused);
      } else {
        const buffer = returned.pop() ?? new ArrayBuffer(batchBytes(batch));
        fillBatch(buffer, packets, sent, batch);
        worker.postMessage(buffer, [buffer]);
      }
      mainMs += performance.now() - start;
      // Let returned buffers come back now and then, as a server's event loop would between reads.
      if ((sent / batch) % 256 === 255) await new Promise((r) => setTimeout(r, 0));
    }
  }
  channel?.postMessage(new ArrayBuffer(0));
  const result = await done;
  const wallMs = performance.now() - t0;
  const cpu = cpuMicros() - cpuBefore;
  channel?.close();
  worker.terminate();
  return {
    transport,
    batch,
    packetsPerSecond: count / (wallMs / 1000),
    mainMicrosPerPacket: mainMs * 1000 / count,
    cpuMicrosPerPacket: cpu / count,
    received: result.received,
    outOfOrder: result.outOfOrder,
    fullWaits,
  } satisfies TransportResult;
}

/** A worker sends on the main thread's socket; the main thread counts what arrives and from where. */
async function sendmmsgFromWorker(): Promise<string> {
  const serverSocket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const receiver = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const serverPort = (serverSocket.addr as Deno.NetAddr).port;
  const receiverPort = (receiver.addr as Deno.NetAddr).port;
  // The receiver's buffer holds the whole run (4 MiB asked, 8 MiB granted; 2,000 datagrams need ~4.6 MB), so
  // a main thread starved by other load cannot make the kernel drop what the worker sent.
  raiseReceiveBuffer(receiverPort, 4 << 20);
  const batches = 40;
  const batch = 50;
  let received = 0;
  let fromServerPort = 0;
  let closed = false;
  const reading = (async () => {
    while (!closed) {
      try {
        const [, from] = await receiver.receive();
        received++;
        if ((from as Deno.NetAddr).port === serverPort) fromServerPort++;
      } catch {
        return;
      }
    }
  })();
  const worker = new Worker(WORKER_URL, { type: "module" });
  const result = await new Promise<Record<string, number | string>>((resolve, reject) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    worker.postMessage(
      {
        mode: "sendmmsg",
        socketPort: serverPort,
        to: { hostname: "127.0.0.1", port: receiverPort },
        batches,
        batch,
      } satisfies WorkerTask,
    );
  });
  worker.terminate();
  const expected = batches * batch;
  const deadline = performance.now() + 2000;
  while (received < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  closed = true;
  receiver.close();
  serverSocket.close();
  await reading;
  if (result.error) return `sendmmsg from a worker: FAILED (${result.error})`;
  const perDatagram = (result.sendMs as number) * 1000 / (result.sent as number);
  return `sendmmsg from a worker on the main thread's socket (fd ${result.fd}): ${result.sent} sent in ` +
    `batches of ${batch}, ${received} received, ${fromServerPort} of them from the main socket's port ` +
    `${serverPort}; ${perDatagram.toFixed(2)} µs per datagram in the worker (1216 bytes, loopback)` +
    (received === expected && fromServerPort === expected ? " — works" : " — DID NOT WORK");
}

if (import.meta.main) {
  const total = Number(flag("packets") ?? 200_000);
  const batches = (flag("batches") ?? "1,16,64").split(",").map(Number);
  const results: TransportResult[] = [];
  // A short warm-up of each path so the JIT has compiled it before the measured run.
  for (const transport of ["broadcast", "transfer", "ring"] as const) {
    if (Deno.env.get("BENCH_DEBUG")) console.error(`warm-up ${transport}`);
    await run(transport, 20_000, 16);
  }
  for (const batch of batches) {
    for (const transport of ["broadcast", "transfer", "ring"] as const) {
      results.push(await run(transport, total, batch));
    }
  }
  const names = {
    broadcast: "BroadcastChannel, batch cloned",
    transfer: "postMessage, buffer transferred",
    ring: "SharedArrayBuffer ring + Atomics",
  };
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  const lines = [
    "",
    `Main thread → 1 worker, ${total.toLocaleString("en")} packets of ${PACKET_BYTES} bytes per case; ` +
    `${navigator.hardwareConcurrency} cores, load avg ${load}, Deno ${Deno.version.deno}`,
    "",
    "| transport | packets per message | packets/s end to end | main thread µs/pkt | process CPU µs/pkt | received (out of order) | ring full waits |",
    "|---|---|---|---|---|---|---|",
    ...results.map((r) =>
      `| ${names[r.transport as keyof typeof names]} | ${r.batch} | ${
        Math.round(r.packetsPerSecond).toLocaleString("en")
      } | ${r.mainMicrosPerPacket.toFixed(3)} | ${
        r.cpuMicrosPerPacket.toFixed(2)
      } | ${r.received} (${r.outOfOrder}) | ${r.transport === "ring" ? r.fullWaits : ""} |`
    ),
    "",
    await sendmmsgFromWorker(),
  ];
  console.log(lines.join("\n"));
}
