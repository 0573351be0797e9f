/** Runs the real server (`main.ts`) as a child process on free ports, for end-to-end tests. */
import type { NetNamespace } from "./netns.ts";
import { waitFor } from "./wait.ts";

/** A running server process. */
export interface ServerProcess {
  baseUrl: string;
  httpPort: number;
  udpPort: number;
  token: string;
  storageDir: string;
  certsDir: string;
  /** Process id (for /proc/<pid>/status, signals). */
  pid: number;
  /** Resolves when the process exits. */
  status: Promise<Deno.CommandStatus>;
  /** Everything the process wrote to stderr so far. */
  logs(): string;
  stop(): Promise<void>;
}

/** A free port on loopback for the given transport (bind to 0, read, release). */
export function freePort(transport: "tcp" | "udp"): number {
  if (transport === "tcp") {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  }
  const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (c.addr as Deno.NetAddr).port;
  c.close();
  return port;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Where to run the server. */
export interface ServerOptions {
  /**
   * Run inside this private network namespace (for clients that never use loopback): UDP on 0.0.0.0 with
   * PUBLIC_IP set to the namespace's address, HTTP on 127.0.0.1 inside, forwarded to the same port on the
   * host's loopback so `baseUrl` works from the test runner and from inside alike.
   */
  netns?: NetNamespace;
}

/** Starts `main.ts` with a temporary storage/certs directory and the given extra environment. */
export async function startServerProcess(
  env: Record<string, string> = {},
  options: ServerOptions = {},
): Promise<ServerProcess> {
  const { netns } = options;
  const dir = await Deno.makeTempDir({ prefix: "sfu-test-" });
  // A caller may fix the port, e.g. to put it in PUBLIC_URL before the process starts.
  const fixedPort = env.TCP_PORT ? Number(env.TCP_PORT) : undefined;
  const httpPort = netns ? await netns.forwardPort(fixedPort) : fixedPort ?? freePort("tcp");
  const udpPort = freePort("udp");
  const token = env.WHIP_TOKEN ?? "test-token-" + crypto.randomUUID();
  const storageDir = env.STORAGE_DIR ?? `${dir}/storage`;
  const certsDir = env.CERTS_DIR ?? `${dir}/certs`;
  // SERVER_PERMISSIONS replaces --allow-all, e.g. to check the fallbacks without --allow-ffi.
  const denoArgs = [
    "run",
    "--unstable-net",
    ...(Deno.env.get("SERVER_PERMISSIONS")?.split(" ") ?? ["--allow-all"]),
    MAIN,
  ];
  const command = netns
    ? netns.command(Deno.execPath(), denoArgs)
    : { program: Deno.execPath(), args: denoArgs };
  const child = new Deno.Command(command.program, {
    args: command.args,
    env: {
      TCP_ADDRESS: "127.0.0.1",
      TCP_PORT: String(httpPort),
      UDP_ADDRESS: netns ? "0.0.0.0" : "127.0.0.1",
      ...(netns ? { PUBLIC_IP: netns.address } : {}),
      UDP_PORT: String(udpPort),
      WHIP_TOKEN: token,
      STORAGE_DIR: storageDir,
      CERTS_DIR: certsDir,
      LOG_LEVEL: "debug",
      ...env,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const decoder = new TextDecoder();
  const drained = (async () => {
    for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
  })();
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  try {
    await waitFor(
      "the server to answer /healthz",
      async () => {
        try {
          const res = await fetch(`${baseUrl}/healthz`);
          await res.body?.cancel();
          return res.ok;
        } catch {
          return false; // not up yet
        }
      },
      Boolean,
      20_000,
      100,
    );
  } catch {
    child.kill("SIGKILL");
    await drained;
    throw new Error(`server did not start:\n${log}`);
  }
  return {
    baseUrl,
    httpPort,
    udpPort,
    token,
    storageDir,
    certsDir,
    pid: child.pid,
    status: child.status,
    logs: () => log,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await drained;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Runs `main.ts` with `env` and returns what it printed on stderr, after checking it refused to start the way
 * a bad setting must: exit code 2 and a single line.
 */
export async function startupRefusal(env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-all", MAIN],
    env: { TCP_PORT: "0", UDP_PORT: "0", ...env },
    stdout: "null",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (out.code !== 2) throw new Error(`expected exit code 2, got ${out.code}: ${stderr}`);
  if (stderr.split("\n").length !== 1) throw new Error(`expected one line: ${stderr}`);
  return stderr;
}
