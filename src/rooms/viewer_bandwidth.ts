/**
 * One viewer's transport-wide congestion control, for a viewer that negotiated it (the transport-cc header
 * extension and feedback): every RTP packet the server sends it gets the next transport-wide sequence number
 * and is recorded with its send time and size; the viewer's feedback about those packets drives its
 * bandwidth estimate, which the simulcast layer choice reads. Pure: the caller passes `now` (ms).
 */
import { BandwidthEstimator } from "../rtp/bandwidth_estimator.ts";
import { SentPackets } from "../rtp/sent_packets.ts";
import { TransportFeedback } from "../rtp/transport_feedback.ts";

/** The estimate before any feedback (bit/s); it only matters for a step up before the first cut. */
const INITIAL_ESTIMATE_BPS = 1_000_000;

/** A viewer's transport-wide numbering, send record and bandwidth estimate. */
export class ViewerBandwidth {
  /** The header extension id the viewer gave the transport-wide sequence number (1-14, one-byte form). */
  readonly extensionId: number;
  readonly sent: SentPackets;
  readonly estimator = new BandwidthEstimator(INITIAL_ESTIMATE_BPS);
  /** Feedback packets read, and refused as malformed (for stats). */
  feedbacks = 0;
  malformedFeedbacks = 0;
  /**
   * Redundant copies of each video packet to send on the viewer's RTX stream while the layer choice probes
   * for a higher layer (0 otherwise); set by the layer choice.
   */
  probeCopies = 0;
  /** Whether the estimate was cut by the feedback read last (a growing queue or loss). */
  congestion = false;
  readonly #reader = new TransportFeedback();

  constructor(extensionId: number) {
    this.extensionId = extensionId;
    this.sent = new SentPackets(crypto.getRandomValues(new Uint16Array(1))[0]);
  }

  /** Numbers one packet of `size` bytes sent now; returns its transport-wide sequence number. */
  record(size: number, now: number): number {
    return this.sent.record(size, now);
  }

  /**
   * Reads the viewer's transport feedback packets (from one RTCP compound); returns true when any was read,
   * and sets {@link congestion} when the estimate was cut.
   */
  onFeedback(packets: readonly Uint8Array[], rttMs: number | undefined, now: number): boolean {
    let read = false;
    this.congestion = false;
    for (const packet of packets) {
      if (!this.#reader.read(packet)) {
        this.malformedFeedbacks++;
        continue;
      }
      read = true;
      this.feedbacks++;
      if (this.estimator.onFeedback(this.#reader, this.sent, now, rttMs)) this.congestion = true;
    }
    return read;
  }
}
