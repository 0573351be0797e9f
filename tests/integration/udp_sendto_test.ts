import assert from "node:assert/strict";
import { SendTo } from "../../src/net/udp_sendto.ts";

Deno.test("sendto through FFI sends from the bound socket and copies the buffer before returning", async () => {
  const server = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const sendTo = SendTo.open((server.addr as Deno.NetAddr).port);
  try {
    assert.ok(sendTo, "FFI and /proc are available in tests");
    const to = client.addr as Deno.NetAddr;
    const buffer = new Uint8Array([1, 2, 3, 4]);
    assert.equal(sendTo.send(buffer, to), true);
    buffer.fill(9); // reusing the buffer at once must not change what was sent
    const [data, from] = await client.receive();
    assert.deepEqual([...data], [1, 2, 3, 4]);
    assert.equal(
      (from as Deno.NetAddr).port,
      (server.addr as Deno.NetAddr).port,
      "sent from the media socket",
    );
    assert.equal(sendTo.send(buffer, { hostname: "::1", port: 9 }), false, "IPv6 falls back");
  } finally {
    sendTo?.close();
    server.close();
    client.close();
  }
});

Deno.test("a batch goes out with sendmmsg, each datagram to its own destination, in order", async () => {
  const server = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const sendTo = SendTo.open((server.addr as Deno.NetAddr).port)!;
  try {
    const buffer = new Uint8Array(1200);
    for (let i = 0; i < 300; i++) { // more than one batch
      buffer.fill(i & 0xff);
      assert.ok(sendTo.queue(buffer.subarray(0, 100 + i), (i % 2 ? b : a).addr as Deno.NetAddr));
    }
    sendTo.flush();
    assert.equal(sendTo.dropped, 0);
    for (let i = 0; i < 300; i += 2) {
      const [data] = await a.receive();
      assert.equal(data.length, 100 + i);
      assert.equal(data[0], i & 0xff);
    }
    const [first] = await b.receive();
    assert.equal(first.length, 101);
    assert.equal(sendTo.queue(new Uint8Array(4000), a.addr as Deno.NetAddr), false, "oversize is sent alone");
  } finally {
    sendTo.close();
    server.close();
    a.close();
    b.close();
  }
});

Deno.test("a datagram written in place into a reserved slot goes out at commit; an uncommitted slot sends nothing", async () => {
  const server = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const sendTo = SendTo.open((server.addr as Deno.NetAddr).port)!;
  try {
    const to = client.addr as Deno.NetAddr;
    const abandoned = sendTo.reserve(to)!;
    abandoned.fill(7, 0, 50); // written but never committed
    const slot = sendTo.reserve(to)!;
    assert.equal(slot, abandoned, "the same slot is offered again");
    slot.set([1, 2, 3]);
    sendTo.commit(3);
    sendTo.reserve(to)!.set([4, 5]);
    sendTo.commit(2);
    assert.equal(sendTo.reserve({ hostname: "::1", port: 9 }), undefined, "IPv6 cannot be batched");
    sendTo.flush();
    const buffer = new Uint8Array(2048);
    assert.deepEqual([...(await client.receive(buffer))[0]], [1, 2, 3]);
    assert.deepEqual([...(await client.receive(buffer))[0]], [4, 5]);
  } finally {
    sendTo.close();
    server.close();
    client.close();
  }
});
