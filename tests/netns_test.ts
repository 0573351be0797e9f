/**
 * The private network namespace helper: inside there is only loopback and the veth pair with 192.0.2.1 (no
 * route anywhere else), a forwarded port reaches a TCP server inside from the host's loopback, and processes
 * started through it really run inside.
 */
import assert from "node:assert/strict";
import { createNetNamespace, NAMESPACE_ADDRESS, netnsMissing } from "./helpers/netns.ts";
import { spawnForeign, waitFor } from "./interop/harness.ts";

const ignored = netnsMissing("netns helper test");

async function inside(
  ns: { command: (p: string, a: string[]) => { program: string; args: string[] } },
  line: string,
) {
  const run = ns.command("sh", ["-c", line]);
  const out = await new Deno.Command(run.program, { args: run.args, stdout: "piped", stderr: "piped" })
    .output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "netns: only loopback and the test's veth inside, no route out, a forwarded port reaches inside",
  ignore: ignored !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const ns = await createNetNamespace();
  let server: ReturnType<typeof spawnForeign> | undefined;
  try {
    assert.equal(ns.address, NAMESPACE_ADDRESS);
    const links = (await inside(ns, "ip -o link show")).split("\n").filter((l) => l).map((l) =>
      l.split(":")[1].trim().split("@")[0]
    );
    assert.deepEqual(links.sort(), ["lo", "v0", "v1"]);
    const addresses = await inside(ns, "ip -o -4 addr show");
    assert.match(addresses, /\blo\s+inet 127\.0\.0\.1\/8/);
    assert.match(addresses, /\bv0\s+inet 192\.0\.2\.1\/24/);
    const routes = (await inside(ns, "ip -4 route show")).trim().split("\n");
    assert.equal(routes.length, 1, routes.join("\n"));
    assert.match(routes[0], /^192\.0\.2\.0\/24 dev v0/, "no default route: nothing can leave");
    // A different namespace from the runner's.
    assert.notEqual(Deno.readLinkSync(ns.path), Deno.readLinkSync("/proc/self/ns/net"));

    const port = await ns.forwardPort();
    const dir = await Deno.makeTempDir({ prefix: "netns-test-" });
    await Deno.writeTextFile(`${dir}/probe.txt`, "inside");
    server = spawnForeign(
      "python3",
      ["-m", "http.server", "--bind", "127.0.0.1", "-d", dir, String(port)],
      {},
      ns,
    );
    const body = await waitFor("the server inside to answer through the forward", async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/probe.txt`);
        return res.ok ? await res.text() : `status ${res.status}`;
      } catch (e) {
        return String(e);
      }
    }, (text) => text === "inside");
    assert.equal(body, "inside");
    // The server listens inside only: the port on the host is the forward, whose end is inside.
    const pid = server.child.pid;
    assert.equal(Deno.readLinkSync(`/proc/${pid}/ns/net`), Deno.readLinkSync(ns.path));
    await Deno.remove(dir, { recursive: true });
  } finally {
    await server?.stop("SIGKILL");
    await ns.close();
  }
});
