/**
 * A UDP relay that puts random loss and delay on a client's path to the server, for loss-recovery
 * measurements where kernel netem is not available. Each client address gets its own upstream socket, so
 * the server sees one distinct address per client (as with a NAT).
 */
import { datagrams } from "../../src/net/datagrams.ts";
import { isLoopbackAddress } from "../../src/net/udp.ts";

/** Impairment applied by the relay. */
export interface Impairment {
  /** Probability (0..1) that a server-to-client datagram is dropped. */
  downstreamLoss: number;
  /** One-way delay added in each direction, ms. */
  delayMs: number;
  /** Seeded random source, so runs are comparable. */
  random?: () => number;
  /**
   * A bottleneck on the server-to-client direction: a token bucket of this many bits per second feeding a
   * FIFO that holds at most {@link queueMs} of data; what does not fit is dropped (a full router queue).
   * Change it while running with {@link LossyRelay.setRate}.
   */
  rateBitsPerSecond?: number;
  /** Longest queueing delay of the bottleneck before it drops, ms (default 200). */
  queueMs?: number;
}

/** A running relay. */
export interface LossyRelay {
  address: { hostname: string; port: number };
  dropped: number;
  forwarded: number;
  /** Datagrams the bottleneck dropped (its queue was full). */
  queueDrops: number;
  /** Sets (or with undefined, lifts) the downstream bottleneck. */
  setRate(bitsPerSecond: number | undefined): void;
  close(): void;
}

/** A small deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts a relay on `listenHost` that forwards to `server`. */
export function startLossyRelay(
  listenHost: string,
  server: { hostname: string; port: number },
  impairment: Impairment,
): LossyRelay {
  const random = impairment.random ?? Math.random;
  let rate = impairment.rateBitsPerSecond;
  const queueMs = impairment.queueMs ?? 200;
  /** When the bottleneck has sent everything queued so far (performance.now() ms). */
  let linkFreeAt = 0;
  const front = Deno.listenDatagram({ transport: "udp", hostname: listenHost, port: 0 });
  const upstreams = new Map<string, Deno.DatagramConn>();
  let closed = false;
  const relay: LossyRelay = {
    address: { hostname: listenHost, port: (front.addr as Deno.NetAddr).port },
    dropped: 0,
    forwarded: 0,
    queueDrops: 0,
    setRate(bitsPerSecond) {
      rate = bitsPerSecond;
    },
    close() {
      closed = true;
      front.close();
      for (const u of upstreams.values()) u.close();
    },
  };
  const later = (fn: () => void) => impairment.delayMs > 0 ? setTimeout(fn, impairment.delayMs) : fn();
  (async () => {
    try {
      for await (const [data, from] of datagrams(front, () => closed)) {
        const client = from as Deno.NetAddr;
        // The same host's browser also sends from its LAN candidate; answering it would send test traffic
        // to this machine's LAN address (the network rule), so only loopback clients are relayed.
        if (!isLoopbackAddress(client.hostname)) continue;
        const key = `${client.hostname}:${client.port}`;
        let upstream = upstreams.get(key);
        if (!upstream) {
          const socket = Deno.listenDatagram({ transport: "udp", hostname: server.hostname, port: 0 });
          upstream = socket;
          upstreams.set(key, socket);
          (async () => {
            try {
              for await (const [reply] of datagrams(socket, () => closed)) {
                if (random() < impairment.downstreamLoss) {
                  relay.dropped++;
                  continue;
                }
                let wait = 0;
                if (rate !== undefined) {
                  const now = performance.now();
                  const start = Math.max(now, linkFreeAt);
                  if (start - now > queueMs) {
                    relay.queueDrops++;
                    continue;
                  }
                  linkFreeAt = start + (reply.length * 8 * 1000) / rate;
                  wait = linkFreeAt - now;
                }
                relay.forwarded++;
                const send = () => {
                  if (!closed) front.send(reply, client).catch(() => {});
                };
                if (wait > 0) setTimeout(send, wait + impairment.delayMs);
                else later(send);
              }
            } catch { /* closed */ }
          })();
        }
        const target = upstream;
        later(() => {
          if (!closed) target.send(data, { transport: "udp", ...server }).catch(() => {});
        });
      }
    } catch { /* closed */ }
  })();
  return relay;
}
