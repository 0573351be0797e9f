/** One-line logs with a level threshold; no per-packet logging goes through here. */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** A logging function. */
export type Log = (level: LogLevel, message: string) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger writing `time level message` lines to stderr for levels at or above `threshold`. */
export function createLog(threshold: LogLevel): Log {
  const encoder = new TextEncoder();
  return (level, message) => {
    if (ORDER[level] < ORDER[threshold]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}\n`;
    try {
      Deno.stderr.writeSync(encoder.encode(line));
    } catch { /* stderr closed */ }
  };
}
