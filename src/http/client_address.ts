/**
 * Who a client is, as one normalised string, for everything that keys on an address (connection caps, rate
 * limits, logs): `[v6]:port` and `v4:port` lose the port, IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a
 * dual-stack socket reports for an IPv4 peer) becomes the IPv4 address, IPv6 is lower-cased. A client thus
 * has one budget whichever way it reached the server.
 */

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** The normalised address in `text` (an address, optionally with a port), or undefined if it is none. */
export function normalizeAddress(text: string): string | undefined {
  let address = text.trim();
  const bracketed = BRACKETED.exec(address);
  if (bracketed) address = bracketed[1];
  else {
    const withPort = IPV4_WITH_PORT.exec(address);
    if (withPort) address = withPort[1];
  }
  if (IPV4.test(address)) return address;
  if (!address.includes(":") || !IPV6.test(address)) return undefined;
  const mapped = MAPPED.exec(address);
  if (mapped) return IPV4.test(mapped[1]) ? mapped[1] : undefined;
  return address.toLowerCase();
}

/**
 * The address a request comes from. The socket's peer, unless that is one of the `trusted` reverse proxies
 * (normalised addresses): then `X-Forwarded-For` is read from the right (each proxy appends the address it
 * saw), skipping trusted proxies, and the first other entry is the client. Entries a client wrote itself sit
 * further left and are never reached, so a client cannot pick its own address. An entry that is not an
 * address (e.g. `unknown`) stops the walk at the socket's peer.
 */
export function clientAddress(
  socketAddress: string,
  forwardedFor: string | null,
  trusted: ReadonlySet<string>,
): string {
  const peer = normalizeAddress(socketAddress) ?? socketAddress;
  if (!forwardedFor || !trusted.has(peer)) return peer;
  const hops = forwardedFor.split(",").slice(-16);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]);
    if (hop === undefined) return peer;
    if (!trusted.has(hop)) return hop;
  }
  return peer;
}

/**
 * The budget key of a normalised address: IPv4 as is, IPv6 by its /64, since one subscriber usually holds a
 * whole /64 (RFC 6177) and could otherwise rotate through it.
 */
export function addressKey(address: string): string {
  if (!address.includes(":")) return address;
  const [head, tail = ""] = address.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":") + "::/64";
}
