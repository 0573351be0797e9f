/** Entry point: read the configuration, start the server, stop cleanly on SIGINT/SIGTERM. */
// Only config.ts (and its help text) is loaded before `--help` is answered: the server's modules (werift, sharp) read the
// environment as they load, and `--help` must work without any permission.
import { ConfigError, loadConfig } from "./src/config.ts";
import { settingsHelp } from "./src/config_doc.ts";

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(settingsHelp());
  Deno.exit(0);
}

try {
  const config = loadConfig();
  const { createLog } = await import("./src/log.ts");
  const { startServer } = await import("./src/server.ts");
  const log = createLog(config.logLevel, config.logFormat);
  if (config.clusterToken !== undefined && config.redisUrl === undefined) {
    log("warn", "CLUSTER_TOKEN is set but REDIS_URL is not: this node runs alone and never uses the token");
  }
  const server = await startServer(config, log);
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (server.recoverHttp(event.reason)) event.preventDefault();
  });
  const host = config.tcpAddress === "0.0.0.0" ? "localhost" : config.tcpAddress;
  const scheme = config.tls ? "https" : "http";
  const base = `${scheme}://${host}:${server.httpPort}`;
  log(
    "info",
    `${
      config.tls ? "HTTPS" : "HTTP"
    } API on ${config.tcpAddress}:${server.httpPort}, media on UDP ${config.udpAddress}:${server.udpPort}`,
    { scheme, http_port: server.httpPort, udp_port: server.udpPort, tls_cert: config.tls?.certPath },
  );
  log("info", `ICE candidates: ${server.candidates.map((c) => `${c.address}:${c.port}`).join(", ")}`);
  log("info", `DTLS certificate sha-256 ${server.certificate.fingerprint}`);
  const tokenNote = config.whipTokenGenerated ? " (generated for this run; set WHIP_TOKEN to keep one)" : "";
  if (config.logFormat === "json") {
    // Keep stdout and stderr machine-readable: the banner becomes one record.
    log("info", `open ${base}/ (rooms) or ${base}/publish; publish with WHIP at ${base}/whip`, {
      lobby_url: `${base}/`,
      publish_page_url: `${base}/publish`,
      whip_url: `${base}/whip`,
      bearer_token: config.whipTokenGenerated ? config.whipToken : undefined,
    });
  } else {
    console.log(
      `\nOpen ${base}/ to see the live rooms, or ${base}/publish to go live from this browser.\n` +
        `\nPublish with OBS: Settings → Stream → Service "WHIP"\n  Server:       ${base}/whip\n  Bearer Token: ${
          config.whipTokenGenerated ? config.whipToken : "(your WHIP_TOKEN)"
        }${tokenNote}\nWatch: POST ${base}/whep?target_id=<room id>, rooms at ${base}/rooms\n`,
    );
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", `${signal}: shutting down`);
    const timer = setTimeout(() => Deno.exit(1), 5000);
    await server.shutdown();
    clearTimeout(timer);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`configuration error: ${e.message}`);
    Deno.exit(2);
  }
  throw e;
}
