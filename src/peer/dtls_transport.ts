/** The transport object werift's DTLS client writes to, for a client that owns its own UDP socket. */
import type { Buffer } from "node:buffer";

/**
 * A werift transport whose `send` hands a copy of each DTLS record to `send` (werift may reuse its buffer,
 * and Deno's datagram send reads it later). werift overwrites `onData`; feed received records through it.
 */
export function clientDtlsTransport(send: (data: Uint8Array) => void) {
  return {
    type: "udp",
    address: {} as never,
    closed: false,
    onData: (_data: Buffer, _addr: readonly [string, number]) => {},
    send: (data: Buffer) => {
      send(new Uint8Array(data));
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}
