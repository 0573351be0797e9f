/**
 * The public HTTP port under connection floods and slow clients (#15 point 1): the server survives more idle
 * connections than it has descriptors, and closes half-sent headers, slow bodies and idle keep-alive
 * connections on their timeouts, while event streams stay open.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { freePort, startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Starts main.ts under `prlimit --nofile=<files>` and waits for /healthz. */
async function startWithFileLimit(
  files: number,
  extraEnv: Record<string, string> = {},
  permissions = ["--allow-all"],
) {
  const dir = await Deno.makeTempDir({ prefix: "sfu-nofile-" });
  const port = freePort("tcp");
  const child = new Deno.Command("prlimit", {
    args: [`--nofile=${files}`, Deno.execPath(), "run", "--unstable-net", ...permissions, MAIN],
    env: {
      TCP_ADDRESS: "127.0.0.1",
      TCP_PORT: String(port),
      UDP_ADDRESS: "127.0.0.1",
      UDP_PORT: String(freePort("udp")),
      WHIP_TOKEN: "test-token-nofile",
      STORAGE_DIR: `${dir}/storage`,
      CERTS_DIR: `${dir}/certs`,
      ...extraEnv,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const drained = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor("the server to answer /healthz", () => healthz(base), (ok) => ok || exited);
  return {
    base,
    port,
    exited: () => exited,
    logs: () => log,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      await status;
      await drained;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

async function healthz(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/healthz`);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** The value of one sample in a Prometheus text exposition (NaN when absent). */
function metric(text: string, sample: string): number {
  const line = text.split("\n").find((l) => l.startsWith(sample + " "));
  return line === undefined ? NaN : Number(line.slice(sample.length + 1));
}

/**
 * Opens `count` TCP connections from `localAddress` that send nothing (or `firstBytes`); resolves once each
 * is settled.
 */
async function openIdle(
  port: number,
  localAddress: string,
  count: number,
  firstBytes?: string,
): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<void>((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port, localAddress });
        socket.on("connect", () => {
          if (firstBytes !== undefined) socket.write(firstBytes);
          resolve();
        });
        socket.on("error", () => resolve());
        socket.on("close", () => resolve());
        sockets.push(socket);
      })),
  );
  return sockets;
}

Deno.test("a server with 256 descriptors survives 384 idle connections and answers /healthz", async () => {
  const server = await startWithFileLimit(256);
  const sockets: net.Socket[] = [];
  try {
    assert(!server.exited(), `the server did not start:\n${server.logs()}`);
    // Four addresses, so both the per-address and the total cap are reached.
    for (const address of ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]) {
      sockets.push(...await openIdle(server.port, address, 96));
    }
    // The server works through its accept backlog and closes what its caps refuse; it must still be there.
    const open = await waitFor(
      "the caps to refuse some of the 384 connections",
      () => server.exited() ? -1 : sockets.filter((s) => !s.destroyed && s.readyState === "open").length,
      (n) => n < 384,
      10_000,
      50,
    );
    assert(open >= 0 && !server.exited(), `the server exited under 384 idle connections:\n${server.logs()}`);
    for (const socket of sockets) socket.destroy();
    await waitFor("/healthz after the flood", () => healthz(server.base), (ok) => ok, 10_000);
    assert(!server.exited());
    assert(/"?HTTP: at most 42 connections/.test(server.logs()), server.logs());
    const metrics = await (await fetch(`${server.base}/metrics`)).text();
    assert(metric(metrics, 'sfu_http_connections_refused_total{cap="address"}') > 0, metrics);
    assert(metric(metrics, 'sfu_http_connections_refused_total{cap="total"}') > 0, metrics);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.stop();
  }
});

Deno.test("descriptors run out anyway (no FFI: the limit is only assumed): logged per burst, the server recovers", async () => {
  // Without --allow-ffi the open-file limit cannot be read, so the caps assume 1024 while prlimit gives 256:
  // the gate's accept and Deno.serve's own accept both hit EMFILE.
  const server = await startWithFileLimit(256, {}, [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
  ]);
  const sockets: net.Socket[] = [];
  try {
    assert(!server.exited(), `the server did not start:\n${server.logs()}`);
    assert.match(server.logs(), /open-file limit unknown without --allow-ffi, assumed 1024/);
    // Each sends a byte, so each is relayed to Deno.serve (three descriptors).
    sockets.push(...await openIdle(server.port, "127.0.0.2", 140, "G"));
    sockets.push(...await openIdle(server.port, "127.0.0.3", 140, "G"));
    await waitFor("an out-of-descriptors report", () => server.logs(), (l) => /Too many open files/.test(l));
    for (const socket of sockets) socket.destroy();
    await waitFor("/healthz once descriptors are free", () => healthz(server.base), (ok) => ok, 15_000);
    assert(!server.exited(), `the server exited when descriptors ran out:\n${server.logs()}`);
    const reports = server.logs().split("\n").filter((l) => /Too many open files/.test(l));
    assert(
      reports.length <= 6,
      `out-of-descriptor errors were logged ${reports.length} times:\n${reports.join("\n")}`,
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.stop();
  }
});

/** Milliseconds until the server closes `conn` (EOF or reset), or undefined if it is still open at `limitMs`. */
async function closedAfter(conn: Deno.Conn, limitMs: number): Promise<number | undefined> {
  return (await readUntilClosed(conn, limitMs)).ms;
}

/** Everything the server sends until it closes `conn`, or until `limitMs` (then `ms` is undefined). */
async function readUntilClosed(conn: Deno.Conn, limitMs: number): Promise<{ text: string; ms?: number }> {
  const started = performance.now();
  const buffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), limitMs));
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buffer).catch(() => null), timeout]);
      if (n === "open") return { text };
      if (n === null) return { text, ms: performance.now() - started };
      text += decoder.decode(buffer.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("header, body and idle timeouts close slow connections; event streams stay open", async (t) => {
  const server = await startServerProcess({
    HTTP_HEADER_TIMEOUT: "1",
    HTTP_BODY_TIMEOUT: "1",
    HTTP_IDLE_TIMEOUT: "1.5",
  });
  const encoder = new TextEncoder();
  try {
    await t.step("a half-sent header is closed within the header timeout", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
      await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
      const ms = await closedAfter(conn, 6000);
      conn.close();
      assert(ms !== undefined, "a half-sent header kept its connection open for 6 s");
      assert(ms >= 900 && ms < 3000, `closed after ${ms} ms, expected about 1000`);
    });

    await t.step("a connection that sends nothing is closed within the header timeout", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
      const ms = await closedAfter(conn, 6000);
      conn.close();
      assert(ms !== undefined && ms < 3000, `silent connection open for ${ms ?? "more than 6000"} ms`);
    });

    await t.step("a body slower than the body timeout gets 408 and the connection closes", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
      await conn.write(encoder.encode(
        "POST /whep/room HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100\r\n\r\nv=0\r\n",
      ));
      const { text, ms } = await readUntilClosed(conn, 6000);
      conn.close();
      assert(text.startsWith("HTTP/1.1 408"), `expected a 408, got: ${text}`);
      assert(/not received within 1 s/.test(text), text);
      assert(ms !== undefined, "the connection was still open 6 s after a 1 s body timeout");
    });

    await t.step("an idle keep-alive connection is closed after the idle timeout", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
      await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer);
      assert(n !== null && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("HTTP/1.1 200"));
      const ms = await closedAfter(conn, 8000);
      conn.close();
      assert(ms !== undefined, "an idle keep-alive connection stayed open for 8 s");
      assert(ms >= 1200 && ms < 5000, `closed after ${ms} ms, expected about 1500`);
    });

    await t.step("an event stream outlives the idle timeout", async () => {
      const res = await fetch(`${server.baseUrl}/notifications`);
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read(); // retry + first snapshot
      // Three idle timeouts without a byte (heartbeats come every 15 s): still open.
      const outcome = await Promise.race([
        reader.read().then((r) => (r.done ? "closed" : "data")),
        new Promise((r) => setTimeout(() => r("open"), 4500)),
      ]);
      assert(outcome !== "closed", "the event stream was closed by the idle timeout");
      await reader.cancel();
    });

    await t.step("/metrics counts the timeouts", async () => {
      const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
      assert(metric(metrics, 'sfu_http_connections_timed_out_total{timeout="header"}') >= 2, metrics);
      assert(metric(metrics, 'sfu_http_connections_timed_out_total{timeout="idle"}') >= 1, metrics);
    });
  } finally {
    await server.stop();
  }
});
