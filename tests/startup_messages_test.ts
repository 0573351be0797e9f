/**
 * What an operator reads when starting the server (#16): one clean line for each start-up failure, `--help`
 * without permissions, the web UI in the banner, warnings for settings that do nothing, and JSON-only logs
 * with LOG_FORMAT=json (including after an event-stream client leaves).
 */
import assert from "node:assert/strict";
import { freePort, startupRefusal } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("start-up failures are one line naming the setting and the real problem", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const line = await startupRefusal({ TCP_ADDRESS: "127.0.0.1", TCP_PORT: String(busy.addr.port) });
    assert.match(line, /^configuration error: TCP_PORT: cannot listen on 127\.0\.0\.1:\d+: .*in use/i);
  } finally {
    busy.close();
  }
  const storage = await startupRefusal({ STORAGE_DIR: "/proc/x" });
  assert.match(storage, /^configuration error: STORAGE_DIR: directory \/proc\/x is not writable \(/);
  assert.doesNotMatch(storage, /run again/);
  const consent = await startupRefusal({ CONSENT_TIMEOUT: "0" });
  assert.match(consent, /CONSENT_TIMEOUT must be a number of seconds greater than 0 and at most 86400/);
  assert.match(
    await startupRefusal({ METRICS_TOKEN: "short" }),
    /METRICS_TOKEN must be at least 8 characters/,
  );
});

Deno.test("--help needs no permission at all", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", MAIN, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /HTTP_HEADER_TIMEOUT .*\[default: 10\]/);
});

/** Runs main.ts until `act` is done, then SIGTERM; returns stdout and stderr. */
async function runServer(
  env: Record<string, string>,
  act: (base: string) => Promise<void>,
): Promise<{ stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "sfu-startup-" });
  const port = freePort("tcp");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-all", MAIN],
    env: {
      TCP_ADDRESS: "127.0.0.1",
      TCP_PORT: String(port),
      UDP_ADDRESS: "127.0.0.1",
      UDP_PORT: String(freePort("udp")),
      STORAGE_DIR: `${dir}/storage`,
      CERTS_DIR: `${dir}/certs`,
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stdout = "";
  let stderr = "";
  const drained = Promise.all([
    (async () => {
      for await (const c of child.stdout) stdout += decoder.decode(c, { stream: true });
    })(),
    (async () => {
      for await (const c of child.stderr) stderr += decoder.decode(c, { stream: true });
    })(),
  ]);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor("the server to start", async () => {
      try {
        const res = await fetch(`${base}/healthz`);
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false;
      }
    }, (ok) => ok);
    await act(base);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { stdout, stderr };
}

Deno.test("the banner points at the web UI, and CLUSTER_TOKEN without REDIS_URL is warned about", async () => {
  const { stdout, stderr } = await runServer(
    { CLUSTER_TOKEN: "a-cluster-token-of-some-length" },
    () => Promise.resolve(),
  );
  assert.match(
    stdout,
    /Open http:\/\/127\.0\.0\.1:\d+\/ to see the live rooms, or http:\/\/127\.0\.0\.1:\d+\/publish/,
  );
  assert.match(stderr, /WARN +CLUSTER_TOKEN is set but REDIS_URL is not/);
});

Deno.test("LOG_FORMAT=json: every line is JSON, also after an event-stream client leaves", async () => {
  const { stdout, stderr } = await runServer({ LOG_FORMAT: "json", LOG_LEVEL: "debug" }, async (base) => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/notifications`);
      const reader = res.body!.getReader();
      await reader.read();
      await reader.cancel();
    }
    // A request after the streams ended, so whatever Deno prints about them has happened.
    await waitFor("the streams to be dropped", async () => {
      const res = await fetch(`${base}/metrics`);
      return /sfu_sse_clients (\d+)/.exec(await res.text())?.[1];
    }, (n) => n === "0");
    // Clients that break off: mid-header, mid-body, and after a request without reading the answer.
    const port = Number(new URL(base).port);
    for (
      const text of [
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "POST /whep/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 50\r\n\r\nv=0",
        "GET /rooms HTTP/1.1\r\nHost: x\r\n\r\n",
      ]
    ) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(text));
      conn.close();
    }
    const res = await fetch(`${base}/nowhere`);
    await res.body?.cancel();
  });
  const lines = (stdout + stderr).split("\n").filter((l) => l.trim() !== "");
  assert(lines.length > 3, `expected log lines, got: ${stdout}${stderr}`);
  for (const line of lines) {
    assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
  }
});
