/**
 * Hostile traffic for tests/flood_test.ts, run as its own process so it does not share an event loop with
 * the test: junk datagrams, DTLS- and RTP-looking garbage and forged STUN checks (wrong integrity, unknown
 * ufrags, no integrity) at a target rate from many source ports on several loopback addresses, plus bad HTTP
 * requests. Every datagram that comes back to a flood socket is counted: there should be none.
 *
 *   deno run --unstable-net --allow-net tests/fuzz/flood.ts '<json FloodPlan>'
 *
 * Prints one JSON line of {@link FloodResult} at the end.
 */
import { Buffer } from "node:buffer";
import { classes, Message, methods } from "werift";
import { mutateBytes, randomDatagram, Rng } from "./mutate.ts";

/** What to send. */
export interface FloodPlan {
  udpPort: number;
  baseUrl: string;
  seconds: number;
  packetsPerSecond: number;
  sockets: number;
  /** Server ufrags (and the client ufrag they pair with) to forge checks for. */
  targets: { serverUfrag: string; clientUfrag: string }[];
  httpConcurrency: number;
  seed: number;
}

/** What was sent and what came back. */
export interface FloodResult {
  udpSent: number;
  udpSendErrors: number;
  forgedStun: number;
  responses: number;
  stunSuccessResponses: number;
  httpRequests: number;
  httpStatuses: Record<string, number>;
  httpErrors: number;
  seconds: number;
}

/** Runs the flood for `plan.seconds`. */
export async function flood(plan: FloodPlan): Promise<FloodResult> {
  const rng = new Rng(plan.seed);
  const result: FloodResult = {
    udpSent: 0,
    udpSendErrors: 0,
    forgedStun: 0,
    responses: 0,
    stunSuccessResponses: 0,
    httpRequests: 0,
    httpStatuses: {},
    httpErrors: 0,
    seconds: plan.seconds,
  };
  const sockets: Deno.DatagramConn[] = [];
  for (let i = 0; i < plan.sockets; i++) {
    sockets.push(Deno.listenDatagram({ transport: "udp", hostname: `127.0.0.${1 + (i % 4)}`, port: 0 }));
  }
  let running = true;
  const listeners = sockets.map(async (conn) => {
    while (running) {
      try {
        const [data] = await conn.receive();
        result.responses++;
        // A STUN success response: class bits 0x0100 set in the type (0x0101 = binding success).
        if (data.length >= 20 && data[0] === 0x01 && data[1] === 0x01) result.stunSuccessResponses++;
      } catch {
        if (!running) return;
      }
    }
  });

  const packets = prepareDatagrams(rng, plan);
  const forged = new Set(packets.filter((p) => p.forged).map((p) => p.data));
  const server = { transport: "udp" as const, hostname: "127.0.0.1", port: plan.udpPort };
  const started = performance.now();
  const end = started + plan.seconds * 1000;
  const http = Array.from(
    { length: plan.httpConcurrency },
    (_, i) => httpLoop(plan, new Rng(plan.seed, 7, i), result, end),
  );

  let i = 0;
  const batch = 64;
  // packetsPerSecond 0: an HTTP-only flood.
  while (plan.packetsPerSecond > 0 && performance.now() < end) {
    const sends: Promise<number>[] = [];
    for (let k = 0; k < batch; k++, i++) {
      const packet = packets[i % packets.length];
      if (forged.has(packet.data)) result.forgedStun++;
      sends.push(sockets[i % sockets.length].send(packet.data, server));
    }
    const settled = await Promise.allSettled(sends);
    for (const s of settled) {
      if (s.status === "fulfilled") result.udpSent++;
      else result.udpSendErrors++;
    }
    // Pace to the target rate.
    const due = started + (result.udpSent + result.udpSendErrors) / plan.packetsPerSecond * 1000;
    const ahead = due - performance.now();
    if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
  }
  await Promise.all(http);
  result.seconds = (performance.now() - started) / 1000;
  // Late answers would still count.
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  for (const s of sockets) s.close();
  await Promise.all(listeners);
  return result;
}

/** A pool of hostile datagrams, built once (the flood's rate is bounded by sending, not by building). */
function prepareDatagrams(rng: Rng, plan: FloodPlan): { data: Uint8Array; forged: boolean }[] {
  const out: { data: Uint8Array; forged: boolean }[] = [];
  for (let n = 0; n < 4000; n++) {
    const r = rng.int(10);
    if (r < 4) {
      // Forged checks: real USERNAMEs signed with a wrong password, unknown ufrags, or no integrity at all.
      const target = plan.targets.length ? rng.pick(plan.targets) : { serverUfrag: "none", clientUfrag: "x" };
      const m = new Message(methods.BINDING, classes.REQUEST, Buffer.from(rng.bytes(12)));
      const kind = rng.int(3);
      m.setAttribute(
        "USERNAME",
        kind === 1 ? `${rng.u32().toString(36)}:x` : `${target.serverUfrag}:${target.clientUfrag}`,
      );
      m.setAttribute("PRIORITY", rng.u32());
      m.setAttribute("USE-CANDIDATE", null);
      if (kind !== 2) m.addMessageIntegrity(Buffer.from(`wrong-password-${rng.u32()}`, "utf8"));
      m.addFingerprint();
      out.push({ data: new Uint8Array(m.bytes), forged: true });
    } else if (r < 6) {
      // DTLS-looking: a record header and junk (a ClientHello from a stranger must get nothing).
      const data = rng.bytes(13 + rng.int(200));
      data[0] = rng.pick([20, 21, 22, 23]);
      data[1] = 0xfe;
      data[2] = 0xfd;
      out.push({ data, forged: false });
    } else if (r < 8) {
      // RTP/RTCP-looking junk.
      const data = rng.bytes(12 + rng.int(1200));
      data[0] = 0x80 | rng.int(0x40);
      if (rng.chance(0.3)) data[1] = 200 + rng.int(7);
      out.push({ data, forged: false });
    } else {
      out.push({
        data: rng.chance(0.5) ? randomDatagram(rng) : mutateBytes(rng, rng.bytes(40)),
        forged: false,
      });
    }
  }
  return out.filter((p) => p.data.length > 0);
}

const BAD_REQUESTS: ((rng: Rng) => [string, RequestInit])[] = [
  () => ["/whip", {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: "Bearer wrong" },
    body: "v=0\r\n",
  }],
  () => ["/whip", { method: "POST", headers: { "Content-Type": "text/plain" }, body: "hello" }],
  () => ["/whep/nope", { method: "POST", headers: { "Content-Type": "application/sdp" }, body: "v=0\r\n" }],
  () => ["/whep?target_id=flood", {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: "garbage",
  }],
  () => ["/whep?target_id=flood", {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: "x".repeat(70_000),
  }],
  () => ["/rooms/%zz", { method: "GET" }],
  () => ["/rooms/flood/thumbnail.jpg?w=9999", { method: "GET" }],
  (
    rng,
  ) => [`/whep/${"A".repeat(24)}${rng.u32()}`, {
    method: "PATCH",
    headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
    body: "a=x",
  }],
  (rng) => [`/whip/${"B".repeat(30)}${rng.u32()}`, { method: "DELETE" }],
  () => ["/nope/../../etc/passwd", { method: "GET" }],
  () => ["/assets/..%2f..%2fdeno.json", { method: "GET" }],
  () => ["/whip", { method: "PUT" }],
  () => ["/rooms", { method: "GET" }],
];

async function httpLoop(plan: FloodPlan, rng: Rng, result: FloodResult, end: number): Promise<void> {
  while (performance.now() < end) {
    const [path, init] = rng.pick(BAD_REQUESTS)(rng);
    try {
      const res = await fetch(plan.baseUrl + path, { ...init, signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
      result.httpStatuses[res.status] = (result.httpStatuses[res.status] ?? 0) + 1;
    } catch {
      result.httpErrors++;
      await new Promise((r) => setTimeout(r, 10));
    }
    result.httpRequests++;
    // SSE connections opened and dropped at once.
    if (rng.chance(0.05)) {
      const abort = new AbortController();
      try {
        const res = await fetch(`${plan.baseUrl}/notifications`, { signal: abort.signal });
        result.httpStatuses[res.status] = (result.httpStatuses[res.status] ?? 0) + 1;
        result.httpRequests++;
      } catch {
        result.httpErrors++;
      }
      abort.abort();
    }
  }
}

if (import.meta.main) {
  const plan = JSON.parse(Deno.args[0]) as FloodPlan;
  console.log(JSON.stringify(await flood(plan)));
}
