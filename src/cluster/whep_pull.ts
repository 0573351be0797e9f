/**
 * A server-to-server WHEP pull: this node plays a WHEP viewer of a room on another node. Full ICE as the
 * controlling agent (checks with USE-CANDIDATE to every candidate, the first to answer is kept), werift's
 * DTLS client with the node's own certificate (checked against the answer's fingerprint both ways), and the
 * project's SRTP context. Decrypted RTP/RTCP go to `onRtp`/`onRtcp`; `sendRtcp` carries the room's PLIs,
 * NACKs and receiver reports upstream, so it can stand as a {@link RoomSource}.
 *
 * Each pull has its own UDP socket (an ephemeral port on UDP_ADDRESS): the shared media socket routes by
 * the server's ICE-lite rules, which a client session does not follow, and a pull per relayed room (not per
 * viewer) costs one socket and one read loop. The other node answers to the address the datagrams came
 * from, so no extra port has to be opened towards it.
 */
import { Buffer } from "node:buffer";
import { classes, DtlsClient, Message, methods, parseMessage } from "werift";
import type { ServerCertificate } from "../peer/certificate.ts";
import { certificateFingerprint } from "../peer/peer.ts";
import { answerCheck } from "../peer/ice_lite.ts";
import { createSrtpContext, type SrtpContext } from "../srtp/context.ts";
import type { ChosenCodec } from "../sdp/codecs.ts";
import { buildPullOffer, parsePullAnswer } from "./pull_sdp.ts";
import { receiveEach } from "../net/datagrams.ts";
import { clientDtlsTransport } from "../peer/dtls_transport.ts";

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

const CONSENT_INTERVAL_MS = 2000;
const CHECK_RETRY_MS = 50;

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
  /** `junk`: datagrams the DTLS or STUN decoder threw on (bad input, dropped). */
  readonly counters = { rtpIn: 0, rtcpIn: 0, rtcpOut: 0, decryptFailures: 0, junk: 0, internalErrors: 0 };

  #options: WhepPullOptions;
  #conn: Deno.DatagramConn;
  #remote: Deno.NetAddr | undefined;
  #localUfrag: string;
  #localPwd: string;
  #remoteUfrag: string;
  #remotePwd: string;
  #srtp: SrtpContext | undefined;
  #dtls: DtlsClient | undefined;
  #dtlsData: ((data: Buffer) => void) | undefined;
  #pendingChecks = new Map<string, Deno.NetAddr>();
  #onCheckAnswered: ((from: Deno.NetAddr) => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastHeard = performance.now();
  #closed = false;
  #tieBreaker = BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 52)) << 12n);

  private constructor(
    options: WhepPullOptions,
    conn: Deno.DatagramConn,
    init: {
      location: string;
      localUfrag: string;
      localPwd: string;
      answer: ReturnType<typeof parsePullAnswer>;
    },
  ) {
    this.#options = options;
    this.#conn = conn;
    this.location = init.location;
    this.#localUfrag = init.localUfrag;
    this.#localPwd = init.localPwd;
    this.#remoteUfrag = init.answer.ufrag;
    this.#remotePwd = init.answer.pwd;
    this.video = init.answer.video;
    this.audio = init.answer.audio;
  }

  /** Posts the offer to `<baseUrl>/whep?target_id=<room>`, then runs ICE and DTLS. */
  static async open(options: WhepPullOptions): Promise<WhepPull> {
    const deadline = performance.now() + (options.timeoutMs ?? 5000);
    const conn = Deno.listenDatagram({ transport: "udp", hostname: options.bindAddress, port: 0 });
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
      pull = new WhepPull(options, conn, { location, localUfrag, localPwd, answer });
      await pull.#establish(answer, deadline);
      return pull;
    } catch (e) {
      if (pull) pull.close();
      else {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      throw e instanceof PullError ? e : new PullError(0, (e as Error).message);
    }
  }

  /** Protects and sends one compound RTCP packet upstream (PLI, NACK, receiver reports). */
  sendRtcp(packet: Uint8Array): void {
    if (this.#closed || !this.#srtp) return;
    this.counters.rtcpOut++;
    this.#send(this.#srtp.protectRtcp(packet));
  }

  /** Ends the pull: DELETEs the session on the other node (not awaited) and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const headers: Record<string, string> = {};
    if (this.#options.clusterToken) headers.Authorization = `Bearer ${this.#options.clusterToken}`;
    fetch(this.location, { method: "DELETE", headers, signal: AbortSignal.timeout(2000) })
      .then((res) => res.body?.cancel())
      .catch(() => {});
    try {
      this.#dtls?.close();
    } catch { /* nothing to tell a vanished node */ }
    this.#srtp?.close();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  #end(reason: PullCloseReason): void {
    if (this.#closed) return;
    this.close();
    this.onClosed(reason);
  }

  async #establish(answer: ReturnType<typeof parsePullAnswer>, deadline: number): Promise<void> {
    this.#readLoop().catch(() => this.#end("socket-error"));
    const candidates = answer.candidates.map((c): Deno.NetAddr => ({
      transport: "udp",
      hostname: c.address,
      port: c.port,
    }));
    // ICE (RFC 8445 §7.2.4, aggressive nomination towards an ICE-lite peer): every candidate is checked until
    // one answers; that pair is the one used.
    this.#remote = await new Promise<Deno.NetAddr>((resolve, reject) => {
      this.#onCheckAnswered = resolve;
      const retry = () => {
        if (!this.#onCheckAnswered || this.#closed) return;
        if (performance.now() > deadline) {
          this.#onCheckAnswered = undefined;
          reject(
            new PullError(
              0,
              `ICE checks to ${candidates.map((c) => `${c.hostname}:${c.port}`).join(", ")} unanswered`,
            ),
          );
          return;
        }
        for (const to of candidates) this.#sendCheck(to, true);
        setTimeout(retry, CHECK_RETRY_MS);
      };
      retry();
    });
    const transport = clientDtlsTransport((data) => this.#send(data));
    const cert = this.#options.certificate;
    const dtls = new DtlsClient({
      transport,
      cert: cert.certPem,
      key: cert.keyPem,
      signatureHash: cert.signatureHash as never,
      srtpProfiles: [7, 1],
      extendedMasterSecret: true,
    });
    this.#dtls = dtls;
    // DtlsClient replaced transport.onData with its record handler.
    this.#dtlsData = (data) => transport.onData(data, [this.#remote!.hostname, this.#remote!.port]);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new PullError(0, "DTLS handshake timed out")),
        Math.max(0, deadline - performance.now()),
      );
      dtls.onConnect.once(() => {
        clearTimeout(timer);
        resolve();
      });
      dtls.onError.once((e) => {
        clearTimeout(timer);
        reject(new PullError(0, `DTLS failed: ${e}`));
      });
      dtls.connect().catch((e) => {
        clearTimeout(timer);
        reject(new PullError(0, `DTLS failed: ${e}`));
      });
    });
    const der = dtls.remoteCertificate;
    if (!der || certificateFingerprint(der, answer.fingerprint.algorithm) !== answer.fingerprint.value) {
      throw new PullError(502, "the node's DTLS certificate does not match the fingerprint in its answer");
    }
    const profile = dtls.srtp.srtpProfile as number;
    const keys = dtls.extractSessionKeys(16, profile === 7 ? 12 : 14);
    this.#srtp = createSrtpContext({
      profile,
      localMasterKey: keys.localKey,
      localMasterSalt: keys.localSalt,
      remoteMasterKey: keys.remoteKey,
      remoteMasterSalt: keys.remoteSalt,
    });
    dtls.onClose.subscribe(() => this.#end("dtls-closed"));
    this.#lastHeard = performance.now();
    // Consent freshness (RFC 7675) keeps the other node's session; its silence ends this one.
    const silenceMs = this.#options.silenceMs ?? 6000;
    let sinceCheck = 0;
    this.#timer = setInterval(() => {
      sinceCheck += 1000;
      if (sinceCheck >= CONSENT_INTERVAL_MS) {
        sinceCheck = 0;
        this.#sendCheck(this.#remote!, false);
      }
      if (performance.now() - this.#lastHeard > silenceMs) this.#end("silent");
    }, 1000);
  }

  #readLoop(): Promise<void> {
    // One buffer for every read: media is decrypted and handed on in place (the room copies what it keeps);
    // STUN and DTLS get a copy, since werift may hold on to them.
    return receiveEach(this.#conn, () => this.#closed, new Uint8Array(65536), this.#handleDatagram);
  }

  /**
   * One datagram from the socket. Bad input is dropped where it is decoded; anything thrown past that is a
   * bug (in this pull or in the room it feeds), counted and reported without ending the read loop, so one
   * bad packet cannot end the relay for every viewer.
   */
  #handleDatagram = (data: Uint8Array, from: Deno.NetAddr): void => {
    try {
      const first = data[0];
      if (first <= 3) {
        this.#handleStun(data.slice(), from);
        return;
      }
      // Only the address ICE settled on may send DTLS and media.
      const remote = this.#remote;
      if (!remote || from.hostname !== remote.hostname || from.port !== remote.port) return;
      if (first >= 20 && first <= 63) this.#handleDtls(data);
      else if (first >= 128 && first <= 191 && this.#srtp) this.#handleSrtp(data);
    } catch (e) {
      this.counters.internalErrors++;
      this.onInternalError(e);
    }
  };

  #handleDtls(data: Uint8Array): void {
    try {
      this.#dtlsData?.(Buffer.from(data.slice()));
    } catch {
      // werift throws on records it cannot use (e.g. a flight retransmitted under load): bad input.
      this.counters.junk++;
    }
  }

  #handleSrtp(data: Uint8Array): void {
    const srtp = this.#srtp!;
    const now = performance.now();
    if (data[1] >= 192 && data[1] <= 223) {
      const plain = srtp.unprotectRtcp(data, data);
      if (!plain) {
        this.counters.decryptFailures++;
        return;
      }
      this.#lastHeard = now;
      this.counters.rtcpIn++;
      this.onRtcp(plain, now);
      return;
    }
    const plain = srtp.unprotectRtp(data, data);
    if (!plain) {
      this.counters.decryptFailures++;
      return;
    }
    this.#lastHeard = now;
    this.counters.rtpIn++;
    this.onRtp(plain, now);
  }

  #handleStun(data: Uint8Array, from: Deno.NetAddr): void {
    if (data[0] === 0x00 && data[1] === 0x01) {
      // The other node proves this address and refreshes consent with its own requests (RFC 7675).
      const answer = answerCheck(
        data,
        { localUfrag: this.#localUfrag, localPwd: this.#localPwd, remoteUfrag: this.#remoteUfrag },
        from,
      );
      if (answer) this.#send(answer.response, from);
      return;
    }
    // Undefined unless MESSAGE-INTEGRITY holds under the other node's password.
    let message: ReturnType<typeof parseMessage>;
    try {
      message = parseMessage(
        Buffer.from(data.buffer, data.byteOffset, data.length),
        Buffer.from(this.#remotePwd, "utf8"),
      );
    } catch {
      this.counters.junk++;
      return;
    }
    if (!message || message.messageMethod !== methods.BINDING) return;
    if (message.messageClass !== classes.RESPONSE) return;
    const sentTo = this.#pendingChecks.get(message.transactionIdHex);
    if (!sentTo || sentTo.hostname !== from.hostname || sentTo.port !== from.port) return;
    this.#pendingChecks.delete(message.transactionIdHex);
    this.#lastHeard = performance.now();
    const answered = this.#onCheckAnswered;
    this.#onCheckAnswered = undefined;
    answered?.(from);
  }

  #sendCheck(to: Deno.NetAddr, nominate: boolean): void {
    if (this.#closed) return;
    const request = new Message(methods.BINDING, classes.REQUEST);
    request.setAttribute("USERNAME", `${this.#remoteUfrag}:${this.#localUfrag}`);
    request.setAttribute("PRIORITY", 1853824767);
    request.setAttribute("ICE-CONTROLLING", this.#tieBreaker);
    if (nominate) request.setAttribute("USE-CANDIDATE", null);
    request.addMessageIntegrity(Buffer.from(this.#remotePwd, "utf8"));
    request.addFingerprint();
    // Only recent transactions can still be answered; a bounded map keeps a lost-packet storm from growing it.
    if (this.#pendingChecks.size > 64) this.#pendingChecks.clear();
    this.#pendingChecks.set(request.transactionIdHex, to);
    this.#send(new Uint8Array(request.bytes), to);
  }

  #send(data: Uint8Array, to: Deno.NetAddr | undefined = this.#remote): void {
    if (this.#closed || !to) return;
    this.#conn.send(data, to).catch(() => {});
  }
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(length: number): string {
  let out = "";
  for (const b of crypto.getRandomValues(new Uint8Array(length))) out += ALNUM[b % 62];
  return out;
}
