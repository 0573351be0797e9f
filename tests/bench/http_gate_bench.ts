/**
 * What the loopback hop of the HTTP gate costs: the same handler served by `Deno.serve` directly and through
 * {@link HttpGate}, measured in the same run, alternating rounds. Prints requests per second and the ratio.
 * Run: deno run --allow-net tests/bench/http_gate_bench.ts [rounds]
 */
import { HttpGate } from "../../src/http/http_gate.ts";

const rounds = Number(Deno.args[0] ?? 3);
const body64k = new Uint8Array(64 * 1024);
const handler = (req: Request) =>
  new URL(req.url).pathname === "/big" ? new Response(body64k) : new Response("ok\n");

const direct = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
const backend = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (req, info) => wrapped(req, info),
);
const gate = new HttpGate({
  hostname: "127.0.0.1",
  port: 0,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxConnections: 10_000,
  maxPerAddress: 10_000,
  trustedProxies: new Set(),
  tls: false,
  log: () => {},
});
const wrapped = gate.wrap((req) => Promise.resolve(handler(req)));
gate.start(backend.addr.port);

/** Requests per second for `total` requests over `concurrency` keep-alive clients. */
async function rate(port: number, path: string, total: number, concurrency: number, close = false) {
  const url = `http://127.0.0.1:${port}${path}`;
  let left = total;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    const client = Deno.createHttpClient(close ? { poolMaxIdlePerHost: 0 } : {});
    while (left-- > 0) {
      const res = await fetch(url, { client });
      await res.arrayBuffer();
    }
    client.close();
  }));
  return total / ((performance.now() - started) / 1000);
}

const cases: [string, string, number, number, boolean][] = [
  ["small response, 1 client, keep-alive", "/", 3000, 1, false],
  ["small response, 16 clients, keep-alive", "/", 6000, 16, false],
  ["64 KiB response, 4 clients, keep-alive", "/big", 2000, 4, false],
  ["small response, new connection each", "/", 1000, 4, true],
];
console.log(`HTTP gate hop cost, ${rounds} alternating rounds per case (requests/s, best round)`);
for (const [name, path, total, concurrency, close] of cases) {
  let bestDirect = 0;
  let bestGate = 0;
  for (let i = 0; i < rounds; i++) {
    bestDirect = Math.max(bestDirect, await rate(direct.addr.port, path, total, concurrency, close));
    bestGate = Math.max(bestGate, await rate(gate.port, path, total, concurrency, close));
  }
  console.log(
    `${name.padEnd(40)} direct ${bestDirect.toFixed(0).padStart(6)}  gate ${
      bestGate.toFixed(0).padStart(6)
    }` +
      `  gate/direct ${(bestGate / bestDirect).toFixed(2)}`,
  );
}
await gate.close();
await direct.shutdown();
await backend.shutdown();
