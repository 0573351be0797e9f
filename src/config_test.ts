import assert from "node:assert/strict";
import { ACCESS_SETTINGS, ConfigError, loadConfig, SERVER_SETTINGS, SETTINGS } from "./config.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("defaults need no configuration and generate a token", () => {
  const config = loadConfig(env({}));
  assert.equal(config.tcpAddress, "0.0.0.0");
  assert.equal(config.tcpPort, 8080);
  assert.equal(config.udpPort, 8443);
  assert.equal(config.storageDir, "./storage");
  assert.equal(config.certsDir, "./certs");
  assert.equal(config.frontendUrl, "*");
  assert.equal(config.consentTimeoutMs, 15000);
  assert.ok(config.whipTokenGenerated);
  assert.ok(config.whipToken.length >= 22);
  assert.notEqual(loadConfig(env({})).whipToken, config.whipToken);
  assert.deepEqual(config.publicIps, []);
});

Deno.test("values from the environment", () => {
  const config = loadConfig(env({
    TCP_PORT: "9000",
    UDP_ADDRESS: "127.0.0.1",
    WHIP_TOKEN: "secret-token",
    PUBLIC_IP: "203.0.113.5, 198.51.100.7",
    CONSENT_TIMEOUT: "5",
  }));
  assert.equal(config.tcpPort, 9000);
  assert.equal(config.udpAddress, "127.0.0.1");
  assert.equal(config.whipToken, "secret-token");
  assert.equal(config.whipTokenGenerated, false);
  assert.deepEqual(config.publicIps, ["203.0.113.5", "198.51.100.7"]);
  assert.equal(config.consentTimeoutMs, 5000);
});

Deno.test("bad values stop start-up with one line naming the variable", () => {
  const cases: [Record<string, string>, string][] = [
    [{ TCP_PORT: "80a" }, "TCP_PORT"],
    [{ UDP_PORT: "70000" }, "UDP_PORT"],
    [{ TCP_ADDRESS: "example.com" }, "TCP_ADDRESS"],
    [{ PUBLIC_IP: "1.2.3" }, "PUBLIC_IP"],
    [{ WHIP_TOKEN: "short" }, "WHIP_TOKEN"],
    [{ CONSENT_TIMEOUT: "-1" }, "CONSENT_TIMEOUT"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ TRUSTED_PROXIES: "127.0.0.1, proxy.example" }, "TRUSTED_PROXIES"],
  ];
  for (const [vars, name] of cases) {
    assert.throws(() => loadConfig(env(vars)), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.startsWith(name), e.message);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("limits have safe defaults and are validated", () => {
  const config = loadConfig(env({}));
  assert.equal(config.maxSessions, 500);
  assert.equal(config.maxViewersPerRoom, 200);
  assert.equal(config.rateLimitPerMinute, 30);
  assert.equal(config.maxSseClients, 1000);
  assert.deepEqual(config.trustedProxies, []);
  assert.deepEqual(loadConfig(env({ TRUSTED_PROXIES: "127.0.0.1, ::1" })).trustedProxies, [
    "127.0.0.1",
    "::1",
  ]);
  assert.equal(loadConfig(env({ RATE_LIMIT_PER_MINUTE: "0" })).rateLimitPerMinute, 0);
  assert.equal(loadConfig(env({ MAX_SESSIONS: "20" })).maxSessions, 20);
  for (
    const [name, value] of [["MAX_SESSIONS", "0"], ["MAX_VIEWERS_PER_ROOM", "1.5"], ["MAX_SSE_CLIENTS", "-3"]]
  ) {
    assert.throws(() => loadConfig(env({ [name]: value })), (e: unknown) => {
      assert.ok(e instanceof ConfigError && e.message.startsWith(name), String(e));
      return true;
    });
  }
  assert.throws(
    () => loadConfig(env({ RATE_LIMIT_PER_MINUTE: "lots" })),
    /^ConfigError: RATE_LIMIT_PER_MINUTE/,
  );
});

Deno.test("every literal default in SETTINGS (what --help prints) is what loadConfig uses when the variable is unset", () => {
  const fixed = { WHIP_TOKEN: "t0ken-for-tests", NODE_ID: "node-a" };
  const baseline = loadConfig((name) => (fixed as Record<string, string>)[name]);
  const literal = SETTINGS.filter((s) => !s.defaultValue.includes("("));
  assert.ok(literal.length >= 25, "most settings have a literal default");
  for (const setting of literal) {
    const env = { ...fixed, [setting.name]: setting.defaultValue } as Record<string, string>;
    assert.deepEqual(loadConfig((name) => env[name]), baseline, `${setting.name}=${setting.defaultValue}`);
  }
});

Deno.test("every row of the table becomes its field of Config (or of config.access)", () => {
  const config = loadConfig(env({}));
  for (const key of Object.keys(SERVER_SETTINGS)) {
    if (key === "tlsCert" || key === "tlsKey") continue; // read into config.tls
    assert.ok(key in config, key);
  }
  for (const key of Object.keys(ACCESS_SETTINGS)) assert.ok(key in config.access, key);
  assert.equal(config.access.maxPublishers, 50, "MAX_SESSIONS/10 when unset");
  assert.equal(loadConfig(env({ MAX_SESSIONS: "5" })).access.maxPublishers, 1, "at least one");
  assert.equal(loadConfig(env({ MAX_PUBLISHERS: "7" })).access.maxPublishers, 7);
});

Deno.test("unknown words and malformed values in any row stop start-up naming that row's variable", () => {
  let refused = 0;
  for (const row of [...Object.values(SERVER_SETTINGS), ...Object.values(ACCESS_SETTINGS)]) {
    let error: unknown;
    try {
      loadConfig(env({ [row.name]: "no such value!" }));
    } catch (e) {
      error = e;
    }
    if (error === undefined || row.name.startsWith("TLS_")) continue; // free text, paths; TLS_* come in pairs
    refused++;
    assert.ok(error instanceof ConfigError, `${row.name}: ${error}`);
    assert.ok(
      error.message.startsWith(`${row.name} `) || error.message.startsWith(`${row.name}:`),
      error.message,
    );
    assert.ok(!error.message.includes("\n"));
  }
  assert.ok(refused >= 38, `${refused} rows refuse a malformed value`);
  for (
    const [vars, message] of [
      [{ LOG_LEVEL: "verbose" }, /^LOG_LEVEL must be one of debug, info, warn or error \(got "verbose"\)$/],
      [{ VIDEO_CODECS: "h264,mpeg2" }, /^VIDEO_CODECS unknown video codec "mpeg2"/],
      [{ AUTH_WEBHOOK_ON_ERROR: "retry" }, /^AUTH_WEBHOOK_ON_ERROR must be deny or allow/],
      [{ KEYFRAME_CACHE: "sometimes" }, /^KEYFRAME_CACHE must be on or off/],
      [
        { MAX_SESSIONS: "10", MAX_PUBLISHERS: "11" },
        /^MAX_PUBLISHERS must not exceed MAX_SESSIONS \(11 > 10\)$/,
      ],
      [{ PRIVATE_ROOMS: "vip" }, /^PRIVATE_ROOMS needs VIEWER_TOKEN_SECRET/],
      [{ PRIVATE_ROOMS: "a b" }, /^PRIVATE_ROOMS must be room names/],
      [{ VIEWER_TOKEN_SECRET: "short-secret" }, /^VIEWER_TOKEN_SECRET must be at least 16 characters long$/],
      [{ AUTH_WEBHOOK_URL: "ftp://hook.example" }, /^AUTH_WEBHOOK_URL must be a http:\/\/ or https:\/\/ URL/],
      [{ AUTH_WEBHOOK_CACHE: "3601" }, /^AUTH_WEBHOOK_CACHE must be a number of seconds from 0 to 3600/],
      [{ MAX_PUBLISHER_BITRATE: "50" }, /^MAX_PUBLISHER_BITRATE must be a whole number from 100/],
    ] as const
  ) {
    assert.throws(() => loadConfig(env(vars)), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("a computed default (FANOUT_WORKERS: cores - 1, at least 1) is used when unset; a value is parsed", () => {
  const expected = Math.max(1, (navigator.hardwareConcurrency ?? 1) - 1);
  assert.equal(loadConfig(env({})).fanoutWorkers, expected);
  assert.equal(loadConfig(env({ FANOUT_WORKERS: "0" })).fanoutWorkers, 0);
  assert.throws(
    () => loadConfig(env({ FANOUT_WORKERS: "65" })),
    /^ConfigError: FANOUT_WORKERS must be a whole number from 0 to 64/,
  );
  assert.equal(SETTINGS.find((s) => s.name === "FANOUT_WORKERS")?.defaultValue, "(cores − 1, at least 1)");
});
