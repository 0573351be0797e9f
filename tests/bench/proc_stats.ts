/** What the benchmarks read about a process and the machine from Linux's /proc. */

/** utime and stime of a process (all threads), in microseconds (fields 14 and 15 of proc(5); CLK_TCK 100). */
export function processCpu(pid: number): { user: number; system: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
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
