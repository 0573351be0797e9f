/**
 * Per-room stream keys from `STREAM_KEYS_FILE`: one `room key` per line (`#` starts a comment). A key may be
 * written as `sha256:<64 hex digits>` (the SHA-256 of the key) so the file need not hold it in clear. Keys
 * are kept only as SHA-256 digests and compared with `timingSafeEqual`; neither keys nor digests are logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

/** What a bearer token is worth for publishing. */
export type KeyMatch =
  /** The key of the room asked for (or, when no room was named, of this room). */
  | { kind: "room"; room: string }
  /** A valid key, but of another room than the one asked for. */
  | { kind: "other-room" }
  | { kind: "unknown" };

const ROOM = /^[A-Za-z0-9_-]{1,64}$/;
/** Keys shorter than this are refused when the file is read (they could be guessed). */
export const MIN_KEY_LENGTH = 8;

/** A parsed key file: digests by room. */
export class StreamKeys {
  readonly #byRoom: Map<string, Buffer>;

  constructor(byRoom: Map<string, Buffer> = new Map()) {
    this.#byRoom = byRoom;
  }

  /**
   * Parses the file's text. Bad lines are skipped and described in `problems` (line number and why, never
   * the key), so one typo does not lock every streamer out.
   */
  static parse(text: string): { keys: StreamKeys; problems: string[] } {
    const byRoom = new Map<string, Buffer>();
    const problems: string[] = [];
    const seen = new Map<string, string>();
    text.split(/\r?\n/).forEach((raw, index) => {
      const line = raw.replace(/#.*$/, "").trim();
      if (line === "") return;
      const fields = line.split(/\s+/);
      const where = `line ${index + 1}`;
      if (fields.length !== 2) return problems.push(`${where}: expected "room key"`);
      const [room, key] = fields;
      if (!ROOM.test(room)) return problems.push(`${where}: room name must be 1-64 of A-Z a-z 0-9 _ -`);
      let digest: Buffer;
      const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(key);
      if (hashed) digest = Buffer.from(hashed[1], "hex");
      else if (key.length < MIN_KEY_LENGTH) {
        return problems.push(`${where}: key shorter than ${MIN_KEY_LENGTH} characters`);
      } else digest = sha256(key);
      if (byRoom.has(room)) return problems.push(`${where}: room ${room} listed twice, first one kept`);
      const hex = digest.toString("hex");
      if (seen.has(hex)) return problems.push(`${where}: same key as room ${seen.get(hex)}, line skipped`);
      seen.set(hex, room);
      byRoom.set(room, digest);
    });
    return { keys: new StreamKeys(byRoom), problems };
  }

  /** Number of rooms with a key. */
  get size(): number {
    return this.#byRoom.size;
  }

  /** Whether `room` has a key of its own. */
  has(room: string): boolean {
    return this.#byRoom.has(room);
  }

  /**
   * What `token` opens. With `room` given: that room's key is a match, another room's key is
   * `other-room`. Without: the room whose key it is. Every stored digest is compared (in constant time),
   * so the time taken does not depend on which one matches.
   */
  match(token: string, room: string | undefined): KeyMatch {
    const digest = sha256(token);
    let found: string | undefined;
    for (const [name, stored] of this.#byRoom) {
      if (timingSafeEqual(stored, digest) && found === undefined) found = name;
    }
    if (found === undefined) return { kind: "unknown" };
    if (room !== undefined && found !== room) return { kind: "other-room" };
    return { kind: "room", room: found };
  }
}

/** SHA-256 of a string. */
export function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * Keeps {@link StreamKeys} in step with the file: reread when its modification time or size changes
 * (checked every `pollMs`) and on SIGHUP. A file that cannot be read keeps the keys last read.
 */
export class StreamKeyFile {
  keys = new StreamKeys();
  readonly #path: string;
  readonly #log: (level: "info" | "warn", message: string) => void;
  #stamp = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  #onHangup = () => this.reload(true);

  constructor(path: string, log: (level: "info" | "warn", message: string) => void) {
    this.#path = path;
    this.#log = log;
  }

  /** Reads the file (throws when it cannot be read at start) and starts watching it. */
  start(pollMs = 2000): void {
    this.#read(Deno.statSync(this.#path));
    this.#timer = setInterval(() => this.reload(false), pollMs);
    try {
      Deno.addSignalListener("SIGHUP", this.#onHangup);
    } catch { /* no signals on this platform */ }
  }

  /** Rereads the file if it changed (or always, with `force`). */
  reload(force: boolean): void {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.#path);
    } catch (e) {
      if (force) this.#log("warn", `STREAM_KEYS_FILE: cannot read ${this.#path}: ${(e as Error).message}`);
      return;
    }
    if (!force && stampOf(info) === this.#stamp) return;
    try {
      this.#read(info);
    } catch (e) {
      this.#log("warn", `STREAM_KEYS_FILE: cannot read ${this.#path}: ${(e as Error).message}`);
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    try {
      Deno.removeSignalListener("SIGHUP", this.#onHangup);
    } catch { /* never added */ }
  }

  #read(info: Deno.FileInfo): void {
    const { keys, problems } = StreamKeys.parse(Deno.readTextFileSync(this.#path));
    this.#stamp = stampOf(info);
    this.keys = keys;
    for (const problem of problems) this.#log("warn", `STREAM_KEYS_FILE ${this.#path} ${problem}`);
    this.#log("info", `stream keys loaded for ${keys.size} room${keys.size === 1 ? "" : "s"}`);
  }
}

function stampOf(info: Deno.FileInfo): string {
  return `${info.mtime?.getTime() ?? 0}|${info.size}|${info.ino ?? 0}`;
}
