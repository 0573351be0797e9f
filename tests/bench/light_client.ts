/**
 * A lightweight WHIP/WHEP client for load tests, on the project's one client-side peer
 * (src/peer/client_peer.ts over client_socket.ts): ICE as the controlling agent (checks retransmitted as
 * the same transaction with backoff; the server's checks answered, so full-ICE servers work too), werift's
 * DTLS (client, or server when the answer says active; a repeated HelloVerifyRequest ignored), and this
 * project's SRTP. It decodes nothing: viewers count and time the packets they decrypt, publishers send RTP
 * packets they are given.
 */
import type { SrtpContext } from "../../src/srtp/context.ts";
import { ClientSocket } from "../../src/peer/client_socket.ts";
import type { ClientPeer } from "../../src/peer/client_peer.ts";
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
  #socket: ClientSocket;
  #peer: ClientPeer | undefined;
  #answer: ParsedAnswer;
  #localUfrag: string;
  #localPwd: string;
  #closed = false;
  /** The socket went to another reader (see {@link detach}). */
  #detached = false;

  private constructor(
    options: LightClientOptions,
    socket: ClientSocket,
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
    this.#socket = socket;
    this.#answer = init.answer;
    this.#localUfrag = init.localUfrag;
    this.#localPwd = init.localPwd;
    const stats = {
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
    // Counted by the peer; read through the stats like the rest.
    Object.defineProperty(stats, "decryptFailures", {
      enumerable: true,
      get: () => this.#peer?.counters.decryptFailures ?? 0,
    });
    this.stats = stats;
    this.videoSsrc = init.videoSsrc;
    this.audioSsrc = init.audioSsrc;
    this.media = init.answer.media;
    this.location = init.location;
    socket.onRtp = (packet, now) => {
      if (stats.rtpPackets === 0) stats.firstRtpAt = now;
      stats.rtpPackets++;
      stats.rtpBytes += packet.length;
      options.onRtp?.(packet, now);
    };
    socket.onRtcp = (packet) => {
      stats.rtcpPackets++;
      options.onRtcp?.(packet);
    };
  }

  /** Posts an offer, then runs ICE and DTLS; resolves once SRTP keys are in place. */
  static async connect(options: LightClientOptions): Promise<LightClient> {
    const startedAt = performance.now();
    const socket = ClientSocket.bind("127.0.0.1");
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
        port: socket.port,
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
      const client = new LightClient(options, socket, {
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
      socket.close(false);
      throw e;
    }
  }

  /** Sends bytes as they are from the client's address (tests of spoofed datagrams). */
  sendRaw(datagram: Uint8Array): void {
    if (!this.#closed) this.#socket.send(datagram);
  }

  /**
   * Sends a consent check (retransmitted from 200 ms) and resolves once the server answers it. The server
   * reads one socket in order, so it has then handled everything this client sent before the check.
   */
  async answeredCheck(timeoutMs = 5000): Promise<void> {
    try {
      await this.#socket.check(200, timeoutMs);
    } catch {
      throw new Error("consent check unanswered");
    }
  }

  /** Protects and sends one RTP packet (publishers). */
  sendRtp(packet: Uint8Array): void {
    if (this.#closed || this.#detached) return;
    if (this.#peer?.sendRtp(packet)) this.stats.sentRtp++;
  }

  /** Protects and sends one RTCP packet. */
  sendRtcp(packet: Uint8Array): void {
    if (this.#closed || this.#detached) return;
    this.#peer?.sendRtcp(packet);
  }

  /**
   * Hands the media to a cheaper reader (the capacity benchmarks count datagrams with `recvmmsg`):
   * `adopt(localPort)` must take a descriptor of its own for this client's socket (`dup` through FFI) before
   * the client closes its Deno handle. The client then stops reading and sending consent checks; the new
   * owner gets the SRTP context (to verify a sample), sends {@link consentCheck}s itself and answers the
   * server's checks with {@link checkResponse}. {@link close} still ends the session with a DELETE.
   */
  detach(adopt: (localPort: number) => void): { srtp: SrtpContext; remote: Deno.NetAddr } {
    const peer = this.#peer;
    const selected = peer?.ice.selected;
    if (this.#closed || this.#detached || !peer?.srtp || !selected) {
      throw new Error("detach needs a connected client");
    }
    this.#socket.release(adopt);
    this.#detached = true;
    return {
      srtp: peer.srtp,
      remote: { transport: "udp", hostname: selected.hostname, port: selected.port },
    };
  }

  /** A consent check (STUN Binding request, RFC 7675) for the owner of a detached socket to send. */
  consentCheck(): Uint8Array {
    return this.#peer!.ice.consentRequest();
  }

  /**
   * The answer to a server's binding request (its connectivity or consent check, RFC 8445 §7.3, RFC 7675)
   * that arrived at a detached socket from `from`; undefined when `data` is not such a request for this
   * session.
   */
  checkResponse(data: Uint8Array, from: Deno.NetAddr): Uint8Array | undefined {
    return this.#peer?.ice.answer(data, from);
  }

  /** Ends the session (HTTP DELETE) and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const headers: Record<string, string> = {};
    if (this.#options.token) headers.Authorization = `Bearer ${this.#options.token}`;
    try {
      const res = await fetch(this.location, { method: "DELETE", headers });
      await res.body?.cancel();
    } catch { /* server gone */ }
    this.#socket.close(false);
  }

  /**
   * Goes silent without a DELETE, like a client whose tab crashed or whose network dropped: the server is
   * left to end the session when ICE consent expires (RFC 7675).
   */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close(false);
  }

  async #establish(timeoutMs: number): Promise<void> {
    const answer = this.#answer;
    const candidate = { hostname: answer.candidate.address, port: answer.candidate.port };
    const peer = await this.#socket.connect(
      {
        ice: {
          localUfrag: this.#localUfrag,
          localPwd: this.#localPwd,
          remoteUfrag: answer.ufrag,
          remotePwd: answer.pwd,
          candidates: [this.#options.route?.(candidate) ?? candidate],
        },
        certificate: this.#options.certificate,
        dtlsRole: answer.setup === "active" ? "server" : "client",
        srtpProfiles: this.#options.srtpProfiles,
        srtpBackend: this.#options.srtpBackend,
      },
      timeoutMs,
      () => {
        this.stats.iceAt = performance.now();
        for (const datagram of this.#options.beforeDtls ?? []) this.#socket.send(datagram);
      },
    );
    this.#peer = peer;
    this.srtpProfile = peer.srtpProfile;
    this.stats.connectedAt = performance.now();
  }
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
