/** What the benchmarks read about a process and the machine from Linux's /proc. */

/** utime and stime of a process (all threads), in microseconds (fields 14 and 15 of proc(5); CLK_TCK 100). */
export function processCpu(pid: number): { user: number; system: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
}

/**
 * CPU time (user + system) of one thread of a process, in microseconds (`tid` = `pid` is the main thread; for
 * Deno that is the JavaScript main thread, for Go an OS thread like any other). Read from schedstat, which
 * counts nanoseconds (stat's utime/stime count 10 ms ticks).
 */
export function threadCpuMicros(pid: number, tid: number): number {
  return Number(Deno.readTextFileSync(`/proc/${pid}/task/${tid}/schedstat`).split(" ")[0]) / 1000;
}

/** Resident set size of a process in bytes (NaN when /proc does not say). */
export function processRssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

/** Open file descriptors of a process. */
export function processFdCount(pid: number): number {
  let fds = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
  return fds;
}

/** The CPU model name, for the line that says which machine a benchmark ran on. */
export function cpuModel(): string {
  return /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
}

/**
 * Datagrams the kernel dropped on a process's UDP sockets (receive buffer full), from /proc/net/udp and
 * /proc/net/udp6 matched by socket inode against the process's descriptors.
 */
export function processUdpDrops(pid: number): number {
  return processUdpSockets(pid).drops;
}

/**
 * A process's UDP sockets as the kernel sees them: datagrams dropped (receive buffer full) and bytes waiting
 * in their receive queues (what the process has not read yet; counted with the kernel's per-datagram overhead).
 */
export function processUdpSockets(pid: number): { drops: number; receiveQueueBytes: number } {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  let drops = 0;
  let receiveQueueBytes = 0;
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ref pointer drops
      if (fields.length < 13 || !inodes.has(fields[9])) continue;
      drops += Number(fields[12]);
      receiveQueueBytes += parseInt(fields[4].split(":")[1], 16);
    }
  }
  return { drops, receiveQueueBytes };
}
