/**
 * The shared media socket with real UDP on loopback and stand-in peers: datagrams are read into one reused
 * buffer (RTP handled in place, DTLS copied because werift may keep it), and an exception under a peer is
 * an internal error, logged once per peer, not junk.
 */
import assert from "node:assert/strict";
import { isLoopbackAddress, MediaSocket } from "../../src/net/udp.ts";
import { bindingRequest } from "../../src/peer/ice_lite.ts";
import type { InputKind, Peer, PeerAddress, PeerInput } from "../../src/peer/peer.ts";
import { waitFor } from "../helpers/wait.ts";
import { SendTo } from "../../src/net/udp_sendto.ts";

interface StandIn {
  id: string;
  localUfrag: string;
  state: string;
  dtls: Uint8Array[];
  rtp: Uint8Array[];
  rtpBytes: number[][];
  throwOnRtp: boolean;
  stun: string[];
  /** STUN from an address proves it (as a valid check would). */
  validates: boolean;
  received: Uint8Array;
  handleInput(data: Uint8Array, kind: InputKind, from: PeerAddress): PeerInput;
  checkTimeout(): boolean;
}

function standIn(id: string): StandIn {
  return {
    id,
    localUfrag: `${id}-ufrag`,
    state: "connected",
    dtls: [],
    rtp: [],
    rtpBytes: [],
    throwOnRtp: false,
    stun: [],
    validates: false,
    received: new Uint8Array(0),
    handleInput(data, kind, from) {
      switch (kind) {
        case "stun":
          this.stun.push(from.hostname);
          return this.validates ? "address-validated" : "none";
        case "dtls":
          this.dtls.push(data);
          return "none";
        default:
          if (this.throwOnRtp) throw new TypeError("a bug under the packet path");
          this.rtp.push(data);
          this.rtpBytes.push([...data]);
          this.received = data;
          return kind;
      }
    },
    checkTimeout: () => false,
  };
}

function rtpDatagram(seq: number): Uint8Array {
  const p = new Uint8Array(40).fill(seq);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = 0;
  p[3] = seq;
  return p;
}

function dtlsDatagram(fill: number): Uint8Array {
  const p = new Uint8Array(30).fill(fill);
  p[0] = 22;
  p[1] = 0xfe;
  p[2] = 0xfd;
  return p;
}

Deno.test("datagrams are read into one reused buffer; DTLS handed over as a copy that survives the next read", async () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const running = socket.run();
  try {
    const peer = standIn("a");
    socket.addPeer(peer as unknown as Peer);
    socket.routeAddress(peer as unknown as Peer, client.addr as PeerAddress);
    const server = { transport: "udp" as const, hostname: "127.0.0.1", port: socket.port };
    await client.send(dtlsDatagram(0x11), server);
    await waitFor("DTLS delivered", () => peer.dtls.length, (n) => n === 1);
    await client.send(rtpDatagram(1), server);
    await waitFor("first RTP delivered", () => peer.rtp.length, (n) => n === 1);
    await client.send(rtpDatagram(2), server);
    await waitFor("second RTP delivered", () => peer.rtp.length, (n) => n === 2);

    assert.deepEqual(peer.rtpBytes, [[...rtpDatagram(1)], [...rtpDatagram(2)]]);
    // No 64 KiB allocation per datagram: both RTP views point into the same buffer.
    assert.equal(peer.rtp[0].buffer, peer.rtp[1].buffer);
    // The DTLS record was copied out: the RTP read into the shared buffer did not overwrite it.
    assert.notEqual(peer.dtls[0].buffer, peer.rtp[0].buffer);
    assert.deepEqual([...peer.dtls[0]], [...dtlsDatagram(0x11)]);
  } finally {
    client.close();
    socket.close();
    await running;
  }
});

Deno.test("an exception under a peer counts as an internal error, logged once for that peer, not as junk", () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  try {
    const logged: string[] = [];
    socket.log = (_level, message) => logged.push(message);
    const broken = standIn("broken");
    broken.throwOnRtp = true;
    const healthy = standIn("healthy");
    const brokenAddress = { hostname: "127.0.0.1", port: 40001 };
    const healthyAddress = { hostname: "127.0.0.1", port: 40002 };
    socket.routeAddress(broken as unknown as Peer, brokenAddress);
    socket.routeAddress(healthy as unknown as Peer, healthyAddress);

    for (let seq = 0; seq < 3; seq++) socket.handleDatagram(rtpDatagram(seq), { ...brokenAddress }, seq);
    socket.handleDatagram(rtpDatagram(9), { ...healthyAddress }, 3);
    socket.handleDatagram(new Uint8Array([200, 1, 2, 3]), { ...healthyAddress }, 4); // junk (first byte 200)

    assert.equal(socket.counters.internalErrors, 3);
    assert.equal(socket.counters.junk, 1);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /peer broken: TypeError: a bug under the packet path/);
    assert.equal(healthy.rtp.length, 1, "the other peer is served");
  } finally {
    socket.close();
  }
});

Deno.test("sends from a timer or another socket's read (join replay, relay) leave in one sendmmsg", async () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  const viewer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to = viewer.addr as PeerAddress;
  try {
    if (socket.sendPath.startsWith("Deno")) {
      console.log(`skipped: no FFI send path (${socket.sendPath})`);
      return;
    }
    const batchesBefore = socket.counters.batches;
    const packet = new Uint8Array(100);
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        for (let i = 0; i < 20; i++) {
          packet[0] = i; // the caller reuses its buffer: the outbox copied each datagram
          socket.transmit(packet, to);
        }
        resolve();
      }, 1)
    );
    const received: number[] = [];
    const buffer = new Uint8Array(2048);
    while (received.length < 20) received.push((await viewer.receive(buffer))[0][0]);
    assert.deepEqual(received, [...Array(20).keys()]);
    assert.equal(socket.counters.batches - batchesBefore, 1);
    assert.equal(socket.counters.datagramsOut, 20);
  } finally {
    viewer.close();
    socket.close();
  }
});

Deno.test("more than one batch (128 datagrams) in one task: every sendmmsg call is counted", async () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  // Three viewers of 100 datagrams each, so no receive buffer (~212 KB) overflows before it is read.
  const viewers = [0, 1, 2].map(() =>
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
  );
  try {
    if (socket.sendPath.startsWith("Deno")) {
      console.log(`skipped: no FFI send path (${socket.sendPath})`);
      return;
    }
    const batchesBefore = socket.counters.batches;
    const packet = new Uint8Array(100);
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        for (let i = 0; i < 300; i++) {
          packet[0] = i % 100;
          socket.transmit(packet, viewers[Math.floor(i / 100)].addr as PeerAddress);
        }
        resolve();
      }, 1)
    );
    const buffer = new Uint8Array(2048);
    for (const viewer of viewers) {
      const received: number[] = [];
      while (received.length < 100) received.push((await viewer.receive(buffer))[0][0]);
      assert.deepEqual(received, [...Array(100).keys()]);
    }
    // 128 + 128 + 44: two full batches flushed as the next datagram came, the rest by the task's flush.
    assert.equal(socket.counters.batches - batchesBefore, 3);
    assert.equal(socket.counters.datagramsOut, 300);
    assert.equal(socket.counters.sendErrors, 0);
  } finally {
    for (const viewer of viewers) viewer.close();
    socket.close();
  }
});

Deno.test("a socket bound to loopback ignores STUN from other interfaces (a browser's LAN candidate)", () => {
  assert.ok(isLoopbackAddress("127.0.0.1") && isLoopbackAddress("127.9.8.7") && isLoopbackAddress("::1"));
  assert.ok(isLoopbackAddress("::ffff:127.0.0.1"));
  assert.ok(!isLoopbackAddress("192.0.2.2") && !isLoopbackAddress("fd00::2") && !isLoopbackAddress("::"));

  const check = bindingRequest(
    { remoteUfrag: "a-ufrag", localUfrag: "client", remotePwd: "0123456789abcdefghijkl" },
    new Uint8Array(12).fill(7),
    1n,
  );
  // handleDatagram is called directly: nothing is sent anywhere, least of all to a LAN address.
  const onLoopback = new MediaSocket(
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
  );
  try {
    const peer = standIn("a");
    onLoopback.addPeer(peer as unknown as Peer);
    onLoopback.handleDatagram(check, { hostname: "192.0.2.2", port: 50000 }, 0);
    onLoopback.handleDatagram(check, { hostname: "fd00::2", port: 50000 }, 1);
    onLoopback.handleDatagram(check, { hostname: "127.0.0.1", port: 50001 }, 2);
    assert.deepEqual(peer.stun, ["127.0.0.1"]);
    assert.equal(onLoopback.counters.offLoopback, 2);
  } finally {
    onLoopback.close();
  }

  const onAny = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 }));
  try {
    const peer = standIn("a");
    onAny.addPeer(peer as unknown as Peer);
    onAny.handleDatagram(check, { hostname: "192.0.2.2", port: 50000 }, 0);
    assert.deepEqual(peer.stun, ["192.0.2.2"], "a server on a real interface answers anyone");
    assert.equal(onAny.counters.offLoopback, 0);
  } finally {
    onAny.close();
  }
});

Deno.test("with a receive thread: datagrams in order from the shared ring, one flush per drained batch, DTLS and STUN sources copied", async () => {
  const socket = new MediaSocket(
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
    250,
    { thread: true },
  );
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const viewer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const running = socket.run();
  try {
    if (!socket.receivePath.startsWith("a receive thread") || socket.sendPath.startsWith("Deno")) {
      console.log(`skipped: ${socket.receivePath}; ${socket.sendPath}`);
      return;
    }
    const peer = standIn("a");
    const stunFrom: PeerAddress[] = [];
    const to = viewer.addr as PeerAddress;
    // Each RTP datagram is forwarded to the viewer, as a room does (the outbox copies it).
    const handleInput = peer.handleInput;
    peer.handleInput = function (data, kind, from) {
      if (kind === "stun") {
        stunFrom.push(from);
        return "none";
      }
      const input = handleInput.call(this, data, kind, from);
      if (kind === "rtp") socket.transmit(data, to);
      return input;
    };
    socket.addPeer(peer as unknown as Peer);
    socket.routeAddress(peer as unknown as Peer, client.addr as PeerAddress);
    const server = { transport: "udp" as const, hostname: "127.0.0.1", port: socket.port };

    await client.send(dtlsDatagram(0x11), server);
    await waitFor("DTLS delivered", () => peer.dtls.length, (n) => n === 1, 20_000, 20);
    const check = bindingRequest(
      { remoteUfrag: "a-ufrag", localUfrag: "client", remotePwd: "0123456789abcdefghijkl" },
      new Uint8Array(12).fill(7),
      1n,
    );
    await client.send(check, server);
    await waitFor("STUN delivered", () => stunFrom.length, (n) => n === 1, 20_000, 20);

    // 50 RTP datagrams in one sendmmsg from the client's socket: the thread reads what has arrived in
    // batches; each batch's 50 forwards leave in one sendmmsg per batch, not one per datagram.
    const sender = SendTo.open((client.addr as Deno.NetAddr).port)!;
    const batchesBefore = socket.counters.batches;
    for (let seq = 0; seq < 50; seq++) sender.queue(rtpDatagram(seq), server);
    sender.flush();
    sender.close();
    const forwarded: number[] = [];
    const buffer = new Uint8Array(2048);
    while (forwarded.length < 50) forwarded.push((await viewer.receive(buffer))[0][3]);
    assert.deepEqual(forwarded, [...Array(50).keys()], "in order");
    assert.deepEqual(peer.rtpBytes.slice(-50), [...Array(50).keys()].map((seq) => [...rtpDatagram(seq)]));
    const drained = socket.counters.receiveBatches;
    assert.ok(drained < 53, `the 53 datagrams came in fewer batches (${drained})`);
    assert.equal(socket.counters.batches - batchesBefore, drained - 2, "one flush per RTP batch");

    // RTP is handled in place in the shared ring; DTLS was copied out of it, and so was the STUN source
    // (the thread rewrites one address object per datagram).
    assert.ok(peer.rtp[0].buffer instanceof SharedArrayBuffer);
    assert.ok(!(peer.dtls[0].buffer instanceof SharedArrayBuffer));
    assert.deepEqual([...peer.dtls[0]], [...dtlsDatagram(0x11)]);
    assert.deepEqual(stunFrom[0], { hostname: "127.0.0.1", port: (client.addr as Deno.NetAddr).port });
    assert.equal(socket.counters.datagramsIn, 52);
  } finally {
    client.close();
    viewer.close();
    socket.close();
    await running;
  }
});

Deno.test("with a receive thread: closing the socket stops the thread and frees the port", async () => {
  const socket = new MediaSocket(
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
    250,
    { thread: true },
  );
  const port = socket.port;
  const running = socket.run();
  socket.close();
  await running;
  // The thread held a duplicate of the descriptor; once it closed it, the port can be bound again.
  const rebound = await waitFor(
    "the port to be free",
    () => {
      try {
        return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
      } catch {
        return undefined;
      }
    },
    (conn) => conn !== undefined,
    20_000,
    20,
  );
  rebound!.close();
});
Deno.test("the socket's one timer wakes what is due with now; sends leave together, a bug is counted", async () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  const viewer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to = viewer.addr as PeerAddress;
  try {
    const logged: string[] = [];
    socket.log = (_level, message) => logged.push(message);
    const packet = new Uint8Array(100);
    const wokenAt: number[] = [];
    // A room's join replay: sends what is due, asks to run again 5 ms later, three times.
    const replay = {
      wake(now: number) {
        wokenAt.push(now);
        for (let i = 0; i < 10; i++) {
          packet[0] = wokenAt.length * 10 + i;
          socket.transmit(packet, to);
        }
        return wokenAt.length < 3 ? now + 5 : undefined;
      },
    };
    const start = performance.now();
    socket.scheduler.wakeAt(replay, start + 5);
    socket.scheduler.wakeAt({ wake: () => (null as unknown as { x: number }).x }, start + 5);
    const received: number[] = [];
    const buffer = new Uint8Array(2048);
    while (received.length < 30) received.push((await viewer.receive(buffer))[0][0]);
    assert.deepEqual(received, [...Array(30).keys()].map((i) => 10 + i));
    assert.equal(wokenAt.length, 3);
    assert.ok(wokenAt[0] >= start + 5 && wokenAt[2] - wokenAt[0] >= 10, `woken at ${wokenAt}`);
    assert.equal(socket.counters.internalErrors, 1, "the broken timer target is counted, the replay runs on");
    assert.match(logged[0], /internal error in a timer: TypeError/);
  } finally {
    viewer.close();
    socket.close();
  }
});

Deno.test("the socket routes what a peer's input returned: a validated address, RTP and RTCP for the room", () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  try {
    const peer = standIn("routed");
    peer.validates = true;
    socket.addPeer(peer as unknown as Peer);
    const delivered: string[] = [];
    socket.media = {
      rtp: (to, packet, now) => delivered.push(`rtp ${(to as unknown as StandIn).id} ${packet[3]} at ${now}`),
      rtcp: (to, packet, now) =>
        delivered.push(`rtcp ${(to as unknown as StandIn).id} ${packet[1]} at ${now}`),
    };
    const client = { hostname: "127.0.0.1", port: 40010 };
    socket.handleDatagram(rtpDatagram(1), { ...client }, 1);
    assert.equal(socket.counters.unknownPeer, 1, "an address nothing validated is not routed");
    const check = bindingRequest(
      { remoteUfrag: "routed-ufrag", localUfrag: "client", remotePwd: "0123456789abcdefghijkl" },
      new Uint8Array(12).fill(3),
      1n,
    );
    socket.handleDatagram(check, { ...client }, 2);
    assert.deepEqual(peer.stun, ["127.0.0.1"]);
    socket.handleDatagram(rtpDatagram(7), { ...client }, 3);
    const rtcp = new Uint8Array([0x80, 201, 0, 1, 0, 0, 0, 9]);
    socket.handleDatagram(rtcp, { ...client }, 4);
    assert.deepEqual(delivered, ["rtp routed 7 at 3", "rtcp routed 201 at 4"]);
  } finally {
    socket.close();
  }
});

Deno.test("Deno's receive, then one batch read of what else is queued: in order, one flush per wake-up, fewer wake-ups than datagrams", async () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const viewer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const running = socket.run();
  try {
    if (!socket.receivePath.includes("recvmmsg") || socket.sendPath.startsWith("Deno")) {
      console.log(`skipped: ${socket.receivePath}; ${socket.sendPath}`);
      return;
    }
    const peer = standIn("a");
    const to = viewer.addr as PeerAddress;
    // Each RTP datagram is forwarded to the viewer, as a room does (the outbox copies it).
    const handleInput = peer.handleInput;
    peer.handleInput = function (data, kind, from) {
      const input = handleInput.call(this, data, kind, from);
      if (kind === "rtp") socket.transmit(data, to);
      return input;
    };
    socket.addPeer(peer as unknown as Peer);
    socket.routeAddress(peer as unknown as Peer, client.addr as PeerAddress);
    const server = { transport: "udp" as const, hostname: "127.0.0.1", port: socket.port };
    const sender = SendTo.open((client.addr as Deno.NetAddr).port)!;
    // Two bursts of 40 in one sendmmsg each: each is read by a few wake-ups, not 40.
    const batchesBefore = socket.counters.batches;
    for (let seq = 0; seq < 40; seq++) sender.queue(rtpDatagram(seq), server);
    sender.flush();
    await waitFor("the first burst", () => peer.rtp.length, (n) => n === 40, 20_000, 5);
    for (let seq = 40; seq < 80; seq++) sender.queue(rtpDatagram(seq), server);
    sender.flush();
    sender.close();
    const forwarded: number[] = [];
    const buffer = new Uint8Array(2048);
    while (forwarded.length < 80) forwarded.push((await viewer.receive(buffer))[0][3]);
    assert.deepEqual(forwarded, [...Array(80).keys()], "in order");
    assert.deepEqual(peer.rtpBytes, [...Array(80).keys()].map((seq) => [...rtpDatagram(seq)]));
    const wakeUps = socket.counters.receiveBatches;
    assert.ok(wakeUps < 40, `80 datagrams in ${wakeUps} wake-ups`);
    assert.ok(socket.counters.batches - batchesBefore <= wakeUps, "at most one flush per wake-up");
    assert.equal(socket.counters.datagramsIn, 80);
  } finally {
    client.close();
    viewer.close();
    socket.close();
    await running;
  }
});

Deno.test("with a receive thread: a datagram longer than a ring slot is counted and dropped, the next one served", async () => {
  const socket = new MediaSocket(
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
    250,
    { thread: true },
  );
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const running = socket.run();
  try {
    await socket.receiveReady();
    if (!socket.receivePath.startsWith("a receive thread")) {
      console.log(`skipped: ${socket.receivePath}`);
      return;
    }
    const peer = standIn("a");
    socket.addPeer(peer as unknown as Peer);
    socket.routeAddress(peer as unknown as Peer, client.addr as PeerAddress);
    const server = { transport: "udp" as const, hostname: "127.0.0.1", port: socket.port };
    const big = new Uint8Array(5000);
    big.set(rtpDatagram(1));
    await client.send(big, server);
    await client.send(rtpDatagram(2), server);
    await waitFor("the small datagram", () => peer.rtp.length, (n) => n === 1, 20_000, 20);
    assert.deepEqual(peer.rtpBytes, [[...rtpDatagram(2)]]);
    assert.equal(socket.counters.oversize, 1);
    assert.equal(socket.counters.datagramsIn, 1);
  } finally {
    client.close();
    socket.close();
    await running;
  }
});

Deno.test("a peer whose SRTP never decrypts is logged once by the sweep, a healthy one not at all", () => {
  const socket = new MediaSocket(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
  try {
    const logged: string[] = [];
    socket.log = (_level, message) => logged.push(message);
    const mismatched = { ...standIn("mismatched"), undecryptable: true, counters: { decryptFailures: 50 } };
    const healthy = { ...standIn("healthy"), undecryptable: false, counters: { decryptFailures: 0 } };
    socket.addPeer(mismatched as unknown as Peer);
    socket.addPeer(healthy as unknown as Peer);
    socket.sweep(1000);
    socket.sweep(1250);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /peer mismatched: 50 SRTP packets failed to decrypt and none did/);
  } finally {
    socket.close();
  }
});
