/**
 * The cluster's Redis link when Redis is locked down. With a password (`requirepass`, credentials in
 * REDIS_URL) the right one registers the node, and a wrong one leaves the node serving alone with one
 * warning that does not print the password. Over TLS (`rediss://`) a real node connects when its CA is
 * trusted (Deno's DENO_CERT) and refuses an untrusted certificate. Skipped (with a printed reason) without
 * redis-server.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { RedisDirectory } from "../src/cluster/redis_directory.ts";
import { redisServerPath, startRedis } from "./helpers/redis.ts";
import type { ServerProcess } from "./helpers/server_process.ts";
import { startClusterNode } from "./helpers/cluster_node.ts";
import { waitFor } from "./helpers/wait.ts";
import { caAndServerPem } from "./helpers/certificates.ts";
import { metricOf } from "./helpers/metrics.ts";

const PASSWORD = "correct-horse-battery";
const ignored = redisServerPath() === undefined;
if (ignored) console.log("cluster_redis_link_test: skipped, redis-server is not installed");

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

function redisConnected(node: ServerProcess): Promise<number> {
  return metricOf(node.baseUrl, "sfu_cluster_redis_connected");
}

Deno.test({
  name: "cluster: rediss:// connects a node that trusts Redis' CA and refuses one that does not",
  ignore: ignored,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sfu-redis-tls-" });
  const { ca, cert, key } = await caAndServerPem(dir);
  const redis = await startRedis({ tls: { certFile: cert, keyFile: key } });
  let trusting: ServerProcess | undefined;
  let untrusting: ServerProcess | undefined;
  try {
    equal(redis.url.startsWith("rediss://"), true);
    trusting = await startClusterNode(redis, "trusting", { DENO_CERT: ca });
    untrusting = await startClusterNode(redis, "untrusting");
    await waitFor(
      "the trusting node to connect over TLS",
      () => redisConnected(trusting!),
      (v) => v === 1,
      10_000,
    );
    await waitFor(
      "the untrusting node to log the refusal",
      () => untrusting!.logs(),
      (logs) => /Redis at rediss:\/\/127\.0\.0\.1:\d+ unreachable/.test(logs),
      10_000,
    );
    equal(await redisConnected(untrusting), 0);
    ok(/certificate/i.test(untrusting.logs()), "the warning names the certificate problem");
    await waitFor(
      "the trusting node to see itself registered",
      () => metricOf(trusting!.baseUrl, "sfu_cluster_nodes"),
      (n) => n === 1,
      10_000,
    );
  } catch (e) {
    console.error(`--- trusting ---\n${trusting?.logs()}\n--- untrusting ---\n${untrusting?.logs()}`);
    throw e;
  } finally {
    await untrusting?.stop();
    await trusting?.stop();
    await redis.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
