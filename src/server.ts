/** Wires the server together: directories, certificate, the UDP socket, sessions, the HTTP API; owns shutdown. */
import { join } from "node:path";
import { type Config, ConfigError } from "./config.ts";
import { loadOrCreateCertificate, type ServerCertificate } from "./peer/certificate.ts";
import { MediaSocket } from "./net/udp.ts";
import { raiseReceiveBuffer } from "./net/socket_buffer.ts";
import { SessionManager } from "./rooms/sessions.ts";
import { RoomBus, roomBusName } from "./rooms/bus.ts";
import { createRouter } from "./http/routes.ts";
import { serveUi } from "./http/ui.ts";
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
  /** Name of the room bus channel, for parties that want to listen. */
  busName: string;
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
  const certificate = await loadOrCreateCertificate(config.certsDir);
  if (certificate.generated) log("info", `generated a self-signed ECDSA certificate in ${config.certsDir}`);
  log("info", `SRTP: ${srtpBackendName()}`);

  let socket: MediaSocket;
  try {
    socket = MediaSocket.listen(config.udpAddress, config.udpPort);
  } catch (e) {
    throw new ConfigError(
      `UDP_PORT: cannot bind ${config.udpAddress}:${config.udpPort}: ${(e as Error).message}`,
    );
  }
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
    maxSessions: config.maxSessions,
    maxViewersPerRoom: config.maxViewersPerRoom,
    transport: mediaTotals.wrap(socket),
    bus,
    log,
  });
  // Cluster mode: the bridge merges Redis into the list, so the directory listens to it instead of the bus.
  // Loaded only in cluster mode: a single node never pays for the Redis client.
  const cluster = config.redisUrl
    ? (await import("./cluster/cluster.ts")).startCluster({ config, busName, sessions, certificate, log })
    : undefined;
  const directory = new RoomDirectory(new RoomBus(cluster?.directoryBusName ?? busName));
  const feed = new RoomFeed(directory, { maxClients: config.maxSseClients });
  const thumbnailFiles = new ThumbnailFiles(config.storageDir, directory);
  await ThumbnailService.cleanStale(config.storageDir);
  const thumbnails = new ThumbnailService({
    busName,
    storageDir: config.storageDir,
    intervalMs: config.thumbnailIntervalMs,
    log,
  });
  const statsTimer = setInterval(() => sessions.publishRoomStats(), ROOM_STATS_INTERVAL_MS);
  const socketDone = socket.run().catch((e) => log("error", `UDP socket failed: ${e}`));
  const loopLag = new LoopLagSampler();
  loopLag.start();
  const metrics = metricsHandler({
    socket,
    media: mediaTotals,
    sessions,
    feed,
    thumbnails,
    loopLag,
    cryptoBackend: srtpBackendName,
    startedAt: Date.now() - performance.now(),
    cluster,
  });

  const abort = new AbortController();
  let server: Deno.HttpServer;
  try {
    server = Deno.serve(
      {
        hostname: config.tcpAddress,
        port: config.tcpPort,
        // HTTPS straight from Deno when TLS_CERT/TLS_KEY are set (config checked they load and match).
        ...(config.tls ? { cert: config.tls.cert, key: config.tls.key } : {}),
        signal: abort.signal,
        onListen: () => {},
        onError: (e) => {
          log("error", `HTTP handler failed: ${e}`);
          return new Response("internal error\n", { status: 500 });
        },
      },
      createRouter({
        sessions,
        directory,
        feed,
        thumbnails: thumbnailFiles,
        whipToken: config.whipToken,
        frontendUrl: config.frontendUrl,
        log,
        extra: cluster ? [serveUi, metrics, cluster.handle] : [serveUi, metrics],
        rateLimiter: new RateLimiter(config.rateLimitPerMinute),
        trustedProxies: new Set(config.trustedProxies),
        iceServers: config.iceServers,
        cluster: cluster?.hooks,
      }),
    );
  } catch (e) {
    socket.close();
    bus.close();
    loopLag.stop();
    await cluster?.close();
    throw new ConfigError(
      `TCP_PORT: cannot listen on ${config.tcpAddress}:${config.tcpPort}: ${(e as Error).message}`,
    );
  }

  let stopping: Promise<void> | undefined;
  return {
    httpPort: (server.addr as Deno.NetAddr).port,
    udpPort: socket.port,
    candidates,
    certificate,
    sessions,
    directory,
    socket,
    busName,
    shutdown() {
      stopping ??= (async () => {
        abort.abort();
        clearInterval(statsTimer);
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
    throw new ConfigError(`${variable}: directory ${dir} is not writable: ${(e as Error).message}`);
  }
}
