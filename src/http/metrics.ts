/**
 * `GET /metrics`: the server's counters and gauges in the Prometheus text format (0.0.4), read at scrape
 * time from the parts that keep them (socket, rooms and peers via {@link MediaTotals}, SSE feed, thumbnails,
 * event-loop sampler). Nothing on the packet path does any work for it.
 */
import type { SocketCounters } from "../net/udp.ts";
import type { MediaSnapshot } from "../metrics/media_totals.ts";
import { EXPOSITION_CONTENT_TYPE, type MetricFamily, renderExposition } from "../metrics/exposition.ts";

/** Where the figures come from; structural so tests can pass plain objects. */
export interface MetricsSources {
  socket: { readonly counters: SocketCounters };
  media: { snapshot(): MediaSnapshot };
  sessions: {
    readonly counts: { publishers: number; viewers: number };
    readonly rooms: ReadonlyMap<string, { live: boolean }>;
  };
  feed: { readonly clientCount: number };
  thumbnails: { readonly counters: { runs: number; failures: number } };
  /** Event-loop lag in milliseconds: the latest sample and the largest of the recent ones. */
  loopLag: { readonly last: number; readonly max: number };
  /** Name of the SRTP implementation in use, e.g. "werift". */
  cryptoBackend: () => string;
  /** When the process started, ms since the epoch. */
  startedAt: number;
}

/** Every metric family, read now. */
export function collectMetrics(sources: MetricsSources): MetricFamily[] {
  const socket = sources.socket.counters;
  const media = sources.media.snapshot();
  const counts = sources.sessions.counts;
  let liveRooms = 0;
  for (const room of sources.sessions.rooms.values()) if (room.live) liveRooms++;
  const gauge = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: "gauge",
    samples: [{ value }],
  });
  const counter = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: "counter",
    samples: [{ value }],
  });
  const states = media.sessionsByState;
  return [
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
      "Datagrams dropped because they are not STUN, DTLS, RTP or RTCP (or could not be handled).",
      socket.junk,
    ),
    counter(
      "sfu_udp_unknown_peer_datagrams_total",
      "Datagrams dropped because no session owns their ICE username or source address.",
      socket.unknownPeer,
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

/** Milliseconds to seconds, rounded to microseconds so the text stays short. */
function msToSeconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}
