/** Reading a UDP socket in a loop, the way every part of the server that owns a socket needs it. */

/**
 * Yields the socket's datagrams until `closed()` says it was closed. ICMP errors from peers that went away
 * (Linux reports a port-unreachable on the next receive) are skipped, not thrown: one vanished peer must not
 * stop the loop that serves the others. With `buffer`, every datagram is read into it and yielded as a view
 * that is valid only until the loop asks for the next one; without it, Deno allocates 64 KiB per datagram
 * (measured: that allocation and its garbage collection were half of the receive path's time).
 */
export async function* datagrams(
  conn: Deno.DatagramConn,
  closed: () => boolean,
  buffer?: Uint8Array,
): AsyncGenerator<[Uint8Array, Deno.NetAddr]> {
  while (!closed()) {
    let received: [Uint8Array, Deno.Addr];
    try {
      received = await conn.receive(buffer);
    } catch (e) {
      if (closed()) return;
      if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset) continue;
      throw e;
    }
    yield [received[0], received[1] as Deno.NetAddr];
  }
}

/**
 * Reads the socket into `buffer` until `closed()` says it was closed, calling `handle` with each datagram (a
 * view of `buffer`, valid only during the call). The same skipping of ICMP errors as {@link datagrams}, without
 * an async generator's promises and result objects per datagram: the receive path of the media socket and
 * of relay pulls.
 */
export async function receiveEach(
  conn: Deno.DatagramConn,
  closed: () => boolean,
  buffer: Uint8Array,
  handle: (data: Uint8Array, from: Deno.NetAddr) => void,
): Promise<void> {
  while (!closed()) {
    let received: [Uint8Array, Deno.Addr];
    try {
      received = await conn.receive(buffer);
    } catch (e) {
      if (closed()) return;
      if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset) continue;
      throw e;
    }
    handle(received[0], received[1] as Deno.NetAddr);
  }
}
