/** Wires the server together: directories, certificate, the UDP socket, sessions, the HTTP API; owns shutdown. */
import { join } from "node:path";
import { type Config, ConfigError } from "./config.ts";
import { loadOrCreateCertificate, type ServerCertificate } from "./peer/certificate.ts";
import { MediaSocket } from "./net/udp.ts";
import { raiseReceiveBuffer } from "./net/socket_buffer.ts";
import { SessionManager } from "./rooms/sessions.ts";
import { RoomBus, roomBusName } from "./rooms/bus.ts";
import { createRouter } from "./http/routes.ts";
import { serveNotFoundPage, serveUi } from "./http/ui.ts";
import { RateLimiter } from "./http/rate_limit.ts";
import { RoomDirectory } from "./rooms/directory.ts";
import { RoomFeed } from "./http/notifications.ts";
import { ThumbnailFiles } from "./http/rooms.ts";
import { ThumbnailService } from "./thumbs/thumbnail_service.ts";
import type { Candidate } from "./sdp/answer.ts";
import { createLog, type Log } from "./log.ts";
import { srtpBackendName } from "./srtp/context.ts";
import { metricsHandler } from "./http/metrics.ts";
import { MediaTotals } from "./metrics/media_totals.ts";
import { LoopLagSampler } from "./metrics/loop_lag.ts";
import { HttpGate } from "./http/http_gate.ts";
import { normalizeAddress } from "./http/client_address.ts";
import { openFileLimit } from "./http/descriptor_limit.ts";
import { httpConnectionLimits } from "./http/connection_budget.ts";
import { ErrorBurst } from "./http/error_burst.ts";
import { timeBody } from "./http/body.ts";
import { AccessPolicy } from "./http/auth.ts";
import { StreamKeyFile } from "./access/stream_keys.ts";
import { AuthWebhook } from "./access/auth_webhook.ts";

/** How often rooms' bitrate and frame-rate estimates are refreshed. */
const ROOM_STATS_INTERVAL_MS = 2000;

/** A started server. */
export interface RunningServer {
  httpPort: number;
  udpPort: number;
  candidates: Candidate[];
  certificate: ServerCertificate;
  sessions: SessionManager;
  directory: RoomDirectory;
  socket: MediaSocket;
  /** The public HTTP port's accept loop (connection counts and timeouts). */
  gate: HttpGate;
  /** Name of the room bus channel, for parties that want to listen. */
  busName: string;
  /**
   * For the process owner's `unhandledrejection` listener: true (and the HTTP side restarted) when `reason`
   * is Deno.serve's accept loop dying of EMFILE/ENFILE, which must then not end the process.
   */
  recoverHttp(reason: unknown): boolean;
  shutdown(): Promise<void>;
}

/** The media socket's kernel receive buffer asked for at start-up (SO_RCVBUF). */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/** Starts everything `config` describes; throws {@link ConfigError} for unusable settings. */
export async function startServer(
  config: Config,
  log: Log = createLog(config.logLevel, config.logFormat),
): Promise<RunningServer> {
  await ensureWritableDir("STORAGE_DIR", config.storageDir);
  await ensureWritableDir("CERTS_DIR", config.certsDir);
  // Both ports are bound before anything is logged, so a port in use is the only line a failed start prints.
  let socket: MediaSocket;
  try {
    socket = MediaSocket.listen(config.udpAddress, config.udpPort, { thread: config.receiveThread });
  } catch (e) {
    throw new ConfigError(
      `UDP_PORT: cannot bind ${config.udpAddress}:${config.udpPort}: ${firstLine(e)}`,
    );
  }
  const httpLimits = httpConnectionLimits(config, openFileLimit());
  const trustedProxies = new Set(config.trustedProxies.map((a) => normalizeAddress(a) ?? a));
  let gate: HttpGate;
  try {
    gate = new HttpGate({
      hostname: config.tcpAddress,
      port: config.tcpPort,
      headerTimeoutMs: config.httpHeaderTimeoutMs,
      idleTimeoutMs: config.httpIdleTimeoutMs,
      maxConnections: httpLimits.maxConnections,
      maxPerAddress: httpLimits.maxPerAddress,
      trustedProxies,
      tls: config.tls !== undefined,
      log,
    });
  } catch (e) {
    socket.close();
    throw new ConfigError(
      `TCP_PORT: cannot listen on ${config.tcpAddress}:${config.tcpPort}: ${firstLine(e)}`,
    );
  }
  let certificate: ServerCertificate;
  try {
    certificate = await loadOrCreateCertificate(config.certsDir);
  } catch (e) {
    socket.close();
    await gate.close();
    throw e;
  }
  let access: ReturnType<typeof startAccess>;
  try {
    access = startAccess(config, log);
  } catch (e) {
    socket.close();
    await gate.close();
    throw e;
  }
  if (certificate.generated) log("info", `generated a self-signed ECDSA certificate in ${config.certsDir}`);
  log("info", `SRTP: ${srtpBackendName()}`);
  log(
    httpLimits.lowered ? "warn" : "info",
    `HTTP: at most ${httpLimits.maxConnections} connections, ${httpLimits.maxPerAddress} per address ` +
      `(${httpLimits.basis}); timeouts: headers ${config.httpHeaderTimeoutMs / 1000} s, body ` +
      `${config.httpBodyTimeoutMs / 1000} s, idle ${config.httpIdleTimeoutMs / 1000} s`,
    {
      max_http_connections: httpLimits.maxConnections,
      max_http_connections_per_address: httpLimits.maxPerAddress,
    },
  );
  const receiveBuffer = raiseReceiveBuffer(socket.port, RECEIVE_BUFFER_BYTES);
  log(
    "info",
    receiveBuffer.granted
      ? `UDP receive buffer ${receiveBuffer.granted >> 10} KiB (asked ${
        RECEIVE_BUFFER_BYTES >> 10
      } KiB; Linux grants twice the ` +
        "request, capped at net.core.rmem_max)"
      : `UDP receive buffer at the kernel default (not raised: ${receiveBuffer.reason})`,
  );
  log("info", `UDP send path: ${socket.sendPath}`);
  log("info", `fan-out: ${socket.startFanout(config.fanoutWorkers, { log })}`);
  await socket.receiveReady();
  log("info", `UDP receive path: ${socket.receivePath}`);
  socket.log = log;
  const candidates = advertisedAddresses(config).map((address) => ({ address, port: socket.port }));
  const busName = roomBusName(crypto.randomUUID());
  const bus = new RoomBus(busName);
  // Sees every peer come and go (and with it every room), so /metrics totals survive closed rooms.
  const mediaTotals = new MediaTotals(() => sessions.rooms.values());
  const sessions: SessionManager = new SessionManager({
    certificate,
    candidates,
    consentTimeoutMs: config.consentTimeoutMs,
    media: {
      keyframeCache: config.keyframeCache,
      retransmissions: config.retransmissions,
      maxPublisherBitrate: config.maxPublisherBitrate,
    },
    transportCc: config.transportCc,
    videoCodecs: config.videoCodecs,
    maxSessions: config.maxSessions,
    maxViewersPerRoom: config.maxViewersPerRoom,
    thumbnailIntervalMs: config.thumbnailIntervalMs,
    maxPublishers: config.access.maxPublishers,
    maxPendingPerAddress: config.access.maxPendingPerAddress,
    maxViewersPerAddress: config.access.maxViewersPerAddress,
    connectTimeoutMs: config.access.connectTimeoutMs,
    transport: mediaTotals.wrap(socket),
    bus,
    log,
  });
  // What peers decrypt goes from the socket to the session layer, which knows their rooms.
  socket.media = sessions.media;
  // Cluster mode: the bridge merges Redis into the list, so the directory listens to it instead of the bus.
  // Loaded only in cluster mode: a single node never pays for the Redis client.
  const cluster = config.redisUrl
    ? (await import("./cluster/cluster.ts")).startCluster({ config, busName, sessions, certificate, log })
    : undefined;
  const directory = new RoomDirectory(new RoomBus(cluster?.directoryBusName ?? busName));
  const feed = new RoomFeed(directory, {
    maxClients: config.maxSseClients,
    maxPerAddress: config.access.maxSsePerAddress,
  });
  const thumbnailFiles = new ThumbnailFiles(config.storageDir, directory);
  await ThumbnailService.cleanStale(config.storageDir);
  const thumbnails = new ThumbnailService({
    busName,
    storageDir: config.storageDir,
    intervalMs: config.thumbnailIntervalMs,
    log,
  });
  // Room statistics run from the media socket's one timer, like the peers' sweep and the join replays.
  socket.scheduler.wakeAt({
    wake(now) {
      sessions.publishRoomStats(now);
      return now + ROOM_STATS_INTERVAL_MS;
    },
  }, performance.now() + ROOM_STATS_INTERVAL_MS);
  const socketDone = socket.run().catch((e) => log("error", `UDP socket failed: ${e}`));
  const loopLag = new LoopLagSampler();
  loopLag.start();
  const metrics = metricsHandler({
    socket,
    fanout: socket.fanout,
    media: mediaTotals,
    sessions,
    feed,
    thumbnails,
    loopLag,
    cryptoBackend: srtpBackendName,
    startedAt: Date.now() - performance.now(),
    http: gate,
    cluster,
  });

  const router = createRouter({
    sessions,
    directory,
    feed,
    thumbnails: thumbnailFiles,
    access: access.policy,
    frontendUrl: config.frontendUrl,
    log,
    extra: cluster ? [serveUi, metrics, cluster.handle] : [serveUi, metrics],
    notFoundPage: serveNotFoundPage,
    rateLimiter: new RateLimiter(config.rateLimitPerMinute),
    trustedProxies,
    iceServers: config.iceServers,
    cluster: cluster?.hooks,
    metricsToken: config.metricsToken,
    apiOrigins: new Set(config.apiOrigins),
  });
  const bodyTimeoutMs = config.httpBodyTimeoutMs;
  const handler = gate.wrap((req, info) => router(timeBody(req, bodyTimeoutMs), info));
  let backendAbort = new AbortController();
  // Requests reach Deno.serve only through the gate, on a private loopback port.
  const startBackend = () =>
    Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        // HTTPS straight from Deno when TLS_CERT/TLS_KEY are set (config checked they load and match).
        ...(config.tls ? { cert: config.tls.cert, key: config.tls.key } : {}),
        signal: backendAbort.signal,
        onListen: () => {},
        onError: (e) => {
          log("error", `HTTP handler failed: ${e}`);
          return new Response("internal error\n", {
            status: 500,
            headers: { "Content-Type": "text/plain", "X-Content-Type-Options": "nosniff" },
          });
        },
      },
      handler,
    );
  let server = startBackend();
  gate.start(server.addr.port);
  let restartingBackend = false;
  const backendFailures = new ErrorBurst(10_000);
  let stopping: Promise<void> | undefined;
  /**
   * Deno.serve's accept loop ends for good on EMFILE/ENFILE and rejects a promise nobody can catch; the
   * gate's caps keep descriptors below the limit, but without FFI the limit is only assumed. The process
   * owner passes such rejections here: a new Deno.serve takes over and the gate relays to it.
   */
  const recoverHttp = (reason: unknown): boolean => {
    if (!(reason instanceof Deno.errors.Http) || !/os error 2[34]\b/.test(String(reason))) return false;
    if (restartingBackend || stopping) return true;
    restartingBackend = true;
    const loud = backendFailures.occurred(performance.now()) !== undefined;
    if (loud) {
      log("error", `HTTP: the request handler stopped accepting (${firstLine(reason)}); starting a new one`);
    }
    backendAbort.abort();
    const retry = () => {
      if (stopping) return;
      try {
        backendAbort = new AbortController();
        server = startBackend();
      } catch {
        setTimeout(retry, 1000);
        return;
      }
      gate.setBackend(server.addr.port);
      restartingBackend = false;
      if (loud) log("info", "HTTP: the request handler accepts again");
    };
    retry();
    return true;
  };

  return {
    httpPort: gate.port,
    gate,
    udpPort: socket.port,
    candidates,
    certificate,
    sessions,
    directory,
    socket,
    busName,
    recoverHttp,
    shutdown() {
      stopping ??= (async () => {
        backendAbort.abort();
        await gate.close();
        access.stop();
        loopLag.stop();
        feed.close();
        // Relays end and the node leaves Redis first, so other nodes drop its rooms at once.
        await cluster?.close().catch((e) => log("warn", `cluster: leaving failed: ${e}`));
        sessions.closeAll();
        // Let close_notify and BYE datagrams leave, and room-closed events reach the thumbnailer.
        await new Promise((r) => setTimeout(r, 100));
        await thumbnails.close();
        await ThumbnailService.cleanStale(config.storageDir);
        socket.close();
        bus.close();
        directory.close();
        await socketDone;
        await server.finished;
      })();
      return stopping;
    },
  };
}

/** The access policy of `config`; the stream-key file is read now (ConfigError when it cannot be) and watched. */
function startAccess(config: Config, log: Log): { policy: AccessPolicy; stop(): void } {
  const a = config.access;
  let keyFile: StreamKeyFile | undefined;
  if (a.streamKeysFile !== undefined) {
    keyFile = new StreamKeyFile(a.streamKeysFile, log);
    try {
      keyFile.start();
    } catch (e) {
      throw new ConfigError(`STREAM_KEYS_FILE: cannot read ${a.streamKeysFile}: ${(e as Error).message}`);
    }
  }
  const webhook = a.authWebhookUrl === undefined ? undefined : new AuthWebhook({
    url: a.authWebhookUrl,
    timeoutMs: a.authWebhookTimeoutMs,
    onError: a.authWebhookOnError,
    cacheMs: a.authWebhookCacheMs,
    log,
  });
  const policy = new AccessPolicy({
    masterKey: config.whipToken,
    streamKeys: keyFile ? () => keyFile.keys : undefined,
    privateRooms: new Set(a.privateRooms),
    viewerTokenSecret: a.viewerTokenSecret,
    webhook,
  });
  return { policy, stop: () => keyFile?.stop() };
}

/**
 * The addresses put into ICE candidates: PUBLIC_IP when set; the bound address when specific; otherwise every
 * non-internal IPv4 interface address plus loopback, so the server works on a LAN and on the same machine.
 * `interfaces` is read only in the last case (tests pass their own list).
 */
export function advertisedAddresses(
  config: Config,
  interfaces: () => Deno.NetworkInterfaceInfo[] = Deno.networkInterfaces,
): string[] {
  if (config.publicIps.length > 0) return config.publicIps;
  if (config.udpAddress !== "0.0.0.0" && config.udpAddress !== "::") return [config.udpAddress];
  const addresses: string[] = [];
  for (const nic of interfaces()) {
    if (nic.family !== "IPv4" || nic.address.startsWith("127.")) continue;
    if (!addresses.includes(nic.address)) addresses.push(nic.address);
  }
  addresses.push("127.0.0.1");
  return addresses;
}

async function ensureWritableDir(variable: string, dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = join(dir, `.write-test-${crypto.randomUUID()}`);
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (e) {
    // Deno's own text for a missing permission ends in "run again with --allow-…", advice for the wrong
    // problem when the directory itself is the trouble; say which directory and why in one line.
    const why = e instanceof Deno.errors.NotCapable
      ? "this process is not permitted to write there"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : firstLine(e);
    throw new ConfigError(`${variable}: directory ${dir} is not writable (${why})`);
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}
