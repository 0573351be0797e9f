/**
 * The join replays running in one room: each replaying viewer's cursor ({@link JoinReplay}) walks the one
 * packet history from the keyframe to the live edge; what it has due is sent through the forwarder with
 * the cursor's timestamps. Live forwarding takes over when a cursor catches up; when the history lost its
 * packets the viewer waits for the next keyframe instead.
 */
import type { GopIndex } from "../rtp/gop_index.ts";
import type { PacketCache } from "../rtp/packet_cache.ts";
import type { Forwarder } from "./forwarder.ts";
import { CAUGHT_UP, JoinReplay, LOST, NOT_DUE } from "./join_replay.ts";
import type { Viewer, ViewerTrack } from "./viewer.ts";

/** How long after a join replay a resend may still be of a replayed packet. */
export const REPLAY_RESEND_WINDOW_MS = 10_000;
/** The replay timer never wakes more often than this (each wake-up sends what became due). */
const MIN_REPLAY_WAKE_MS = 4;

/** The viewers of one room whose join replay runs. */
export class ReplayingViewers {
  readonly #viewers = new Set<Viewer>();
  readonly #history: PacketCache;
  readonly #gop: GopIndex;
  readonly #forwarder: Forwarder;
  readonly #requestKeyframe: (now: number) => void;

  constructor(options: {
    history: PacketCache;
    gop: GopIndex;
    forwarder: Forwarder;
    /** Asks the publisher for a keyframe (a viewer whose replay was lost waits for one). */
    requestKeyframe: (now: number) => void;
  }) {
    this.#history = options.history;
    this.#gop = options.gop;
    this.#forwarder = options.forwarder;
    this.#requestKeyframe = options.requestKeyframe;
  }

  /** How many replays run. */
  get size(): number {
    return this.#viewers.size;
  }

  /** Starts replaying the history from `start` (a keyframe's first packet) to the viewer's video track. */
  start(viewer: Viewer, track: ViewerTrack, start: number, streamBytesPerMs: number, now: number): void {
    track.started = true;
    const cursor = new JoinReplay({
      start,
      streamBytesPerMs,
      clockRate: 90000,
      timestampOffset: track.timestampOffset,
      now,
    });
    track.replay = { cursor, active: true, until: Infinity };
    this.#viewers.add(viewer);
  }

  /**
   * Sends what the replays of viewers still in `members` have due and returns when they want to run again
   * (undefined when none runs).
   */
  poll(members: ReadonlySet<Viewer>, now: number): number | undefined {
    if (this.#viewers.size === 0) return undefined;
    let wake = Infinity;
    for (const viewer of this.#viewers) {
      const track = viewer.video;
      const replay = track?.replay;
      if (!track || !replay?.active || !members.has(viewer)) {
        this.#viewers.delete(viewer);
        continue;
      }
      const due = this.#advance(viewer, track, replay.cursor, now);
      if (due !== undefined && due < wake) wake = due;
    }
    return wake === Infinity ? undefined : Math.max(wake, now + MIN_REPLAY_WAKE_MS);
  }

  /** The publisher's video stream changed: replays of the old one end; those viewers wait for a keyframe. */
  loseAll(now: number): void {
    for (const viewer of this.#viewers) {
      const track = viewer.video;
      if (track?.replay?.active) this.#end(viewer, track, true, now);
    }
  }

  /** Sends one viewer's due replay packets; returns when the next one is due, or undefined when it ended. */
  #advance(viewer: Viewer, track: ViewerTrack, cursor: JoinReplay, now: number): number | undefined {
    const history = this.#history;
    const forwarder = this.#forwarder;
    for (;;) {
      const seq = cursor.poll(history, this.#gop.newest, now);
      if (seq === NOT_DUE) return cursor.dueAt(history, now);
      if (seq === CAUGHT_UP || seq === LOST) {
        this.#end(viewer, track, seq === LOST, now);
        return undefined;
      }
      const packet = history.get(seq)!;
      if (!forwarder.load(packet)) continue;
      forwarder.forward(viewer, track, seq, cursor.timestampFor(forwarder.loadedTimestamp, now), now);
    }
  }

  /**
   * Live forwarding takes over from the replay (timestamps continue from the last replayed frame), or,
   * when the history lost the replay's packets, the viewer waits for the next keyframe.
   */
  #end(viewer: Viewer, track: ViewerTrack, lost: boolean, now: number): void {
    this.#viewers.delete(viewer);
    const replay = track.replay!;
    replay.active = false;
    replay.until = now + REPLAY_RESEND_WINDOW_MS;
    track.timestampOffset = (track.timestampOffset + replay.cursor.timestampShift) >>> 0;
    if (lost) {
      // Resume at the next keyframe, numbered right after what was sent.
      track.started = false;
      if (track.lastSequence >= 0) track.remap = true;
      this.#requestKeyframe(now);
    }
  }
}
