/**
 * The fan-out pool over a real loopback socket: a worker seals each viewer's packets with that viewer's keys
 * and sends them from the media socket's port (receivers decrypt them with their own contexts), follows
 * address changes, drops records for viewers that left, and a worker that hangs or throws is replaced and
 * its viewers told.
 */
import assert from "node:assert/strict";
import { FanoutPool } from "../../src/net/fanout.ts";
import { SendTo } from "../../src/net/udp_sendto.ts";
import { createSrtpContext } from "../../src/srtp/context.ts";
import { waitFor } from "../helpers/wait.ts";

function socket(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
}

function address(conn: Deno.DatagramConn): { hostname: string; port: number } {
  const addr = conn.addr as Deno.NetAddr;
  return { hostname: addr.hostname, port: addr.port };
}

/** An RTP packet: 12-byte header (PT 96, `ssrc`, `seq`) and `payloadLength` bytes of `fill`. */
function rtp(ssrc: number, seq: number, payloadLength: number, fill: number): Uint8Array {
  const packet = new Uint8Array(12 + payloadLength).fill(fill);
  packet.set([
    0x80,
    96,
    seq >> 8,
    seq & 0xff,
    0,
    0,
    0,
    1,
    ssrc >>> 24,
    (ssrc >> 16) & 0xff,
    (ssrc >> 8) & 0xff,
    ssrc & 0xff,
  ]);
  return packet;
}

/** Receives `count` datagrams from `conn`, decrypting each with `keys` as the viewer would. */
async function receiveDecrypted(
  conn: Deno.DatagramConn,
  keys: { key: Uint8Array; salt: Uint8Array },
  count: number,
  fromPort: number,
): Promise<Uint8Array[]> {
  const srtp = createSrtpContext({
    profile: 7,
    localMasterKey: keys.key,
    localMasterSalt: keys.salt,
    remoteMasterKey: keys.key,
    remoteMasterSalt: keys.salt,
  });
  const packets: Uint8Array[] = [];
  while (packets.length < count) {
    const [data, from] = await conn.receive();
    assert.equal((from as Deno.NetAddr).port, fromPort, "sent from the media socket");
    const plain = srtp.unprotectRtp(data);
    assert.ok(plain, `packet ${packets.length} decrypts with the viewer's keys (${srtp.lastFailure})`);
    packets.push(plain.slice());
  }
  srtp.close();
  return packets;
}

function keysOf(seed: number) {
  return { key: new Uint8Array(16).fill(seed), salt: new Uint8Array(12).fill(seed + 1) };
}

Deno.test("a worker seals each viewer's packets with its keys, follows its address, drops a removed one", async () => {
  const media = socket();
  const receivers = [socket(), socket(), socket()];
  const moved = socket();
  const port = address(media).port;
  const pool = new FanoutPool(1, SendTo.open(port)!.fd);
  try {
    const lost: number[] = [];
    const keys = [keysOf(1), keysOf(3), keysOf(5)];
    const seats = keys.map((k, i) => pool.assign(7, k.key, k.salt, () => lost.push(i))!);
    assert.deepEqual(seats.map((s) => s.worker), [0, 0, 0]);
    const received = receivers.map((r, i) => receiveDecrypted(r, keys[i], 40, port));
    const to = receivers.map(address);
    // 40 publisher packets, each sent to three viewers with their own header (the payload goes once).
    for (let n = 0; n < 40; n++) {
      const packet = rtp(0, n, 1000 + n, n);
      for (let v = 0; v < 3; v++) {
        packet.set([0x80, 96, 0, n, 0, 0, 0, 1, 0, 0, 0, 10 + v]); // the forwarder's rewrite, in place
        seats[v].send(packet, 12, to[v]);
      }
      await Promise.resolve(); // end of a "task": the pool wakes the worker
    }
    const got = await Promise.all(received);
    for (let v = 0; v < 3; v++) {
      for (let n = 0; n < 40; n++) {
        const p = got[v][n];
        assert.equal(p.length, 12 + 1000 + n);
        assert.equal(p[11], 10 + v, "the viewer's own SSRC");
        assert.equal(p[3], n, "in order");
        assert.ok(p.subarray(12).every((b) => b === n), "the payload");
      }
    }
    // An ICE path switch: the viewer's packets go to the new address from the next one on.
    const arrivedMoved = receiveDecrypted(moved, keys[0], 5, port);
    for (let n = 40; n < 45; n++) seats[0].send(rtp(10, n, 200, 1), 12, address(moved));
    await arrivedMoved;
    // A viewer that left: nothing more is sealed for it.
    seats[1].release();
    const sealed = pool.figures()[0].sealed;
    seats[1].send(rtp(11, 50, 200, 1), 12, to[1]);
    await Promise.resolve();
    seats[2].send(rtp(12, 50, 200, 1), 12, to[2]);
    await receiveDecrypted(receivers[2], keys[2], 1, port);
    await waitFor("the worker's figures", () => pool.figures()[0], (f) => f.sealed === sealed + 1);
    const f = pool.figures()[0];
    assert.equal(f.viewers, 2);
    assert.equal(f.sent, f.sealed);
    assert.equal(f.ringDrops + f.sendErrors + f.orphaned, 0);
    assert.deepEqual(lost, []);
  } finally {
    pool.close();
    for (const conn of [media, moved, ...receivers]) conn.close();
  }
});

for (const how of ["throw", "hang"] as const) {
  Deno.test(`a worker that ${how}s is replaced, its viewers are told, the new one seals`, async () => {
    const media = socket();
    const receiver = socket();
    const port = address(media).port;
    const pool = new FanoutPool(1, SendTo.open(port)!.fd, { stallMs: 500, log: () => {} });
    try {
      const lost: string[] = [];
      const first = pool.assign(7, keysOf(1).key, keysOf(1).salt, () => lost.push("first"))!;
      const arrived = receiveDecrypted(receiver, keysOf(1), 1, port);
      first.send(rtp(1, 1, 100, 1), 12, address(receiver));
      await arrived;
      pool.breakWorker(0, how);
      await waitFor("the viewer to be told", () => lost, (l) => l.length === 1, 10_000);
      assert.equal(pool.figures()[0].restarts, 1);
      assert.equal(pool.figures()[0].viewers, 0);
      first.send(rtp(1, 2, 100, 1), 12, address(receiver)); // a lost seat sends nothing
      const second = pool.assign(7, keysOf(7).key, keysOf(7).salt, () => lost.push("second"))!;
      const again = receiveDecrypted(receiver, keysOf(7), 1, port);
      second.send(rtp(2, 1, 100, 2), 12, address(receiver));
      const [packet] = await again;
      assert.equal(packet[11], 2, "the replacement sealed the new viewer's packet");
      assert.deepEqual(lost, ["first"]);
    } finally {
      pool.close();
      media.close();
      receiver.close();
    }
  });
}
