/**
 * Fan-out workers: the main thread keeps every room's logic (which packet goes to which viewer, numbering,
 * replays, resends, feedback) and hands the expensive last step of each forwarded packet, SRTP sealing and
 * the `sendmmsg` system call (~6 µs of the ~6.5 µs a forwarded packet cost on the main thread), to one of N
 * worker threads. A viewer is given a seat on the worker with the fewest viewers at its first packet; from
 * then on its packets go into that worker's ring (fanout_ring.ts): the payload once per worker per
 * publisher packet, then per viewer its slot and rewritten header (records in fanout_protocol.ts).
 *
 * A worker that dies (an error event) or stops advancing its heartbeat is replaced; its viewers are told
 * (their sessions end with BYE and close_notify, sent by the main thread) and the node keeps serving. A full
 * ring drops that worker's packets only, counted per worker.
 */
import { FanoutRing } from "./fanout_ring.ts";
import {
  COMMAND_HANG,
  COMMAND_STOP,
  COMMAND_THROW,
  type FanoutWorkerStart,
  FIGURE_COMMAND,
  FIGURE_COUNT,
  FIGURE_HEARTBEAT,
  FIGURE_ORPHANED,
  FIGURE_SEALED,
  FIGURE_SEND_ERRORS,
  FIGURE_SENT,
  FIGURE_STOPPED,
  RECORD_ADDRESS,
  RECORD_PAYLOAD,
  RECORD_REMOVE,
  RECORD_RTP,
  RECORD_VIEWER,
} from "./fanout_protocol.ts";
import type { PeerAddress, RtpOffload, RtpOffloader } from "../peer/peer.ts";

/** Viewer slots per worker (the slot number is a u16 in the records). */
const SLOTS = 65535;
/** Ring space media may not use: viewer changes still fit when packets are being dropped. */
const CONTROL_RESERVE = 64 * 1024;

/** One worker's figures for `/metrics` (totals include the workers it replaced). */
export interface FanoutWorkerFigures {
  worker: number;
  /** The worker has started its loop (it beat at least once). */
  running: boolean;
  viewers: number;
  /** RTP packets sealed by the worker. */
  sealed: number;
  /** Datagrams the kernel took. */
  sent: number;
  /** Datagrams `sendmmsg` refused (EAGAIN with a full send buffer, or an error). */
  sendErrors: number;
  /** Packets dropped on the main thread because the worker's ring was full. */
  ringDrops: number;
  /** Packets the worker could not send: the viewer was gone, or had no address it can send to. */
  orphaned: number;
  /** Times this worker died or stalled and was replaced. */
  restarts: number;
}

/** Settings of a pool. */
export interface FanoutPoolOptions {
  /** Ring size per worker in bytes (a power of two; default 4 MiB, ~3,400 full-size packets). */
  ringBytes?: number;
  /** A started worker whose heartbeat stands still this long is taken as stuck (default 2 s). */
  stallMs?: number;
  log?: (level: "error" | "info", message: string) => void;
}

/** A viewer's place on one worker: what the peer sends through instead of sealing itself. */
class FanoutSeat implements RtpOffload {
  readonly worker: number;
  readonly slot: number;
  readonly onLost: () => void;
  lane: FanoutLane | undefined;
  #to: PeerAddress | undefined;

  constructor(lane: FanoutLane, slot: number, onLost: () => void) {
    this.worker = lane.index;
    this.slot = slot;
    this.lane = lane;
    this.onLost = onLost;
  }

  send(packet: Uint8Array, headerLength: number, to: PeerAddress): void {
    const lane = this.lane;
    if (lane === undefined) return;
    if (to !== this.#to) {
      if (!lane.writeAddress(this.slot, to)) {
        lane.ringDrops++;
        return;
      }
      this.#to = to;
    }
    lane.writeRtp(this.slot, packet, headerLength);
  }

  release(): void {
    const lane = this.lane;
    if (lane === undefined) return;
    this.lane = undefined;
    lane.free(this);
  }
}

/** One worker thread, its ring and its viewers. */
class FanoutLane {
  readonly index: number;
  readonly worker: Worker;
  readonly ring: FanoutRing;
  readonly figures: Float64Array;
  readonly seats = new Set<FanoutSeat>();
  ringDrops = 0;
  /** Set when the ring has records the worker has not been woken for. */
  pending = false;
  lastBeat = 0;
  lastBeatAt: number;
  #slots: (FanoutSeat | undefined)[] = [];
  #freeSlots: number[] = [];
  #wake: (lane: FanoutLane) => void;
  /** The packet whose payload the worker holds now (identity: the forwarder loads each packet anew). */
  #payloadOf: Uint8Array | undefined;
  #payloadHeaderLength = 0;
  #payloadLength = 0;

  constructor(index: number, fd: number, ringBytes: number, now: number, wake: (lane: FanoutLane) => void) {
    this.index = index;
    this.ring = FanoutRing.create(ringBytes);
    const figures = new SharedArrayBuffer(FIGURE_COUNT * 8);
    this.figures = new Float64Array(figures);
    this.lastBeatAt = now;
    this.#wake = wake;
    this.worker = new Worker(new URL("./fanout_worker.ts", import.meta.url), {
      type: "module",
      name: `fanout-${index}`,
    });
    const start: FanoutWorkerStart = { ring: this.ring.buffer, figures, fd, slots: SLOTS };
    this.worker.postMessage(start);
  }

  /** A seat for a viewer with these keys; undefined when the ring cannot take the handover now. */
  seat(profile: number, key: Uint8Array, salt: Uint8Array, onLost: () => void): FanoutSeat | undefined {
    const slot = this.#freeSlots.length > 0
      ? this.#freeSlots[this.#freeSlots.length - 1]
      : this.#slots.length;
    if (slot >= SLOTS) return undefined;
    const at = this.ring.claim(RECORD_VIEWER, 5 + key.length + salt.length);
    if (at < 0) return undefined;
    const data = this.ring.data;
    data[at] = slot & 0xff;
    data[at + 1] = slot >>> 8;
    data[at + 2] = profile;
    data[at + 3] = key.length;
    data[at + 4] = salt.length;
    data.set(key, at + 5);
    data.set(salt, at + 5 + key.length);
    this.#finish();
    if (slot === this.#slots.length) this.#slots.push(undefined);
    else this.#freeSlots.pop();
    const seat = new FanoutSeat(this, slot, onLost);
    this.#slots[slot] = seat;
    this.seats.add(seat);
    return seat;
  }

  /** Tells the worker where a viewer's media goes now; false when the ring has no room. */
  writeAddress(slot: number, to: PeerAddress): boolean {
    const hostname = to.hostname;
    const at = this.ring.claim(RECORD_ADDRESS, 4 + hostname.length);
    if (at < 0) return false;
    const data = this.ring.data;
    data[at] = slot & 0xff;
    data[at + 1] = slot >>> 8;
    data[at + 2] = to.port & 0xff;
    data[at + 3] = to.port >>> 8;
    // Addresses are ASCII (dotted IPv4, IPv6 hex); anything else the worker cannot send to anyway.
    for (let i = 0; i < hostname.length; i++) data[at + 4 + i] = hostname.charCodeAt(i) & 0x7f;
    this.#finish();
    return true;
  }

  /** Queues one viewer's packet: the payload when the worker does not hold it yet, then the header. */
  writeRtp(slot: number, packet: Uint8Array, headerLength: number): void {
    const ring = this.ring;
    const data = ring.data;
    if (
      packet !== this.#payloadOf || headerLength !== this.#payloadHeaderLength ||
      packet.length !== this.#payloadLength
    ) {
      const at = ring.claim(RECORD_PAYLOAD, packet.length - headerLength, CONTROL_RESERVE);
      if (at < 0) {
        this.ringDrops++;
        return;
      }
      data.set(packet.subarray(headerLength), at);
      ring.commit();
      this.#payloadOf = packet;
      this.#payloadHeaderLength = headerLength;
      this.#payloadLength = packet.length;
    }
    const at = ring.claim(RECORD_RTP, 2 + headerLength, CONTROL_RESERVE);
    if (at < 0) {
      this.ringDrops++;
      return;
    }
    data[at] = slot & 0xff;
    data[at + 1] = slot >>> 8;
    for (let i = 0; i < headerLength; i++) data[at + 2 + i] = packet[i];
    this.#finish();
  }

  /** Frees a seat (its viewer left): the worker drops its context; records still queued for it go nowhere. */
  free(seat: FanoutSeat): void {
    if (!this.seats.delete(seat)) return;
    this.#slots[seat.slot] = undefined;
    this.#freeSlots.push(seat.slot);
    const at = this.ring.claim(RECORD_REMOVE, 2);
    if (at < 0) return;
    this.ring.data[at] = seat.slot & 0xff;
    this.ring.data[at + 1] = seat.slot >>> 8;
    this.#finish();
  }

  /** Finishes a record; the pool publishes the ring (and wakes the worker) at the end of the task. */
  #finish(): void {
    this.ring.commit();
    if (!this.pending) {
      this.pending = true;
      this.#wake(this);
    }
  }
}

/** The worker threads of one media socket. */
export class FanoutPool implements RtpOffloader {
  #lanes: FanoutLane[] = [];
  #fd: number;
  #ringBytes: number;
  #stallMs: number;
  #log: (level: "error" | "info", message: string) => void;
  /** Figures of workers that were replaced, per index, so totals do not go backwards. */
  #retired: FanoutWorkerFigures[] = [];
  #toWake: FanoutLane[] = [];
  #timer: ReturnType<typeof setInterval>;
  #closed = false;
  /** Wakes the workers that got records during this task, once, at its end. */
  #wakeAll = (): void => {
    for (const lane of this.#toWake) {
      lane.pending = false;
      lane.ring.publish();
      lane.ring.wake();
    }
    this.#toWake.length = 0;
  };
  #queueWake = (lane: FanoutLane): void => {
    if (this.#toWake.push(lane) === 1) queueMicrotask(this.#wakeAll);
  };

  /** Starts `count` workers sending on descriptor `fd`. */
  constructor(count: number, fd: number, options: FanoutPoolOptions = {}) {
    this.#fd = fd;
    this.#ringBytes = options.ringBytes ?? 4 * 1024 * 1024;
    this.#stallMs = options.stallMs ?? 2000;
    this.#log = options.log ?? ((_level, message) => console.error(message));
    const now = performance.now();
    for (let i = 0; i < count; i++) {
      this.#retired.push(emptyFigures(i));
      this.#lanes.push(this.#startLane(i, now));
    }
    this.#timer = setInterval(() => this.checkHealth(performance.now()), 250);
  }

  /** Number of workers. */
  get size(): number {
    return this.#lanes.length;
  }

  /** A seat on the worker with the fewest viewers; undefined when none can take one now. */
  assign(profile: number, masterKey: Uint8Array, masterSalt: Uint8Array, onLost: () => void) {
    if (this.#closed) return undefined;
    let best: FanoutLane | undefined;
    for (const lane of this.#lanes) if (!best || lane.seats.size < best.seats.size) best = lane;
    return best?.seat(profile, masterKey, masterSalt, onLost);
  }

  /**
   * Notices workers that died or stalled (heartbeat still for {@link FanoutPoolOptions.stallMs}; a worker
   * still loading gets 15 s): each is replaced and its viewers are told. The pool's timer calls this.
   */
  checkHealth(now: number): void {
    for (const lane of this.#lanes) {
      const beat = lane.figures[FIGURE_HEARTBEAT];
      if (beat !== lane.lastBeat) {
        if (lane.lastBeat === 0) this.#log("info", `fan-out worker ${lane.index} running`);
        lane.lastBeat = beat;
        lane.lastBeatAt = now;
      } else if (now - lane.lastBeatAt > (beat > 0 ? this.#stallMs : 15_000)) {
        this.#replace(lane, `stalled (no heartbeat for ${Math.round(now - lane.lastBeatAt)} ms)`);
      }
    }
  }

  /** Per-worker figures, read now. */
  figures(): FanoutWorkerFigures[] {
    return this.#lanes.map((lane) => {
      const retired = this.#retired[lane.index];
      const f = lane.figures;
      return {
        worker: lane.index,
        running: f[FIGURE_HEARTBEAT] > 0,
        viewers: lane.seats.size,
        sealed: retired.sealed + f[FIGURE_SEALED],
        sent: retired.sent + f[FIGURE_SENT],
        sendErrors: retired.sendErrors + f[FIGURE_SEND_ERRORS],
        ringDrops: retired.ringDrops + lane.ringDrops,
        orphaned: retired.orphaned + f[FIGURE_ORPHANED],
        restarts: retired.restarts,
      };
    });
  }

  /**
   * Test hook: worker `index` throws (an error event) or hangs (its heartbeat stops) at its next wake, as a
   * crashed or stuck worker would; the pool must notice either.
   */
  breakWorker(index: number, how: "throw" | "hang"): void {
    const lane = this.#lanes.find((l) => l.index === index)!;
    lane.figures[FIGURE_COMMAND] = how === "throw" ? COMMAND_THROW : COMMAND_HANG;
    lane.ring.wake();
  }

  /**
   * Stops every worker (their viewers' sessions are being ended by the caller) and waits up to 200 ms for
   * them to leave their loops: the socket's descriptor is closed next, and its number may be handed out again.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const lane of this.#lanes) stopLane(lane);
    const deadline = performance.now() + 200;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (const lane of this.#lanes) {
      while (
        lane.figures[FIGURE_STOPPED] === 0 && lane.figures[FIGURE_HEARTBEAT] > 0 &&
        performance.now() < deadline
      ) {
        Atomics.wait(pause, 0, 0, 1);
      }
    }
  }

  #startLane(index: number, now: number): FanoutLane {
    const lane = new FanoutLane(index, this.#fd, this.#ringBytes, now, this.#queueWake);
    lane.worker.onerror = (event) => {
      // Handled here: an unhandled worker error would end the whole process.
      event.preventDefault();
      this.#replace(lane, `failed: ${event.message}`);
    };
    return lane;
  }

  #replace(lane: FanoutLane, why: string): void {
    const at = this.#lanes.indexOf(lane);
    if (this.#closed || at < 0) return;
    stopLane(lane);
    const seats = [...lane.seats];
    lane.seats.clear();
    if (lane.figures[FIGURE_HEARTBEAT] === 0) {
      // It never ran (a missing permission, a module that does not load): a replacement would fail the
      // same way, over and over. The other workers, or the main thread, take new viewers from now on.
      this.#lanes.splice(at, 1);
      this.#log(
        "error",
        `fan-out worker ${lane.index} ${why} before it ran; not replaced (${this.#lanes.length} left)`,
      );
      this.#tellLost(lane, seats);
      return;
    }
    const retired = this.#retired[lane.index];
    retired.sealed += lane.figures[FIGURE_SEALED];
    retired.sent += lane.figures[FIGURE_SENT];
    retired.sendErrors += lane.figures[FIGURE_SEND_ERRORS];
    retired.orphaned += lane.figures[FIGURE_ORPHANED];
    retired.ringDrops += lane.ringDrops;
    retired.restarts++;
    this.#lanes[at] = this.#startLane(lane.index, performance.now());
    this.#log(
      "error",
      `fan-out worker ${lane.index} ${why}: a new worker replaces it; its ${seats.length} viewers are ended`,
    );
    this.#tellLost(lane, seats);
  }

  #tellLost(lane: FanoutLane, seats: FanoutSeat[]): void {
    for (const seat of seats) {
      seat.lane = undefined;
      try {
        seat.onLost();
      } catch (e) {
        this.#log("error", `ending a viewer of fan-out worker ${lane.index}: ${e}`);
      }
    }
  }
}

/** Tells a worker to leave its loop (a stuck one does when it gets unstuck), then ends the thread. */
function stopLane(lane: FanoutLane): void {
  lane.ring.publish();
  lane.figures[FIGURE_COMMAND] = COMMAND_STOP;
  lane.ring.wake();
  lane.worker.terminate();
}

function emptyFigures(worker: number): FanoutWorkerFigures {
  return {
    worker,
    running: false,
    viewers: 0,
    sealed: 0,
    sent: 0,
    sendErrors: 0,
    ringDrops: 0,
    orphaned: 0,
    restarts: 0,
  };
}
