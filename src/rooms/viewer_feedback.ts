/**
 * What a room does with its viewers' RTCP, and the RTCP it sends them: NACKs answered from the packet
 * history (within each viewer's resend budget, on RTX when negotiated), keyframe requests passed on,
 * receiver reports turned into each viewer's loss, jitter and RTT, transport-wide feedback into its bandwidth
 * estimate (viewer_bandwidth.ts), and the publisher's sender reports
 * translated onto each viewer's numbering (lip sync, and the RTT measurement's reference).
 */
import type { PacketCache } from "../rtp/packet_cache.ts";
import type { RateMeter } from "../rtp/rate_meter.ts";
import { buildSenderReport, readRtcp, type ReportBlock, type SenderReport } from "../rtp/rtcp.ts";
import { seqAdd, seqDiff, seqNewer } from "../rtp/sequence.ts";
import type { Forwarder } from "./forwarder.ts";
import { ResendBudget } from "./resend_budget.ts";
import type { RoomCounters } from "./room_counters.ts";
import type { Viewer, ViewerTrack } from "./viewer.ts";

/** Most packets resent for one viewer RTCP packet (all its NACK items together). */
export const MAX_RESENDS_PER_NACK = 64;
/** Sender reports remembered per viewer for RTT (the newest ones). */
const SENT_REPORTS_KEPT = 16;

/** Handles viewers' RTCP for one room (or one simulcast layer room). */
export class ViewerFeedback {
  readonly #forwarder: Forwarder;
  readonly #history: PacketCache;
  readonly #videoRate: RateMeter;
  readonly #counters: RoomCounters;
  readonly #retransmissions: boolean;

  constructor(options: {
    forwarder: Forwarder;
    /** The room's video packet history, in the publisher's (or padding filter's) numbering. */
    history: PacketCache;
    /** The video stream's rate, which sizes each viewer's resend budget. */
    videoRate: RateMeter;
    counters: RoomCounters;
    /** Answer NACKs at all. */
    retransmissions: boolean;
  }) {
    this.#forwarder = options.forwarder;
    this.#history = options.history;
    this.#videoRate = options.videoRate;
    this.#counters = options.counters;
    this.#retransmissions = options.retransmissions;
  }

  /**
   * Handles one RTCP packet from a viewer: NACKs are answered, receiver reports recorded. Returns true when
   * the viewer asked for a keyframe (the room passes that on to the publisher).
   */
  handle(viewer: Viewer, packet: Uint8Array, now: number): boolean {
    const rtcp = readRtcp(packet);
    const track = viewer.video;
    if (track && this.#retransmissions) {
      // One RTCP packet can name thousands of packets; answering them all would let a viewer turn a few
      // bytes into a burst of media. Beyond the cap, and beyond the viewer's budget, it recovers by keyframe.
      let allowed = MAX_RESENDS_PER_NACK;
      for (const nack of rtcp.nacks) {
        if (nack.mediaSsrc !== track.ssrc) continue;
        this.#counters.nacksReceived += nack.sequenceNumbers.length;
        viewer.reception.nacksReceived += nack.sequenceNumbers.length;
        for (const sent of nack.sequenceNumbers) {
          if (allowed === 0) {
            this.#counters.resendsRefused++;
            continue;
          }
          if (this.#resend(viewer, track, sent, now)) allowed--;
        }
      }
    }
    for (const block of rtcp.reportBlocks) {
      if (block.ssrc !== viewer.video?.ssrc && block.ssrc !== viewer.audio?.ssrc) continue;
      this.#onReport(viewer, block, now);
    }
    if (viewer.bandwidth && rtcp.transportFeedback.length > 0) {
      viewer.bandwidth.onFeedback(rtcp.transportFeedback, viewer.reception.rttMs, now);
    }
    return rtcp.keyframeRequested;
  }

  /**
   * Sends the viewer the publisher's sender report on the viewer's numbering, and remembers when, so the
   * viewer's receiver reports yield its RTT.
   */
  translateSenderReport(viewer: Viewer, isVideo: boolean, report: SenderReport, now: number): void {
    const track = isVideo ? viewer.video : viewer.audio;
    // Replayed video runs on its own clock until live takes over; a report now would mislead lip sync.
    if (!track || track.packetsSent === 0 || track.replay?.active) return;
    const sr = buildSenderReport({
      ssrc: track.ssrc,
      ntpSeconds: report.ntpSeconds,
      ntpFraction: report.ntpFraction,
      rtpTimestamp: (report.rtpTimestamp + track.timestampOffset) >>> 0,
      packetCount: track.packetsSent,
      octetCount: track.octetsSent,
    });
    const middle = ((report.ntpSeconds & 0xffff) << 16 | (report.ntpFraction >>> 16)) >>> 0;
    viewer.sentReports.set(middle, now);
    if (viewer.sentReports.size > SENT_REPORTS_KEPT) {
      viewer.sentReports.delete(viewer.sentReports.keys().next().value!);
    }
    viewer.peer.sendRtcp(sr);
  }

  /**
   * Resends one packet a viewer NACKed, within its resend budget: on its RTX stream when it negotiated one,
   * otherwise as the original packet again. False when nothing was sent (unknown packet, refused).
   */
  #resend(viewer: Viewer, track: ViewerTrack, sentSequence: number, now: number): boolean {
    // Sent before the viewer's stream was remapped (another simulcast layer, an earlier encoder): this
    // history would answer with a different packet under that number.
    if (track.resendFloor >= 0 && seqDiff(sentSequence, track.resendFloor) < 0) return false;
    const original = seqAdd(sentSequence, -track.sequenceOffset);
    const packet = this.#history.get(original);
    // Not yet replayed to this viewer: it cannot have lost it.
    if (!packet || (track.replay?.active && !seqNewer(track.replay.cursor.next, original))) return false;
    const budget = track.resends ??= new ResendBudget();
    if (!budget.allow(original, packet.length, this.#videoRate.bytesPerMs, viewer.reception.rttMs, now)) {
      this.#counters.resendsRefused++;
      return false;
    }
    const forwarder = this.#forwarder;
    if (!forwarder.load(packet)) return false;
    this.#counters.packetsResent++;
    this.#counters.bytesResent += packet.length;
    viewer.reception.packetsResent++;
    // A replayed packet goes again with the timestamp it was replayed with.
    const replay = track.replay && now < track.replay.until ? track.replay.cursor : undefined;
    const replayed = replay?.timestamps.get(forwarder.loadedTimestamp);
    const outTimestamp = replayed === undefined
      ? (forwarder.loadedTimestamp + track.timestampOffset) >>> 0
      : (replayed + replay!.timestampOffset) >>> 0;
    const rtx = track.rtx;
    if (rtx) forwarder.forwardRtx(viewer, track, rtx, sentSequence, outTimestamp, now);
    else forwarder.forward(viewer, track, original, (outTimestamp - track.timestampOffset) >>> 0, now);
    return true;
  }

  #onReport(viewer: Viewer, block: ReportBlock, now: number): void {
    const reception = viewer.reception;
    const isVideo = block.ssrc === viewer.video?.ssrc;
    reception.reports++;
    if (isVideo || !viewer.video) {
      reception.fractionLost = block.fractionLost / 256;
      reception.cumulativeLost = block.cumulativeLost;
      reception.jitterMs = (block.jitter / (isVideo ? 90000 : 48000)) * 1000;
    }
    const sentAt = block.lastSenderReport === 0 ? undefined : viewer.sentReports.get(block.lastSenderReport);
    if (sentAt !== undefined) {
      const rtt = now - sentAt - (block.delaySinceLastSenderReport / 65536) * 1000;
      if (rtt >= 0) reception.rttMs = Math.round(rtt * 10) / 10;
    }
  }
}
