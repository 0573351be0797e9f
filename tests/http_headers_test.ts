/**
 * HTTP hardening of #15 point 7 and the CORS items of #16: METRICS_TOKEN guards /metrics and room stats,
 * every response says nosniff, the trickle-PATCH headers of whip-web-client pass the preflight, and
 * X-Forwarded-For entries with a port are one client for the rate limit.
 */
import assert from "node:assert/strict";
import { startServerProcess } from "./helpers/server_process.ts";

Deno.test("METRICS_TOKEN, nosniff, CORS for trickle PATCH, X-Forwarded-For with ports", async () => {
  const server = await startServerProcess({
    METRICS_TOKEN: "metrics-secret-123",
    TRUSTED_PROXIES: "127.0.0.1",
    RATE_LIMIT_PER_MINUTE: "1",
    API_ORIGINS: "https://media.example.com",
  });
  try {
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.baseUrl}${path}`, { headers });
      await res.body?.cancel();
      return res;
    };
    assert.equal((await get("/metrics")).status, 401);
    assert.equal((await get("/metrics", { Authorization: "Bearer wrong-token-123" })).status, 401);
    assert.equal((await get("/metrics", { Authorization: "Bearer metrics-secret-123" })).status, 200);
    assert.equal((await get("/rooms/any/stats")).status, 401);
    assert.equal((await get("/rooms/any/stats", { Authorization: "Bearer metrics-secret-123" })).status, 404);
    // The room list stays public.
    assert.equal((await get("/rooms")).status, 200);

    for (const path of ["/nowhere", "/rooms/missing", "/metrics", "/healthz", "/"]) {
      assert.equal((await get(path)).headers.get("x-content-type-options"), "nosniff", path);
    }

    const preflight = await fetch(`${server.baseUrl}/whip/abcdefghijklmnopqrstuv`, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "content-type, etag, if-match",
      },
    });
    await preflight.body?.cancel();
    const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const header of ["etag", "if-match", "content-type", "authorization"]) {
      assert(allowed.split(/,\s*/).includes(header), `${header} not in ${allowed}`);
    }
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /PATCH/);
    assert.match(preflight.headers.get("allow") ?? "", /PATCH/);

    // ?api= may point the pages only at allowed origins (the token would go there).
    assert.equal((await get("/publish?api=https://evil.example")).status, 400);
    assert.equal((await get("/watch/room?api=http://evil.example:8080/")).status, 400);
    assert.equal((await get("/?api=javascript:alert(1)")).status, 400);
    assert.equal((await get("/publish?api=https://media.example.com")).status, 200);
    assert.equal((await get(`/publish?api=${server.baseUrl}`)).status, 200);
    assert.equal((await get("/publish?api=/")).status, 200);

    // One client behind the trusted proxy, seen with two source ports: one budget (1 failed POST per minute;
    // a POST without the token is a failure).
    const post = async (forwardedFor: string) => {
      const res = await fetch(`${server.baseUrl}/whip`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", "X-Forwarded-For": forwardedFor },
        body: "v=0\r\n",
      });
      await res.body?.cancel();
      return res.status;
    };
    assert.notEqual(await post("198.51.100.9:1111"), 429);
    assert.equal(await post("198.51.100.9:2222"), 429);
    assert.equal(await post("[::ffff:198.51.100.9]:3333"), 429);
    assert.notEqual(await post("198.51.100.10"), 429);
  } finally {
    await server.stop();
  }
});
