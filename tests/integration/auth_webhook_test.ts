/** The webhook client against a real HTTP receiver on loopback. */
import assert from "node:assert/strict";
import { type AuthQuestion, AuthWebhook } from "../../src/access/auth_webhook.ts";

function receiver(answer: (q: AuthQuestion) => Promise<number> | number) {
  const asked: AuthQuestion[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const q = await req.json() as AuthQuestion;
    asked.push(q);
    return new Response(null, { status: await answer(q) });
  });
  return { asked, url: `http://127.0.0.1:${server.addr.port}/auth`, close: () => server.shutdown() };
}

const question = (token: string): AuthQuestion => ({
  action: "watch",
  room: "stage",
  token,
  ip: "198.51.100.7",
  user_agent: "test",
});

Deno.test("2xx allows (remembered for cacheMs), anything else denies, a crowd costs one call", async () => {
  const r = receiver((q) => q.token === "good" ? 204 : 403);
  const hook = new AuthWebhook({
    url: r.url,
    timeoutMs: 2000,
    onError: "deny",
    cacheMs: 1000,
    log: () => {},
  });
  try {
    const answers = await Promise.all(Array.from({ length: 20 }, () => hook.ask(question("good"), 0)));
    assert.ok(answers.every((a) => a.allowed));
    assert.equal(r.asked.length, 1, "identical questions in flight share one call");
    assert.deepEqual(r.asked[0], question("good"));
    await hook.ask(question("good"), 500);
    assert.equal(r.asked.length, 1, "remembered");
    await hook.ask(question("good"), 1500);
    assert.equal(r.asked.length, 2, "forgotten after cacheMs");
    assert.deepEqual(await hook.ask(question("bad"), 0), {
      allowed: false,
      reason: "denied by the auth webhook (403)",
    });
    await hook.ask(question("bad"), 0);
    assert.equal(r.asked.length, 4, "denials are not remembered");
  } finally {
    await r.close();
  }
});

Deno.test("a time-out or an unreachable webhook denies, or allows when configured so", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const r = receiver(async () => {
    await held;
    return 200;
  });
  const logs: string[] = [];
  const options = { timeoutMs: 200, cacheMs: 1000, log: (_: string, m: string) => logs.push(m) };
  try {
    const deny = new AuthWebhook({ url: r.url, onError: "deny", ...options });
    const answer = await deny.ask(question("any"), 0);
    assert.equal(answer.allowed, false);
    assert.match((answer as { reason: string }).reason, /no answer within 200 ms/);
    const allow = new AuthWebhook({ url: r.url, onError: "allow", ...options });
    assert.equal((await allow.ask(question("any"), 0)).allowed, true);
    const closed = new AuthWebhook({ url: "http://127.0.0.1:9/auth", onError: "deny", ...options });
    assert.match((await closed.ask(question("any"), 0) as { reason: string }).reason, /unreachable/);
    assert.ok(logs.length >= 1);
  } finally {
    release();
    await r.close();
  }
});
