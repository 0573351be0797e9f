/**
 * A lightweight WHIP/WHEP client for load tests: one UDP socket, ICE as the controlling agent (checks with
 * USE-CANDIDATE, answers the other side's checks so full-ICE servers work too), werift's DTLS client, and
 * this project's SRTP context. It decodes nothing: viewers count and time the packets they decrypt,
 * publishers send RTP packets they are given.
 */
import { Buffer } from "node:buffer";
import { classes, DtlsClient, DtlsServer, Message, methods, parseMessage } from "werift";
import { createSrtpContext, type SrtpContext } from "../../src/srtp/context.ts";
import { datagrams } from "../../src/net/datagrams.ts";
import { clientDtlsTransport } from "../../src/peer/dtls_transport.ts";
import type { ClientCertificate } from "../helpers/certificates.ts";

export { type ClientCertificate, createClientCertificate } from "../helpers/certificates.ts";

/** How a client connects. */
export interface LightClientOptions {
  /** Server base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  role: "publisher" | "viewer";
  room: string;
  /** Bearer token (publishers). */
  token?: string;
  certificate: ClientCertificate;
  /** SRTP profiles offered in DTLS, in preference order (default GCM, then AES-CM). */
  srtpProfiles?: (1 | 7)[];
  /** SRTP backend for this client ("auto" by default). */
  srtpBackend?: "auto" | "native" | "portable";
  /** Milliseconds allowed for HTTP + ICE + DTLS. */
  timeoutMs?: number;
  /** The video codec offered (rtpmap name and fmtp); default H.264 packetization-mode 1. */
  videoCodec?: { name: string; fmtp?: string };
  /** Called with each decrypted RTP packet (valid only during the call). */
  onRtp?: (packet: Uint8Array, now: number) => void;
  /** Called with each decrypted (compound) RTCP packet (valid only during the call). */
  onRtcp?: (packet: Uint8Array) => void;
  /**
   * Datagrams sent to the server once ICE succeeded and before the DTLS handshake starts, from the client's
   * own address (tests of what a spoofer could do in that window).
   */
  beforeDtls?: Uint8Array[];
  /**
   * Where to send media instead of the server's candidate (given that candidate): e.g. a relay that delays
   * the path (tests/helpers/lossy_relay.ts).
   */
  route?: (candidate: { hostname: string; port: number }) => { hostname: string; port: number };
}

/** What a client counted. */
export interface LightClientStats {
  /** performance.now() when connect() started. */
  startedAt: number;
  /** When the server's answer arrived (HTTP 201). */
  answeredAt: number;
  /** When the server answered the nominating ICE check. */
  iceAt: number;
  /** When DTLS finished. */
  connectedAt: number;
  /** When the first RTP packet decrypted (0 until then). */
  firstRtpAt: number;
  rtpPackets: number;
  rtpBytes: number;
  rtcpPackets: number;
  decryptFailures: number;
  sentRtp: number;
}

/** Payload types and SSRCs the answer carries, by kind. */
export interface NegotiatedMedia {
  videoPayloadType: number;
  audioPayloadType: number | undefined;
  /** SSRCs the server announced (viewers). */
  ssrcs: number[];
}

const VIDEO_PT = 102;
const AUDIO_PT = 111;
const CONSENT_INTERVAL_MS = 2000;

/** One WHIP or WHEP session over its own UDP socket. */
export class LightClient {
  readonly stats: LightClientStats;
  readonly media: NegotiatedMedia;
  /** The session URL from the `Location` header. */
  readonly location: string;
  /** SSRCs a publisher sends with (announced in its offer). */
  readonly videoSsrc: number;
  readonly audioSsrc: number;
  /** The negotiated SRTP profile (after connect). */
  srtpProfile = 0;

  #options: LightClientOptions;
  #conn: Deno.DatagramConn;
  #remote: Deno.NetAddr;
  #localUfrag: string;
  #localPwd: string;
  #remoteUfrag: string;
  #remotePwd: string;
  #srtp: SrtpContext | undefined;
  #dtlsData: ((data: Buffer) => void) | undefined;
  #pendingCheck: string | undefined;
  #checkAnswered: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** HelloVerifyRequests received (werift's DtlsClient fails the handshake on a second one). */
  #helloVerified = 0;
  #dtlsTrace: number[] = [];
  /** The socket went to another reader (see {@link detach}). */
  #detached = false;
  #dtlsServerRole: boolean;
  #tieBreaker = BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 52)) << 12n);

  private constructor(
    options: LightClientOptions,
    conn: Deno.DatagramConn,
    init: {
      startedAt: number;
      localUfrag: string;
      localPwd: string;
      videoSsrc: number;
      audioSsrc: number;
      answer: ParsedAnswer;
      location: string;
    },
  ) {
    this.#options = options;
    this.#conn = conn;
    this.stats = {
      startedAt: init.startedAt,
      answeredAt: performance.now(),
      iceAt: 0,
      connectedAt: 0,
      firstRtpAt: 0,
      rtpPackets: 0,
      rtpBytes: 0,
      rtcpPackets: 0,
      decryptFailures: 0,
      sentRtp: 0,
    };
    this.#localUfrag = init.localUfrag;
    this.#localPwd = init.localPwd;
    this.videoSsrc = init.videoSsrc;
    this.audioSsrc = init.audioSsrc;
    this.#remoteUfrag = init.answer.ufrag;
    this.#remotePwd = init.answer.pwd;
    const candidate = { hostname: init.answer.candidate.address, port: init.answer.candidate.port };
    this.#remote = { transport: "udp", ...(options.route?.(candidate) ?? candidate) };
    this.media = init.answer.media;
    this.#dtlsServerRole = init.answer.setup === "active";
    this.location = init.location;
  }

  /** Posts an offer, then runs ICE and DTLS; resolves once SRTP keys are in place. */
  static async connect(options: LightClientOptions): Promise<LightClient> {
    const startedAt = performance.now();
    const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const localUfrag = randomString(8);
      const localPwd = randomString(24);
      const videoSsrc = randomSsrc();
      const audioSsrc = randomSsrc();
      const offer = buildOffer({
        role: options.role,
        ufrag: localUfrag,
        pwd: localPwd,
        fingerprint: options.certificate.fingerprint,
        port: (conn.addr as Deno.NetAddr).port,
        videoSsrc,
        audioSsrc,
        videoCodec: options.videoCodec,
      });
      const url = options.role === "publisher"
        ? `${options.baseUrl}/whip?room=${encodeURIComponent(options.room)}`
        : `${options.baseUrl}/whep?target_id=${encodeURIComponent(options.room)}`;
      const headers: Record<string, string> = { "Content-Type": "application/sdp" };
      if (options.token) headers.Authorization = `Bearer ${options.token}`;
      const res = await fetch(url, { method: "POST", headers, body: offer });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`${options.role} POST answered ${res.status}: ${text.trim()}`);
      const location = new URL(res.headers.get("Location") ?? "", url).href;
      const client = new LightClient(options, conn, {
        startedAt,
        localUfrag,
        localPwd,
        videoSsrc,
        audioSsrc,
        answer: parseAnswer(text),
        location,
      });
      await client.#establish(options.timeoutMs ?? 15_000);
      return client;
    } catch (e) {
      try {
        conn.close();
      } catch { /* already closed */ }
      throw e;
    }
  }

  /** Sends bytes as they are from the client's address (tests of spoofed datagrams). */
  sendRaw(datagram: Uint8Array): void {
    if (!this.#closed) this.#send(datagram);
  }

  /**
   * Sends a consent check (retransmitted every 200 ms) and resolves once the server answers it. The server
   * reads one socket in order, so it has then handled everything this client sent before the check.
   */
  answeredCheck(timeoutMs = 5000): Promise<void> {
    return this.#awaitCheck(false, timeoutMs, 200, () => new Error("consent check unanswered"));
  }

  /** Protects and sends one RTP packet (publishers). */
  sendRtp(packet: Uint8Array): void {
    if (this.#closed || !this.#srtp) return;
    // protectRtp allocates the output: Deno's send reads the buffer later, so it must not be reused.
    this.#send(this.#srtp.protectRtp(packet));
    this.stats.sentRtp++;
  }

  /** Protects and sends one RTCP packet. */
  sendRtcp(packet: Uint8Array): void {
    if (this.#closed || !this.#srtp) return;
    this.#send(this.#srtp.protectRtcp(packet));
  }

  /**
   * Hands the media to a cheaper reader (the capacity benchmarks count datagrams with `recvmmsg`):
   * `adopt(localPort)` must take a descriptor of its own for this client's socket (`dup` through FFI) before
   * the client closes its Deno handle. The client then stops reading and sending consent checks; the new
   * owner gets the SRTP context (to verify a sample), sends {@link consentCheck}s itself and answers the
   * server's checks with {@link checkResponse}. {@link close}
   * still ends the session with a DELETE.
   */
  detach(adopt: (localPort: number) => void): { srtp: SrtpContext; remote: Deno.NetAddr } {
    if (this.#closed || this.#detached || !this.#srtp) throw new Error("detach needs a connected client");
    adopt((this.#conn.addr as Deno.NetAddr).port);
    this.#detached = true;
    clearInterval(this.#timer);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    return { srtp: this.#srtp, remote: this.#remote };
  }

  /** A consent check (STUN Binding request, RFC 7675) for the owner of a detached socket to send. */
  consentCheck(): Uint8Array {
    return this.#checkRequest(false).bytes;
  }

  /** Ends the session (HTTP DELETE) and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const headers: Record<string, string> = {};
    if (this.#options.token) headers.Authorization = `Bearer ${this.#options.token}`;
    try {
      const res = await fetch(this.location, { method: "DELETE", headers });
      await res.body?.cancel();
    } catch { /* server gone */ }
    this.#release();
  }

  /**
   * Goes silent without a DELETE, like a client whose tab crashed or whose network dropped: the server is
   * left to end the session when ICE consent expires (RFC 7675).
   */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#release();
  }

  #release(): void {
    this.#srtp?.close();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async #establish(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const reading = this.#readLoop();
    reading.catch(() => {});
    // ICE: retransmit the nominating check until it is answered (RFC 8445 §7.2.4), backing off from 100 ms.
    await this.#awaitCheck(
      true,
      deadline - performance.now(),
      100,
      () => new Error(`ICE check to ${this.#remote.hostname}:${this.#remote.port} timed out`),
    );
    this.stats.iceAt = performance.now();
    for (const datagram of this.#options.beforeDtls ?? []) this.#send(datagram);
    const transport = clientDtlsTransport((data) => this.#send(data));
    const dtlsOptions = {
      transport,
      cert: this.#options.certificate.certPem,
      key: this.#options.certificate.keyPem,
      signatureHash: { hash: 4, signature: 3 } as never,
      srtpProfiles: this.#options.srtpProfiles ?? [7, 1],
      extendedMasterSecret: true,
    };
    const dtls = this.#dtlsServerRole
      ? new DtlsServer({ ...dtlsOptions, certificateRequest: true })
      : new DtlsClient(dtlsOptions);
    // DtlsClient replaces transport.onData with its own record handler.
    this.#dtlsData = (data) => transport.onData(data, [this.#remote.hostname, this.#remote.port]);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `DTLS handshake timed out (${this.#helloVerified} HelloVerifyRequests, ` +
                `last handshake types ${this.#dtlsTrace.join(",")})`,
            ),
          ),
        deadline - performance.now(),
      );
      dtls.onConnect.once(() => {
        clearTimeout(timer);
        resolve();
      });
      dtls.onError.once((e) => {
        clearTimeout(timer);
        reject(e);
      });
      if (dtls instanceof DtlsClient) dtls.connect().catch(reject);
    });
    const profile = dtls.srtp.srtpProfile as number;
    this.srtpProfile = profile;
    const keys = dtls.extractSessionKeys(16, profile === 7 ? 12 : 14);
    this.#srtp = createSrtpContext({
      profile,
      backend: this.#options.srtpBackend,
      localMasterKey: keys.localKey,
      localMasterSalt: keys.localSalt,
      remoteMasterKey: keys.remoteKey,
      remoteMasterSalt: keys.remoteSalt,
    });
    this.stats.connectedAt = performance.now();
    // Consent freshness (RFC 7675): the server drops a client that stays silent.
    this.#timer = setInterval(() => this.#sendCheck(false), CONSENT_INTERVAL_MS);
  }

  async #readLoop(): Promise<void> {
    for await (const [data, from] of datagrams(this.#conn, () => this.#closed || this.#detached)) {
      const first = data[0];
      if (first <= 3) this.#handleStun(data, from);
      else if (first >= 20 && first <= 63) {
        if (data[0] === 22 && data.length > 13) this.#dtlsTrace = [...this.#dtlsTrace.slice(-5), data[13]];
        if (isHelloVerifyRequest(data) && this.#helloVerified++ > 0) continue;
        try {
          this.#dtlsData?.(Buffer.from(data.buffer, data.byteOffset, data.length));
        } catch {
          // werift's DtlsClient throws on a flight the server retransmitted under load (its Flight3 check);
          // the handshake carries on with the next datagram or ends at the timeout.
        }
      } else if (first >= 128 && first <= 191 && this.#srtp) this.#handleSrtp(data);
    }
  }

  #handleSrtp(data: Uint8Array): void {
    const srtp = this.#srtp!;
    if (data[1] >= 192 && data[1] <= 223) {
      const plain = srtp.unprotectRtcp(data, data);
      if (plain) {
        this.stats.rtcpPackets++;
        this.#options.onRtcp?.(plain);
      } else this.stats.decryptFailures++;
      return;
    }
    const plain = srtp.unprotectRtp(data, data);
    if (!plain) {
      this.stats.decryptFailures++;
      return;
    }
    const now = performance.now();
    if (this.stats.rtpPackets === 0) this.stats.firstRtpAt = now;
    this.stats.rtpPackets++;
    this.stats.rtpBytes += plain.length;
    this.#options.onRtp?.(plain, now);
  }

  #handleStun(data: Uint8Array, from: Deno.NetAddr): void {
    const message = parseMessage(Buffer.from(data.buffer, data.byteOffset, data.length));
    if (!message || message.messageMethod !== methods.BINDING) return;
    if (message.messageClass === classes.REQUEST) {
      this.#send(this.#checkResponse(message, from), from);
      return;
    }
    if (message.messageClass === classes.RESPONSE && message.transactionIdHex === this.#pendingCheck) {
      this.#pendingCheck = undefined;
      const answered = this.#checkAnswered;
      this.#checkAnswered = undefined;
      answered?.();
    }
  }

  /**
   * Sends one binding request and retransmits the same transaction (RFC 5389 §7.2.1: a retransmission keeps
   * its transaction id, so an answer that arrives after the next retransmission still counts) with a
   * doubling interval from `firstRtoMs` up to 1.6 s, until it is answered or `timeoutMs` passed.
   */
  #awaitCheck(
    nominate: boolean,
    timeoutMs: number,
    firstRtoMs: number,
    timedOut: () => Error,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const request = this.#checkRequest(nominate);
    this.#pendingCheck = request.id;
    return new Promise<void>((resolve, reject) => {
      this.#checkAnswered = resolve;
      let rto = firstRtoMs;
      const retry = () => {
        if (!this.#checkAnswered || this.#closed) return;
        if (performance.now() > deadline) {
          this.#checkAnswered = undefined;
          reject(timedOut());
          return;
        }
        this.#send(request.bytes);
        setTimeout(retry, Math.min(rto, Math.max(0, deadline - performance.now()) + 1));
        rto = Math.min(rto * 2, 1600);
      };
      retry();
    });
  }

  /**
   * The answer to a server's binding request (its connectivity or consent check, RFC 8445 §7.3, RFC 7675) that
   * arrived at a detached socket from `from`; undefined when `data` is not such a request.
   */
  checkResponse(data: Uint8Array, from: Deno.NetAddr): Uint8Array | undefined {
    const message = parseMessage(Buffer.from(data.buffer, data.byteOffset, data.length));
    if (message?.messageMethod !== methods.BINDING || message.messageClass !== classes.REQUEST) {
      return undefined;
    }
    return this.#checkResponse(message, from);
  }

  #checkResponse(request: Message, from: Deno.NetAddr): Uint8Array {
    // A full-ICE server checks this candidate too, and an ICE-lite one asks for consent.
    const response = new Message(methods.BINDING, classes.RESPONSE, request.transactionId);
    response.setAttribute("XOR-MAPPED-ADDRESS", [from.hostname, from.port]);
    response.addMessageIntegrity(Buffer.from(this.#localPwd, "utf8"));
    response.addFingerprint();
    return new Uint8Array(response.bytes);
  }

  #sendCheck(nominate: boolean): void {
    if (!this.#closed) this.#send(this.#checkRequest(nominate).bytes);
  }

  #checkRequest(nominate: boolean): { bytes: Uint8Array; id: string } {
    const request = new Message(methods.BINDING, classes.REQUEST);
    request.setAttribute("USERNAME", `${this.#remoteUfrag}:${this.#localUfrag}`);
    request.setAttribute("PRIORITY", 1853824767);
    request.setAttribute("ICE-CONTROLLING", this.#tieBreaker);
    if (nominate) request.setAttribute("USE-CANDIDATE", null);
    request.addMessageIntegrity(Buffer.from(this.#remotePwd, "utf8"));
    request.addFingerprint();
    return { bytes: new Uint8Array(request.bytes), id: request.transactionIdHex };
  }

  #send(data: Uint8Array, to: Deno.NetAddr = this.#remote): void {
    if (this.#closed || this.#detached) return;
    this.#conn.send(data, to).catch(() => {});
  }
}

/**
 * Whether a datagram starts with an epoch-0 handshake record carrying a HelloVerifyRequest (RFC 6347
 * §4.2.1). A server answers each retransmitted ClientHello with one, so a client whose first ClientHello
 * waited longer than werift's 500 ms retransmission timer gets two; werift's DtlsClient throws on the second
 * (its Flight3 runs once) and gives the handshake up, where a browser sends its cookie again. The light
 * client passes only the first one on.
 */
function isHelloVerifyRequest(data: Uint8Array): boolean {
  return data.length > 13 && data[0] === 22 && data[3] === 0 && data[4] === 0 && data[13] === 3;
}

interface ParsedAnswer {
  /** The server's DTLS role: "active" makes this client the DTLS server. */
  setup: string;
  ufrag: string;
  pwd: string;
  candidate: { address: string; port: number };
  media: NegotiatedMedia;
}

/** Reads what the client needs from an answer; prefers a loopback candidate. */
export function parseAnswer(sdp: string): ParsedAnswer {
  const lines = sdp.split(/\r?\n/);
  const value = (prefix: string) => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length).trim();
  const ufrag = value("a=ice-ufrag:");
  const pwd = value("a=ice-pwd:");
  if (!ufrag || !pwd) throw new Error("answer has no ICE credentials");
  const candidates: { address: string; port: number }[] = [];
  for (const line of lines) {
    const m = /^a=candidate:\S+ 1 udp \d+ (\d+\.\d+\.\d+\.\d+) (\d+) typ/i.exec(line);
    if (m) candidates.push({ address: m[1], port: Number(m[2]) });
  }
  const candidate = candidates.find((c) => c.address === "127.0.0.1") ?? candidates[0];
  if (!candidate) throw new Error("answer has no IPv4 UDP candidate");
  const media: NegotiatedMedia = { videoPayloadType: VIDEO_PT, audioPayloadType: undefined, ssrcs: [] };
  let kind = "";
  for (const line of lines) {
    const m = /^m=(\w+) (\d+) \S+ (\d+)/.exec(line);
    if (m) {
      kind = m[1];
      if (m[2] !== "0" && kind === "video") media.videoPayloadType = Number(m[3]);
      if (m[2] !== "0" && kind === "audio") media.audioPayloadType = Number(m[3]);
    }
    const s = /^a=ssrc:(\d+) /.exec(line);
    if (s && !media.ssrcs.includes(Number(s[1]))) media.ssrcs.push(Number(s[1]));
  }
  return { setup: value("a=setup:") ?? "passive", ufrag, pwd, candidate, media };
}

/** A browser-like BUNDLE offer with H.264 (packetization-mode 1), or `videoCodec`, and Opus. */
export function buildOffer(o: {
  role: "publisher" | "viewer";
  ufrag: string;
  pwd: string;
  fingerprint: string;
  port: number;
  videoSsrc: number;
  audioSsrc: number;
  videoCodec?: { name: string; fmtp?: string };
}): string {
  const direction = o.role === "publisher" ? "sendonly" : "recvonly";
  const lines = [
    "v=0",
    `o=- ${Date.now()} 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=msid-semantic: WMS bench",
  ];
  const section = (mid: string, kind: "video" | "audio", pt: number, ssrc: number, codec: string[]) => {
    lines.push(
      `m=${kind} 9 UDP/TLS/RTP/SAVPF ${pt}`,
      "c=IN IP4 0.0.0.0",
      "a=rtcp:9 IN IP4 0.0.0.0",
      `a=ice-ufrag:${o.ufrag}`,
      `a=ice-pwd:${o.pwd}`,
      `a=fingerprint:sha-256 ${o.fingerprint}`,
      // actpass like a browser: the ICE-lite server answers passive, werift answers active.
      "a=setup:actpass",
      `a=mid:${mid}`,
      `a=${direction}`,
      "a=rtcp-mux",
      "a=rtcp-rsize",
      ...codec,
    );
    if (o.role === "publisher") {
      lines.push(`a=msid:bench ${kind}`, `a=ssrc:${ssrc} cname:bench`, `a=ssrc:${ssrc} msid:bench ${kind}`);
    }
    if (mid === "0") {
      lines.push(`a=candidate:1 1 udp 2130706431 127.0.0.1 ${o.port} typ host`, "a=end-of-candidates");
    }
  };
  const video = o.videoCodec ??
    { name: "H264", fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" };
  section("0", "video", VIDEO_PT, o.videoSsrc, [
    `a=rtpmap:${VIDEO_PT} ${video.name}/90000`,
    `a=rtcp-fb:${VIDEO_PT} nack`,
    `a=rtcp-fb:${VIDEO_PT} nack pli`,
    `a=rtcp-fb:${VIDEO_PT} ccm fir`,
    ...(video.fmtp ? [`a=fmtp:${VIDEO_PT} ${video.fmtp}`] : []),
  ]);
  section("1", "audio", AUDIO_PT, o.audioSsrc, [
    `a=rtpmap:${AUDIO_PT} opus/48000/2`,
    `a=fmtp:${AUDIO_PT} minptime=10;useinbandfec=1`,
  ]);
  return lines.join("\r\n") + "\r\n";
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(length: number): string {
  let out = "";
  for (const b of crypto.getRandomValues(new Uint8Array(length))) out += ALNUM[b % 62];
  return out;
}

function randomSsrc(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
}

/**
 * A publisher's H.264 RTP packet with a 1000-byte single-NAL slice (IDR when `keyframe`): enough for the
 * server's keyframe gate, cache and history, for tests that need media without a clip.
 */
export function syntheticVideoPacket(client: LightClient, seq: number, keyframe: boolean): Uint8Array {
  const packet = new Uint8Array(12 + 1000);
  const view = new DataView(packet.buffer);
  packet[0] = 0x80;
  packet[1] = 0x80 | client.media.videoPayloadType;
  view.setUint16(2, seq & 0xffff);
  view.setUint32(4, seq * 3000);
  view.setUint32(8, client.videoSsrc);
  // A single-NAL IDR or non-IDR slice: enough for the server's keyframe gate and cache.
  packet[12] = keyframe ? 0x65 : 0x41;
  for (let i = 13; i < packet.length; i++) packet[i] = (seq + i) & 0xff;
  return packet;
}
