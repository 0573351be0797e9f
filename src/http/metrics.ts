/**
 * `GET /metrics`: the server's counters and gauges in the Prometheus text format (0.0.4), read at scrape
 * time from the parts that keep them (socket, rooms and peers via {@link MediaTotals}, SSE feed, thumbnails,
 * event-loop sampler, and in cluster mode the Redis link and relays). Nothing on the packet path does any
 * work for it.
 */
import type { FanoutWorkerFigures } from "../net/fanout.ts";
import type { SocketCounters } from "../net/udp.ts";
import type { MediaSnapshot } from "../metrics/media_totals.ts";
import { EXPOSITION_CONTENT_TYPE, type MetricFamily, renderExposition } from "../metrics/exposition.ts";

/** What a node in cluster mode (REDIS_URL set) knows of the cluster at a scrape. */
export interface ClusterFigures {
  /** Both Redis connections (commands, pub/sub) are up now. */
  redisConnected: boolean;
  /** Times the Redis link came back after being lost, since start. */
  redisReconnects: number;
  /** Live nodes this node sees in the directory, itself included. */
  nodes: number;
  /** Rooms in the cluster-wide list: published here or on another live node. */
  rooms: number;
  /** Rooms this node pulls from another node now. */
  relays: number;
  /** Pulls opened towards other nodes since start (every attempt). */
  relayPulls: number;
  /** Pulls that failed to connect or were lost (the other node fell silent), since start. */
  relayFailures: number;
  /** Exceptions under the relays' packet handling since start (added to `sfu_internal_errors_total`). */
  relayInternalErrors: number;
}

/** Where the figures come from; structural so tests can pass plain objects. */
export interface MetricsSources {
  socket: { readonly counters: SocketCounters };
  media: { snapshot(): MediaSnapshot };
  sessions: {
    readonly counts: { publishers: number; viewers: number };
    /** The rooms published here (relayed rooms are another node's). */
    readonly rooms: { publishedRooms(): Iterable<{ live: boolean }> };
  };
  feed: { readonly clientCount: number };
  thumbnails: { readonly counters: { runs: number; failures: number } };
  /** Event-loop lag in milliseconds: the latest sample and the largest of the recent ones. */
  loopLag: { readonly last: number; readonly max: number };
  /** Name of the SRTP implementation in use, e.g. "werift". */
  cryptoBackend: () => string;
  /** When the process started, ms since the epoch. */
  startedAt: number;
  /** The public HTTP port's gate (connection counts, refusals, timeouts); absent in unit tests. */
  http?: {
    readonly openConnections: number;
    readonly counters: {
      accepted: number;
      refusedTotal: number;
      refusedAddress: number;
      closedHeaderTimeout: number;
      closedIdleTimeout: number;
      acceptErrors: number;
    };
  };
  /** Fan-out workers, when running: per-worker `sfu_fanout_*` families. */
  fanout?: { figures(): FanoutWorkerFigures[] };
  /** Present in cluster mode only: without it no `sfu_cluster_*` family is emitted. */
  cluster?: { metrics(): ClusterFigures };
}

/** Every metric family, read now. */
export function collectMetrics(sources: MetricsSources): MetricFamily[] {
  const socket = sources.socket.counters;
  const media = sources.media.snapshot();
  const counts = sources.sessions.counts;
  let liveRooms = 0;
  for (const room of sources.sessions.rooms.publishedRooms()) if (room.live) liveRooms++;
  const states = media.sessionsByState;
  const families: MetricFamily[] = [
    gauge("sfu_rooms", "Live rooms (a publisher is connected).", liveRooms),
    gauge("sfu_publishers", "Open WHIP sessions, connecting or connected.", counts.publishers),
    gauge("sfu_viewers", "Open WHEP sessions, connecting or connected.", counts.viewers),
    {
      name: "sfu_sessions",
      help: "Open WHIP and WHEP sessions by transport state.",
      type: "gauge",
      samples: (["new", "checking", "connected"] as const).map((state) => ({
        labels: { state },
        value: states[state],
      })),
    },
    counter("sfu_udp_datagrams_in_total", "Datagrams received on the media socket.", socket.datagramsIn),
    counter("sfu_udp_datagrams_out_total", "Datagrams sent from the media socket.", socket.datagramsOut),
    counter("sfu_udp_bytes_in_total", "Bytes received on the media socket.", socket.bytesIn),
    counter("sfu_udp_bytes_out_total", "Bytes sent from the media socket.", socket.bytesOut),
    counter(
      "sfu_udp_junk_datagrams_total",
      "Datagrams dropped because they are not STUN, DTLS, RTP or RTCP.",
      socket.junk,
    ),
    counter(
      "sfu_udp_send_batches_total",
      "sendmmsg calls that sent the datagrams queued in one datagram's handling, timer tick or task.",
      socket.batches,
    ),
    counter(
      "sfu_udp_receive_batches_total",
      "Batches the receive thread handed to the main thread (0 with Deno's receive; see RECEIVE_THREAD).",
      socket.receiveBatches,
    ),
    counter(
      "sfu_udp_oversize_datagrams_total",
      "Datagrams dropped because they were longer than a receive-thread slot (4 KiB).",
      socket.oversize,
    ),
    counter(
      "sfu_internal_errors_total",
      "Exceptions on the packet path (bugs, not bad input; the first of each peer or relay is logged).",
      socket.internalErrors + (sources.cluster?.metrics().relayInternalErrors ?? 0),
    ),
    counter(
      "sfu_udp_unknown_peer_datagrams_total",
      "Datagrams dropped because no session owns their ICE username or source address.",
      socket.unknownPeer,
    ),
    counter(
      "sfu_udp_off_loopback_stun_total",
      "STUN dropped because it came from a non-loopback source to a media socket bound to loopback.",
      socket.offLoopback,
    ),
    counter(
      "sfu_udp_send_errors_total",
      "Datagrams the operating system refused to send.",
      socket.sendErrors,
    ),
    counter(
      "sfu_srtp_decrypt_failures_total",
      "SRTP/SRTCP packets dropped because they failed authentication or decryption.",
      media.peers.decryptFailures,
    ),
    counter("sfu_rtp_packets_in_total", "RTP packets decrypted from clients.", media.peers.rtpIn),
    counter("sfu_rtp_packets_out_total", "RTP packets encrypted and sent to viewers.", media.peers.rtpOut),
    counter(
      "sfu_rtp_packets_offloaded_total",
      "Of sfu_rtp_packets_out_total, those sealed and sent by fan-out workers instead of the main thread.",
      media.peers.rtpOffloaded,
    ),
    counter("sfu_rtcp_packets_in_total", "RTCP packets decrypted from clients.", media.peers.rtcpIn),
    counter(
      "sfu_nacks_received_total",
      "Lost packets viewers asked for (sequence numbers in NACKs).",
      media.rooms.nacksReceived,
    ),
    counter(
      "sfu_nacks_sent_total",
      "Lost packets the server asked publishers for (sequence numbers in NACKs).",
      media.rooms.nacksSent,
    ),
    counter("sfu_packets_resent_total", "Packets resent to viewers from history.", media.rooms.packetsResent),
    counter(
      "sfu_resent_bytes_total",
      "Bytes of RTP resent to viewers from history.",
      media.rooms.bytesResent,
    ),
    counter(
      "sfu_resends_refused_total",
      "Resends viewers asked for beyond their budget (a share of the stream's rate, once per round trip).",
      media.rooms.resendsRefused,
    ),
    counter(
      "sfu_keyframe_requests_total",
      "Keyframe requests (PLI) sent to publishers, at most two a second per room.",
      media.rooms.keyframeRequests,
    ),
    counter(
      "sfu_keyframe_cache_hits_total",
      "Viewers started from the cached keyframe instead of waiting for the next one.",
      media.rooms.keyframeCacheHits,
    ),
    counter(
      "sfu_source_changes_total",
      "Times a publisher's stream changed SSRC (encoder restart).",
      media.rooms.sourceChanges,
    ),
    counter(
      "sfu_layer_switches_up_total",
      "Simulcast viewers moved to a better layer (automatic or pinned).",
      media.rooms.layerSwitchesUp,
    ),
    counter(
      "sfu_layer_switches_down_total",
      "Simulcast viewers moved to a lesser layer (automatic or pinned).",
      media.rooms.layerSwitchesDown,
    ),
    counter(
      "sfu_thumbnail_runs_total",
      "Thumbnails attempted (ffmpeg started).",
      sources.thumbnails.counters.runs,
    ),
    counter(
      "sfu_thumbnail_failures_total",
      "Thumbnails that failed (ffmpeg missing or failing, JPEG encoding, writing the file).",
      sources.thumbnails.counters.failures,
    ),
    gauge("sfu_sse_clients", "Open GET /notifications streams.", sources.feed.clientCount),
    gauge(
      "sfu_event_loop_lag_seconds",
      "How late the latest event-loop timer tick ran; every packet waits this long too.",
      msToSeconds(sources.loopLag.last),
    ),
    gauge(
      "sfu_event_loop_lag_max_seconds",
      "The largest event-loop lag over the last 10 seconds.",
      msToSeconds(sources.loopLag.max),
    ),
    {
      name: "sfu_crypto_backend_info",
      help: "The SRTP implementation in use (value is always 1).",
      type: "gauge",
      samples: [{ labels: { backend: sources.cryptoBackend() }, value: 1 }],
    },
    gauge(
      "process_start_time_seconds",
      "Start time of the process, seconds since the epoch.",
      sources.startedAt / 1000,
    ),
    gauge("process_resident_memory_bytes", "Resident memory size of the process.", Deno.memoryUsage().rss),
  ];
  if (sources.http) families.push(...httpFamilies(sources.http));
  if (sources.cluster) families.push(...clusterFamilies(sources.cluster.metrics()));
  if (sources.fanout) families.push(...fanoutFamilies(sources.fanout.figures()));
  return families;
}

/** The `sfu_fanout_*` families: one sample per worker, labelled with its number. */
function fanoutFamilies(workers: FanoutWorkerFigures[]): MetricFamily[] {
  const family = (
    name: string,
    help: string,
    type: "gauge" | "counter",
    value: (w: FanoutWorkerFigures) => number,
  ): MetricFamily => ({
    name,
    help,
    type,
    samples: workers.map((w) => ({ labels: { worker: String(w.worker) }, value: value(w) })),
  });
  return [
    family(
      "sfu_fanout_worker_running",
      "1 when the worker has started its loop.",
      "gauge",
      (w) => w.running ? 1 : 0,
    ),
    family("sfu_fanout_viewers", "Viewers whose RTP the worker seals and sends.", "gauge", (w) => w.viewers),
    family("sfu_fanout_packets_sealed_total", "RTP packets the worker sealed.", "counter", (w) => w.sealed),
    family(
      "sfu_fanout_packets_sent_total",
      "Datagrams the worker's sendmmsg handed over.",
      "counter",
      (w) => w.sent,
    ),
    family(
      "sfu_fanout_send_errors_total",
      "Datagrams the worker's sendmmsg could not send (EAGAIN, errors).",
      "counter",
      (w) => w.sendErrors,
    ),
    family(
      "sfu_fanout_ring_drops_total",
      "Packets dropped for the worker because its ring was full (only its viewers lose them).",
      "counter",
      (w) => w.ringDrops,
    ),
    family(
      "sfu_fanout_orphaned_total",
      "Packets the worker had no viewer or usable address for (the viewer had left).",
      "counter",
      (w) => w.orphaned,
    ),
    family(
      "sfu_fanout_worker_restarts_total",
      "Times the worker died or stalled and was replaced (its viewers' sessions were ended).",
      "counter",
      (w) => w.restarts,
    ),
  ];
}

/** The `sfu_http_*` families: what the gate in front of the HTTP handler did. */
function httpFamilies(http: NonNullable<MetricsSources["http"]>): MetricFamily[] {
  const c = http.counters;
  return [
    gauge("sfu_http_connections", "Open HTTP connections on the public port.", http.openConnections),
    counter("sfu_http_connections_accepted_total", "HTTP connections accepted and served.", c.accepted),
    {
      name: "sfu_http_connections_refused_total",
      help: "HTTP connections closed at once (503 on plain HTTP) because a cap was reached.",
      type: "counter",
      samples: [
        { labels: { cap: "total" }, value: c.refusedTotal },
        { labels: { cap: "address" }, value: c.refusedAddress },
      ],
    },
    {
      name: "sfu_http_connections_timed_out_total",
      help: "HTTP connections closed by the header or idle timeout.",
      type: "counter",
      samples: [
        { labels: { timeout: "header" }, value: c.closedHeaderTimeout },
        { labels: { timeout: "idle" }, value: c.closedIdleTimeout },
      ],
    },
    counter(
      "sfu_http_accept_errors_total",
      "Failed accepts on the public HTTP port (EMFILE, ENFILE: out of descriptors).",
      c.acceptErrors,
    ),
  ];
}

/** The `sfu_cluster_*` families (cluster mode only). */
function clusterFamilies(figures: ClusterFigures): MetricFamily[] {
  return [
    gauge(
      "sfu_cluster_redis_connected",
      "1 while the links to the cluster's Redis (commands and pub/sub) are up, else 0.",
      figures.redisConnected ? 1 : 0,
    ),
    counter(
      "sfu_cluster_redis_reconnects_total",
      "Times the Redis link came back after being lost.",
      figures.redisReconnects,
    ),
    gauge("sfu_cluster_nodes", "Live cluster nodes this node sees, itself included.", figures.nodes),
    gauge(
      "sfu_cluster_rooms",
      "Rooms in the cluster-wide list, published on this node or on another live node.",
      figures.rooms,
    ),
    gauge("sfu_cluster_relays", "Rooms this node pulls from another node now.", figures.relays),
    counter(
      "sfu_cluster_relay_pulls_total",
      "Pulls this node opened towards other nodes (every attempt, refused ones too).",
      figures.relayPulls,
    ),
    counter(
      "sfu_cluster_relay_failures_total",
      "Pulls that failed to connect or were lost later (the other node fell silent, socket error).",
      figures.relayFailures,
    ),
  ];
}

/** A route handler for `GET /metrics`; returns undefined for every other path (for the router's `extra`). */
export function metricsHandler(sources: MetricsSources): (req: Request, url: URL) => Response | undefined {
  return (req, url) => {
    if (url.pathname !== "/metrics") return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response(`method ${req.method} not allowed\n`, {
        status: 405,
        headers: { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" },
      });
    }
    const body = renderExposition(collectMetrics(sources));
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { "Content-Type": EXPOSITION_CONTENT_TYPE, "Cache-Control": "no-store" },
    });
  };
}

function gauge(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "gauge", samples: [{ value }] };
}

function counter(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "counter", samples: [{ value }] };
}

/** Milliseconds to seconds, rounded to microseconds so the text stays short. */
function msToSeconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}
