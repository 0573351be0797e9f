/**
 * A private network namespace for tests whose clients never use loopback (libnice in GStreamer and
 * simple-whip-client, aioice in aiortc): the server and those clients run inside it, and their media stays
 * there. Test traffic must never go to this machine's LAN address.
 *
 * How it works (needs root, `unshare`, `nsenter` and `ip`, i.e. util-linux and iproute2):
 * - A holder process (netns_holder.ts) is started with `unshare -n`. It brings up `lo` and a veth pair
 *   `v0`/`v1` with {@link NetNamespace.address} (192.0.2.1, TEST-NET-1) on `v0`, both ends up. libnice and
 *   aioice gather that address; the server advertises it as PUBLIC_IP. No packet leaves the namespace.
 * - Further processes join it with `nsenter --net=/proc/<holder>/ns/net` ({@link NetNamespace.command}).
 *   nsenter execs the program, so the child's pid is the program's own.
 * - The test runner stays in the host namespace, where TCP cannot reach into the namespace. A port forward
 *   ({@link NetNamespace.forwardPort}) listens on 127.0.0.1:P on the host and relays each connection through a
 *   unix socket (a file, so visible from both namespaces) to the holder, which connects to 127.0.0.1:P inside.
 *   Since the port number is the same on both sides, `http://127.0.0.1:P` names the same server for the test
 *   runner, for Chromium and for clients inside the namespace.
 * - Chromium joins the namespace through a wrapper script ({@link NetNamespace.chromiumPath}); playwright
 *   talks to it over inherited pipes, which cross namespaces.
 * - The namespace ends when its last process does: {@link NetNamespace.close} ends the holder (it also ends
 *   when the test runner dies, since its stdin closes).
 *
 * When any of that is impossible, {@link netnsUnavailable} says why; callers skip the test and print the
 * reason. There is deliberately no fallback to a host address.
 */
import { freePort } from "./server_process.ts";

/** The address on the namespace's veth interface: what the server advertises as PUBLIC_IP. */
export const NAMESPACE_ADDRESS = "192.0.2.1";

const HOLDER = new URL("./netns_holder.ts", import.meta.url).pathname;

/** A running private network namespace. */
export interface NetNamespace {
  /** The veth address inside (192.0.2.1): use it as PUBLIC_IP, with UDP_ADDRESS=0.0.0.0. */
  readonly address: string;
  /** `/proc/<holder pid>/ns/net`. */
  readonly path: string;
  /** The program and arguments that run `program args` inside the namespace (through nsenter). */
  command(program: string, args: string[]): { program: string; args: string[] };
  /**
   * Forwards 127.0.0.1:`port` on the host to 127.0.0.1:`port` inside (a free host port when omitted);
   * returns the port. Start the server inside on that port.
   */
  forwardPort(port?: number): Promise<number>;
  /** An executable that starts Chromium (CHROMIUM_PATH or /usr/bin/chromium) inside the namespace. */
  chromiumPath(): Promise<string>;
  /** Stops the port forwards and the holder; processes still inside keep the namespace until they end. */
  close(): Promise<void>;
}

let probed: string | null | undefined;

/**
 * Why a private namespace cannot be made here ("not root", a missing tool, or the kernel's refusal), or
 * undefined when it can. Probes once per process by making and dropping a namespace with a veth pair.
 */
export function netnsUnavailable(): string | undefined {
  if (probed !== undefined) return probed ?? undefined;
  probed = probe();
  return probed ?? undefined;
}

function probe(): string | null {
  if (Deno.uid() !== 0) return "not root (unshare -n needs it)";
  for (const tool of ["unshare", "nsenter", "ip"]) {
    const found =
      new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null", stderr: "null" })
        .outputSync().success;
    if (!found) return `no ${tool} (apt: ${tool === "ip" ? "iproute2" : "util-linux"})`;
  }
  const out = new Deno.Command("unshare", {
    args: ["-n", "sh", "-c", "ip link set lo up && ip link add v0 type veth peer name v1"],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    return `unshare -n with a veth pair failed: ${new TextDecoder().decode(out.stderr).trim()}`;
  }
  return null;
}

/** Prints why namespace tests are skipped, and returns the reason (undefined when they can run). */
export function netnsMissing(what: string): string | undefined {
  const reason = netnsUnavailable();
  if (reason) console.warn(`${what} ignored: no private network namespace: ${reason}`);
  return reason;
}

/** Makes a private network namespace; throws with the reason when {@link netnsUnavailable} has one. */
export async function createNetNamespace(): Promise<NetNamespace> {
  const reason = netnsUnavailable();
  if (reason) throw new Error(`unavailable: ${reason}`);
  const dir = await Deno.makeTempDir({ prefix: "sfu-netns-" });
  const socketPath = `${dir}/relay.sock`;
  const holder = new Deno.Command("unshare", {
    args: ["-n", "--", Deno.execPath(), "run", "--allow-all", HOLDER, socketPath, NAMESPACE_ADDRESS],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = holder.stdin.getWriter();
  const errText = new Response(holder.stderr).text();
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) {
      await holder.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`network namespace holder failed: ${(await errText).trim()}`);
    }
    out += value;
  }
  reader.releaseLock();
  holder.stdout.cancel().catch(() => {});
  const path = `/proc/${holder.pid}/ns/net`;
  const listeners: Deno.TcpListener[] = [];
  const conns = new Set<Deno.Conn>();

  async function relay(tcp: Deno.TcpConn, port: number): Promise<void> {
    let unix: Deno.UnixConn;
    try {
      unix = await Deno.connect({ transport: "unix", path: socketPath });
      await unix.write(new Uint8Array([port >> 8, port & 0xff]));
    } catch {
      return tcp.close();
    }
    conns.add(tcp).add(unix);
    await Promise.allSettled([tcp.readable.pipeTo(unix.writable), unix.readable.pipeTo(tcp.writable)]);
    for (const c of [tcp, unix]) {
      conns.delete(c);
      try {
        c.close();
      } catch { /* closed by the pipe */ }
    }
  }

  return {
    address: NAMESPACE_ADDRESS,
    path,
    command: (program, args) => ({ program: "nsenter", args: [`--net=${path}`, "--", program, ...args] }),
    forwardPort(wanted) {
      const port = wanted ?? freePort("tcp");
      const listener = Deno.listen({ hostname: "127.0.0.1", port });
      listeners.push(listener);
      (async () => {
        try {
          for await (const conn of listener) relay(conn, port);
        } catch { /* closed */ }
      })();
      return Promise.resolve(port);
    },
    async chromiumPath() {
      const script = `${dir}/chromium`;
      const chromium = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
      await Deno.writeTextFile(script, `#!/bin/sh\nexec nsenter --net=${path} -- ${chromium} "$@"\n`);
      await Deno.chmod(script, 0o755);
      return script;
    },
    async close() {
      for (const l of listeners) {
        try {
          l.close();
        } catch { /* already */ }
      }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already */ }
      }
      await stdin.close().catch(() => {});
      await holder.status;
      await errText.catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
