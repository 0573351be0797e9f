/**
 * One client's transport: ICE-lite connectivity checks, the DTLS handshake (server role) and SRTP/SRTCP.
 * It owns no socket and reads no clock: datagrams and the time come in ({@link Peer.handleInput}), which
 * returns what the datagram amounted to for the socket owner to route (a validated address, RTP or RTCP for
 * the room); datagrams go out through the `transmit` function it was given. Only what happens outside an
 * input (the handshake finishing inside werift, an ending) is reported through {@link PeerEvents}.
 */
import { Buffer } from "node:buffer";
import { createHash, X509Certificate } from "node:crypto";
import { DtlsServer, keyLength, saltLength } from "werift";
import { answerCheck, isBindingSuccess } from "./ice_lite.ts";
import { IcePaths } from "./ice_paths.ts";
import type { ServerCertificate } from "./certificate.ts";
import { createSrtpContext, type SrtpContext } from "../srtp/context.ts";
import { rtpHeaderFits } from "../rtp/rtp_bounds.ts";

/** A UDP address; the shape of `Deno.NetAddr` without the transport field. */
export type { PathAddress as PeerAddress } from "./ice_paths.ts";
import type { PathAddress as PeerAddress } from "./ice_paths.ts";

/** Lifecycle of a peer. */
export type PeerState = "new" | "checking" | "connected" | "closed";

/** Why a peer ended. */
export type CloseReason =
  | "deleted"
  | "consent-timeout"
  | "ice-timeout"
  | "dtls-closed"
  | "dtls-failed"
  | "fingerprint-mismatch"
  | "publisher-left"
  | "replaced"
  | "shutdown"
  | "fanout-worker-lost";

/** The kind of an input datagram (RFC 7983 demultiplexing, done by the socket owner). */
export type InputKind = "stun" | "dtls" | "rtp" | "rtcp";

/** What one input datagram amounted to, returned to the socket owner to route (see {@link Peer.handleInput}). */
export type PeerInput =
  /** Nothing for anyone else: answered, dropped, or handled inside (DTLS). */
  | "none"
  /** ICE proved the datagram's source address: the peer table routes that address to this peer. */
  | "address-validated"
  /** A decrypted RTP packet (header and payload) is in {@link Peer.received}, for the room. */
  | "rtp"
  /** A decrypted compound RTCP packet is in {@link Peer.received}, for the room. */
  | "rtcp";

/** What a peer reports to its owner outside an input: the handshake finishing (inside werift), endings. */
export interface PeerEvents {
  /** DTLS finished, the fingerprint matched and SRTP keys are in place. */
  onConnected(peer: Peer): void;
  onClosed(peer: Peer, reason: CloseReason): void;
  /**
   * The fan-out worker sealing this peer's RTP died: the owner ends the session (BYE, then close). Without
   * a handler the peer closes itself.
   */
  onOffloadLost?(peer: Peer): void;
}

/**
 * Batch slots a datagram can be written into in place (the socket's outbox): `reserve` gives a slot
 * addressed to `to` (undefined when that destination cannot be batched), `commit` queues what was written.
 */
export interface PacketSlots {
  reserve(to: PeerAddress): Uint8Array | undefined;
  commit(length: number): void;
}

/**
 * Where a peer's outbound RTP is sealed and sent off this thread (a fan-out worker, src/net/fanout.ts):
 * `send` only reads `packet` during the call. The payload (after `headerLength`) must not change while the
 * same array object is passed again: the worker is given it once and reuses it for the headers that follow.
 */
export interface RtpOffload {
  /** Which worker serves the peer (for stats). */
  readonly worker: number;
  send(packet: Uint8Array, headerLength: number, to: PeerAddress): void;
  /** The peer closed: the seat is freed. */
  release(): void;
}

/** Hands out {@link RtpOffload}s: the SRTP master key and salt of the sending direction move with the peer. */
export interface RtpOffloader {
  assign(
    profile: number,
    masterKey: Uint8Array,
    masterSalt: Uint8Array,
    onLost: () => void,
  ): RtpOffload | undefined;
}

/** Counters a peer keeps about what it dropped. */
export interface PeerCounters {
  decryptFailures: number;
  rtpIn: number;
  /** RTP packets sent (sealed here or by a fan-out worker). */
  rtpOut: number;
  /** Of {@link rtpOut}, those handed to a fan-out worker to seal and send. */
  rtpOffloaded: number;
  rtcpIn: number;
}

/**
 * SRTP datagrams that failed to decrypt, with none decrypted, after which a peer counts as
 * {@link Peer.undecryptable}: its keys differ from the client's (the socket logs it once).
 */
export const UNDECRYPTABLE_AFTER = 50;

/** Everything needed to set up a peer. */
export interface PeerOptions {
  id: string;
  localUfrag: string;
  localPwd: string;
  remoteUfrag: string;
  /** The client's ice-pwd: the server signs its own binding requests (consent, RFC 7675) with it. */
  remotePwd: string;
  /** The DTLS fingerprint from the client's SDP offer. */
  remoteFingerprint: { algorithm: string; value: string };
  certificate: ServerCertificate;
  transmit: (data: Uint8Array, to: PeerAddress) => void;
  /** Where forwarded RTP is sealed in place when the socket offers it (otherwise it goes through transmit). */
  slots?: PacketSlots;
  /**
   * Fan-out workers: at its first RTP packet a connected peer asks for a seat and from then on its RTP is
   * sealed and sent there (SRTCP stays here). Absent, or no seat given, everything is sealed here.
   */
  offload?: RtpOffloader;
  events: PeerEvents;
  now: number;
  consentTimeoutMs: number;
  /** How long ICE + DTLS may take before the peer is dropped. */
  connectTimeoutMs?: number;
}

/**
 * Where outgoing SRTP is written: transmit only reads its argument during the call, so one buffer serves
 * every packet. Larger packets (rare jumbo RTP) get their own array.
 */
const SEND_BUFFER = new Uint8Array(2048);

/** SRTP protection profiles in preference order: AEAD_AES_128_GCM (cheaper), then AES_CM_128_HMAC_SHA1_80. */
const SRTP_PROFILES: (1 | 7)[] = [7, 1];

/** One WHIP or WHEP client's ICE-lite + DTLS + SRTP state. */
export class Peer {
  readonly id: string;
  /** ICE credentials of both sides; only {@link restartIce} changes them. */
  localUfrag: string;
  localPwd: string;
  remoteUfrag: string;
  remotePwd: string;
  state: PeerState = "new";
  readonly counters: PeerCounters = { decryptFailures: 0, rtpIn: 0, rtpOut: 0, rtpOffloaded: 0, rtcpIn: 0 };
  srtpProfile = 0;
  /**
   * The packet the last input decrypted ({@link handleInput} returned "rtp" or "rtcp"): a view into that
   * datagram, valid until the next input.
   */
  received: Uint8Array = new Uint8Array(0);

  #options: PeerOptions;
  #paths: IcePaths;
  /** Before the handshake: the address DTLS started from (werift's cookie is not tied to an address). */
  #dtlsFrom: string | undefined;
  #createdAt: number;
  #dtls: DtlsServer | undefined;
  #dtlsTransport: DtlsTransport | undefined;
  #srtp: SrtpContext | undefined;
  /** When the last DTLS record was handed to werift (its callbacks carry no time). */
  #handshakeNow = 0;
  /** The fan-out worker's seat; null once asked for without getting one (or after it was lost). */
  #offload: RtpOffload | null | undefined;
  /** The sending direction's SRTP master key and salt, kept until handed to a fan-out worker. */
  #sendingKeys: { key: Uint8Array; salt: Uint8Array } | undefined;

  constructor(options: PeerOptions) {
    this.id = options.id;
    this.localUfrag = options.localUfrag;
    this.localPwd = options.localPwd;
    this.remoteUfrag = options.remoteUfrag;
    this.remotePwd = options.remotePwd;
    this.#options = options;
    this.#createdAt = options.now;
    this.#paths = new IcePaths(options.consentTimeoutMs);
  }

  /** Where media goes: an address proven to want it (see {@link IcePaths}), undefined before the handshake. */
  get selected(): PeerAddress | undefined {
    return this.#paths.selected;
  }

  /** Points media somewhere else without proof; only fault-injection tests do this. */
  set selected(address: PeerAddress | undefined) {
    this.#paths.selected = address;
  }

  /**
   * Whether at least {@link UNDECRYPTABLE_AFTER} SRTP datagrams failed to decrypt and none succeeded: the
   * client is sending, but with keys other than this peer's (a handshake both ends finished differently).
   */
  get undecryptable(): boolean {
    const c = this.counters;
    return c.decryptFailures >= UNDECRYPTABLE_AFTER && c.rtpIn === 0 && c.rtcpIn === 0;
  }

  /** The fan-out worker sealing this peer's RTP, or undefined when it is sealed on the main thread. */
  get fanoutWorker(): number | undefined {
    return this.#offload?.worker;
  }

  /**
   * Handles one datagram routed to this peer (by STUN username or validated source address) and returns what
   * it amounted to. STUN and DTLS must be the caller's to give away (werift may keep them); RTP and RTCP are
   * decrypted in place and only valid during the call and until the next input.
   */
  handleInput(data: Uint8Array, kind: InputKind, from: PeerAddress, now: number): PeerInput {
    switch (kind) {
      case "stun":
        return this.handleStun(data, from, now);
      case "dtls":
        this.handleDtls(data, from, now);
        return "none";
      default:
        return this.handleSrtp(data, kind === "rtcp", from);
    }
  }

  /**
   * Handles a STUN datagram: a check addressed to this peer's ufrag, or a response from one of its addresses
   * to the server's own request. A check from an address not yet proven is answered only before the
   * handshake; afterwards the server sends that address its own request and waits for the answer.
   */
  handleStun(data: Uint8Array, from: PeerAddress, now: number): PeerInput {
    if (this.state === "closed") return "none";
    if (isBindingSuccess(data)) {
      if (this.#paths.isChecked(from)) this.#paths.response(data, from, now, this);
      return "none";
    }
    const answer = answerCheck(data, this, from);
    if (!answer) return "none";
    const known = this.#paths.isChecked(from);
    const answered = this.#paths.check(from, answer.nominated, now, this, this.#options.transmit);
    const validated = !known && this.#paths.isChecked(from);
    if (answered) {
      this.#options.transmit(answer.response, from);
      if (this.state === "new") this.state = "checking";
    }
    return validated ? "address-validated" : "none";
  }

  /**
   * ICE restart (RFC 8445 §9, RFC 9725 §4.3.2): new credentials on both sides. DTLS, SRTP and the addresses
   * proven so far stay, so media keeps flowing on the old path until the client nominates a new one.
   */
  restartIce(localUfrag: string, localPwd: string, remoteUfrag: string, remotePwd: string): void {
    this.localUfrag = localUfrag;
    this.localPwd = localPwd;
    this.remoteUfrag = remoteUfrag;
    this.remotePwd = remotePwd;
    this.#paths.restart();
  }

  /** Whether a valid check came from this address (DTLS and SRTP are accepted from it). */
  isValidated(from: PeerAddress): boolean {
    return this.#paths.isChecked(from);
  }

  /** Handles a DTLS record from a validated address. */
  handleDtls(data: Uint8Array, from: PeerAddress, now: number): void {
    if (this.state === "closed" || !this.isValidated(from)) return;
    // Once werift holds the master secret, a ClientHello, and a flight-5 message it has already, can only be
    // copies (a browser retransmits after 50 ms on loopback, so copies are common under load). werift takes
    // copies as new: a copy of flight 5 makes it recompute the extended master secret over a transcript that
    // by then holds the client's Finished (its own Finished is then wrong: the client never connects), and a
    // ClientHello makes it draw a new server random (the SRTP keys it exports then differ from the client's:
    // both ends "connected", every RTP packet fails to decrypt). Those records are left out; the rest (the
    // client's Finished: a copy makes werift send its last flight again, RFC 6347 §4.2.4) go on.
    if (this.#dtls?.cipher.masterSecret !== undefined) {
      const fresh = freshRecords(data, handshakeTypesHeld(this.#dtls));
      if (fresh === undefined) return;
      data = fresh;
    }
    // After the handshake werift acts on records nobody authenticated (a plaintext alert or an unknown
    // content type closes the session, a ClientHello restarts it), so one datagram with the client's
    // spoofed address could end a session. Invalid records are dropped instead (RFC 6347 §4.1.2.7).
    if (this.state === "connected" && !authenticRecords(this.#dtls!, data)) return;
    // During the handshake nothing can be authenticated yet, but werift would also give up on a plaintext
    // alert or a record it cannot parse; such records are dropped so a spoofer cannot fail the handshake.
    // (A client that really gives up is then ended by the connect timeout instead.)
    if (this.state !== "connected" && !plausibleHandshakeRecords(data)) return;
    if (this.state === "connected") {
      // werift may answer (a retransmitted flight): only to an address proven to want it.
      if (!this.#paths.isProven(from)) return;
    } else {
      // werift's cookie exchange is not tied to an address: a ClientHello with the cookie sent from a forged
      // source would make it send its certificate flight there. The handshake stays with the first address
      // and moves only to one proven by the server's own binding request (a client switching pairs).
      const key = `${from.hostname}|${from.port}`;
      if (
        this.#dtlsFrom !== undefined && this.#dtlsFrom !== key &&
        !this.#paths.handshakeMove(from, now, this, this.#options.transmit)
      ) return;
      this.#dtlsFrom = key;
    }
    this.#handshakeNow = now;
    if (!this.#dtls) this.#startDtls();
    const transport = this.#dtlsTransport!;
    transport.remote = from;
    try {
      transport.onData(Buffer.from(data.buffer, data.byteOffset, data.byteLength), from);
    } catch {
      // werift reports handshake failures through onError; a throw here is a malformed record.
    }
  }

  /** Handles an SRTP or SRTCP datagram from a validated address. */
  handleSrtp(data: Uint8Array, isRtcp: boolean, from: PeerAddress): PeerInput {
    if (this.state !== "connected" || !this.isValidated(from)) return "none";
    // werift parses the RTP header before authenticating and would spin on a lying extension length.
    if (!isRtcp && !rtpHeaderFits(data)) {
      this.counters.decryptFailures++;
      return "none";
    }
    // Decrypted in place: the datagram's buffer belongs to this call (the socket reads the next one into it).
    const srtp = this.#srtp!;
    const plain = isRtcp ? srtp.unprotectRtcp(data, data) : srtp.unprotectRtp(data, data);
    if (!plain) {
      // Forged, corrupted or replayed (RFC 3711 §3.3.2).
      this.counters.decryptFailures++;
      return "none";
    }
    this.received = plain;
    if (isRtcp) {
      this.counters.rtcpIn++;
      return "rtcp";
    }
    this.counters.rtpIn++;
    return "rtp";
  }

  /**
   * Encrypts and sends an RTP packet whose header (`headerLength` bytes) is final. `packet` is only read
   * during the call, so the forwarder may rewrite the same buffer for the next viewer. The packet is sealed
   * straight into an outbox slot when there is one (no copy, no allocation); otherwise into a shared buffer,
   * because transmit copies or sends it before returning.
   */
  sendRtpPacket(packet: Uint8Array, headerLength: number): void {
    const to = this.#paths.selected;
    if (this.state !== "connected" || !to) return;
    this.counters.rtpOut++;
    const offload = this.#offload === undefined ? this.#takeOffload() : this.#offload;
    if (offload !== null) {
      this.counters.rtpOffloaded++;
      offload.send(packet, headerLength, to);
      return;
    }
    const srtp = this.#srtp!;
    const slots = this.#options.slots;
    if (slots !== undefined) {
      const slot = slots.reserve(to);
      if (slot !== undefined && packet.length + srtp.rtpOverhead <= slot.length) {
        slots.commit(srtp.protectRtpInto(packet, headerLength, slot));
        return;
      }
    }
    const out = packet.length + srtp.rtpOverhead <= SEND_BUFFER.length ? SEND_BUFFER : undefined;
    this.#options.transmit(srtp.protectRtp(packet, headerLength, out), to);
  }

  /** Encrypts and sends one (compound) RTCP packet. */
  sendRtcp(packet: Uint8Array): void {
    if (this.state !== "connected" || !this.selected) return;
    this.#options.transmit(this.#srtp!.protectRtcp(packet), this.selected);
  }

  /**
   * Timers: sends consent requests and probe retransmissions that are due, and drops the peer when consent
   * lapsed or it never connected. Returns true when it closed.
   */
  checkTimeout(now: number): boolean {
    if (this.state === "closed") return false;
    const connectTimeout = this.#options.connectTimeoutMs ?? 30_000;
    if (this.state !== "connected" && now - this.#createdAt > connectTimeout) {
      this.close("ice-timeout");
      return true;
    }
    if (this.#paths.poll(now, this, this.#options.transmit)) {
      this.close("consent-timeout");
      return true;
    }
    return false;
  }

  /** Ends the peer: sends DTLS close_notify when connected and reports `onClosed` once. */
  close(reason: CloseReason): void {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    this.state = "closed";
    if (this.#dtls) {
      try {
        // werift's close() only drops its transport and sends nothing; without an encrypted close_notify
        // (RFC 5246 §7.2.1) the client notices only when its ICE consent expires, ~30 s later.
        // Not after consent lapsed: then nothing more may go to that address (RFC 7675 §5.1).
        const to = reason === "consent-timeout" ? undefined : this.selected;
        if (wasConnected && to) this.#options.transmit(closeNotify(this.#dtls), to);
        if (wasConnected) this.#dtls.close();
      } catch { /* the client may already be gone */ }
      this.#dtls.onConnect.allUnsubscribe();
      this.#dtls.onClose.allUnsubscribe();
      this.#dtls.onError.allUnsubscribe();
    }
    if (this.#dtlsTransport) this.#dtlsTransport.closed = true;
    this.#offload?.release();
    this.#offload = null;
    this.#srtp?.close();
    this.#options.events.onClosed(this, reason);
  }

  /**
   * Asks for a fan-out worker's seat at the first RTP packet (so publishers, which send none, never take
   * one). Nothing has been sealed here yet, so the worker's context starts where this one would have: the
   * rollover counter state moves with the keys by being empty.
   */
  #takeOffload(): RtpOffload | null {
    const keys = this.#sendingKeys;
    const offloader = this.#options.offload;
    this.#sendingKeys = undefined;
    const offload = keys && offloader
      ? offloader.assign(this.srtpProfile, keys.key, keys.salt, () => this.#offloadLost())
      : undefined;
    this.#offload = offload ?? null;
    return this.#offload;
  }

  /** The worker died: nothing more can be sealed for this peer (its RTP state went with the worker). */
  #offloadLost(): void {
    if (this.state === "closed") return;
    const events = this.#options.events;
    if (events.onOffloadLost) events.onOffloadLost(this);
    else this.close("fanout-worker-lost");
  }

  #startDtls(): void {
    const cert = this.#options.certificate;
    const transport = new DtlsTransport(this.#options.transmit);
    this.#dtlsTransport = transport;
    const dtls = new DtlsServer({
      transport,
      cert: cert.certPem,
      key: cert.keyPem,
      signatureHash: cert.signatureHash as never,
      srtpProfiles: SRTP_PROFILES,
      certificateRequest: true,
      extendedMasterSecret: true,
    });
    this.#dtls = dtls;
    dtls.onConnect.subscribe(() => this.#onDtlsConnected());
    dtls.onClose.subscribe(() => this.close("dtls-closed"));
    dtls.onError.subscribe(() => {
      if (this.state !== "connected") this.close("dtls-failed");
    });
  }

  #onDtlsConnected(): void {
    // werift reports "connected" again when a client retransmits its Finished; keep the SRTP state.
    if (this.state === "closed" || this.state === "connected") return;
    const dtls = this.#dtls!;
    const der = dtls.remoteCertificate;
    const expected = this.#options.remoteFingerprint;
    // werift does not tie the client certificate to the SDP; without this check anyone who learns the
    // ICE credentials could complete the handshake (RFC 8122 §5).
    if (!der || certificateFingerprint(der, expected.algorithm) !== expected.value) {
      this.close("fingerprint-mismatch");
      return;
    }
    const profile = dtls.srtp.srtpProfile as number;
    const keys = dtls.extractSessionKeys(keyLength(profile as 1), saltLength(profile as 1));
    this.#srtp = createSrtpContext({
      profile,
      localMasterKey: keys.localKey,
      localMasterSalt: keys.localSalt,
      remoteMasterKey: keys.remoteKey,
      remoteMasterSalt: keys.remoteSalt,
    });
    this.srtpProfile = profile;
    // Copies (Buffer's slice would share memory): the worker reads them at the first RTP packet.
    if (this.#options.offload) {
      this.#sendingKeys = { key: new Uint8Array(keys.localKey), salt: new Uint8Array(keys.localSalt) };
    }
    this.state = "connected";
    // The handshake ran with this address: it is proven (RFC 7675 §5.1 counts it as consent).
    this.#paths.handshakeDone(this.#dtlsTransport!.remote!, this.#handshakeNow, this, this.#options.transmit);
    this.#options.events.onConnected(this);
  }
}

/** Fingerprint of a DER certificate as written in SDP ("AB:CD:..."), for sha-256/384/512. */
export function certificateFingerprint(der: Uint8Array, algorithm: string): string {
  const hash = createHash(algorithm.replace("-", "")).update(der).digest("hex").toUpperCase();
  return hash.match(/../g)!.join(":");
}

/** Reads the DER bytes of a PEM certificate. */
export function pemToDer(pem: string): Uint8Array {
  return new Uint8Array(new X509Certificate(pem).raw);
}

const DTLS_ALERT = 21;
const DTLS_HANDSHAKE = 22;

/** An encrypted warning-level close_notify alert record under the session's current epoch. */
function closeNotify(dtls: DtlsServer): Uint8Array {
  const state = dtls.dtls;
  const header = {
    contentType: DTLS_ALERT,
    protocolVersion: state.version,
    epoch: state.epoch,
    sequenceNumber: ++state.recordSequenceNumber,
    contentLen: 2,
  };
  const sealed = dtls.cipher.encryptPacket(
    { recordLayerHeader: header, fragment: Buffer.from([1, 0]) } as never,
  );
  const fragment = (sealed as unknown as { fragment: Buffer }).fragment;
  const out = Buffer.alloc(13 + fragment.length);
  out[0] = DTLS_ALERT;
  out[1] = header.protocolVersion.major;
  out[2] = header.protocolVersion.minor;
  out.writeUInt16BE(header.epoch, 3);
  out.writeUIntBE(header.sequenceNumber, 5, 6);
  out.writeUInt16BE(fragment.length, 11);
  fragment.copy(out, 13);
  return out;
}

/** Handshake message types a DTLS server receives from its client (RFC 6347 §4.3.2, RFC 5246 §7.4). */
const CLIENT_HANDSHAKE_TYPES = new Set([1, 11, 15, 16, 20]);
const DTLS_CHANGE_CIPHER_SPEC = 20;

/**
 * Whether a datagram that arrived during the handshake holds only records a client's handshake flights
 * contain: handshake fragments with consistent lengths, ChangeCipherSpec, and epoch ≥ 1 records (Finished,
 * or an alert werift can authenticate). Plaintext alerts and other content types are refused.
 */
function plausibleHandshakeRecords(data: Uint8Array): boolean {
  let offset = 0;
  while (offset < data.length) {
    if (offset + 13 > data.length) return false;
    const contentType = data[offset];
    const epoch = (data[offset + 3] << 8) | data[offset + 4];
    const contentLen = (data[offset + 11] << 8) | data[offset + 12];
    const start = offset + 13;
    const end = start + contentLen;
    if (end > data.length || data[offset + 1] !== 0xfe) return false;
    if (epoch > 0) {
      if (contentType !== DTLS_HANDSHAKE && contentType !== DTLS_ALERT) return false;
    } else if (contentType === DTLS_CHANGE_CIPHER_SPEC) {
      if (contentLen !== 1 || data[start] !== 1) return false;
    } else if (contentType === DTLS_HANDSHAKE) {
      if (!plausibleHandshakeFragment(data.subarray(start, end))) return false;
    } else {
      return false;
    }
    offset = end;
  }
  return offset > 0;
}

/** One plaintext handshake fragment: a client message type, lengths that add up, a sane ClientHello. */
function plausibleHandshakeFragment(f: Uint8Array): boolean {
  if (f.length < 12 || !CLIENT_HANDSHAKE_TYPES.has(f[0])) return false;
  const length = (f[1] << 16) | (f[2] << 8) | f[3];
  const fragmentOffset = (f[6] << 16) | (f[7] << 8) | f[8];
  const fragmentLength = (f[9] << 16) | (f[10] << 8) | f[11];
  if (fragmentLength !== f.length - 12 || fragmentOffset + fragmentLength > length) return false;
  if (f[0] !== 1 || fragmentOffset !== 0 || fragmentLength !== length) return true;
  return plausibleClientHello(f.subarray(12));
}

/**
 * A complete ClientHello body (RFC 6347 §4.2.2) whose variable-length fields fit: version, random,
 * session id, cookie, cipher suites, compression methods and the extensions block.
 */
function plausibleClientHello(body: Uint8Array): boolean {
  if (body.length < 2 + 32 + 1 || body[0] !== 0xfe) return false;
  let at = 34;
  const skip = (lengthBytes: number, min: number): boolean => {
    if (at + lengthBytes > body.length) return false;
    let n = 0;
    for (let i = 0; i < lengthBytes; i++) n = (n << 8) | body[at + i];
    at += lengthBytes + n;
    return n >= min && at <= body.length;
  };
  if (!skip(1, 0) || !skip(1, 0) || !skip(2, 2) || !skip(1, 1)) return false;
  return at === body.length || (skip(2, 0) && at === body.length);
}

/** The client handshake messages (flight 5) werift has taken in so far, by type. */
function handshakeTypesHeld(dtls: DtlsServer): Set<number> {
  const cache = (dtls.dtls as unknown as { handshakeCache: Record<number, { data: { msg_type: number }[] }> })
    .handshakeCache;
  return new Set(cache[5]?.data.map((h) => h.msg_type) ?? []);
}

/**
 * The records of a datagram werift may still act on after it has the master secret: everything but
 * ChangeCipherSpec, plaintext ClientHellos and plaintext handshake messages of a type in `held`. Undefined when nothing is left
 * or a record's length runs past the end; `data` itself when nothing is left out.
 */
function freshRecords(data: Uint8Array, held: Set<number>): Uint8Array | undefined {
  // A ChangeCipherSpec tells werift nothing (it ignores them), and after the handshake one would make
  // authenticRecords refuse the Finished it travels with.
  const stale = (at: number) =>
    data[at + 3] === 0 && data[at + 4] === 0 && (data[at] === DTLS_CHANGE_CIPHER_SPEC ||
      data[at] === DTLS_HANDSHAKE && at + 13 < data.length &&
        (data[at + 13] === 1 || held.has(data[at + 13])));
  let kept = 0;
  for (let at = 0; at < data.length;) {
    if (at + 13 > data.length) return undefined;
    const end = at + 13 + ((data[at + 11] << 8) | data[at + 12]);
    if (end > data.length) return undefined;
    if (!stale(at)) kept += end - at;
    at = end;
  }
  if (kept === data.length) return data;
  if (kept === 0) return undefined;
  const out = new Uint8Array(kept);
  let written = 0;
  for (let at = 0; at < data.length;) {
    const end = at + 13 + ((data[at + 11] << 8) | data[at + 12]);
    if (!stale(at)) {
      out.set(data.subarray(at, end), written);
      written += end - at;
    }
    at = end;
  }
  return out;
}

/**
 * Whether a datagram that arrived after the handshake holds only records worth handing to werift: epoch ≥ 1
 * alerts (close_notify) and handshake records (a retransmitted Finished) that decrypt under the session keys.
 */
function authenticRecords(dtls: DtlsServer, data: Uint8Array): boolean {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  while (offset < buf.length) {
    if (offset + 13 > buf.length) return false;
    const contentType = buf[offset];
    const epoch = buf.readUInt16BE(offset + 3);
    const contentLen = buf.readUInt16BE(offset + 11);
    const end = offset + 13 + contentLen;
    if (end > buf.length || epoch === 0) return false;
    if (contentType !== DTLS_ALERT && contentType !== DTLS_HANDSHAKE) return false;
    try {
      dtls.cipher.decryptPacket({
        recordLayerHeader: {
          contentType,
          protocolVersion: { major: buf[offset + 1], minor: buf[offset + 2] },
          epoch,
          sequenceNumber: buf.readUIntBE(offset + 5, 6),
          contentLen,
        },
        fragment: buf.subarray(offset + 13, end),
      } as never);
    } catch {
      return false;
    }
    offset = end;
  }
  return offset > 0;
}

/**
 * The per-peer transport werift's DtlsServer writes to: it calls `send(buf)` without an address, so each
 * peer gets its own object that remembers where the handshake is coming from.
 */
class DtlsTransport {
  readonly type = "udp";
  readonly address = {} as never;
  closed = false;
  remote: PeerAddress | undefined;
  onData: (data: Buffer, addr: unknown) => void = () => {};
  #transmit: (data: Uint8Array, to: PeerAddress) => void;

  constructor(transmit: (data: Uint8Array, to: PeerAddress) => void) {
    this.#transmit = transmit;
  }

  send = (data: Buffer): Promise<void> => {
    if (!this.closed && this.remote) this.#transmit(data, this.remote);
    return Promise.resolve();
  };

  close = (): Promise<void> => {
    this.closed = true;
    return Promise.resolve();
  };
}
