/**
 * The client side of one WebRTC session with a WHIP/WHEP server, without a socket: ICE as the controlling
 * agent ({@link ClientIce}), DTLS (werift; client, or server when the answer says `a=setup:active`), and
 * SRTP. Datagrams come in with their source and `now` and go out through the `send` given at construction;
 * {@link poll} retransmits and says when it wants to be called next. Used by the relay pull
 * (src/cluster/whep_pull.ts) and the project's test and benchmark clients, each over
 * {@link ClientSocket} (src/peer/client_socket.ts).
 */
import { Buffer } from "node:buffer";
import { DtlsClient, DtlsServer } from "werift";
import { createSrtpContext, type SrtpContext } from "../srtp/context.ts";
import {
  ClientIce,
  type ClientIceOptions,
  type IceAddress,
  IceInput,
  type SendDatagram,
} from "./client_ice.ts";
import { clientDtlsTransport } from "./dtls_transport.ts";
import { certificateFingerprint } from "./peer.ts";

/** What a datagram was, for the caller. */
export const PeerInput = {
  /** Nothing for the caller (dropped, answered, or DTLS). */
  None: 0,
  /** Decrypted RTP in {@link ClientPeer.packet}. */
  Rtp: 1,
  /** Decrypted compound RTCP in {@link ClientPeer.packet}. */
  Rtcp: 2,
  /** The first nominating check was answered: `ice.selected` is the pair. */
  IceSelected: 3,
  /** A later check of ours was answered (consent, or `ice.check`: see `ice.answeredTicket`). */
  CheckAnswered: 4,
} as const;
/** One of {@link PeerInput}. */
export type PeerInput = typeof PeerInput[keyof typeof PeerInput];

/** The client's DTLS identity. */
export interface ClientCertificatePem {
  certPem: string;
  keyPem: string;
  /** TLS SignatureAndHashAlgorithm of the key; default ECDSA with SHA-256. */
  signatureHash?: { hash: number; signature: number };
}

/** How to connect. */
export interface ClientPeerOptions {
  ice: ClientIceOptions;
  certificate: ClientCertificatePem;
  /** "server" when the server's answer says `a=setup:active`; default "client". */
  dtlsRole?: "client" | "server";
  /** SRTP profiles offered, preferred first (default AEAD_AES_128_GCM, then AES_CM_128_HMAC_SHA1_80). */
  srtpProfiles?: (1 | 7)[];
  srtpBackend?: "auto" | "native" | "portable";
  /** The answer's `a=fingerprint`: the server's certificate must match it, or the handshake fails. */
  remoteFingerprint?: { algorithm: string; value: string };
}

/** The DTLS handshake failed, timed out, or showed a certificate the answer did not announce. */
export class DtlsFailure extends Error {
  override name = "DtlsFailure";
}

const EMPTY = new Uint8Array(0);

/** One client session's ICE, DTLS and SRTP state. */
export class ClientPeer {
  readonly ice: ClientIce;
  /** The decrypted packet of the last {@link handleDatagram} that returned Rtp or Rtcp (valid until the next). */
  packet: Uint8Array = EMPTY;
  /** The negotiated SRTP profile (0 before DTLS finished). */
  srtpProfile = 0;
  /** When anything authentic (STUN answer, decrypted media) last arrived from the selected pair. */
  lastHeard = -Infinity;
  /**
   * `junk`: DTLS records werift threw on; `helloVerifyRepeats`: HelloVerifyRequests after the first, not
   * passed on (werift's DtlsClient gives the handshake up on a second one; a browser answers each).
   */
  readonly counters = { decryptFailures: 0, junk: 0, helloVerifyRepeats: 0 };
  /** Handshake message types of the last DTLS records received (for a time-out message). */
  dtlsTrace: number[] = [];
  /** The server closed DTLS (close_notify) after the handshake. */
  onDtlsClosed: () => void = () => {};
  #options: ClientPeerOptions;
  #send: SendDatagram;
  #srtp: SrtpContext | undefined;
  #dtls: DtlsClient | DtlsServer | undefined;
  #dtlsData: ((data: Buffer) => void) | undefined;
  #helloVerified = 0;
  #closed = false;

  constructor(options: ClientPeerOptions, send: SendDatagram) {
    this.#options = options;
    this.#send = send;
    this.ice = new ClientIce(options.ice);
  }

  /** Whether SRTP keys are in place (DTLS finished and the certificate matched). */
  get connected(): boolean {
    return this.#srtp !== undefined;
  }

  /** Starts ICE: nominating checks to every candidate, retransmitted until `until`. */
  start(now: number, until: number): void {
    this.ice.start(now, until, this.#send);
  }

  /** One datagram from `from` (a view valid only during the call; media is decrypted in place). */
  handleDatagram(data: Uint8Array, from: IceAddress, now: number): PeerInput {
    if (this.#closed || data.length === 0) return PeerInput.None;
    const first = data[0];
    if (first <= 3) {
      const result = this.ice.handleStun(data, from, now, this.#send);
      if (result === IceInput.Ignored) return PeerInput.None;
      if (this.#fromSelected(from)) this.lastHeard = now;
      if (result === IceInput.Selected) return PeerInput.IceSelected;
      return result === IceInput.Answered ? PeerInput.CheckAnswered : PeerInput.None;
    }
    // Only the pair ICE selected may send DTLS and media.
    if (!this.#fromSelected(from)) return PeerInput.None;
    if (first >= 20 && first <= 63) {
      this.#handleDtls(data);
      return PeerInput.None;
    }
    const srtp = this.#srtp;
    if (first < 128 || first > 191 || !srtp) return PeerInput.None;
    const rtcp = data.length > 1 && data[1] >= 192 && data[1] <= 223;
    const plain = rtcp ? srtp.unprotectRtcp(data, data) : srtp.unprotectRtp(data, data);
    if (!plain) {
      this.counters.decryptFailures++;
      return PeerInput.None;
    }
    this.lastHeard = now;
    this.packet = plain;
    return rtcp ? PeerInput.Rtcp : PeerInput.Rtp;
  }

  /** Retransmits due checks and sends due consent checks; returns when to be called next. */
  poll(now: number): number {
    return this.#closed ? Infinity : this.ice.poll(now, this.#send);
  }

  /**
   * Runs the DTLS handshake over the selected pair; resolves once the server's certificate matched the
   * answer and the SRTP keys are in place. Rejects with {@link DtlsFailure}; the caller owns the time-out.
   */
  async startDtls(): Promise<void> {
    const remote = this.ice.selected;
    if (!remote) throw new DtlsFailure("DTLS needs a selected ICE pair");
    const transport = clientDtlsTransport((data) => this.#send(data, remote));
    const { certificate } = this.#options;
    const options = {
      transport,
      cert: certificate.certPem,
      key: certificate.keyPem,
      signatureHash: (certificate.signatureHash ?? { hash: 4, signature: 3 }) as never,
      srtpProfiles: this.#options.srtpProfiles ?? [7, 1],
      extendedMasterSecret: true,
    };
    const dtls = this.#options.dtlsRole === "server"
      ? new DtlsServer({ ...options, certificateRequest: true })
      : new DtlsClient(options);
    this.#dtls = dtls;
    // werift replaced transport.onData with its record handler.
    const address = [remote.hostname, remote.port] as const;
    this.#dtlsData = (data) => transport.onData(data, address);
    await new Promise<void>((resolve, reject) => {
      dtls.onConnect.once(() => resolve());
      dtls.onError.once((e) => reject(new DtlsFailure(`DTLS failed: ${e}`)));
      if (dtls instanceof DtlsClient) {
        dtls.connect().catch((e) => reject(new DtlsFailure(`DTLS failed: ${e}`)));
      }
    });
    const expected = this.#options.remoteFingerprint;
    if (expected) {
      const der = dtls.remoteCertificate;
      if (!der || certificateFingerprint(der, expected.algorithm) !== expected.value) {
        throw new DtlsFailure("the server's DTLS certificate does not match the fingerprint in its answer");
      }
    }
    const profile = dtls.srtp.srtpProfile as number;
    const keys = dtls.extractSessionKeys(16, profile === 7 ? 12 : 14);
    this.#srtp = createSrtpContext({
      profile,
      backend: this.#options.srtpBackend,
      localMasterKey: keys.localKey,
      localMasterSalt: keys.localSalt,
      remoteMasterKey: keys.remoteKey,
      remoteMasterSalt: keys.remoteSalt,
    });
    this.srtpProfile = profile;
    dtls.onClose.subscribe(() => {
      if (!this.#closed) this.onDtlsClosed();
    });
  }

  /** The SRTP context (after {@link startDtls}), e.g. for a reader that takes the socket over. */
  get srtp(): SrtpContext | undefined {
    return this.#srtp;
  }

  /** Protects one RTP packet and sends it to the selected pair; false before DTLS finished. */
  sendRtp(packet: Uint8Array): boolean {
    if (this.#closed || !this.#srtp || !this.ice.selected) return false;
    // protectRtp allocates the output, so a sender that reads it later (Deno's send) is safe.
    this.#send(this.#srtp.protectRtp(packet), this.ice.selected);
    return true;
  }

  /** Protects one compound RTCP packet and sends it to the selected pair; false before DTLS finished. */
  sendRtcp(packet: Uint8Array): boolean {
    if (this.#closed || !this.#srtp || !this.ice.selected) return false;
    this.#send(this.#srtp.protectRtcp(packet), this.ice.selected);
    return true;
  }

  /** Drops the keys; with `notify`, ends DTLS with a close_notify first. */
  close(notify = true): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (notify) this.#dtls?.close();
    } catch { /* nothing to tell a vanished server */ }
    this.#srtp?.close();
  }

  #fromSelected(from: IceAddress): boolean {
    const selected = this.ice.selected;
    return selected !== undefined && selected.hostname === from.hostname && selected.port === from.port;
  }

  #handleDtls(data: Uint8Array): void {
    if (data[0] === 22 && data.length > 13) {
      if (this.dtlsTrace.length >= 6) this.dtlsTrace.shift();
      this.dtlsTrace.push(data[13]);
    }
    // A server answers each retransmitted ClientHello with a HelloVerifyRequest (RFC 6347 §4.2.1); werift's
    // DtlsClient gives the handshake up on a second one, so only the first is passed on.
    if (isHelloVerifyRequest(data) && this.#helloVerified++ > 0) {
      this.counters.helloVerifyRepeats++;
      return;
    }
    try {
      // werift may keep the record: it gets a copy, not a view of the caller's read buffer.
      this.#dtlsData?.(Buffer.from(data.slice()));
    } catch {
      // werift throws on records it cannot use (e.g. a flight retransmitted under load): bad input.
      this.counters.junk++;
    }
  }
}

/** Whether a datagram is an epoch-0 handshake record carrying a HelloVerifyRequest (RFC 6347 §4.2.1). */
export function isHelloVerifyRequest(data: Uint8Array): boolean {
  return data.length > 13 && data[0] === 22 && data[3] === 0 && data[4] === 0 && data[13] === 3;
}
