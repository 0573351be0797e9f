/**
 * `GET /rooms/<id>/stats`: what this node measures about one of its rooms: the publisher's stream and every
 * viewer's reception as its receiver reports tell it (loss, jitter, round-trip time, NACKs). For operators
 * and the watch page's curious; session ids are never shown (they are the viewers' credentials).
 */
import type { Room, RoomSource } from "../rooms/room.ts";
import type { ViewerLayerState } from "../rooms/layers.ts";
import type { ViewerBandwidth } from "../rooms/viewer_bandwidth.ts";

/** One viewer's reception in API form. */
export interface ViewerStatsJson {
  video_packets_sent: number;
  audio_packets_sent: number;
  fraction_lost: number;
  cumulative_lost: number;
  jitter_ms: number;
  rtt_ms: number | null;
  nacks_received: number;
  packets_resent: number;
  relay: boolean;
  /** The fan-out worker sealing and sending the viewer's RTP; null when the main thread does. */
  fanout_worker: number | null;
  /** Simulcast: the encoding id (rid) of the layer the viewer receives; null for one encoding. */
  layer: string | null;
  /**
   * Simulcast: the layer being switched to, the pinned one, the automatic level (steps below the top), how
   * many congestion events set it, and the probes for a higher layer.
   */
  layer_state?: ViewerLayerState;
  /**
   * The bandwidth estimate from the viewer's transport-wide feedback; null when it did not negotiate
   * transport-cc. `delay` is the delay trend's state: "normal", "overuse" (a queue growing), "underuse".
   */
  bandwidth: {
    estimate_kbps: number;
    received_kbps: number;
    loss: number;
    delay: "normal" | "overuse" | "underuse";
    cuts: number;
    /** Transport feedback packets read, and refused as malformed. */
    feedbacks: number;
    malformed_feedbacks: number;
  } | null;
}

/** One simulcast layer as received from the publisher. */
export interface LayerStatsJson {
  encoding_id: string;
  width: number | null;
  height: number | null;
  bitrate_kbps: number;
  packets_received: number;
  bytes_received: number;
  active: boolean;
}

/** A room's media statistics in API form. */
export interface RoomStatsJson {
  id: string;
  publisher: {
    bitrate_kbps: number;
    fps: number;
    width: number | null;
    height: number | null;
    keyframe_requests: number;
    keyframe_cache_hits: number;
    nacks_sent: number;
    source_changes: number;
  };
  /** Simulcast layers, in the publisher's order; empty for one encoding. */
  layers: LayerStatsJson[];
  viewers: ViewerStatsJson[];
}

/** The statistics of a room held on this node. */
export function roomStatsJson(room: Room<RoomSource>): RoomStatsJson {
  return {
    id: room.id,
    publisher: {
      bitrate_kbps: room.bitrateKbps,
      fps: room.fps,
      width: room.width ?? null,
      height: room.height ?? null,
      keyframe_requests: room.counters.keyframeRequests,
      keyframe_cache_hits: room.counters.keyframeCacheHits,
      nacks_sent: room.counters.nacksSent,
      source_changes: room.counters.sourceChanges,
    },
    layers: (room.layers?.layers ?? []).map((layer) => ({
      encoding_id: layer.rid,
      width: layer.room.width ?? null,
      height: layer.room.height ?? null,
      bitrate_kbps: Math.round(layer.mediaRate.bytesPerMs * 8),
      packets_received: layer.packets,
      bytes_received: layer.bytes,
      active: layer.active,
    })),
    viewers: [...room.viewers].map((viewer) => ({
      video_packets_sent: viewer.video?.packetsSent ?? 0,
      audio_packets_sent: viewer.audio?.packetsSent ?? 0,
      fraction_lost: Math.round(viewer.reception.fractionLost * 1000) / 1000,
      cumulative_lost: viewer.reception.cumulativeLost,
      jitter_ms: Math.round(viewer.reception.jitterMs * 10) / 10,
      rtt_ms: viewer.reception.rttMs ?? null,
      nacks_received: viewer.reception.nacksReceived,
      packets_resent: viewer.reception.packetsResent,
      relay: viewer.relay === true,
      fanout_worker: viewer.peer.fanoutWorker ?? null,
      layer: room.layers?.layerOf(viewer)?.rid ?? null,
      ...(room.layers ? { layer_state: room.layers.viewerState(viewer) } : {}),
      bandwidth: viewer.bandwidth ? bandwidthJson(viewer.bandwidth) : null,
    })),
  };
}

const DELAY_STATES = ["normal", "overuse", "underuse"] as const;

function bandwidthJson(bandwidth: ViewerBandwidth): NonNullable<ViewerStatsJson["bandwidth"]> {
  const estimator = bandwidth.estimator;
  return {
    estimate_kbps: Math.round(estimator.estimateBps / 1000),
    received_kbps: Math.round(estimator.receivedBps / 1000),
    loss: Math.round(estimator.lossFraction * 1000) / 1000,
    delay: DELAY_STATES[estimator.signal],
    cuts: estimator.decreases,
    feedbacks: bandwidth.feedbacks,
    malformed_feedbacks: bandwidth.malformedFeedbacks,
  };
}
