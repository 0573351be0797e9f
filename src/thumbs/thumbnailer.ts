/**
 * Room thumbnails: a keyframe (H.264 or H.265 Annex B, or VP8/VP9/AV1 in IVF) is decoded by an ffmpeg subprocess to raw RGB (PPM), then sharp scales
 * it and encodes a JPEG, which is written atomically to `STORAGE_DIR/<roomId>.jpg`.
 *
 * @module
 */

import type sharpModule from "sharp";
import { join } from "node:path";
import type { KeyframeFormat } from "../rooms/bus.ts";

/** What went wrong in {@link keyframeToJpeg} or {@link resizeJpeg}. */
export type ThumbnailErrorCode =
  | "ffmpeg_unavailable"
  | "sharp_unavailable"
  | "timeout"
  | "aborted"
  | "decode_failed"
  | "encode_failed"
  | "invalid_argument";

/** A thumbnail could not be made; `message` is one line suitable for a log or an HTTP reason. */
export class ThumbnailError extends Error {
  /** Machine-readable cause; `ffmpeg_unavailable` and `sharp_unavailable` mean retrying is pointless. */
  readonly code: ThumbnailErrorCode;

  constructor(code: ThumbnailErrorCode, message: string) {
    super(message);
    this.name = "ThumbnailError";
    this.code = code;
  }
}

/** Options for {@link keyframeToJpeg}. */
export interface KeyframeToJpegOptions {
  /** Target width in pixels; the aspect ratio is kept and smaller pictures are not enlarged. */
  width: number;
  /** ffmpeg is killed after this long (default 5000 ms). */
  timeoutMs?: number;
  /** ffmpeg binary (default "ffmpeg", looked up on PATH). */
  ffmpegPath?: string;
  /** Kills ffmpeg early, e.g. on shutdown. */
  signal?: AbortSignal;
  /** How the keyframe is packaged, as ffmpeg's `-f` names it (default "h264": Annex B). */
  format?: KeyframeFormat;
}

/** A JPEG and its pixel size. */
export interface JpegImage {
  jpeg: Uint8Array;
  width: number;
  height: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const JPEG_QUALITY = 80;
const MAX_WIDTH = 8192;
// An 8192x4320 RGB frame is ~106 MB; anything bigger is not a picture we asked for.
const MAX_DECODED_BYTES = 8192 * 4320 * 3 + 64;
const MAX_STDERR_BYTES = 4096;

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > MAX_WIDTH) {
    throw new ThumbnailError("invalid_argument", `thumbnail width must be an integer 1..${MAX_WIDTH}`);
  }
}

function oneLine(text: string): string {
  const line = text.split("\n").map((l) => l.trim()).find((l) => l.length > 0) ?? "";
  return line.length > 200 ? line.slice(0, 200) + "..." : line;
}

function errorMessage(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}

/**
 * Decodes an Annex-B keyframe (SPS + PPS + IDR, as {@link H264Depacketizer} emits) and returns a JPEG no
 * wider than `options.width`. Throws {@link ThumbnailError}.
 *
 * @example
 * ```ts
 * const { jpeg, width, height } = await keyframeToJpeg(unit.data, { width: 640 });
 * ```
 */
export async function keyframeToJpeg(annexB: Uint8Array, options: KeyframeToJpegOptions): Promise<JpegImage> {
  checkWidth(options.width);
  if (annexB.length === 0) throw new ThumbnailError("invalid_argument", "empty keyframe");
  const sharp = await loadSharp();
  const rgb = await decodeWithFfmpeg(annexB, options);
  try {
    const { data, info } = await sharp(rgb.pixels, {
      raw: { width: rgb.width, height: rgb.height, channels: 3 },
    })
      .resize({ width: options.width, withoutEnlargement: true })
      .jpeg({ quality: JPEG_QUALITY })
      .toBuffer({ resolveWithObject: true });
    return { jpeg: data, width: info.width, height: info.height };
  } catch (err) {
    throw new ThumbnailError("encode_failed", `JPEG encode failed: ${errorMessage(err)}`);
  }
}

/**
 * Re-encodes a JPEG at most `width` pixels wide (aspect kept); returns the input unchanged when it is already
 * narrow enough. For `?w=` requests. Throws {@link ThumbnailError}.
 */
export async function resizeJpeg(jpeg: Uint8Array, width: number): Promise<Uint8Array> {
  checkWidth(width);
  const sharp = await loadSharp();
  try {
    const meta = await sharp(jpeg).metadata();
    if (meta.format !== "jpeg") throw new Error(`not a JPEG (${meta.format})`);
    if (meta.width <= width) return jpeg;
    return await sharp(jpeg).resize({ width }).jpeg({ quality: JPEG_QUALITY }).toBuffer();
  } catch (err) {
    throw new ThumbnailError("encode_failed", `JPEG resize failed: ${errorMessage(err)}`);
  }
}

let sharpLoading: Promise<typeof sharpModule> | undefined;

/**
 * Loads sharp on first use rather than at import: its native libvips may be missing (e.g. inside a
 * `deno compile` binary), and that must cost the thumbnails only, never the server's start.
 */
function loadSharp(): Promise<typeof sharpModule> {
  sharpLoading ??= import("sharp").then((m) => m.default);
  return sharpLoading.catch((err) => {
    throw new ThumbnailError("sharp_unavailable", `sharp (libvips) cannot be loaded: ${errorMessage(err)}`);
  });
}

interface RgbImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** The codec dispatch of thumbnails: ffmpeg finds the decoder from the input format (IVF names its codec). */
function ffmpegArgs(format: KeyframeFormat): string[] {
  return [
    ...["-hide_banner", "-loglevel", "error", "-threads", "1"],
    ...["-f", format, "-i", "pipe:0", "-frames:v", "1", "-an"],
    // PPM carries its own size, so no second guess at the cropped dimensions is needed.
    ...["-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1"],
  ];
}

async function decodeWithFfmpeg(annexB: Uint8Array, options: KeyframeToJpegOptions): Promise<RgbImage> {
  const ffmpegPath = options.ffmpegPath ?? "ffmpeg";
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = options.signal;
  if (signal?.aborted) throw new ThumbnailError("aborted", "thumbnail aborted");

  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(ffmpegPath, {
      args: ffmpegArgs(options.format ?? "h264"),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ThumbnailError("ffmpeg_unavailable", `ffmpeg not found (tried "${ffmpegPath}")`);
    }
    throw new ThumbnailError("ffmpeg_unavailable", `cannot run ffmpeg "${ffmpegPath}": ${errorMessage(err)}`);
  }

  const outReader = child.stdout.getReader();
  const errReader = child.stderr.getReader();
  let stopped: "timeout" | "aborted" | "oversize" | undefined;
  const stop = (why: "timeout" | "aborted" | "oversize") => {
    if (stopped) return;
    stopped = why;
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    // Do not wait for EOF: anything else holding the pipes open must not stall us.
    outReader.cancel().catch(() => {});
    errReader.cancel().catch(() => {});
  };
  const timer = setTimeout(() => stop("timeout"), timeoutMs);
  const onAbort = () => stop("aborted");
  signal?.addEventListener("abort", onAbort);

  // Feed stdin while draining stdout and stderr, or a large frame would fill the pipes and deadlock.
  const writer = child.stdin.getWriter();
  const writing = writer.write(annexB).then(() => writer.close()).catch(() => {
    // ffmpeg may exit (or be killed) before reading everything; its exit status tells the story.
  });
  try {
    const [out, err, status] = await Promise.all([
      readAll(outReader, MAX_DECODED_BYTES, () => stop("oversize")),
      readAll(errReader, MAX_STDERR_BYTES),
      child.status,
      writing,
    ]);
    if (stopped === "timeout") throw new ThumbnailError("timeout", `ffmpeg timed out after ${timeoutMs} ms`);
    if (stopped === "aborted") throw new ThumbnailError("aborted", "thumbnail aborted");
    if (stopped === "oversize") throw new ThumbnailError("decode_failed", "ffmpeg output too large");
    const reason = oneLine(new TextDecoder().decode(err));
    if (!status.success) {
      throw new ThumbnailError(
        "decode_failed",
        `ffmpeg exited with code ${status.code}: ${reason || "no message"}`,
      );
    }
    const image = parsePpm(out);
    if (!image) {
      throw new ThumbnailError("decode_failed", `ffmpeg decoded no picture${reason ? `: ${reason}` : ""}`);
    }
    return image;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Reads to the end (or until cancelled), keeping at most `limit` bytes; past that it calls `onOverflow`
 * once and returns what it kept.
 */
async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  onOverflow?: () => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let overflowed = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (overflowed || size + value.length > limit) {
        if (!overflowed) onOverflow?.();
        overflowed = true;
        continue; // keep draining so the process never blocks on a full pipe
      }
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // a cancelled read; the caller knows why it stopped
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Parses a binary PPM (P6, maxval 255) as ffmpeg writes it; undefined if it is not one. */
function parsePpm(buf: Uint8Array): RgbImage | undefined {
  if (buf.length < 2 || buf[0] !== 0x50 || buf[1] !== 0x36) return undefined;
  const fields: number[] = [];
  let off = 2;
  while (fields.length < 3) {
    while (off < buf.length && (buf[off] === 0x20 || (buf[off] >= 0x09 && buf[off] <= 0x0d))) off++;
    let value = 0;
    let digits = 0;
    while (off < buf.length && buf[off] >= 0x30 && buf[off] <= 0x39 && digits < 6) {
      value = value * 10 + buf[off++] - 0x30;
      digits++;
    }
    if (digits === 0) return undefined;
    fields.push(value);
  }
  off++; // the single whitespace byte before the raster
  const [width, height, maxval] = fields;
  if (width === 0 || height === 0 || maxval !== 255) return undefined;
  const size = width * height * 3;
  if (buf.length < off + size) return undefined;
  return { pixels: buf.subarray(off, off + size), width, height };
}

/** Last thumbnail written for a room. */
export interface ThumbnailInfo {
  /** Absolute or storageDir-relative path of `<roomId>.jpg`. */
  path: string;
  width: number;
  height: number;
  updatedAt: Date;
  /** Quoted strong ETag for HTTP caching. */
  etag: string;
}

/** Options for {@link Thumbnailer}. */
export interface ThumbnailerOptions {
  /** Directory for `<roomId>.jpg`; created when the first thumbnail is written. */
  storageDir: string;
  /** Minimum time between two thumbnails of one room (default 10000 ms). */
  intervalMs?: number;
  /** Thumbnail width (default 640; smaller pictures are not enlarged). */
  width?: number;
  /** ffmpeg processes running at once across all rooms (default 2). */
  maxConcurrent?: number;
  /** Per-ffmpeg timeout (default 5000 ms). */
  timeoutMs?: number;
  /** ffmpeg binary (default "ffmpeg"). */
  ffmpegPath?: string;
  /** Called after a new thumbnail file is in place. */
  onThumbnail?: (roomId: string, info: ThumbnailInfo) => void;
  /** Warning sink (default console.warn). */
  log?: (msg: string) => void;
}

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const STALE_FILE = /^(?:[A-Za-z0-9_-]{1,64}\.jpg|\.[A-Za-z0-9_-]{1,64}\.[0-9a-f]{8}\.tmp)$/;
/** A keyframe this much before a thumbnail is due is taken (at most a quarter of the interval). */
const DUE_SLACK_MS = 250;
// After repeated failures the wait grows to this many intervals.
const MAX_BACKOFF_INTERVALS = 6;

/** True for ids that are safe as a file name: `[A-Za-z0-9_-]{1,64}`. */
export function isValidRoomId(roomId: string): boolean {
  return ROOM_ID.test(roomId);
}

/** What a {@link Thumbnailer} has done since it started. */
export interface ThumbnailCounters {
  /** Thumbnails started (an ffmpeg run each). */
  runs: number;
  /** Thumbnails that failed: ffmpeg missing or failing, JPEG encoding, writing the file. */
  failures: number;
}

interface RoomState {
  job: Promise<void> | undefined;
  /** Earliest `now` at which a new thumbnail may start. */
  nextAt: number;
  failures: number;
  info: ThumbnailInfo | undefined;
}

/**
 * Keeps one JPEG per room from the keyframes it is offered: the first keyframe at once, then at most one
 * per `intervalMs`, one ffmpeg per room and `maxConcurrent` overall.
 *
 * @example
 * ```ts
 * const thumbs = new Thumbnailer({ storageDir: "./storage" });
 * if (unit.isKeyframe) thumbs.offerKeyframe("lobby", unit.data, performance.now());
 * ```
 */
export class Thumbnailer {
  /** Thumbnails attempted and failed since start, for `/metrics`. */
  readonly counters: ThumbnailCounters = { runs: 0, failures: 0 };
  #storageDir: string;
  #intervalMs: number;
  #width: number;
  #maxConcurrent: number;
  #timeoutMs: number | undefined;
  #ffmpegPath: string | undefined;
  #onThumbnail: ThumbnailerOptions["onThumbnail"];
  #log: (msg: string) => void;
  #rooms = new Map<string, RoomState>();
  #jobs = new Set<Promise<void>>();
  #running = 0;
  #disabled = false;
  #closed = false;
  #warnedInvalidId = false;
  #abort = new AbortController();
  #dirReady: Promise<void> | undefined;

  constructor(options: ThumbnailerOptions) {
    this.#storageDir = options.storageDir;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#width = options.width ?? 640;
    this.#maxConcurrent = Math.max(1, options.maxConcurrent ?? 2);
    this.#timeoutMs = options.timeoutMs;
    this.#ffmpegPath = options.ffmpegPath;
    this.#onThumbnail = options.onThumbnail;
    this.#log = options.log ?? ((msg) => console.warn(msg));
    checkWidth(this.#width);
  }

  /**
   * Offers a room's keyframe (`format` as on the bus: Annex B with parameter sets, or IVF). Cheap when declined; the bytes are copied only when
   * a thumbnail is started, so a view into a reused buffer is fine. `now` is in milliseconds, any origin.
   */
  offerKeyframe(roomId: string, annexB: Uint8Array, now: number, format: KeyframeFormat = "h264"): void {
    if (this.#closed || this.#disabled) return;
    let st = this.#rooms.get(roomId);
    if (st === undefined) {
      if (!ROOM_ID.test(roomId)) {
        if (!this.#warnedInvalidId) {
          this.#log(`thumbnails: ignoring invalid room id ${JSON.stringify(roomId)}`);
        }
        this.#warnedInvalidId = true;
        return;
      }
      st = { job: undefined, nextAt: -Infinity, failures: 0, info: undefined };
      this.#rooms.set(roomId, st);
    }
    // A little early is on time: the room asks for a keyframe when it reckons a thumbnail due, by a clock
    // read a moment before this one.
    const slack = Math.min(DUE_SLACK_MS, this.#intervalMs / 4);
    if (st.job !== undefined || now < st.nextAt - slack || this.#running >= this.#maxConcurrent) return;
    st.nextAt = now + this.#intervalMs;
    this.#running++;
    const state = st;
    const job = this.#make(roomId, state, annexB.slice(), now, format).finally(() => {
      this.#running--;
      state.job = undefined;
      this.#jobs.delete(job);
    });
    state.job = job;
    this.#jobs.add(job);
  }

  /** Path of a room's thumbnail file (which may not exist yet). Throws ThumbnailError for a bad id. */
  path(roomId: string): string {
    if (!ROOM_ID.test(roomId)) throw new ThumbnailError("invalid_argument", "invalid room id");
    return join(this.#storageDir, `${roomId}.jpg`);
  }

  /** The last thumbnail written for a room, or undefined if there is none. */
  info(roomId: string): ThumbnailInfo | undefined {
    return this.#rooms.get(roomId)?.info;
  }

  /** Forgets a room and deletes its thumbnail (after any running ffmpeg for it has finished). */
  async remove(roomId: string): Promise<void> {
    if (!ROOM_ID.test(roomId)) return;
    const st = this.#rooms.get(roomId);
    this.#rooms.delete(roomId);
    if (st?.job) await st.job;
    if (this.#rooms.has(roomId)) return; // the room came back meanwhile and owns the file again
    try {
      await Deno.remove(this.path(roomId));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        this.#log(`thumbnails: cannot delete thumbnail of room ${roomId}: ${errorMessage(err)}`);
      }
    }
  }

  /** Resolves when no thumbnail is being made (tests, orderly shutdown). */
  async idle(): Promise<void> {
    while (this.#jobs.size > 0) await Promise.all([...this.#jobs]);
  }

  /** Stops taking keyframes, kills running ffmpeg processes and waits for them to exit. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    await this.idle();
  }

  /** Deletes `<roomId>.jpg` and temp files left in `storageDir` by an earlier run; returns how many. */
  static async cleanStale(storageDir: string): Promise<number> {
    let removed = 0;
    try {
      for await (const entry of Deno.readDir(storageDir)) {
        if (!entry.isFile || !STALE_FILE.test(entry.name)) continue;
        try {
          await Deno.remove(join(storageDir, entry.name));
          removed++;
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return removed;
  }

  async #make(
    roomId: string,
    st: RoomState,
    annexB: Uint8Array,
    now: number,
    format: KeyframeFormat,
  ): Promise<void> {
    let info: ThumbnailInfo;
    this.counters.runs++;
    try {
      const image = await keyframeToJpeg(annexB, {
        width: this.#width,
        timeoutMs: this.#timeoutMs,
        ffmpegPath: this.#ffmpegPath,
        signal: this.#abort.signal,
        format,
      });
      if (this.#closed || this.#rooms.get(roomId) !== st) return;
      const path = await this.#write(roomId, image.jpeg);
      const updatedAt = new Date();
      const etag = `"${updatedAt.getTime().toString(36)}-${image.jpeg.length.toString(36)}"`;
      info = { path, width: image.width, height: image.height, updatedAt, etag };
      st.info = info;
      if (st.failures > 0) this.#log(`thumbnails: room ${roomId} recovered after ${st.failures} failure(s)`);
      st.failures = 0;
    } catch (err) {
      if (this.#closed) return;
      this.counters.failures++;
      if (
        err instanceof ThumbnailError &&
        (err.code === "ffmpeg_unavailable" || err.code === "sharp_unavailable")
      ) {
        if (!this.#disabled) this.#log(`thumbnails disabled: ${err.message}`);
        this.#disabled = true;
        return;
      }
      st.failures++;
      st.nextAt = now + this.#intervalMs * Math.min(st.failures, MAX_BACKOFF_INTERVALS);
      if (st.failures === 1) {
        this.#log(
          `thumbnails: room ${roomId} failed: ${
            errorMessage(err)
          } (will retry in ${this.#intervalMs} ms or later;` +
            " repeats are not logged)",
        );
      }
      return;
    }
    try {
      this.#onThumbnail?.(roomId, info);
    } catch (err) {
      this.#log(`thumbnails: onThumbnail callback threw: ${errorMessage(err)}`);
    }
  }

  /** Writes the file atomically: a temp file in the same directory, then rename over the old one. */
  async #write(roomId: string, jpeg: Uint8Array): Promise<string> {
    this.#dirReady ??= Deno.mkdir(this.#storageDir, { recursive: true }).catch((err) => {
      this.#dirReady = undefined;
      throw err;
    });
    await this.#dirReady;
    const path = this.path(roomId);
    const suffix = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0");
    const temp = join(this.#storageDir, `.${roomId}.${suffix}.tmp`);
    try {
      await Deno.writeFile(temp, jpeg);
      await Deno.rename(temp, path);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw err;
    }
    return path;
  }
}
