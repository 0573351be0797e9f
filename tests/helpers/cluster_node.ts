/** Starts a server process as a cluster node of a test Redis. */
import type { RedisProcess } from "./redis.ts";
import { freePort, type ServerProcess, startServerProcess } from "./server_process.ts";

/** The cluster token the test nodes share. */
export const CLUSTER_TOKEN = "cluster-test-token-0123456789";

/** Starts a node of `redis`'s cluster; its PUBLIC_URL is fixed before start, so the port is picked here. */
export function startClusterNode(
  redis: RedisProcess,
  nodeId: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const port = freePort("tcp");
  return startServerProcess({
    TCP_PORT: String(port),
    REDIS_URL: redis.url,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    NODE_ID: nodeId,
    CLUSTER_TOKEN,
    ...env,
  });
}
