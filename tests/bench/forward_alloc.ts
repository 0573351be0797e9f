/**
 * Heap allocation on the forwarding path: an in-process server (the fuzz world: real peers, ICE, DTLS and
 * SRTP over loopback) gets 10,000 SRTP publisher packets handed to `MediaSocket.handleDatagram` in
 * synchronous chunks of 500, and the JS heap is read before and after each chunk. No other JavaScript runs
 * inside a chunk, so a chunk without a garbage collection grows the heap by exactly what the path
 * allocated; the median over such chunks, per packet and per forwarded packet, is printed. (Deno's own
 * receive adds its address object and result array per datagram in the real read loop; they are outside
 * this figure.)
 *
 * `deno run --unstable-net --allow-all tests/bench/forward_alloc.ts [--viewers N]` (default 10).
 */
import { createWorld } from "../fuzz/world.ts";
import { rtpHeader } from "../fuzz/werift_client.ts";

const PACKETS = 10_000;
const CHUNK = 500;

const flag = Deno.args.indexOf("--viewers");
const viewerCount = flag >= 0 ? Number(Deno.args[flag + 1]) : 10;
const world = await createWorld({ viewers: viewerCount });
try {
  const room = world.room;
  const payloadType = room.video.payloadType;
  // An IDR first (viewers' video starts at a keyframe), then 1,100-byte non-IDR slices, 10 per frame.
  const packets: Uint8Array[] = [];
  for (let i = 0; i <= PACKETS; i++) {
    const payload = new Uint8Array(1100).fill(0x55);
    payload[0] = i === 0 ? 0x65 : 0x41;
    const frame = Math.floor(i / 10);
    packets.push(world.publisher.protectRtp(
      rtpHeader({
        payloadType,
        sequenceNumber: 1000 + i,
        timestamp: 90_000 + frame * 3000,
        ssrc: 0x1234,
        marker: i % 10 === 9,
      }),
      payload,
    ));
  }
  const from = world.publisher.address;
  const socket = world.socket;
  const outBefore = socket.counters.datagramsOut;
  socket.handleDatagram(packets[0], from, performance.now());
  const deltas: number[] = [];
  let gcChunks = 0;
  for (let start = 1; start <= PACKETS; start += CHUNK) {
    const before = Deno.memoryUsage().heapUsed;
    for (let i = start; i < start + CHUNK; i++) socket.handleDatagram(packets[i], from, performance.now());
    const delta = Deno.memoryUsage().heapUsed - before;
    if (delta < 0) gcChunks++;
    else deltas.push(delta);
    // Let the viewers' clients read what was sent (their sockets would otherwise overflow).
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const forwarded = socket.counters.datagramsOut - outBefore;
  deltas.sort((a, b) => a - b);
  const median = deltas.length > 0 ? deltas[Math.floor(deltas.length / 2)] : NaN;
  console.log(
    `${PACKETS} publisher packets, ${viewerCount} viewers, ${forwarded} datagrams out (${
      (forwarded / (PACKETS + 1)).toFixed(2)
    } per packet)`,
  );
  console.log(
    `heap growth per chunk of ${CHUNK}: median ${median} bytes (min ${deltas[0]}, max ${
      deltas.at(-1)
    }; ${gcChunks} chunks had a GC and are left out)`,
  );
  console.log(
    `=> ${(median / CHUNK).toFixed(1)} bytes per publisher packet, ${
      (median / CHUNK / viewerCount).toFixed(2)
    } bytes per forwarded packet`,
  );
} finally {
  await world.close();
}
