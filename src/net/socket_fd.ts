/**
 * Finding the descriptor of one of this process's UDP sockets, which Deno does not expose but `setsockopt`
 * and `sendmmsg` through FFI need. Each descriptor is asked for its type and local address (`getsockopt`
 * SO_TYPE, `getsockname`) through libc, so only --allow-ffi is needed: Deno 2.9 refuses reads under
 * /proc/self and /proc/net unless every permission is granted (`NotCapable: Requires all access`), which
 * made the earlier /proc lookup fail under `deno task start`. Linux only.
 */

const SYMBOLS = {
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const;

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SOCK_DGRAM = 2;
const AF_INET = 2;
const AF_INET6 = 10;
/** Descriptors probed; a server opens its media socket early, so it is found long before this. */
const MAX_FD = 1 << 16;

/** Why {@link socketFd} last returned undefined. */
export let socketFdUnavailableReason: string | undefined;

/** This process's descriptor of the UDP socket (IPv4 or IPv6) bound to `port`; undefined when not found. */
export function socketFd(port: number): number | undefined {
  if (Deno.build.os !== "linux") {
    socketFdUnavailableReason = `not Linux (${Deno.build.os})`;
    return undefined;
  }
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (e) {
    socketFdUnavailableReason = `libc through FFI: ${(e as Error).message.split("\n")[0]}`;
    return undefined;
  }
  try {
    const type = new Int32Array(1);
    const typeLength = new Uint32Array(1);
    // Large enough for sockaddr_in6 (28 bytes); family is the first u16, the port (big-endian) follows.
    const name = new Uint8Array(128);
    const nameLength = new Uint32Array(1);
    for (let fd = 0; fd < MAX_FD; fd++) {
      typeLength[0] = 4;
      // Fails for descriptors that are closed or not sockets (~0.5 µs each, so the whole range is ~30 ms).
      if (lib.symbols.getsockopt(fd, SOL_SOCKET, SO_TYPE, type, typeLength) !== 0) continue;
      if (type[0] !== SOCK_DGRAM) continue;
      nameLength[0] = name.length;
      if (lib.symbols.getsockname(fd, name, nameLength) !== 0) continue;
      const family = name[0] | (name[1] << 8);
      if (family !== AF_INET && family !== AF_INET6) continue;
      if (((name[2] << 8) | name[3]) === port) {
        socketFdUnavailableReason = undefined;
        return fd;
      }
    }
    socketFdUnavailableReason = `no UDP socket bound to port ${port} in this process`;
    return undefined;
  } finally {
    lib.close();
  }
}
