import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("cluster settings are off by default and a node id is generated", () => {
  const config = loadConfig(env({}));
  assert.equal(config.redisUrl, undefined);
  assert.equal(config.publicUrl, undefined);
  assert.equal(config.clusterToken, undefined);
  assert.ok(config.nodeIdGenerated);
  assert.match(config.nodeId, /^node-[A-Za-z0-9_-]{8}$/);
});

Deno.test("cluster settings from the environment", () => {
  const config = loadConfig(env({
    REDIS_URL: "redis://:secret@10.0.0.2:6379/0",
    PUBLIC_URL: "http://10.0.0.5:8080/",
    NODE_ID: "edge-1",
    CLUSTER_TOKEN: "0123456789abcdef-token",
  }));
  assert.equal(config.redisUrl, "redis://:secret@10.0.0.2:6379/0");
  assert.equal(config.publicUrl, "http://10.0.0.5:8080", "normalised to an origin");
  assert.equal(config.nodeId, "edge-1");
  assert.equal(config.nodeIdGenerated, false);
  assert.equal(config.clusterToken, "0123456789abcdef-token");
});

Deno.test("bad cluster settings name their variable", () => {
  const cases: [Record<string, string>, string][] = [
    [{ REDIS_URL: "http://10.0.0.2:6379" }, "REDIS_URL"],
    [{ REDIS_URL: "redis://10.0.0.2:6379" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "http://10.0.0.5:8080/app" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "ftp://10.0.0.5" }, "PUBLIC_URL"],
    [{ NODE_ID: "a:b" }, "NODE_ID"],
    [{ CLUSTER_TOKEN: "short" }, "CLUSTER_TOKEN"],
  ];
  for (const [vars, name] of cases) {
    assert.throws(() => loadConfig(env(vars)), (e: unknown) => {
      assert.ok(e instanceof ConfigError && e.message.startsWith(name), String(e));
      return true;
    });
  }
});
