/** One-line logs with a level threshold; no per-packet logging goes through here. */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** `text`: `time LEVEL message key=value`; `json`: one JSON object per line (`time`, `level`, `msg`, fields). */
export type LogFormat = "text" | "json";

/** Extra structured fields of a log line (e.g. `{ room: "lobby", session: "ab12cd34" }`). */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A logging function; `fields` is optional, so `log(level, message)` is the whole contract for callers. */
export type Log = (level: LogLevel, message: string, fields?: LogFields) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const RESERVED = new Set(["time", "level", "msg"]);

/** A logger writing one line per call to stderr (or `write`) for levels at or above `threshold`. */
export function createLog(
  threshold: LogLevel,
  format: LogFormat = "text",
  write: (line: string) => void = writeStderr,
): Log {
  return (level, message, fields) => {
    if (ORDER[level] < ORDER[threshold]) return;
    write(formatLogLine(new Date(), level, message, fields, format) + "\n");
  };
}

/** One log line without the newline. JSON lines never contain a raw newline, whatever the message holds. */
export function formatLogLine(
  time: Date,
  level: LogLevel,
  message: string,
  fields: LogFields | undefined,
  format: LogFormat,
): string {
  if (format === "json") {
    const record: Record<string, unknown> = { time: time.toISOString(), level, msg: message };
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value !== undefined) record[RESERVED.has(key) ? `field_${key}` : key] = value;
    }
    return JSON.stringify(record);
  }
  let line = `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    const text = String(value);
    line += ` ${key}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
  }
  return line;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  // writeSync may take only part of a long line on a pipe; a JSON line cut short would not parse.
  let bytes = encoder.encode(line);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
  } catch { /* stderr closed */ }
}
