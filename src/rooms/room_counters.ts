/** Counters of one room's media work, for metrics and the stats endpoint. */

/** Counters of one room (a simulcast room shares one set with its layer rooms). */
export interface RoomCounters {
  keyframeRequests: number;
  keyframeCacheHits: number;
  nacksSent: number;
  nacksReceived: number;
  packetsResent: number;
  /** Bytes of those resends (RTP packets before SRTP). */
  bytesResent: number;
  /** Resends refused by a viewer's resend budget. */
  resendsRefused: number;
  sourceChanges: number;
  /** Simulcast viewers moved to a better layer, and to a lesser one (switches done, automatic or pinned). */
  layerSwitchesUp: number;
  layerSwitchesDown: number;
}

/** A set of counters at zero. */
export function newRoomCounters(): RoomCounters {
  return {
    keyframeRequests: 0,
    keyframeCacheHits: 0,
    nacksSent: 0,
    nacksReceived: 0,
    packetsResent: 0,
    bytesResent: 0,
    resendsRefused: 0,
    sourceChanges: 0,
    layerSwitchesUp: 0,
    layerSwitchesDown: 0,
  };
}
