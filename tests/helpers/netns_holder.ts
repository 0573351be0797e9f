/**
 * The process that keeps a test's private network namespace alive (see netns.ts, which starts it under
 * `unshare -n`). It brings up loopback and a veth pair with `<address>/24`, then relays connections from a
 * unix socket (a path in the file system, so reachable from the host namespace) to TCP ports on 127.0.0.1
 * inside the namespace: each connection starts with the 2-byte big-endian port to reach, then carries bytes
 * both ways. It prints "ready" once set up, and exits when its stdin closes (the test runner ended).
 *
 * Usage (root): unshare -n -- deno run --allow-all netns_holder.ts <unix socket path> <address>
 */

const [socketPath, address] = Deno.args;

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
}

async function relay(unix: Deno.UnixConn): Promise<void> {
  const header = new Uint8Array(2);
  let got = 0;
  while (got < 2) {
    const n = await unix.read(header.subarray(got));
    if (n === null) return unix.close();
    got += n;
  }
  let tcp: Deno.TcpConn;
  try {
    tcp = await Deno.connect({ hostname: "127.0.0.1", port: (header[0] << 8) | header[1] });
  } catch {
    return unix.close();
  }
  // Either side ending ends both; errors are a peer going away, which is how relayed connections end.
  await Promise.allSettled([unix.readable.pipeTo(tcp.writable), tcp.readable.pipeTo(unix.writable)]);
  for (const c of [unix, tcp]) {
    try {
      c.close();
    } catch { /* closed by the pipe */ }
  }
}

await ip("link", "set", "lo", "up");
await ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
await ip("addr", "add", `${address}/24`, "dev", "v0");
await ip("link", "set", "v1", "up");
await ip("link", "set", "v0", "up");

const listener = Deno.listen({ transport: "unix", path: socketPath });
(async () => {
  for await (const conn of listener) relay(conn);
})();
console.log("ready");

// Stay until the runner closes stdin (it ended or called close()), then leave: the namespace goes with the
// last process in it.
for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
listener.close();
Deno.exit(0);
