/**
 * Soak test (`deno task soak --minutes N`): the server runs as its own process while one light WHIP
 * publisher sends the 720p H.264 + Opus clip (~2.5 Mbit/s) and light WHEP viewers join and leave all the
 * time. Every second one viewer leaves (mostly with a DELETE, one in four by going silent so the server's
 * consent timeout has to end it) and the population is topped up again; an SSE client comes and goes on
 * `/notifications`; `/rooms`, room stats and thumbnails are fetched; every couple of minutes the publisher
 * changes, alternately by leaving (the room closes, viewers end, the room reopens) and by a takeover (the
 * viewers stay). The server's RSS and open file descriptors are printed over time, and the run ends with a
 * trend over its second half: exit code 0 for "no growth trend", 1 for growth or a broken run.
 *
 * Options (flags or environment): --minutes M (SOAK_MINUTES, default 10), --viewers N (SOAK_VIEWERS, default
 * 20), --interval S (SOAK_INTERVAL, seconds between printed lines, default 10), --rotate S
 * (SOAK_ROTATE_SECONDS, seconds between publisher changes, default 120), --rss-limit L (SOAK_RSS_LIMIT, RSS
 * growth in MiB/min over the second half that fails the run, default 3).
 */
import { join } from "node:path";
import { type ClientCertificate, createClientCertificate, LightClient } from "./light_client.ts";
import { type Clip, loadClip, publishClip } from "./media_clip.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server_process.ts";
import { openSse } from "../helpers/sse.ts";
import { processFdCount, processRssBytes } from "./proc_stats.ts";
import type { RoomJson } from "../../src/http/rooms.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ROOM = "soak";
/** One viewer leaves per tick, then the population is topped up. */
const CHURN_MS = 1000;
/** Share of leaving viewers that vanish without a DELETE. */
const VANISH_SHARE = 0.25;
/** A join counts as "got media" when RTP arrived within this long. */
const MEDIA_CHECK_MS = 3000;
/** RSS and descriptors are sampled this often for the trend (printed lines are sparser). */
const SAMPLE_MS = 2000;
/** Room closed between a publisher leaving and the next one arriving. */
const OFFLINE_GAP_MS = 2000;
/**
 * Joins and DELETEs in a burst run at most this many at a time: twenty at once would open twenty keep-alive
 * connections on the server, and their expiry a minute later would swing the descriptor count.
 */
const HTTP_PARALLEL = 4;

/*
 * Growth limits over the second half of the run (the first half is warm-up). Every minute ~60 viewer
 * sessions, ~10 SSE clients, ~120 lobby requests and 6 thumbnail runs (ffmpeg subprocess, pipes) come and go.
 * RSS: a viewer session costs ~350 KB (the fan-out benchmark's RSS/viewer), so a server that kept a seventh
 * of every ended session would grow by ~3 MiB/min, one that kept whole peers by ~20 MiB/min. The limit sits
 * above the allocator settling measured here: with the JS heap flat after a forced GC (heap snapshots five
 * minutes apart held the same peers, rooms and maps), glibc's retained memory still rose by +0.2 to +2.4
 * MiB/min in the second half of six 10-minute runs (some with thumbnails off or glibc tunables changed; a
 * step when a burst needs more than it kept, dips when it trims) and by +0.05 MiB/min in minutes 20-25 of a
 * 25-minute run. --rss-limit sets another limit.
 * Descriptors: flat otherwise (one UDP socket serves every session), so a socket or pipe left behind per SSE
 * client, HTTP connection or ffmpeg run shows as 1/min or more.
 */
const FD_SLOPE_LIMIT_PER_MIN = 1;
/** Below this share of joins with media the run is broken, whatever the memory did. */
const MIN_MEDIA_SHARE = 0.95;

interface Settings {
  minutes: number;
  viewers: number;
  intervalSeconds: number;
  rotateSeconds: number;
  /** RSS growth over the second half that counts as a leak, MiB per minute. */
  rssLimit: number;
}

function settings(): Settings {
  const read = (flag: string, env: string, fallback: number): number => {
    const i = Deno.args.indexOf(`--${flag}`);
    const text = i >= 0 ? Deno.args[i + 1] : Deno.env.get(env);
    const value = Number(text ?? fallback);
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`--${flag} (${env}) must be a positive number`);
    }
    return value;
  };
  return {
    minutes: read("minutes", "SOAK_MINUTES", 10),
    viewers: Math.round(read("viewers", "SOAK_VIEWERS", 20)),
    intervalSeconds: read("interval", "SOAK_INTERVAL", 10),
    rotateSeconds: read("rotate", "SOAK_ROTATE_SECONDS", 120),
    rssLimit: read("rss-limit", "SOAK_RSS_LIMIT", 3),
  };
}

/** One reading of the server process. */
interface Sample {
  /** Seconds since the soak started. */
  at: number;
  rssMiB: number;
  fds: number;
}

function readSample(pid: number, at: number): Sample {
  return { at, rssMiB: processRssBytes(pid) / 2 ** 20, fds: processFdCount(pid) };
}

/** The server's gauges from `GET /metrics` (labelled samples summed), empty when it does not answer. */
async function serverGauges(baseUrl: string): Promise<Map<string, number>> {
  const gauges = new Map<string, number>();
  try {
    const res = await fetch(`${baseUrl}/metrics`);
    if (!res.ok) {
      await res.body?.cancel();
      return gauges;
    }
    for (const line of (await res.text()).split("\n")) {
      const m = /^(sfu_\w+)(?:\{[^}]*\})? (\S+)$/.exec(line);
      if (m) gauges.set(m[1], (gauges.get(m[1]) ?? 0) + Number(m[2]));
    }
  } catch { /* the server is gone; the sampler notices */ }
  return gauges;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Least-squares slope of `value` against time, per minute. */
function slopePerMinute(samples: Sample[], value: (s: Sample) => number): number {
  if (samples.length < 2) return NaN;
  const t = samples.map((s) => s.at / 60);
  const y = samples.map(value);
  const tMean = mean(t);
  const yMean = mean(y);
  let num = 0;
  let den = 0;
  for (let i = 0; i < samples.length; i++) {
    num += (t[i] - tMean) * (y[i] - yMean);
    den += (t[i] - tMean) ** 2;
  }
  return num / den;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** A viewer the soak holds. */
interface SoakViewer {
  client: LightClient;
  joinedAt: number;
  /** Whether the media check ran (only checked viewers are picked to leave). */
  checked: boolean;
  /** RTP packets at the previous printed line, for the stall count. */
  packetsAtLastLine: number | undefined;
}

/** A publisher and the loop feeding it the clip. */
interface Publishing {
  client: LightClient;
  sender: { stop(): void };
}

/** What happened so far. */
interface Tally {
  joins: number;
  joinFailures: number;
  joinErrors: string[];
  leftDeleted: number;
  leftVanished: number;
  endedWithRoom: number;
  mediaOk: number;
  mediaMissing: number;
  rotations: number;
  takeoverViewers: number;
  takeoverViewersResumed: number;
  sseSessions: number;
  sseFailures: number;
  httpRequests: number;
  httpFailures: number;
  httpErrors: string[];
}

function newTally(): Tally {
  return {
    joins: 0,
    joinFailures: 0,
    joinErrors: [],
    leftDeleted: 0,
    leftVanished: 0,
    endedWithRoom: 0,
    mediaOk: 0,
    mediaMissing: 0,
    rotations: 0,
    takeoverViewers: 0,
    takeoverViewersResumed: 0,
    sseSessions: 0,
    sseFailures: 0,
    httpRequests: 0,
    httpFailures: 0,
    httpErrors: [],
  };
}

function remember(list: string[], message: string): void {
  if (list.length < 5 && !list.includes(message)) list.push(message);
}

/** The run: one server, its clients, the loops that drive them and what they counted. */
class Soak {
  readonly tally = newTally();
  readonly samples: Sample[] = [];
  readonly viewers = new Set<SoakViewer>();
  #server: ServerProcess;
  #clip: Clip;
  #certificate: ClientCertificate;
  #settings: Settings;
  #stop: AbortController;
  #signal: AbortSignal;
  #publishing: Publishing | undefined;
  /** DELETEs of leaving viewers still under way. */
  #closing = new Set<Promise<void>>();
  #startedAt = performance.now();

  /** `stop` ends the run; the soak aborts it too when one of its loops fails. */
  constructor(
    server: ServerProcess,
    clip: Clip,
    certificate: ClientCertificate,
    settings: Settings,
    stop: AbortController,
  ) {
    this.#server = server;
    this.#clip = clip;
    this.#certificate = certificate;
    this.#settings = settings;
    this.#stop = stop;
    this.#signal = stop.signal;
  }

  /** Seconds since the soak started. */
  elapsed(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  /** Runs every loop until the run is stopped; a loop that fails stops the others and is rethrown. */
  async run(): Promise<void> {
    const loops = [this.#sampleLoop(), this.#viewerLoop(), this.#sseLoop(), this.#httpLoop()];
    for (const loop of loops) loop.catch(() => this.#stop.abort());
    const results = await Promise.allSettled(loops);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Ends every client (viewers with a DELETE, then the publisher). */
  async closeClients(): Promise<void> {
    const remaining = [...this.viewers];
    this.viewers.clear();
    await eachLimited(remaining, HTTP_PARALLEL, (v) => v.client.close());
    await Promise.all(this.#closing);
    if (this.#publishing) await this.#stopPublishing(this.#publishing);
    this.#publishing = undefined;
  }

  async #sampleLoop(): Promise<void> {
    const sampleMs = Math.min(SAMPLE_MS, this.#settings.intervalSeconds * 1000);
    let nextLine = this.#settings.intervalSeconds;
    // Samples sit on a fixed grid (k * sampleMs), so printed lines stay on multiples of the interval.
    for (let k = 0; !this.#signal.aborted; k++) {
      await sleep(Math.max(0, k * sampleMs - this.elapsed() * 1000), this.#signal);
      if (this.#signal.aborted) return;
      const at = this.elapsed();
      try {
        this.samples.push(readSample(this.#server.pid, at));
      } catch {
        console.log(`${at.toFixed(0)} s: the server process is gone`);
        return;
      }
      if (at >= nextLine - 0.5) {
        nextLine += this.#settings.intervalSeconds;
        console.log(await this.#statusLine());
      }
    }
  }

  async #statusLine(): Promise<string> {
    const sample = this.samples[this.samples.length - 1];
    const gauges = await serverGauges(this.#server.baseUrl);
    const t = this.tally;
    let stalled = 0;
    for (const v of this.viewers) {
      const packets = v.client.stats.rtpPackets;
      if (v.packetsAtLastLine !== undefined && packets === v.packetsAtLastLine) stalled++;
      v.packetsAtLastLine = packets;
    }
    const gauge = (name: string) => String(gauges.get(name) ?? "?").padStart(2);
    return [
      `${fixed(sample.at, 0, 5)} s`,
      `rss ${fixed(sample.rssMiB, 1, 6)} MiB`,
      `fds ${fixed(sample.fds, 0, 3)}`,
      `server: publishers ${gauge("sfu_publishers")} viewers ${gauge("sfu_viewers")} sse ${
        gauge("sfu_sse_clients")
      }`,
      `joined ${t.joins} (failed ${t.joinFailures})`,
      `left ${t.leftDeleted + t.leftVanished + t.endedWithRoom} (vanished ${t.leftVanished})`,
      `media ${t.mediaOk}/${t.mediaOk + t.mediaMissing}`,
      `stalled ${stalled}`,
    ].join("  ");
  }

  /** Keeps the viewer population churning and changes the publisher every `rotateSeconds`. */
  async #viewerLoop(): Promise<void> {
    this.#publishing = await this.#startPublishing();
    let nextRotation = this.#settings.rotateSeconds;
    let takeover = false;
    while (!this.#signal.aborted) {
      if (this.elapsed() >= nextRotation) {
        nextRotation += this.#settings.rotateSeconds;
        if (takeover) await this.#takeOver();
        else await this.#leaveAndReturn();
        takeover = !takeover;
        this.tally.rotations++;
        if (this.#signal.aborted) break;
      }
      this.#checkMedia();
      this.#dropOne();
      await this.#fillUp();
      await sleep(CHURN_MS, this.#signal);
    }
  }

  #checkMedia(): void {
    const now = performance.now();
    for (const v of this.viewers) {
      if (v.checked || now - v.joinedAt < MEDIA_CHECK_MS) continue;
      v.checked = true;
      if (v.client.stats.firstRtpAt > 0) this.tally.mediaOk++;
      else this.tally.mediaMissing++;
    }
  }

  /** One checked viewer leaves, when the population is full: mostly with a DELETE, sometimes silently. */
  #dropOne(): void {
    if (this.viewers.size < this.#settings.viewers) return;
    const candidates = [...this.viewers].filter((v) => v.checked);
    if (candidates.length === 0) return;
    const leaving = candidates[Math.floor(Math.random() * candidates.length)];
    this.viewers.delete(leaving);
    if (Math.random() < VANISH_SHARE) {
      leaving.client.abandon();
      this.tally.leftVanished++;
    } else {
      this.#close(leaving);
      this.tally.leftDeleted++;
    }
  }

  /** Starts a viewer's DELETE without waiting for it (the loop goes on; closeClients waits). */
  #close(viewer: SoakViewer): void {
    const closing = viewer.client.close().finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
  }

  async #fillUp(): Promise<void> {
    const missing = Math.max(0, this.#settings.viewers - this.viewers.size);
    await eachLimited(Array.from({ length: missing }), HTTP_PARALLEL, () => this.#join());
  }

  async #join(): Promise<void> {
    try {
      const client = await LightClient.connect({
        baseUrl: this.#server.baseUrl,
        role: "viewer",
        room: ROOM,
        certificate: this.#certificate,
        timeoutMs: 5000,
      });
      this.tally.joins++;
      this.viewers.add({
        client,
        joinedAt: client.stats.startedAt,
        checked: false,
        packetsAtLastLine: undefined,
      });
    } catch (e) {
      this.tally.joinFailures++;
      remember(this.tally.joinErrors, (e as Error).message);
    }
  }

  async #startPublishing(): Promise<Publishing> {
    const client = await LightClient.connect({
      baseUrl: this.#server.baseUrl,
      role: "publisher",
      room: ROOM,
      token: this.#server.token,
      certificate: this.#certificate,
    });
    return { client, sender: publishClip(client, this.#clip) };
  }

  async #stopPublishing(publishing: Publishing): Promise<void> {
    publishing.sender.stop();
    await publishing.client.close();
  }

  /** The publisher leaves: the room closes and ends its viewers; a new publisher reopens it. */
  async #leaveAndReturn(): Promise<void> {
    this.#checkMedia();
    if (this.#publishing) await this.#stopPublishing(this.#publishing);
    this.#publishing = undefined;
    // The server ended these sessions with the room; the DELETEs answer 404 and free the sockets here.
    const ending = [...this.viewers];
    this.viewers.clear();
    this.tally.endedWithRoom += ending.length;
    await eachLimited(ending, HTTP_PARALLEL, (v) => v.client.close());
    await sleep(OFFLINE_GAP_MS, this.#signal);
    if (this.#signal.aborted) return;
    this.#publishing = await this.#startPublishing();
  }

  /** A new publisher takes the room over; every viewer should keep receiving. */
  async #takeOver(): Promise<void> {
    const previous = this.#publishing;
    this.#publishing = await this.#startPublishing();
    if (previous) await this.#stopPublishing(previous);
    const before = new Map([...this.viewers].map((v) => [v, v.client.stats.rtpPackets]));
    await sleep(MEDIA_CHECK_MS, this.#signal);
    for (const [v, packets] of before) {
      if (!this.viewers.has(v)) continue;
      this.tally.takeoverViewers++;
      if (v.client.stats.rtpPackets > packets) this.tally.takeoverViewersResumed++;
    }
  }

  /** An SSE client connects, reads the room list, stays a few seconds and disconnects; then a pause. */
  async #sseLoop(): Promise<void> {
    while (!this.#signal.aborted) {
      try {
        const sse = await openSse(`${this.#server.baseUrl}/notifications`);
        try {
          if (!sse.response.ok) throw new Error(`GET /notifications answered ${sse.response.status}`);
          await sse.waitFor(() => true, 5000);
          this.tally.sseSessions++;
          await sleep(Math.random() * 5000, this.#signal);
        } finally {
          sse.close();
        }
      } catch (e) {
        this.tally.sseFailures++;
        remember(this.tally.httpErrors, `SSE: ${(e as Error).message}`);
      }
      await sleep(2000 + Math.random() * 3000, this.#signal);
    }
  }

  /** The lobby's traffic: the room list, the room's stats and its thumbnail (and a revalidation). */
  async #httpLoop(): Promise<void> {
    const base = this.#server.baseUrl;
    while (!this.#signal.aborted) {
      const rooms = await this.#get(`${base}/rooms`, [200]);
      const room = rooms ? (JSON.parse(await rooms.text()) as { rooms: RoomJson[] }).rooms[0] : undefined;
      if (room) {
        await this.#consume(this.#get(`${base}/rooms/${room.id}/stats`, [200, 404]));
        if (room.thumbnail_url) {
          const width = [160, 320, 480][Math.floor(Math.random() * 3)];
          const url = `${base}${room.thumbnail_url}&w=${width}`;
          const thumb = await this.#get(url, [200, 404]);
          const etag = thumb?.headers.get("ETag");
          await thumb?.body?.cancel();
          if (thumb?.status === 200 && etag) {
            await this.#consume(this.#get(url, [304, 200, 404], { "If-None-Match": etag }));
          }
        }
      }
      await sleep(2000, this.#signal);
    }
  }

  /** GETs `url`; a status outside `expected` (or a network error) counts as a failure and gives undefined. */
  async #get(url: string, expected: number[], headers?: HeadersInit): Promise<Response | undefined> {
    this.tally.httpRequests++;
    try {
      const res = await fetch(url, { headers });
      if (expected.includes(res.status)) return res;
      await res.body?.cancel();
      throw new Error(`GET ${new URL(url).pathname} answered ${res.status}`);
    } catch (e) {
      this.tally.httpFailures++;
      remember(this.tally.httpErrors, (e as Error).message);
      return undefined;
    }
  }

  async #consume(response: Promise<Response | undefined>): Promise<void> {
    await (await response)?.arrayBuffer();
  }
}

/** Runs `task` on every item, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function fixed(value: number, digits: number, width: number): string {
  return value.toFixed(digits).padStart(width);
}

/** How the server ended viewer sessions, from its log ("whep session … closed (reason)"). */
function closeReasons(log: string): string {
  const counts = new Map<string, number>();
  for (const m of log.matchAll(/whep session \S+ closed \(([\w-]+)\)/g)) {
    counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
  }
  return [...counts].map(([reason, n]) => `${reason} ${n}`).join(", ") || "none logged";
}

/** The summary lines and whether the run passed. */
function summarize(
  soak: Soak,
  server: ServerProcess,
  s: Settings,
  serverExited: boolean,
): { lines: string[]; passed: boolean } {
  const samples = soak.samples;
  const t = soak.tally;
  const lines = [""];
  const minutes = (samples[samples.length - 1]?.at ?? 0) / 60;
  lines.push(
    `Soak summary: ${minutes.toFixed(1)} min, ${s.viewers} viewers churning (one leaves a second, ` +
      `${
        VANISH_SHARE * 100
      }% without DELETE), publisher changed every ${s.rotateSeconds} s (${t.rotations}x), ` +
      `${samples.length} samples`,
  );
  const problems: string[] = [];
  if (serverExited) problems.push("the server process exited during the run");
  const growth: string[] = [];
  if (samples.length >= 6) {
    const third = Math.floor(samples.length / 3);
    const first = samples.slice(0, third);
    const last = samples.slice(samples.length - third);
    const secondHalf = samples.filter((x) => x.at >= samples[samples.length - 1].at / 2);
    const rssSlope = slopePerMinute(secondHalf, (x) => x.rssMiB);
    const fdSlope = slopePerMinute(secondHalf, (x) => x.fds);
    const rss = (list: Sample[]) => mean(list.map((x) => x.rssMiB)).toFixed(1);
    const fds = (list: Sample[]) => mean(list.map((x) => x.fds)).toFixed(1);
    lines.push(
      `RSS: start ${samples[0].rssMiB.toFixed(1)} MiB, end ${
        samples[samples.length - 1].rssMiB.toFixed(1)
      } MiB; ` +
        `first third avg ${rss(first)} MiB, last third avg ${rss(last)} MiB; ` +
        `slope over second half ${signed(rssSlope, 2)} MiB/min (limit ${s.rssLimit})`,
      `fds: start ${samples[0].fds}, end ${samples[samples.length - 1].fds}; ` +
        `first third avg ${fds(first)}, last third avg ${fds(last)}; ` +
        `slope over second half ${signed(fdSlope, 2)}/min (limit ${FD_SLOPE_LIMIT_PER_MIN})`,
    );
    if (!(rssSlope < s.rssLimit)) growth.push(`RSS ${signed(rssSlope, 2)} MiB/min`);
    if (!(fdSlope < FD_SLOPE_LIMIT_PER_MIN)) growth.push(`fds ${signed(fdSlope, 2)}/min`);
  } else {
    problems.push(`only ${samples.length} samples, too few for a trend`);
  }
  const checked = t.mediaOk + t.mediaMissing;
  lines.push(
    `viewers: ${t.joins} joins (${t.joinFailures} failed), media within ${MEDIA_CHECK_MS / 1000} s ` +
      `${t.mediaOk}/${checked}; left: ${t.leftDeleted} with DELETE, ${t.leftVanished} vanished, ` +
      `${t.endedWithRoom} ended with the room; takeovers: ${t.takeoverViewersResumed}/${t.takeoverViewers} ` +
      `viewers kept receiving`,
    `server ended viewer sessions: ${closeReasons(server.logs())}`,
    `SSE: ${t.sseSessions} clients (${t.sseFailures} failed); HTTP: ${t.httpRequests} requests ` +
      `(${t.httpFailures} failed)`,
  );
  const errors = [...t.joinErrors, ...t.httpErrors];
  if (errors.length > 0) lines.push(`first errors: ${errors.join("; ")}`);
  const warnings = server.logs().split("\n").filter((l) => /\b(WARN|ERROR)\b/i.test(l));
  if (warnings.length > 0) {
    lines.push(`server warnings/errors: ${warnings.length}, last: ${warnings.slice(-3).join(" | ")}`);
  }
  if (checked === 0 || t.mediaOk / checked < MIN_MEDIA_SHARE) {
    problems.push(`only ${t.mediaOk}/${checked} joins received media`);
  }
  if (minutes < 6) lines.push("(a run this short mostly measures warm-up; trends need --minutes 10 or more)");
  if (growth.length > 0) lines.push(`GROWTH: ${growth.join(", ")} over the second half`);
  else if (problems.length === 0) lines.push("no growth trend");
  if (problems.length > 0) lines.push(`FAILED: ${problems.join("; ")}`);
  return { lines, passed: growth.length === 0 && problems.length === 0 };
}

function signed(value: number, digits: number): string {
  return (value >= 0 ? "+" : "") + value.toFixed(digits);
}

if (import.meta.main) {
  const s = settings();
  const clip = await loadClip(join(ROOT, "storage/bench-cache"));
  const certificate = await createClientCertificate();
  const server = await startServerProcess({
    // Info level logs each session's end with its reason, which the summary counts.
    LOG_LEVEL: "info",
    RATE_LIMIT_PER_MINUTE: "0",
    MAX_SESSIONS: String(s.viewers * 2 + 20),
    MAX_VIEWERS_PER_ROOM: String(s.viewers * 2 + 20),
  });
  const stop = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) {
      // A second Ctrl-C: do not wait for the clean-up.
      try {
        Deno.kill(server.pid, "SIGKILL");
      } catch { /* gone */ }
      Deno.exit(130);
    }
    interrupted = true;
    console.log("interrupted: cleaning up (Ctrl-C again to kill at once)");
    stop.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let serverExited = false;
  server.status.then(() => {
    serverExited = true;
    stop.abort();
  });
  const endTimer = setTimeout(() => stop.abort(), s.minutes * 60_000);

  console.log(
    `soak: ${s.minutes} min against server pid ${server.pid} (${server.baseUrl}), ${s.viewers} viewers, ` +
      `line every ${s.intervalSeconds} s, publisher changes every ${s.rotateSeconds} s`,
  );
  const soak = new Soak(server, clip, certificate, s, stop);
  let passed = false;
  try {
    await soak.run();
  } catch (e) {
    console.log(`soak failed: ${(e as Error).stack}`);
    stop.abort();
  } finally {
    clearTimeout(endTimer);
    await soak.closeClients();
    const summary = summarize(soak, server, s, serverExited && !interrupted);
    passed = summary.passed && !interrupted;
    await server.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    console.log(summary.lines.join("\n"));
  }
  Deno.exit(interrupted ? 130 : passed ? 0 : 1);
}
