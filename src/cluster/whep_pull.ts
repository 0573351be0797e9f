/**
 * A server-to-server WHEP pull: this node plays a WHEP viewer of a room on another node, with the project's
 * one client-side peer (src/peer/client_peer.ts over client_socket.ts): full ICE as the controlling agent
 * (a nominating check to every candidate, the first to answer is kept), werift's DTLS client with the
 * node's own certificate (checked against the answer's fingerprint both ways), and the project's SRTP.
 * Decrypted RTP/RTCP go to `onRtp`/`onRtcp`; `sendRtcp` carries the room's PLIs, NACKs and receiver reports
 * upstream, so it can stand as a {@link RoomSource}.
 *
 * Each pull has its own UDP socket (an ephemeral port on UDP_ADDRESS): the shared media socket routes by
 * the server's ICE-lite rules, which a client session does not follow, and a pull per relayed room (not per
 * viewer) costs one socket and one read loop. The other node answers to the address the datagrams came
 * from, so no extra port has to be opened towards it.
 */
import type { ServerCertificate } from "../peer/certificate.ts";
import type { ChosenCodec } from "../sdp/codecs.ts";
import { buildPullOffer, parsePullAnswer } from "./pull_sdp.ts";
import { type ClientCloseReason, ClientSocket } from "../peer/client_socket.ts";

/** The other node refused or failed the pull; `status` is its HTTP status (0: no answer). */
export class PullError extends Error {
  override name = "PullError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Where and how to pull. */
export interface WhepPullOptions {
  /** PUBLIC_URL of the node to pull from (checked against the registry by the caller). */
  baseUrl: string;
  roomId: string;
  /** NODE_IDs this pull is on behalf of, this node last (`X-Relay-Path`). */
  relayPath: string[];
  clusterToken?: string;
  certificate: ServerCertificate;
  /** Address to bind the pull's UDP socket to (UDP_ADDRESS). */
  bindAddress: string;
  /** H.264 profile of the room, offered first (or the profile parameter of its other codec). */
  profile?: string;
  /** The room's video codec as the rooms API names it (default H264). */
  codec?: string;
  /** HTTP + ICE + DTLS must finish within this. */
  timeoutMs?: number;
  /** Silence (no media, no consent answer) after which the pull counts as dead. */
  silenceMs?: number;
}

/** Why a pull ended. */
export type PullCloseReason = "closed" | "dtls-closed" | "silent" | "socket-error";

/** The first retransmission of a nominating check: the other node is near, answers come fast. */
const FIRST_CHECK_RTO_MS = 50;

/** One established pull session. */
export class WhepPull {
  readonly location: string;
  readonly video: ChosenCodec;
  readonly audio: ChosenCodec | undefined;
  /** Decrypted RTP from the other node (valid during the call). */
  onRtp: (packet: Uint8Array, now: number) => void = () => {};
  /** Decrypted compound RTCP from the other node (valid during the call). */
  onRtcp: (packet: Uint8Array, now: number) => void = () => {};
  /** The pull ended on its own (not by {@link close}). */
  onClosed: (reason: PullCloseReason) => void = () => {};
  /**
   * An exception while handling a datagram that is not the datagram's fault (a bug, e.g. in the room fed by
   * `onRtp`): the datagram is dropped and the pull reads on. Called for each; the caller logs the first.
   */
  onInternalError: (error: unknown) => void = () => {};

  #options: WhepPullOptions;
  #socket: ClientSocket;
  #rtpIn = 0;
  #rtcpIn = 0;
  #rtcpOut = 0;
  #closed = false;

  private constructor(
    options: WhepPullOptions,
    socket: ClientSocket,
    init: { location: string; answer: ReturnType<typeof parsePullAnswer> },
  ) {
    this.#options = options;
    this.#socket = socket;
    this.location = init.location;
    this.video = init.answer.video;
    this.audio = init.answer.audio;
    socket.onRtp = (packet, now) => {
      this.#rtpIn++;
      this.onRtp(packet, now);
    };
    socket.onRtcp = (packet, now) => {
      this.#rtcpIn++;
      this.onRtcp(packet, now);
    };
    socket.onInternalError = (e) => this.onInternalError(e);
    socket.onClosed = (reason: ClientCloseReason) => {
      if (this.#closed) return;
      this.close();
      this.onClosed(reason);
    };
  }

  /**
   * What the pull counted: `junk` are DTLS records the decoder threw on (bad input, dropped),
   * `internalErrors` exceptions under a datagram's handling (bugs; the pull reads on).
   */
  get counters() {
    const peer = this.#socket.peer;
    return {
      rtpIn: this.#rtpIn,
      rtcpIn: this.#rtcpIn,
      rtcpOut: this.#rtcpOut,
      decryptFailures: peer?.counters.decryptFailures ?? 0,
      junk: peer?.counters.junk ?? 0,
      internalErrors: this.#socket.counters.internalErrors,
    };
  }

  /** Posts the offer to `<baseUrl>/whep?target_id=<room>`, then runs ICE and DTLS. */
  static async open(options: WhepPullOptions): Promise<WhepPull> {
    const deadline = performance.now() + (options.timeoutMs ?? 5000);
    const socket = ClientSocket.bind(options.bindAddress, { silenceMs: options.silenceMs ?? 6000 });
    let pull: WhepPull | undefined;
    try {
      const localUfrag = randomString(8);
      const localPwd = randomString(24);
      const offer = buildPullOffer({
        ufrag: localUfrag,
        pwd: localPwd,
        fingerprint: options.certificate.fingerprint,
        profile: options.profile,
        codec: options.codec,
      });
      const endpoint = `${options.baseUrl}/whep?target_id=${encodeURIComponent(options.roomId)}`;
      const headers: Record<string, string> = {
        "Content-Type": "application/sdp",
        "X-Relay-Path": options.relayPath.join(","),
      };
      if (options.clusterToken) headers.Authorization = `Bearer ${options.clusterToken}`;
      let res: Response;
      try {
        res = await fetch(endpoint, {
          method: "POST",
          headers,
          body: offer,
          signal: AbortSignal.timeout(Math.max(100, deadline - performance.now())),
        });
      } catch (e) {
        throw new PullError(0, `no answer from ${options.baseUrl}: ${(e as Error).message.split("\n")[0]}`);
      }
      const text = await res.text();
      if (res.status !== 201) throw new PullError(res.status, `${res.status} ${text.trim().slice(0, 200)}`);
      const location = new URL(res.headers.get("Location") ?? "", endpoint).href;
      let answer: ReturnType<typeof parsePullAnswer>;
      try {
        answer = parsePullAnswer(text);
      } catch (e) {
        throw new PullError(502, `unusable answer: ${(e as Error).message}`);
      }
      if (answer.setup !== "passive") {
        throw new PullError(502, `answer has a=setup:${answer.setup}, not passive`);
      }
      pull = new WhepPull(options, socket, { location, answer });
      await socket.connect(
        {
          ice: {
            localUfrag,
            localPwd,
            remoteUfrag: answer.ufrag,
            remotePwd: answer.pwd,
            candidates: answer.candidates.map((c) => ({ hostname: c.address, port: c.port })),
            firstRtoMs: FIRST_CHECK_RTO_MS,
          },
          certificate: options.certificate,
          remoteFingerprint: answer.fingerprint,
        },
        Math.max(0, deadline - performance.now()),
      );
      return pull;
    } catch (e) {
      if (pull) pull.close();
      else socket.close();
      if (e instanceof PullError) throw e;
      const mismatch = /does not match the fingerprint/.test((e as Error).message);
      throw new PullError(mismatch ? 502 : 0, (e as Error).message);
    }
  }

  /** Protects and sends one compound RTCP packet upstream (PLI, NACK, receiver reports). */
  sendRtcp(packet: Uint8Array): void {
    if (this.#closed) return;
    if (this.#socket.peer?.sendRtcp(packet)) this.#rtcpOut++;
  }

  /** Ends the pull: DELETEs the session on the other node (not awaited) and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const headers: Record<string, string> = {};
    if (this.#options.clusterToken) headers.Authorization = `Bearer ${this.#options.clusterToken}`;
    fetch(this.location, { method: "DELETE", headers, signal: AbortSignal.timeout(2000) })
      .then((res) => res.body?.cancel())
      .catch(() => {});
    this.#socket.close();
  }
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(length: number): string {
  let out = "";
  for (const b of crypto.getRandomValues(new Uint8Array(length))) out += ALNUM[b % 62];
  return out;
}
