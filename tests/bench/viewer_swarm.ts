/**
 * Many light WHEP viewers in one process, driven by a benchmark over stdin/stdout (one JSON object per line),
 * so the clients run beside the benchmark's own process and spread over the cores. Each viewer connects with
 * the light client (HTTP, ICE, DTLS: its first-packet time is measured there), then its socket goes to a
 * {@link DatagramCounter} that counts with `recvmmsg`. {@link ViewerSwarm} is the benchmark's handle on one
 * such process.
 *
 * Requests: `{"add": {baseUrl, room, count, concurrency}}` answers `{"firstPacketMs": [...], "errors": [...]}`
 * (null for a viewer that got no media within {@link FIRST_PACKET_TIMEOUT_MS}); `{"counts": true}` answers
 * `{"counts": [[received, span, verified, verifyFailures], ...], "kernelDrops", "calls"}`; `{"close": true}`
 * ends the process.
 */
import { type ClientCertificate, createClientCertificate, LightClient } from "./light_client.ts";
import { DatagramCounter, type ViewerCounts } from "./datagram_counter.ts";
import { waitFor } from "../helpers/wait.ts";

/** A viewer with no media this long after its offer counts as failed to start. */
const FIRST_PACKET_TIMEOUT_MS = 5000;

interface AddRequest {
  baseUrl: string;
  room: string;
  count: number;
  concurrency: number;
}

/** What one `add` reported. */
export interface AddResult {
  /** Offer to first decrypted RTP packet, per viewer asked for; null when it never came. */
  firstPacketMs: (number | null)[];
  errors: string[];
}

/** Counts of every viewer in the process, and how the process itself did. */
export interface SwarmCounts {
  /** When the counts were read (ms since the epoch, sub-millisecond). */
  at: number;
  counts: ViewerCounts[];
  kernelDrops: number;
  calls: number;
  /** Why sampled packets failed SRTP, counted since the swarm started. */
  failureReasons?: Record<string, number>;
}

async function add(
  counter: DatagramCounter,
  clients: LightClient[],
  certificate: ClientCertificate,
  r: AddRequest,
): Promise<AddResult> {
  const result: AddResult = { firstPacketMs: [], errors: [] };
  let next = 0;
  const joiner = async () => {
    while (next < r.count) {
      next++;
      let client: LightClient | undefined;
      try {
        client = await LightClient.connect({ baseUrl: r.baseUrl, role: "viewer", room: r.room, certificate });
        const c = client;
        await waitFor("first packet", () => c.stats.firstRtpAt, (t) => t > 0, FIRST_PACKET_TIMEOUT_MS, 10);
        result.firstPacketMs.push(c.stats.firstRtpAt - c.stats.startedAt);
        counter.adopt(c);
        clients.push(c);
      } catch (e) {
        result.firstPacketMs.push(null);
        if (result.errors.length < 3) result.errors.push((e as Error).message.split("\n")[0]);
        client?.abandon();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, r.concurrency) }, joiner));
  return result;
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
}

async function serve(): Promise<void> {
  const counter = new DatagramCounter();
  const clients: LightClient[] = [];
  const certificate = await createClientCertificate();
  const encoder = new TextEncoder();
  const reply = (value: unknown) => Deno.stdout.writeSync(encoder.encode(JSON.stringify(value) + "\n"));
  for await (const line of lines(Deno.stdin.readable)) {
    if (line.trim() === "") continue;
    const request = JSON.parse(line);
    if (request.add) reply(await add(counter, clients, certificate, request.add));
    else if (request.counts) {
      counter.poll();
      reply({
        at: performance.timeOrigin + performance.now(),
        counts: counter.counts(),
        kernelDrops: counter.kernelDrops(),
        calls: counter.calls,
        failureReasons: counter.failureReasons,
      });
    } else if (request.close) break;
  }
  counter.close();
  for (const c of clients) c.abandon();
  Deno.exit(0);
}

/** The benchmark's side: one swarm process. */
export class ViewerSwarm {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #replies: AsyncGenerator<string>;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#replies = lines(child.stdout);
  }

  /** Starts a swarm process (it inherits stderr). */
  static start(): ViewerSwarm {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--unstable-net", "--allow-all", new URL(import.meta.url).pathname],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return new ViewerSwarm(child);
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Connects `count` viewers to `room`, `concurrency` at a time. */
  add(baseUrl: string, room: string, count: number, concurrency = 4): Promise<AddResult> {
    return this.#request({ add: { baseUrl, room, count, concurrency } }) as Promise<AddResult>;
  }

  counts(): Promise<SwarmCounts> {
    return this.#request({ counts: true }) as Promise<SwarmCounts>;
  }

  async close(): Promise<void> {
    try {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify({ close: true }) + "\n"));
      await this.#writer.close();
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await this.#child.status;
    clearTimeout(timer);
    // Drain what is left so the stream's resource closes.
    for await (const _ of this.#replies) { /* nothing */ }
  }

  #request(value: unknown): Promise<unknown> {
    const answer = this.#queue.then(async () => {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify(value) + "\n"));
      const { value: line, done } = await this.#replies.next();
      if (done) throw new Error("the viewer swarm process ended");
      return JSON.parse(line);
    });
    this.#queue = answer.catch(() => {});
    return answer;
  }
}

if (import.meta.main) await serve();
