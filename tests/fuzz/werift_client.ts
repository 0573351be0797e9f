/**
 * A small WebRTC client for tests, built from werift's pieces: it takes a Chromium offer fixture with its own
 * ICE credentials and certificate, sends a signed STUN check, completes DTLS as the client and then speaks
 * SRTP. It owns a real loopback UDP socket for what the server sends; what it sends goes through `toServer`,
 * so a test can hand datagrams to `MediaSocket.handleDatagram` directly or send them over UDP.
 */
import { Buffer } from "node:buffer";
import {
  classes,
  DtlsClient,
  keyLength,
  Message,
  methods,
  RtpHeader,
  saltLength,
  SrtcpSession,
  SrtpSession,
} from "werift";

const FIXTURES = new URL("../fixtures/", import.meta.url);

export { type ClientCertificate, createClientCertificate } from "../helpers/certificates.ts";
import type { ClientCertificate } from "../helpers/certificates.ts";

/** The Chromium offer fixtures, read once. */
export async function loadOfferFixtures(): Promise<{ publish: string; watch: string }> {
  return {
    publish: await Deno.readTextFile(new URL("chromium_publish_offer.sdp", FIXTURES)),
    watch: await Deno.readTextFile(new URL("chromium_watch_offer.sdp", FIXTURES)),
  };
}

/** ICE credentials of an answer. */
export function answerCredentials(answer: string): { ufrag: string; pwd: string } {
  const ufrag = /a=ice-ufrag:(\S+)/.exec(answer)?.[1];
  const pwd = /a=ice-pwd:(\S+)/.exec(answer)?.[1];
  if (!ufrag || !pwd) throw new Error("answer has no ICE credentials");
  return { ufrag, pwd };
}

/** A test client bound to a loopback UDP port. */
export class TestClient {
  readonly conn: Deno.DatagramConn;
  readonly ufrag: string;
  readonly pwd: string;
  readonly certificate: ClientCertificate;
  srtp: SrtpSession | undefined;
  srtcp: SrtcpSession | undefined;
  /** Counters of what arrived from the server. */
  readonly received = { stun: 0, dtls: 0, rtp: 0, rtcp: 0, undecryptable: 0, other: 0 };
  /** Called with each decrypted RTP packet. */
  onRtp: ((packet: Uint8Array) => void) | undefined;
  /** Records the client sent during the DTLS handshake (for fuzz seeds). */
  readonly dtlsSent: Uint8Array[] = [];

  #toServer: (data: Uint8Array, client: TestClient) => void;
  #dtls: DtlsClient | undefined;
  #transport: { onData: (data: Buffer) => void } | undefined;
  #closed = false;
  #pump: Promise<void>;

  constructor(
    certificate: ClientCertificate,
    toServer: (data: Uint8Array, client: TestClient) => void,
    hostname = "127.0.0.1",
  ) {
    this.certificate = certificate;
    this.#toServer = toServer;
    this.conn = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    this.ufrag = randomAlnum(8);
    this.pwd = randomAlnum(24);
    this.#pump = this.#receiveLoop();
  }

  /** This client's address as the server sees it. */
  get address(): { hostname: string; port: number } {
    const a = this.conn.addr as Deno.NetAddr;
    return { hostname: a.hostname, port: a.port };
  }

  /** A fixture offer rewritten to carry this client's ICE credentials and fingerprint. */
  offer(fixture: string): string {
    return fixture
      .replace(/a=ice-ufrag:\S+/g, `a=ice-ufrag:${this.ufrag}`)
      .replace(/a=ice-pwd:\S+/g, `a=ice-pwd:${this.pwd}`)
      .replace(/a=fingerprint:sha-256 \S+/g, `a=fingerprint:sha-256 ${this.certificate.fingerprint}`);
  }

  /** A binding request for the server of `answer`, signed with its password unless `signWith` says otherwise. */
  stunCheck(answer: string, options: { signWith?: string; nominate?: boolean } = {}): Uint8Array {
    const server = answerCredentials(answer);
    const request = new Message(methods.BINDING, classes.REQUEST);
    request.setAttribute("USERNAME", `${server.ufrag}:${this.ufrag}`);
    request.setAttribute("PRIORITY", 1853824767);
    request.setAttribute("ICE-CONTROLLING", BigInt(0x1234567890));
    if (options.nominate ?? true) request.setAttribute("USE-CANDIDATE", null);
    request.addMessageIntegrity(Buffer.from(options.signWith ?? server.pwd, "utf8"));
    request.addFingerprint();
    return new Uint8Array(request.bytes);
  }

  /** ICE check, then the DTLS handshake; resolves once SRTP keys are in place. */
  async connect(answer: string, timeoutMs = 5000): Promise<void> {
    this.#toServer(this.stunCheck(answer), this);
    const transport = {
      type: "udp",
      address: {} as never,
      onData: (_data: Buffer) => {},
      send: (data: Buffer) => {
        if (!this.#closed) {
          const bytes = new Uint8Array(data);
          this.dtlsSent.push(bytes);
          this.#toServer(bytes, this);
        }
        return Promise.resolve();
      },
      close: () => {},
    };
    this.#transport = transport;
    const dtls = new DtlsClient({
      transport: transport as never,
      cert: this.certificate.certPem,
      key: this.certificate.keyPem,
      signatureHash: { hash: 4, signature: 3 } as never,
      srtpProfiles: [7, 1],
      extendedMasterSecret: true,
    });
    this.#dtls = dtls;
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("DTLS handshake timed out")), timeoutMs);
      dtls.onConnect.subscribe(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await dtls.connect();
    await connected;
    const profile = dtls.srtp.srtpProfile as number;
    const keys = dtls.extractSessionKeys(keyLength(profile as 1), saltLength(profile as 1));
    const config = {
      keys: {
        localMasterKey: keys.localKey,
        localMasterSalt: keys.localSalt,
        remoteMasterKey: keys.remoteKey,
        remoteMasterSalt: keys.remoteSalt,
      },
      profile: profile as 1,
    };
    this.srtp = new SrtpSession(config);
    this.srtcp = new SrtcpSession(config);
  }

  /** Encrypts an RTP packet for the server. */
  protectRtp(header: RtpHeader, payload: Uint8Array): Uint8Array {
    return new Uint8Array(this.srtp!.encrypt(Buffer.from(payload), header));
  }

  /** Encrypts a compound RTCP packet for the server. */
  protectRtcp(packet: Uint8Array): Uint8Array {
    return new Uint8Array(this.srtcp!.encrypt(Buffer.from(packet)));
  }

  /** Sends an RTP packet to the server. */
  sendRtp(header: RtpHeader, payload: Uint8Array): void {
    this.#toServer(this.protectRtp(header, payload), this);
  }

  /** Sends raw bytes to the server. */
  send(data: Uint8Array): void {
    this.#toServer(data, this);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dtls?.onConnect.allUnsubscribe();
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#pump;
  }

  async #receiveLoop(): Promise<void> {
    while (!this.#closed) {
      let data: Uint8Array;
      try {
        [data] = await this.conn.receive();
      } catch {
        if (this.#closed) return;
        continue;
      }
      const first = data[0];
      if (first <= 3) {
        this.received.stun++;
      } else if (first >= 20 && first <= 63) {
        this.received.dtls++;
        try {
          this.#transport?.onData(Buffer.from(data));
        } catch { /* a handshake error surfaces as a timeout */ }
      } else if (first >= 128 && first <= 191 && this.srtp) {
        const isRtcp = data[1] >= 192 && data[1] <= 223;
        try {
          if (isRtcp) {
            this.srtcp!.decrypt(Buffer.from(data));
            this.received.rtcp++;
          } else {
            const plain = this.srtp.decrypt(Buffer.from(data));
            this.received.rtp++;
            this.onRtp?.(plain);
          }
        } catch {
          this.received.undecryptable++;
        }
      } else {
        this.received.other++;
      }
    }
  }
}

/** An RTP header for test packets. */
export function rtpHeader(fields: {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker?: boolean;
}): RtpHeader {
  return new RtpHeader({
    payloadType: fields.payloadType,
    sequenceNumber: fields.sequenceNumber & 0xffff,
    timestamp: fields.timestamp >>> 0,
    ssrc: fields.ssrc >>> 0,
    marker: fields.marker ?? false,
  });
}

function randomAlnum(length: number): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let out = "";
  for (const b of crypto.getRandomValues(new Uint8Array(length))) out += chars[b % chars.length];
  return out;
}
