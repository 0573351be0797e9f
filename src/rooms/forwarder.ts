/**
 * The forwarding loop of a room: one publisher packet, loaded once with its header extensions dropped, is
 * rewritten in place for each viewer (payload type, SSRC, sequence number, timestamp) and handed to that
 * viewer's peer. Every RTP packet a room sends to a viewer (live, join replay, resend, RTX) leaves through
 * {@link Forwarder.send}. Also the numbering rules: offsets per viewer track, and how a track continues its
 * numbering when the publisher's stream changes.
 */
import { seqAdd, seqDiff, seqNewer } from "../rtp/sequence.ts";
import { RtpRewriter } from "../srtp/rtp_rewrite.ts";
import type { RtxStream, Viewer, ViewerTrack } from "./viewer.ts";
import type { ViewerBandwidth } from "./viewer_bandwidth.ts";

/** Rewrites the loaded publisher packet for each viewer and sends it. */
export class Forwarder {
  /** Called when a viewer marked `leaving` was sent the last packet of a frame (simulcast switches). */
  onFrameEnd: ((viewer: Viewer, now: number) => void) | undefined;
  /** The packet being forwarded, stripped of header extensions; rewritten in place for each viewer. */
  readonly #rewriter = new RtpRewriter();

  /**
   * Loads the packet to forward (a copy without header extensions, which viewers did not negotiate); false
   * when it is not well-formed RTP or too large.
   */
  load(packet: Uint8Array): boolean {
    return this.#rewriter.load(packet);
  }

  /** The RTP timestamp of the loaded packet as the publisher sent it. */
  get loadedTimestamp(): number {
    return this.#rewriter.timestamp;
  }

  /**
   * Sends the loaded live packet to every viewer of its kind: viewers in a join replay get it through their
   * replay (or at once when the replay's cursor already passed it), video viewers start at a keyframe, a
   * remapped track continues its numbering here. Returns true when a viewer still waits for a keyframe.
   */
  forwardLive(
    viewers: ReadonlySet<Viewer>,
    isVideo: boolean,
    sequenceNumber: number,
    timestamp: number,
    keyframeStart: boolean,
    now: number,
  ): boolean {
    const marker = this.#rewriter.marker;
    let waiting = false;
    for (const viewer of viewers) {
      const track = isVideo ? viewer.video : viewer.audio;
      if (!track) continue;
      if (track.replay?.active) {
        // The replay sends this packet in its turn, unless its cursor is already past it (a publisher
        // retransmission filling a gap the replay skipped): that one goes now, like a resend.
        const cursor = track.replay.cursor;
        if (seqDiff(cursor.next, sequenceNumber) > 0) {
          this.forward(viewer, track, sequenceNumber, cursor.timestamps.get(timestamp) ?? timestamp, now);
        }
        continue;
      }
      if (!track.started) {
        if (!keyframeStart) {
          waiting = true;
          continue;
        }
        track.started = true;
      }
      if (track.remap) continueNumbering(track, sequenceNumber, timestamp, isVideo ? 90000 : 48000, now);
      this.forward(viewer, track, sequenceNumber, timestamp, now);
      if (track.leaving && marker) this.onFrameEnd?.(viewer, now);
    }
    return waiting;
  }

  /**
   * Sends the loaded packet to one viewer as the publisher's `sequenceNumber`/`timestamp` mapped onto the
   * viewer's track, and records what the track last sent.
   */
  forward(viewer: Viewer, track: ViewerTrack, sequenceNumber: number, timestamp: number, now: number): void {
    const outSequence = seqAdd(sequenceNumber, track.sequenceOffset);
    const outTimestamp = (timestamp + track.timestampOffset) >>> 0;
    const rewriter = this.#rewriter;
    // Only video is numbered: the extension is negotiated on the video line, and an audio packet the
    // viewer would not number would show as lost in its feedback.
    const bandwidth = track === viewer.video ? viewer.bandwidth : undefined;
    this.#setStream(track, bandwidth, outSequence, outTimestamp, rewriter.packet.length, now);
    this.send(viewer, rewriter.packet, rewriter.headerLength);
    // A probe rides on every video packet sent, live or replayed (a viewer just switched is replayed).
    if (bandwidth && bandwidth.probeCopies > 0 && track.rtx) {
      this.#sendProbeCopies(viewer, track.rtx, bandwidth.probeCopies, now);
    }
    if (track.lastSequence < 0 || seqNewer(outSequence, track.lastSequence)) {
      track.frameEnded = rewriter.marker;
      track.lastSequence = outSequence;
      track.lastTimestamp = outTimestamp;
      track.lastSentAt = now;
    }
    track.packetsSent++;
    track.octetsSent += rewriter.packet.length - rewriter.headerLength;
  }

  /**
   * Resends the loaded packet on the viewer's RTX stream (RFC 4588): as the track's packet
   * `sentSequence`/`outTimestamp`, wrapped in the RTX stream's next packet.
   */
  forwardRtx(
    viewer: Viewer,
    track: ViewerTrack,
    rtx: RtxStream,
    sentSequence: number,
    outTimestamp: number,
    now: number,
  ): void {
    const rewriter = this.#rewriter;
    // The RTX packet is 2 bytes longer: the original sequence number leads its payload (RFC 4588 §4).
    this.#setStream(track, viewer.bandwidth, sentSequence, outTimestamp, rewriter.packet.length + 2, now);
    const packet = rewriter.rtxPacket(rtx.payloadType, rtx.ssrc, rtx.nextSequence);
    rtx.nextSequence = (rtx.nextSequence + 1) & 0xffff;
    this.send(viewer, packet, rewriter.headerLength);
  }

  /**
   * A bandwidth probe (layer_selector.ts): the packet just forwarded goes `copies` more times on the
   * viewer's RTX stream, each with a transport-wide number of its own. The viewer drops them as duplicates;
   * its feedback tells whether the path carried the higher rate. Only for a viewer with transport-wide
   * numbering (the last forward wrote its extension).
   */
  #sendProbeCopies(viewer: Viewer, rtx: RtxStream, copies: number, now: number): void {
    const rewriter = this.#rewriter;
    const bandwidth = viewer.bandwidth!;
    for (let i = 0; i < copies; i++) {
      rewriter.setTransportSequence(bandwidth.record(rewriter.packet.length + 2, now));
      const packet = rewriter.rtxPacket(rtx.payloadType, rtx.ssrc, rtx.nextSequence);
      rtx.nextSequence = (rtx.nextSequence + 1) & 0xffff;
      this.send(viewer, packet, rewriter.headerLength);
    }
  }

  /**
   * Writes the viewer's stream into the loaded packet; with transport-wide numbering (`bandwidth`) the packet
   * of `sentLength` bytes is recorded as sent now and carries its number in the extension.
   */
  #setStream(
    track: ViewerTrack,
    bandwidth: ViewerBandwidth | undefined,
    sequenceNumber: number,
    timestamp: number,
    sentLength: number,
    now: number,
  ): void {
    if (bandwidth) {
      const transportSequence = bandwidth.record(sentLength, now);
      this.#rewriter.setStream(
        track.payloadType,
        track.ssrc,
        sequenceNumber,
        timestamp,
        bandwidth.extensionId,
        transportSequence,
      );
    } else {
      this.#rewriter.setStream(track.payloadType, track.ssrc, sequenceNumber, timestamp);
    }
  }

  /** The one place a room's RTP leaves for a viewer; `packet` is only valid during the call. */
  send(viewer: Viewer, packet: Uint8Array, headerLength: number): void {
    viewer.peer.sendRtpPacket(packet, headerLength);
  }
}

/**
 * Maps the publisher's `sequenceNumber`/`timestamp` right after what the track last sent: sequence numbers
 * continue by one, timestamps advance by the time that passed since (at least one tick). Ends any replay.
 */
export function continueNumbering(
  track: ViewerTrack,
  sequenceNumber: number,
  timestamp: number,
  clockRate: number,
  now: number,
): void {
  const elapsed = Math.max(1, Math.round(((now - track.lastSentAt) / 1000) * clockRate));
  track.sequenceOffset = (track.lastSequence + 1 - sequenceNumber) & 0xffff;
  track.resendFloor = (track.lastSequence + 1) & 0xffff;
  track.timestampOffset = (track.lastTimestamp + elapsed - timestamp) >>> 0;
  track.remap = false;
  track.replay = undefined;
}

/**
 * The publisher's stream of one kind changed: every viewer's track of that kind continues its numbering at
 * the new stream's next forwarded packet (video: its next keyframe); tracks that sent nothing yet just wait.
 */
export function remapTracks(viewers: Iterable<Viewer>, isVideo: boolean): void {
  for (const viewer of viewers) {
    const track = isVideo ? viewer.video : viewer.audio;
    if (!track) continue;
    if (track.lastSequence < 0) {
      if (isVideo) track.started = false;
      continue;
    }
    // Video is held until the new stream's keyframe; the numbering continues from that packet, so the
    // viewer sees no gap for the packets it never got.
    track.remap = true;
    if (isVideo) track.started = false;
  }
}
