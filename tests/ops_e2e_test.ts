/**
 * Operations against the real server: `/metrics` while Chromium publishes and watches (and after the room
 * closed), HTTPS from TLS_CERT/TLS_KEY for a Deno client that trusts the certificate and for a Chromium page
 * showing the lobby, LOG_FORMAT=json producing one JSON object per line, and bad TLS settings stopping
 * start-up with one line.
 */
import assert from "node:assert/strict";
import { launchChromium } from "./helpers/browser.ts";
import { freePort, startServerProcess, startupRefusal } from "./helpers/server_process.ts";
import { publishFromPage, receiveStats, watchFromPage } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";
import { selfSignedPem } from "./helpers/certificates.ts";
import { metric, scrapeMetrics as scrape } from "./helpers/metrics.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test({
  name: "metrics count a Chromium publisher and viewer, and keep totals after the room closes",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const server = await startServerProcess({ CONSENT_TIMEOUT: "3" });
  const browser = await launchChromium();
  try {
    const metricsUrl = `${server.baseUrl}/metrics`;
    const idle = await scrape(metricsUrl);
    assert.equal(metric(idle, "sfu_rooms"), 0);
    assert.equal(metric(idle, "sfu_viewers"), 0);

    const publisher = await browser.newPage();
    await publisher.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(publisher, { token: server.token, room: "ops" });
    const viewer = await browser.newPage();
    await viewer.goto(`${server.baseUrl}/healthz`);
    await watchFromPage(viewer, "ops");
    await waitFor("frames decoded", () => receiveStats(viewer), (s) => s.framesDecoded > 10);

    const live = await waitFor(
      "metrics of a live room",
      () => scrape(metricsUrl),
      (m) => m.get('sfu_sessions{state="connected"}') === 2 && (m.get("sfu_rtp_packets_out_total") ?? 0) > 0,
    );
    assert.equal(metric(live, "sfu_rooms"), 1);
    assert.equal(metric(live, "sfu_publishers"), 1);
    assert.equal(metric(live, "sfu_viewers"), 1);
    assert.ok(metric(live, "sfu_udp_datagrams_in_total") > 0);
    assert.ok(metric(live, "sfu_udp_bytes_out_total") > 0);
    assert.ok(metric(live, "sfu_keyframe_requests_total") > 0, "a joining viewer asks for a keyframe");
    assert.ok(metric(live, "sfu_rtp_packets_in_total") > 0);
    assert.equal(metric(live, "sfu_srtp_decrypt_failures_total"), 0);
    assert.ok(metric(live, "sfu_event_loop_lag_seconds") >= 0);
    assert.ok([...live.keys()].some((k) => k.startsWith("sfu_crypto_backend_info{backend=")));

    await publisher.close();
    await viewer.close();
    const after = await waitFor("room closed", () => scrape(metricsUrl), (m) => m.get("sfu_rooms") === 0);
    assert.equal(metric(after, "sfu_viewers"), 0);
    assert.ok(
      metric(after, "sfu_keyframe_requests_total") >= metric(live, "sfu_keyframe_requests_total"),
      "room counters are kept after the room closes",
    );
    assert.ok(metric(after, "sfu_rtp_packets_out_total") >= metric(live, "sfu_rtp_packets_out_total"));
  } catch (e) {
    console.error(server.logs());
    throw e;
  } finally {
    await browser.close();
    await server.stop();
  }
});

Deno.test({
  name: "HTTPS from TLS_CERT/TLS_KEY for Deno and Chromium, with JSON logs",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sfu-tls-" });
  const { cert, key } = await selfSignedPem(dir, {
    key: "ec",
    tlsServer: true,
    certFile: "tls.crt",
    keyFile: "tls.key",
  });
  const httpPort = freePort("tcp");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-all", MAIN],
    env: {
      TCP_ADDRESS: "127.0.0.1",
      TCP_PORT: String(httpPort),
      UDP_ADDRESS: "127.0.0.1",
      UDP_PORT: String(freePort("udp")),
      STORAGE_DIR: `${dir}/storage`,
      CERTS_DIR: `${dir}/certs`,
      TLS_CERT: cert,
      TLS_KEY: key,
      LOG_FORMAT: "json",
      LOG_LEVEL: "debug",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  let stdout = "";
  const drained = Promise.all([
    (async () => {
      for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
    })(),
    (async () => {
      for await (const chunk of child.stdout) stdout += decoder.decode(chunk, { stream: true });
    })(),
  ]);
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cert)] });
  const base = `https://localhost:${httpPort}`;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    const health = await waitFor("HTTPS /healthz", async () => {
      try {
        const res = await fetch(`${base}/healthz`, { client });
        return { status: res.status, body: await res.text() };
      } catch (e) {
        return { status: 0, body: String(e) };
      }
    }, (r) => r.status === 200);
    assert.equal(health.body, "ok\n");
    const values = await scrape(`${base}/metrics`, { client });
    assert.equal(metric(values, "sfu_rooms"), 0);
    // The port speaks TLS only, and a client that does not trust the certificate is refused.
    await assert.rejects(() => fetch(`https://localhost:${httpPort}/healthz`));

    browser = await launchChromium(["--ignore-certificate-errors"]);
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    assert.equal(await page.textContent("h1"), "Live now");
    // The lobby's SSE feed arrived over HTTPS: the "nobody is live" panel is shown.
    await page.waitForSelector("#empty:not([hidden])", { timeout: 10000 });
    assert.equal(await page.evaluate(() => globalThis.isSecureContext), true);
  } catch (e) {
    console.error(stderr);
    throw e;
  } finally {
    await browser?.close();
    client.close();
    child.kill("SIGTERM");
    await child.status;
    await drained;
    await Deno.remove(dir, { recursive: true });
  }
  // Every line on stderr and stdout is one JSON object with time, level and msg.
  const lines = (stderr + stdout).split("\n").filter((l) => l !== "");
  assert.ok(lines.length >= 4, `some log lines: ${stderr}`);
  for (const line of lines) {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
    assert.equal(typeof record.msg, "string");
    assert.match(String(record.level), /^(debug|info|warn|error)$/);
    assert.ok(!Number.isNaN(Date.parse(String(record.time))), line);
  }
  const records = lines.map((l) => JSON.parse(l));
  const listening = records.find((r) => /^HTTPS API on /.test(r.msg));
  assert.ok(listening, "start-up line");
  assert.equal(listening.scheme, "https");
  assert.equal(listening.http_port, httpPort);
  assert.ok(records.some((r) => r.msg === "SIGTERM: shutting down"));
});

Deno.test("bad TLS settings stop start-up with one line naming the variable", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { TLS_CERT: "/nonexistent/tls.crt", TLS_KEY: "/nonexistent/tls.key" },
      /^configuration error: TLS_CERT: /,
    ],
    [{ TLS_CERT: MAIN }, /^configuration error: TLS_KEY must be set together with TLS_CERT$/],
    [{ LOG_FORMAT: "xml" }, /^configuration error: LOG_FORMAT must be text or json/],
  ];
  for (const [env, expected] of cases) assert.match(await startupRefusal(env), expected);
});
