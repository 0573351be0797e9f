/** Runs Debian's `redis-server` on a free loopback port in a temporary directory, for cluster tests. */
import { freePort } from "./server_process.ts";
import { waitFor } from "./wait.ts";

/** A running (or stopped, restartable) Redis. */
export interface RedisProcess {
  url: string;
  port: number;
  /** Whether the process is running now. */
  readonly running: boolean;
  /** Stops the server (SIGKILL: no goodbye to clients, like a crash or a network cut). */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  /** Stops it and removes the directory. */
  stop(): Promise<void>;
}

/** Path of redis-server, or undefined when it is not installed (`apt-get install redis-server`). */
export function redisServerPath(): string | undefined {
  for (const path of [Deno.env.get("REDIS_SERVER"), "/usr/bin/redis-server", "/usr/local/bin/redis-server"]) {
    if (!path) continue;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not there */ }
  }
  return undefined;
}

/** PEM files for a Redis that accepts only TLS connections. */
export interface RedisTls {
  certFile: string;
  keyFile: string;
}

/**
 * Starts redis-server without persistence on a free port; resolves once it accepts connections. With
 * `password` clients must authenticate (`requirepass`), and {@link RedisProcess.url} carries the password.
 * With `tls` the port speaks only TLS and the URL is `rediss://`.
 */
export async function startRedis(options: { password?: string; tls?: RedisTls } = {}): Promise<RedisProcess> {
  const binary = redisServerPath();
  if (!binary) throw new Error("redis-server is not installed (apt-get install redis-server)");
  const dir = await Deno.makeTempDir({ prefix: "sfu-redis-" });
  const port = freePort("tcp");
  let child: Deno.ChildProcess | undefined;
  let log = "";
  const spawn = async () => {
    child = new Deno.Command(binary, {
      args: [
        ...["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
        ...(options.tls
          ? ["--port", "0", "--tls-port", String(port), "--tls-auth-clients", "no"]
          : ["--port", String(port)]),
        ...(options.tls
          ? ["--tls-cert-file", options.tls.certFile, "--tls-key-file", options.tls.keyFile]
          : []),
        ...(options.password ? ["--requirepass", options.password] : []),
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    const current = child;
    (async () => {
      for await (const chunk of current.stdout) log += decoder.decode(chunk, { stream: true });
    })().catch(() => {});
    current.stderr.cancel().catch(() => {});
    const up = async (): Promise<boolean> => {
      try {
        if (options.tls) {
          // Up once the TLS port accepts connections (the handshake is the client's business).
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return true;
        }
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const auth = options.password ? `AUTH ${options.password}\r\n` : "";
        await conn.write(new TextEncoder().encode(`${auth}PING\r\n`));
        const buf = new Uint8Array(16);
        const n = await conn.read(buf);
        conn.close();
        return n !== null && /\+PONG/.test(new TextDecoder().decode(buf.subarray(0, n)));
      } catch {
        return false; // not up yet
      }
    };
    await waitFor("redis-server to answer", up, Boolean, 10_000, 50).catch(() => {
      throw new Error(`redis-server did not start:\n${log}`);
    });
  };
  const kill = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGKILL");
    } catch { /* already gone */ }
    await c.status;
  };
  await spawn();
  return {
    url: `${options.tls ? "rediss" : "redis"}://${
      options.password ? `:${options.password}@` : ""
    }127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    kill,
    restart: spawn,
    async stop() {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
