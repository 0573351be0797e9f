/**
 * A recording HTTP proxy for tests of foreign clients: put it between a client and the server to assert on
 * the exchanges themselves (every trickle PATCH answered 204, the DELETE 200) rather than on what the client
 * chooses to print. It runs as its own process, inside the client's network namespace when given; run as a
 * script it serves `127.0.0.1:<port>`, forwards each request to `<upstream>` and prints one JSON line per
 * exchange once the upstream answered.
 */
import { spawnForeign } from "../interop/harness.ts";
import { freePort } from "./server_process.ts";
import type { NetNamespace } from "./netns.ts";
import { waitFor } from "./wait.ts";

/** One request the client made and the status the server answered. */
export interface Exchange {
  method: string;
  path: string;
  status: number;
}

/** A running recorder. */
export interface HttpRecorder {
  /** The proxy's base URL: give it to the client instead of the server's. */
  baseUrl: string;
  /** The exchanges so far, in the order the server answered them. */
  exchanges(): Exchange[];
  stop(): Promise<void>;
}

/** Starts a recorder forwarding to `upstream` (a base URL), inside `netns` when given. */
export async function startHttpRecorder(upstream: string, netns?: NetNamespace): Promise<HttpRecorder> {
  const port = freePort("tcp");
  const script = new URL(import.meta.url).pathname;
  const process = spawnForeign(
    Deno.execPath(),
    ["run", "--allow-net", script, String(port), upstream],
    {},
    netns,
  );
  const exchanges = (): Exchange[] =>
    process.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Exchange);
  await waitFor("the HTTP recorder to listen", async () => {
    const status = await Promise.race([process.status, Promise.resolve(undefined)]);
    if (status) throw new Error(`HTTP recorder exited: ${process.output()}`);
    return process.output();
  }, (out) => out.includes("listening\n"));
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    exchanges,
    async stop() {
      await process.stop("SIGTERM");
    },
  };
}

if (import.meta.main) {
  const [port, upstream] = Deno.args;
  Deno.serve(
    { hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("listening") },
    async (req) => {
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: req.body,
        redirect: "manual",
      });
      console.log(JSON.stringify({ method: req.method, path: url.pathname, status: res.status }));
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  );
}
