/**
 * A tiny auth webhook receiver (see docs/AUTH_WEBHOOK.md): publishers by stream key, viewers banned by
 * address. Run: deno run --allow-net docs/auth_webhook_receiver.ts, then start the server with
 * AUTH_WEBHOOK_URL=http://127.0.0.1:9000/auth.
 */
const PUBLISHERS: Record<string, string> = { "dj-night": "dj-secret-key-1" }; // room -> stream key
const BANNED = new Set(["203.0.113.66"]);

Deno.serve({ hostname: "127.0.0.1", port: 9000 }, async (req) => {
  if (req.method !== "POST" || new URL(req.url).pathname !== "/auth") {
    return new Response(null, { status: 404 });
  }
  const q = await req.json() as {
    action: "publish" | "watch";
    room: string | null;
    token: string | null;
    ip: string;
    user_agent: string | null;
  };
  if (BANNED.has(q.ip)) return new Response("banned", { status: 403 });
  if (q.action === "publish") {
    const ok = q.room !== null && q.token !== null && PUBLISHERS[q.room] === q.token;
    return new Response(null, { status: ok ? 204 : 403 });
  }
  return new Response(null, { status: 204 }); // everyone else may watch
});
