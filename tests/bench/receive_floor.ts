/**
 * The floor of receiving UDP in Deno: a child process does nothing but read 1200-byte datagrams (paced at
 * `--rate` per second, `--burst` back to back each time) in one of several ways, and its CPU per datagram is
 * printed side by side. It separates what any Deno receive loop costs from what the server does with a
 * packet. Loopback only.
 *
 * - `alloc`: `DatagramConn.receive()` with no buffer (Deno allocates a 64 KiB buffer per datagram; what
 *   src/net/datagrams.ts does today).
 * - `reuse`: `receive(buffer)` with one buffer for the loop.
 * - `drain`: `receive(buffer)` to wait, then `recvmmsg(MSG_DONTWAIT)` through FFI on the same socket until it
 *   is empty (up to 64 per call), so a burst costs one async op.
 * - `recvmmsg`: a blocking socket of its own read with `recvmmsg(MSG_WAITFORONE)` as a nonblocking FFI call
 *   (on a helper thread): one promise per batch, no Deno socket at all.
 * - `poll`: no receive op at all: a 2 ms interval timer drains the socket with `recvmmsg(MSG_DONTWAIT)`
 *   (adds up to 2 ms of latency; the cost per wake-up is spread over what arrived meanwhile).
 *
 * Run: `deno run --unstable-net --allow-all tests/bench/receive_floor.ts [--rate 1300] [--burst 1,10]
 * [--seconds 6]`.
 */
import { processCpu } from "./proc_stats.ts";
import { socketFd } from "../../src/net/socket_fd.ts";

const MODES = ["alloc", "reuse", "drain", "recvmmsg", "poll"] as const;
/** How often the `poll` mode drains the socket. */
const POLL_MS = 2;
type Mode = typeof MODES[number];

const DATAGRAM = 1200;
const BATCH = 64;
const SLOT = 2048;
const MSG_DONTWAIT = 0x40;
const MSG_WAITFORONE = 0x10000;
const SYMBOLS = {
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  recvmmsgBlocking: {
    name: "recvmmsg",
    parameters: ["i32", "buffer", "u32", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
} as const;

/** mmsghdr array with one iovec and one 2 KiB slot per entry (no source address wanted). */
function batchHeaders(): Uint8Array {
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
  // Keep the slots and iovecs alive as long as the headers.
  (headers as unknown as { keep: unknown[] }).keep = [data, iovecs];
  return headers;
}

async function child(mode: Mode): Promise<void> {
  let received = 0;
  // The parent reads the count and kills this process; the loops below never end.
  setInterval(() => console.log(`COUNT ${received}`), 100);
  if (mode === "recvmmsg") {
    const lib = Deno.dlopen("libc.so.6", SYMBOLS);
    const fd = lib.symbols.socket(2, 2, 0);
    const sockaddr = new Uint8Array(16);
    const view = new DataView(sockaddr.buffer);
    view.setUint16(0, 2, true);
    sockaddr.set([127, 0, 0, 1], 4);
    let port = 0;
    for (port = 40000 + Math.floor(Math.random() * 20000);; port++) {
      view.setUint16(2, port);
      if (lib.symbols.bind(fd, sockaddr, 16) === 0) break;
    }
    console.log(`READY ${port}`);
    const headers = batchHeaders();
    for (;;) {
      const n = await lib.symbols.recvmmsgBlocking(fd, headers, BATCH, MSG_WAITFORONE, null);
      if (n > 0) received += n;
    }
  }
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (conn.addr as Deno.NetAddr).port;
  console.log(`READY ${port}`);
  const buffer = new Uint8Array(65536);
  if (mode === "alloc") {
    for (;;) {
      await conn.receive();
      received++;
    }
  }
  if (mode === "reuse") {
    for (;;) {
      await conn.receive(buffer);
      received++;
    }
  }
  const lib = Deno.dlopen("libc.so.6", SYMBOLS);
  const fd = socketFd(port)!;
  const headers = batchHeaders();
  if (mode === "poll") {
    setInterval(() => {
      for (;;) {
        const n = lib.symbols.recvmmsg(fd, headers, BATCH, MSG_DONTWAIT, null);
        if (n <= 0) return;
        received += n;
        if (n < BATCH) return;
      }
    }, POLL_MS);
    return;
  }
  for (;;) {
    await conn.receive(buffer);
    received++;
    for (;;) {
      const n = lib.symbols.recvmmsg(fd, headers, BATCH, MSG_DONTWAIT, null);
      if (n <= 0) break;
      received += n;
      if (n < BATCH) break;
    }
  }
}

async function measure(mode: Mode, rate: number, burst: number, seconds: number) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-all", new URL(import.meta.url).pathname, "--child", mode],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let count = 0;
  let resolvePort: (p: number) => void = () => {};
  const ready = new Promise<number>((r) => resolvePort = r);
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) {
      for (const line of decoder.decode(chunk).split("\n")) {
        const m = /^(READY|COUNT) (\d+)/.exec(line);
        if (m?.[1] === "READY") resolvePort(Number(m[2]));
        if (m?.[1] === "COUNT") count = Number(m[2]);
      }
    }
  })();
  const port = await ready;
  const sender = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port };
  const payload = new Uint8Array(DATAGRAM).fill(0x80, 0, 1);
  let sent = 0;
  const start = performance.now();
  let stop = false;
  const tick = () => {
    if (stop) return;
    const due = Math.floor(((performance.now() - start) / 1000) * rate / burst) * burst;
    while (sent < due) {
      sender.send(payload, to).catch(() => {});
      sent++;
    }
    setTimeout(tick, 1);
  };
  tick();
  await new Promise((r) => setTimeout(r, 1500));
  const cpu0 = processCpu(proc.pid);
  const count0 = count;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu1 = processCpu(proc.pid);
  const count1 = count;
  stop = true;
  proc.kill("SIGKILL");
  await proc.status;
  await reading.catch(() => {});
  sender.close();
  const packets = count1 - count0;
  const micros = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  return {
    mode,
    burst,
    packets,
    perSecond: packets / seconds,
    micros: micros / packets,
    kernel: (cpu1.system - cpu0.system) / packets,
  };
}

if (Deno.args[0] === "--child") {
  await child(Deno.args[1] as Mode);
} else {
  const flag = (name: string, fallback: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : fallback;
  };
  const rate = Number(flag("rate", "1300"));
  const seconds = Number(flag("seconds", "6"));
  const bursts = flag("burst", "1,10").split(",").map(Number);
  const lines = [
    `Receiving ${DATAGRAM}-byte datagrams at ${rate}/s on loopback; load avg ${Deno.loadavg()[0].toFixed(2)}`,
    "| mode | burst | received/s | CPU µs per datagram (kernel) |",
    "|---|---|---|---|",
  ];
  for (const burst of bursts) {
    for (const mode of MODES) {
      const r = await measure(mode, rate, burst, seconds);
      lines.push(
        `| ${r.mode} | ${r.burst} | ${Math.round(r.perSecond)} | ${r.micros.toFixed(1)} (${
          r.kernel.toFixed(1)
        }) |`,
      );
    }
  }
  console.log(lines.join("\n"));
}
