/**
 * The WHIP/WHEP HTTP details independent clients rely on (RFC 9725 §4.3-4.6): OPTIONS, Link headers from
 * ICE_SERVERS, ETag and If-Match, trickle and ICE-restart PATCHes, 404/405/412/415/422. A hand-written offer
 * is enough: the session never has to connect. The ICE restart is checked down to the UDP socket with a STUN
 * binding request under the new credentials.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { classes, Message, methods, parseMessage } from "werift";
import { type ServerProcess, startServerProcess } from "./helpers/server_process.ts";

const CLIENT_PWD = "clientPasswordClientPassword";
const TURN = "turn:alice:s3cret@turn.example.org:3478?transport=udp";

function offer(ufrag: string): string {
  const fingerprint = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase()).join(":");
  return [
    "v=0",
    "o=- 1 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 102",
    "c=IN IP4 0.0.0.0",
    "a=mid:0",
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${CLIENT_PWD}`,
    `a=fingerprint:sha-256 ${fingerprint}`,
    "a=setup:actpass",
    "a=sendonly",
    "a=rtcp-mux",
    "a=rtpmap:102 H264/90000",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    "",
  ].join("\r\n");
}

function fragment(ufrag: string, pwd = CLIENT_PWD, extra = ""): string {
  return `a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\nm=video 9 RTP/AVP 0\r\na=mid:0\r\n` +
    `a=candidate:1 1 UDP 2015363327 192.0.2.2 54843 typ host\r\n${extra}`;
}

/** Sends a STUN binding request as the client would after ICE; resolves with whether a valid answer came. */
async function stunCheck(udpPort: number, serverUfrag: string, serverPwd: string, clientUfrag: string) {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const request = new Message(methods.BINDING, classes.REQUEST);
    request.setAttribute("USERNAME", `${serverUfrag}:${clientUfrag}`);
    request.addMessageIntegrity(Buffer.from(serverPwd, "utf8"));
    request.addFingerprint();
    await socket.send(new Uint8Array(request.bytes), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: udpPort,
    });
    const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), 1500));
    const reply = await Promise.race([socket.receive().then(([data]) => data), timeout]);
    if (!reply) return false;
    const message = parseMessage(Buffer.from(reply), Buffer.from(serverPwd, "utf8"));
    return message?.messageClass === classes.RESPONSE &&
      Buffer.from(message.transactionId).equals(Buffer.from(request.transactionId));
  } finally {
    socket.close();
  }
}

function sdpValue(sdp: string, name: string): string {
  const value = new RegExp(`^a=${name}:(.+?)\\r?$`, "m").exec(sdp)?.[1];
  assert.ok(value, `a=${name} in ${sdp}`);
  return value;
}

Deno.test({
  name: "WHIP/WHEP protocol: OPTIONS, Link, ETag/If-Match, trickle and ICE restart PATCH",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const server: ServerProcess = await startServerProcess({
    ICE_SERVERS: `stun:stun.example.org:3478,${TURN}`,
    RATE_LIMIT_PER_MINUTE: "0",
  });
  const base = server.baseUrl;
  const auth = { Authorization: `Bearer ${server.token}` };
  const request = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${base}${path}`, init);
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const stunLink = '<stun:stun.example.org:3478>; rel="ice-server"';
  const turnLink = '<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="alice"; ' +
    'credential="s3cret"; credential-type="password"';
  try {
    await t.step("OPTIONS on the endpoints: Accept-Post, methods, CORS, ICE servers", async () => {
      let r = await request("/whip", { method: "OPTIONS" });
      assert.equal(r.status, 204);
      assert.equal(r.headers.get("accept-post"), "application/sdp");
      assert.equal(r.headers.get("allow"), "POST, OPTIONS");
      assert.equal(r.headers.get("access-control-allow-methods"), "POST, OPTIONS");
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
      assert.match(r.headers.get("access-control-allow-headers") ?? "", /If-Match/);
      assert.match(r.headers.get("access-control-expose-headers") ?? "", /ETag.*Link/);
      assert.equal(r.headers.get("link"), stunLink, "TURN credentials need the token on WHIP");
      r = await request("/whip", { method: "OPTIONS", headers: auth });
      assert.equal(r.headers.get("link"), `${stunLink}, ${turnLink}`);
      r = await request("/whep", { method: "OPTIONS" });
      assert.equal(r.headers.get("accept-post"), "application/sdp");
      assert.equal(r.headers.get("link"), `${stunLink}, ${turnLink}`);
      r = await request("/whip/AAAAAAAAAAAAAAAAAAAAAAAA", { method: "OPTIONS" });
      assert.equal(r.headers.get("allow"), "PATCH, DELETE, OPTIONS");
      assert.equal(r.headers.get("accept-post"), null);
      r = await request("/rooms", { method: "OPTIONS" });
      assert.equal(r.headers.get("link"), null);
    });

    let location = "";
    let etag = "";
    let serverUfrag = "";
    let serverPwd = "";
    await t.step("POST: 201 with ETag, Location and Link headers", async () => {
      const r = await request("/whip?room=proto", {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/sdp" },
        body: offer("clientA"),
      });
      assert.equal(r.status, 201, r.text);
      location = r.headers.get("location")!;
      etag = r.headers.get("etag")!;
      assert.match(location, /^\/whip\/[A-Za-z0-9_-]{32}$/);
      assert.match(etag, /^"[A-Za-z0-9]+"$/);
      assert.equal(r.headers.get("link"), `${stunLink}, ${turnLink}`);
      serverUfrag = sdpValue(r.text, "ice-ufrag");
      serverPwd = sdpValue(r.text, "ice-pwd");
      assert.ok(await stunCheck(server.udpPort, serverUfrag, serverPwd, "clientA"), "STUN answered");
    });

    const patch = (headers: Record<string, string>, body: string, path = location) =>
      request(path, {
        method: "PATCH",
        headers: { ...auth, "Content-Type": "application/trickle-ice-sdpfrag", ...headers },
        body,
      });

    await t.step("trickle PATCH: checks before candidates", async () => {
      let r = await request(location, {
        method: "PATCH",
        headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
        body: fragment("clientA"),
      });
      assert.equal(r.status, 401, "WHIP PATCH needs the token");
      r = await patch({ "Content-Type": "application/sdp" }, fragment("clientA"));
      assert.equal(r.status, 415);
      r = await patch({ "If-Match": '"someone-else"' }, fragment("clientA"));
      assert.equal(r.status, 412);
      r = await patch({ "If-Match": `W/${etag}` }, fragment("clientA"));
      assert.equal(r.status, 412, "If-Match uses strong comparison");
      r = await patch({}, fragment("clientA"), "/whip/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
      assert.equal(r.status, 404);
      r = await patch({}, "not an sdp fragment");
      assert.equal(r.status, 400);
      r = await patch({}, "a=ice-ufrag:someoneElse\r\na=candidate:1 1 udp 1 192.0.2.9 9 typ host\r\n");
      assert.equal(r.status, 422, "another ufrag without a password is neither trickle nor restart");
      r = await patch({ "If-Match": etag }, fragment("clientA"));
      assert.equal(r.status, 204);
      r = await patch({ "If-Match": "*" }, fragment("clientA", CLIENT_PWD, "a=end-of-candidates\r\n"));
      assert.equal(r.status, 204);
      r = await patch({}, "a=candidate:1 1 udp 1 192.0.2.9 9 typ host\r\n");
      assert.equal(r.status, 204, "a fragment without credentials is taken as candidates");
    });

    await t.step("ICE restart PATCH: 200 with new credentials, new ETag, same session", async () => {
      const newClientPwd = "restartedClientPassword0";
      const r = await patch({ "If-Match": "*" }, `a=ice-ufrag:clientB\r\na=ice-pwd:${newClientPwd}\r\n`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get("content-type"), "application/trickle-ice-sdpfrag");
      const newEtag = r.headers.get("etag")!;
      assert.notEqual(newEtag, etag);
      const newUfrag = sdpValue(r.text, "ice-ufrag");
      const newPwd = sdpValue(r.text, "ice-pwd");
      assert.notEqual(newUfrag, serverUfrag);
      assert.notEqual(newPwd, serverPwd);
      assert.match(r.text, /^a=ice-lite\r\n/);
      assert.match(r.text, /^m=video 9 UDP\/TLS\/RTP\/SAVPF 102\r\na=mid:0\r$/m);
      assert.match(
        r.text,
        new RegExp(`^a=candidate:1 1 udp \\d+ 127\\.0\\.0\\.1 ${server.udpPort} typ host\\r$`, "m"),
      );
      assert.match(r.text, /a=end-of-candidates\r\n$/);

      assert.ok(await stunCheck(server.udpPort, newUfrag, newPwd, "clientB"), "new credentials answered");
      assert.ok(!await stunCheck(server.udpPort, serverUfrag, serverPwd, "clientA"), "old ones are not");

      let again = await patch({ "If-Match": etag }, fragment("clientB", newClientPwd));
      assert.equal(again.status, 412, "the old ETag no longer matches");
      again = await patch({ "If-Match": newEtag }, fragment("clientB", newClientPwd));
      assert.equal(again.status, 204);
      again = await patch({}, fragment("clientA"));
      assert.equal(again.status, 422, "a late trickle of the earlier ICE session is not a restart");
      etag = newEtag;
    });

    await t.step("405 with Allow, 404 for unknown sessions, DELETE ends the session", async () => {
      let r = await request(location, { method: "GET" });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get("allow"), "PATCH, DELETE, OPTIONS");
      r = await request("/whep", { method: "PUT" });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get("allow"), "POST, OPTIONS");
      r = await request("/whep/CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", {
        method: "PATCH",
        headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
        body: fragment("x1y2"),
      });
      assert.equal(r.status, 404);
      r = await request("/whep/CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", { method: "DELETE" });
      assert.equal(r.status, 404);
      r = await request(location, { method: "DELETE", headers: { ...auth, "If-Match": etag } });
      assert.equal(r.status, 200);
      r = await patch({}, fragment("clientB"));
      assert.equal(r.status, 404, "the session is gone");
    });
  } catch (e) {
    console.error(server.logs());
    throw e;
  } finally {
    await server.stop();
  }
});
