/**
 * Which peer a datagram on the shared socket belongs to: by the local ICE ufrag a STUN check names, and by
 * source address once ICE validated it. Addresses are looked up by hostname, then port, so routing a
 * datagram builds no key string (the hostname Deno hands over is hashed once; the port is a number). Pure.
 */

/** A UDP source as Deno reports it. */
export interface TableAddress {
  hostname: string;
  port: number;
}

/** What the table needs of a peer. */
export interface TablePeer {
  readonly localUfrag: string;
  readonly state: string;
}

/** The socket's routing table. */
export class PeerTable<P extends TablePeer> {
  #byUfrag = new Map<string, P>();
  /** hostname -> port -> peer. */
  #byAddress = new Map<string, Map<number, P>>();

  /** Number of peers (by ufrag). */
  get size(): number {
    return this.#byUfrag.size;
  }

  /** Every peer, as an array (callers may close peers while going through it). */
  peers(): P[] {
    return [...this.#byUfrag.values()];
  }

  add(peer: P): void {
    this.#byUfrag.set(peer.localUfrag, peer);
  }

  /** The peer's ufrag changed (ICE restart). */
  rename(peer: P, oldUfrag: string): void {
    if (this.#byUfrag.get(oldUfrag) === peer) this.#byUfrag.delete(oldUfrag);
    this.#byUfrag.set(peer.localUfrag, peer);
  }

  byUfrag(ufrag: string): P | undefined {
    return this.#byUfrag.get(ufrag);
  }

  byAddress(from: TableAddress): P | undefined {
    return this.#byAddress.get(from.hostname)?.get(from.port);
  }

  /**
   * Routes datagrams from `address` to `peer`. An address stays with the live peer that had it first: a
   * check forged with another client's address must not divert that client's media, DTLS or consent answers.
   */
  route(peer: P, address: TableAddress): void {
    let ports = this.#byAddress.get(address.hostname);
    if (!ports) this.#byAddress.set(address.hostname, ports = new Map());
    const owner = ports.get(address.port);
    if (owner && owner !== peer && owner.state !== "closed") return;
    ports.set(address.port, peer);
  }

  /** Forgets the peer's ufrag and every address routed to it. */
  remove(peer: P): void {
    if (this.#byUfrag.get(peer.localUfrag) === peer) this.#byUfrag.delete(peer.localUfrag);
    for (const [hostname, ports] of this.#byAddress) {
      for (const [port, p] of ports) if (p === peer) ports.delete(port);
      if (ports.size === 0) this.#byAddress.delete(hostname);
    }
  }
}
