/**
 * What the main thread and a fan-out worker say to each other: the record types of the ring
 * (fanout_ring.ts), in the order the worker must see them, and the worker's figures in shared memory.
 *
 * Records (integers little-endian):
 * - {@link RECORD_VIEWER}: slot u16, profile u8, key length u8, salt length u8, master key, master salt. The
 *   viewer's outbound SRTP from now on is the worker's (SRTCP stays with the main thread).
 * - {@link RECORD_ADDRESS}: slot u16, port u16, hostname (ASCII). Where the viewer's media goes now.
 * - {@link RECORD_REMOVE}: slot u16. The slot is free; records for it that follow a later
 *   {@link RECORD_VIEWER} belong to the new viewer.
 * - {@link RECORD_PAYLOAD}: the bytes after the RTP header, shared by the {@link RECORD_RTP} records after it.
 * - {@link RECORD_RTP}: slot u16, then the viewer's final RTP header; the packet is that header followed by
 *   the last payload.
 */

export const RECORD_VIEWER = 1;
export const RECORD_ADDRESS = 2;
export const RECORD_REMOVE = 3;
export const RECORD_PAYLOAD = 4;
export const RECORD_RTP = 5;

/** What the main thread starts a worker with (the one message it ever posts to it). */
export interface FanoutWorkerStart {
  ring: SharedArrayBuffer;
  figures: SharedArrayBuffer;
  /** The media socket's descriptor (threads of one process share it). */
  fd: number;
  /** Slots the worker's viewer table holds. */
  slots: number;
}

/** Indexes of the worker's figures (a Float64Array over {@link FanoutWorkerStart.figures}). */
export const FIGURE_HEARTBEAT = 0;
export const FIGURE_SEALED = 1;
export const FIGURE_SENT = 2;
export const FIGURE_SEND_ERRORS = 3;
/** Records for a slot with no viewer (removed before its packets were reached), or malformed. */
export const FIGURE_ORPHANED = 4;
/**
 * Written by the main thread, read by the worker at each wake: {@link COMMAND_STOP}, or a test's way to make
 * the worker die ({@link COMMAND_THROW}) or hang ({@link COMMAND_HANG}). Deno's `Worker.terminate()` does not
 * stop a thread that never returns to its event loop (measured: a terminated worker in a wait loop kept
 * running), so a worker leaves its loop when told to.
 */
export const FIGURE_COMMAND = 5;
/** Set by the worker when it has left its loop after {@link COMMAND_STOP}: it sends nothing more. */
export const FIGURE_STOPPED = 6;
export const FIGURE_COUNT = 8;

export const COMMAND_STOP = 1;
export const COMMAND_THROW = 2;
export const COMMAND_HANG = 3;
