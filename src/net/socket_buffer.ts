/**
 * Raising the media socket's kernel receive buffer (SO_RCVBUF), which Deno does not expose. At the default
 * (~208 KiB) a few milliseconds without CPU — a busy machine, a GC pause — under a flood of junk fill it, and
 * the kernel then drops publisher packets along with the junk. Linux only: the socket's descriptor is found
 * through /proc (its inode in /proc/net/udp matched against /proc/self/fd), then `setsockopt` is called through
 * libc. Needs --allow-ffi and --allow-read; anything missing makes it a no-op. The kernel caps the value at
 * net.core.rmem_max (and doubles it for bookkeeping).
 */

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;

/** Asks for `bytes` of receive buffer on the UDP socket bound to `port`; returns what the kernel granted. */
export function raiseReceiveBuffer(port: number, bytes: number): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
  try {
    const fd = socketFd(port);
    if (fd === undefined) return undefined;
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
    const value = new Int32Array([bytes]);
    if (lib.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4) !== 0) return undefined;
    const granted = new Int32Array(1);
    const length = new Uint32Array([4]);
    if (lib.symbols.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, length) !== 0) return undefined;
    return granted[0];
  } catch {
    return undefined;
  } finally {
    lib?.close();
  }
}

const SYMBOLS = {
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const;

/** This process's descriptor of the UDP socket bound to `port` (IPv4 or IPv6), found through /proc. */
export function socketFd(port: number): number | undefined {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(suffix) && fields[9]) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode && inodes.has(inode)) return Number(entry.name);
  }
  return undefined;
}
