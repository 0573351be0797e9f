/**
 * Raising the media socket's kernel receive buffer (SO_RCVBUF), which Deno does not expose. At the default
 * (~208 KiB) a few milliseconds without CPU — a busy machine, a GC pause — under a flood of junk fill it, and
 * the kernel then drops publisher packets along with the junk. Linux only: the socket's descriptor is found
 * by asking libc about each descriptor (socket_fd.ts), then `setsockopt` is called through libc. Needs only
 * --allow-ffi; without it this is a no-op. The kernel caps the value at net.core.rmem_max (and doubles it for
 * bookkeeping).
 */
import { socketFd, socketFdUnavailableReason } from "./socket_fd.ts";

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;

/** What {@link raiseReceiveBuffer} achieved: the size the kernel granted, or why it was left alone. */
export interface ReceiveBufferResult {
  /** SO_RCVBUF after the call, when it was raised. */
  granted?: number;
  /** Why it was not raised. */
  reason?: string;
}

/** Asks for `bytes` of receive buffer on the UDP socket bound to `port`; returns what the kernel granted. */
export function raiseReceiveBuffer(port: number, bytes: number): ReceiveBufferResult {
  if (Deno.build.os !== "linux") return { reason: `not Linux (${Deno.build.os})` };
  const fd = socketFd(port);
  if (fd === undefined) return { reason: socketFdUnavailableReason ?? "socket not found" };
  let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
    const value = new Int32Array([bytes]);
    if (lib.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4) !== 0) {
      return { reason: "setsockopt failed" };
    }
    const granted = new Int32Array(1);
    const length = new Uint32Array([4]);
    if (lib.symbols.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, length) !== 0) {
      return { reason: "getsockopt failed" };
    }
    return { granted: granted[0] };
  } catch (e) {
    return { reason: (e as Error).message.split("\n")[0] };
  } finally {
    lib?.close();
  }
}

const SYMBOLS = {
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const;
