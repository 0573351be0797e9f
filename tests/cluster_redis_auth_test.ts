/**
 * The cluster's Redis link with a password (`requirepass`, credentials in REDIS_URL): the right password
 * registers the node; a wrong one leaves the node serving alone, with one warning that does not print the
 * password. Skipped (with a printed reason) without redis-server.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { RedisDirectory } from "../src/cluster/redis_directory.ts";
import { redisServerPath, startRedis } from "./helpers/redis.ts";
import { waitFor } from "./helpers/wait.ts";

const PASSWORD = "correct-horse-battery";
const ignored = redisServerPath() === undefined;
if (ignored) console.log("cluster_redis_auth_test: skipped, redis-server is not installed");

function directory(url: string, lines: string[]): RedisDirectory {
  return new RedisDirectory({
    url,
    nodeId: "authnode",
    publicUrl: "http://127.0.0.1:1",
    ttlSeconds: 6,
    log: (level, message) => lines.push(`${level} ${message}`),
    onMessage: () => {},
    onReady: () => {},
  });
}

Deno.test({
  name: "cluster: Redis with a password: the right one registers the node, a wrong one is one clear warning",
  ignore: ignored,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const redis = await startRedis({ password: PASSWORD });
  const goodLog: string[] = [];
  const badLog: string[] = [];
  const good = directory(redis.url, goodLog);
  const bad = directory(redis.url.replace(PASSWORD, "wrong-password"), badLog);
  try {
    good.start();
    await waitFor("the node to connect", () => good.ready, (ready) => ready, 5000);
    deepEqual(await good.register([], new Map()), []);
    const snapshot = await good.snapshot();
    equal(snapshot.nodes.get("authnode"), "http://127.0.0.1:1");

    bad.start();
    await waitFor("the refusal to be logged", () => badLog.length, (n) => n > 0, 5000);
    await new Promise((r) => setTimeout(r, 1000));
    equal(bad.ready, false);
    const warnings = badLog.filter((l) => l.startsWith("warn"));
    equal(warnings.length, 1, badLog.join("\n"));
    ok(/WRONGPASS|NOAUTH|auth/i.test(warnings[0]), `the warning says why: ${warnings[0]}`);
    ok(!badLog.join("\n").includes("wrong-password"), "the password is not logged");
    ok(!goodLog.join("\n").includes(PASSWORD), "the password is not logged");
  } finally {
    await bad.close([]);
    await good.close([]);
    await redis.stop();
  }
});
