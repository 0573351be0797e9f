import assert from "node:assert/strict";
import { raiseReceiveBuffer } from "../../src/net/socket_buffer.ts";

Deno.test({
  name: "the receive buffer of a bound UDP socket can be raised (Linux, FFI)",
  ignore: Deno.build.os !== "linux" || typeof Deno.listenDatagram !== "function",
}, () => {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const port = (conn.addr as Deno.NetAddr).port;
    const rmemMax = Number(Deno.readTextFileSync("/proc/sys/net/core/rmem_max"));
    const granted = raiseReceiveBuffer(port, 1024 * 1024);
    // The kernel doubles the request (bookkeeping) after capping it at rmem_max.
    assert.equal(granted.granted, 2 * Math.min(1024 * 1024, rmemMax));
    // A port with no socket of ours is left alone.
    const other = raiseReceiveBuffer(port === 65535 ? 65534 : port + 1, 1024 * 1024);
    assert.equal(other.granted, undefined);
    assert.match(other.reason ?? "", /no UDP socket bound to port/);
  } finally {
    conn.close();
  }
});
