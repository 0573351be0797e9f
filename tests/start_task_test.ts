/**
 * `deno task start` runs hardened: with exactly the permissions the task grants (read from deno.json, so the
 * test cannot drift from it), the server finds its media socket, raises the receive buffer, sends through
 * libc's sendto/sendmmsg, seals SRTP with OpenSSL and runs its fan-out workers (and reads on its receive
 * thread when RECEIVE_THREAD=on), and its start-up log says so.
 */
import { ok } from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";
import { waitFor } from "./helpers/wait.ts";

/** The permission flags of the `start` task (what it passes to `deno run` besides the script). */
function startTaskPermissions(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const words = (config.tasks.start as string).split(/\s+/);
  ok(words[0] === "deno" && words[1] === "run" && words.at(-1) === "main.ts", `unexpected task: ${words}`);
  // --env-file would read a developer's .env into the test server; --unstable-net is added by the helper.
  return words.slice(2, -1).filter((w) => w !== "--env-file" && w !== "--unstable-net");
}

Deno.test({
  name:
    "deno task start's permissions give the libc send path, a raised receive buffer, the receive thread and native SRTP",
  ignore: Deno.build.os !== "linux",
}, async () => {
  const permissions = startTaskPermissions();
  ok(
    !permissions.includes("--allow-all") && !permissions.includes("-A"),
    "the task does not grant everything",
  );
  const saved = Deno.env.get("SERVER_PERMISSIONS");
  Deno.env.set("SERVER_PERMISSIONS", permissions.join(" "));
  let server;
  try {
    // Workers named explicitly: the suite also runs with FANOUT_WORKERS=0 in the environment.
    server = await startServerProcess({ RECEIVE_THREAD: "on", FANOUT_WORKERS: "1" });
  } finally {
    if (saved === undefined) Deno.env.delete("SERVER_PERMISSIONS");
    else Deno.env.set("SERVER_PERMISSIONS", saved);
  }
  try {
    const log = server.logs();
    ok(/UDP send path: sendto\/sendmmsg through libc \(fd \d+\)/.test(log), `send path:\n${log}`);
    const kib = Number(/UDP receive buffer (\d+) KiB/.exec(log)?.[1]);
    const rmemMax = Number(Deno.readTextFileSync("/proc/sys/net/core/rmem_max"));
    // Linux grants twice the request, capped at rmem_max: more than the ~416 KiB a default socket has.
    const expected = (2 * Math.min(4 * 1024 * 1024, rmemMax)) >> 10;
    ok(kib === expected, `receive buffer ${kib} KiB, expected ${expected} KiB:\n${log}`);
    ok(/SRTP: native/.test(log), `SRTP backend:\n${log}`);
    // Fan-out workers load their module and libc/libcrypto under the same permissions.
    ok(/fan-out: \d+ worker threads? seal and send/.test(log), `fan-out:\n${log}`);
    await waitFor("a fan-out worker to run", () => server.logs(), (l) => /fan-out worker 0 running/.test(l));
    ok(/UDP receive path: a receive thread/.test(log), `receive path:\n${log}`);
  } finally {
    await server.stop();
  }
});
