/**
 * A V8 CPU profile of a server process through its inspector (`deno run --inspect=127.0.0.1:PORT`), and a
 * summary of where the time went: self and inclusive time per function and self time per file, in µs per
 * unit of work (e.g. per received packet) so runs of different lengths compare.
 */

/** The `Profiler.stop` result of the Chrome DevTools protocol (the fields the summary reads). */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Starts sampling (every `intervalMicros`) in the process whose inspector listens on `port`. */
export async function startCpuProfile(
  port: number,
  intervalMicros = 100,
): Promise<{ stop(): Promise<CpuProfile> }> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data as string) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: intervalMicros });
  await call("Profiler.start");
  return {
    async stop() {
      const { profile } = await call("Profiler.stop") as { profile: CpuProfile };
      socket.close();
      return profile;
    },
  };
}

/** Where a profile's samples fell, in µs per unit of work. */
export function summarizeCpuProfile(profile: CpuProfile, units: number, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const file = (url: string) => url.replace(/^.*\/(src|tests|node_modules)\//, "$1/") || "(native)";
  const key = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || "(anonymous)"} ${file(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const selfByFile = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // The delta before sample i+1 is the time sample i stood for.
    const micros = profile.timeDeltas[i + 1] ?? 0;
    total += micros;
    const leaf = profile.samples[i];
    self.set(key(leaf), (self.get(key(leaf)) ?? 0) + micros);
    const url = byId.get(leaf)!.callFrame.url;
    const leafFile = url ? file(url) : byId.get(leaf)!.callFrame.functionName;
    selfByFile.set(leafFile, (selfByFile.get(leafFile) ?? 0) + micros);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const k = key(id);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + micros);
    }
  }
  const idle = self.get("(idle) (native)") ?? 0;
  const rows = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) =>
      `  ${(us / units).toFixed(2).padStart(8)} µs  ${
        (us / (total - idle) * 100).toFixed(1).padStart(5)
      }%  ${k}`
    );
  return [
    `profile: ${
      ((profile.endTime - profile.startTime) / 1e6).toFixed(1)
    } s, ${profile.samples.length} samples; ` +
    `busy ${((total - idle) / units).toFixed(2)} µs per unit (${units} units), idle ${
      (idle / 1e6).toFixed(1)
    } s`,
    "self time by file:",
    ...rows(selfByFile),
    "self time by function:",
    ...rows(self),
    "inclusive time by function:",
    ...rows(inclusive),
  ].join("\n");
}
