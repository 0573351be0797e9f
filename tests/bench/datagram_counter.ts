/**
 * Counting many viewers' media cheaply, so that a capacity benchmark measures the server and not its clients:
 * each viewer's socket (taken over from a {@link LightClient} once media flows) is drained with `recvmmsg`
 * through FFI, up to 64 datagrams per call into one reused buffer. Per RTP datagram only the plaintext header
 * is read (SSRC, sequence number) to count packets and the span of sequence numbers seen; one datagram in
 * `verifyEvery` is decrypted with the viewer's SRTP context to show the bytes are the real stream. Each socket
 * answers the server's consent checks and sends its own every 2 s (RFC 7675), and gets a 4 MiB receive buffer so a client starved for a few hundred ms by the scheduler does not lose
 * datagrams; the kernel's per-socket drop count (/proc/net/udp) says whether it did anyway. Linux x86-64.
 */
import type { SrtpContext } from "../../src/srtp/context.ts";
import { socketFd, socketFdUnavailableReason } from "../../src/net/socket_fd.ts";
import type { LightClient } from "./light_client.ts";

const SYMBOLS = {
  dup: { parameters: ["i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
} as const;

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const MSG_DONTWAIT = 0x40;
const BATCH = 64;
const SLOT_BYTES = 1536;
/** struct iovec and struct mmsghdr on 64-bit Linux; msg_len sits after the 56-byte msghdr. */
const IOVEC_BYTES = 16;
const MMSGHDR_BYTES = 64;
const MSG_LEN_OFFSET = 56;
/** Most SSRCs one viewer is expected to receive (video, audio, and room for a switch). */
const MAX_SSRCS = 4;
const RECEIVE_BUFFER_BYTES = 4 << 20;

/** One viewer's counts; sums over its SSRCs. */
export interface ViewerCounts {
  /** RTP datagrams received. */
  received: number;
  /** Sequence numbers spanned (first to highest, per SSRC, summed): what would have arrived without loss. */
  span: number;
  verified: number;
  verifyFailures: number;
}

/**
 * Sequence-number bookkeeping of one viewer (pure: tested beside). Loss shows as span − received; a packet
 * reordered behind the highest counts as received without moving the span.
 */
export class SequenceSpan {
  #ssrcs = new Uint32Array(MAX_SSRCS);
  #first = new Float64Array(MAX_SSRCS);
  #highest = new Float64Array(MAX_SSRCS);
  #count = 0;
  received = 0;
  /** Packets of SSRCs beyond the first {@link MAX_SSRCS} (counted as received, not in the span). */
  overflow = 0;

  add(ssrc: number, seq: number): void {
    this.received++;
    for (let i = 0; i < this.#count; i++) {
      if (this.#ssrcs[i] !== ssrc) continue;
      const highest = this.#highest[i];
      const delta = ((seq - (highest % 65536) + 98304) % 65536) - 32768;
      if (delta > 0) this.#highest[i] = highest + delta;
      return;
    }
    if (this.#count === MAX_SSRCS) {
      this.overflow++;
      return;
    }
    const i = this.#count++;
    this.#ssrcs[i] = ssrc;
    // Extended numbers start one cycle up, so a reordered packet just below the first stays positive.
    this.#first[i] = 65536 + seq;
    this.#highest[i] = 65536 + seq;
  }

  /** Sum over SSRCs of (highest − first + 1). */
  get span(): number {
    let span = this.overflow;
    for (let i = 0; i < this.#count; i++) span += this.#highest[i] - this.#first[i] + 1;
    return span;
  }
}

interface Viewer {
  fd: number;
  localPort: number;
  remoteSockaddr: Uint8Array;
  srtp: SrtpContext;
  client: LightClient;
  remote: Deno.NetAddr;
  sequence: SequenceSpan;
  verified: number;
  verifyFailures: number;
  sinceVerify: number;
}

/** Reads the sockets of many viewers with `recvmmsg` on a timer and counts their RTP. */
export class DatagramCounter {
  #lib = Deno.dlopen("libc.so.6", SYMBOLS);
  #viewers: Viewer[] = [];
  #data = new Uint8Array(BATCH * SLOT_BYTES);
  #headers = new Uint8Array(BATCH * MMSGHDR_BYTES);
  #headerView = new DataView(this.#headers.buffer);
  #scratch = new Uint8Array(SLOT_BYTES);
  #verifyEvery: number;
  // Kept so the iovec array outlives the constructor (the headers point into it).
  #iovecs: DataView;
  #timer: ReturnType<typeof setInterval> | undefined;
  #consentTimer: ReturnType<typeof setInterval> | undefined;
  #consentNext = 0;
  /** Why sampled packets failed to decrypt (SrtpContext.lastFailure), counted. */
  failureReasons: Record<string, number> = {};
  /** recvmmsg calls made (how much the polling costs). */
  calls = 0;

  constructor(o: { pollMs?: number; verifyEvery?: number } = {}) {
    this.#verifyEvery = o.verifyEvery ?? 100;
    const dataAddress = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#data)));
    const iovecs = new DataView(new ArrayBuffer(BATCH * IOVEC_BYTES));
    this.#iovecs = iovecs;
    const iovecAddress = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(iovecs)));
    for (let i = 0; i < BATCH; i++) {
      iovecs.setBigUint64(i * IOVEC_BYTES, dataAddress + BigInt(i * SLOT_BYTES), true);
      iovecs.setBigUint64(i * IOVEC_BYTES + 8, BigInt(SLOT_BYTES), true);
      const h = i * MMSGHDR_BYTES;
      this.#headerView.setBigUint64(h + 16, iovecAddress + BigInt(i * IOVEC_BYTES), true); // msg_iov
      this.#headerView.setBigUint64(h + 24, 1n, true); // msg_iovlen
    }
    this.#timer = setInterval(() => this.poll(), o.pollMs ?? 20);
    // Consent checks (RFC 7675) for every viewer every ~2 s, spread over 10 ticks of 200 ms.
    this.#consentTimer = setInterval(() => this.#sendConsent(), 200);
  }

  /** Takes over a connected light client's socket; returns the viewer's index in {@link counts}. */
  adopt(client: LightClient): number {
    let fd = -1;
    let localPort = 0;
    const { srtp, remote } = client.detach((port) => {
      const found = socketFd(port);
      if (found === undefined) {
        throw new Error(`no descriptor for UDP port ${port}: ${socketFdUnavailableReason}`);
      }
      fd = this.#lib.symbols.dup(found);
      if (fd < 0) throw new Error("dup failed");
      localPort = port;
    });
    const size = new Int32Array([RECEIVE_BUFFER_BYTES]);
    this.#lib.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
    const sockaddr = new Uint8Array(16);
    sockaddr[0] = 2; // AF_INET
    sockaddr[2] = remote.port >> 8;
    sockaddr[3] = remote.port & 0xff;
    remote.hostname.split(".").forEach((b, i) => sockaddr[4 + i] = Number(b));
    this.#viewers.push({
      fd,
      localPort,
      remoteSockaddr: sockaddr,
      srtp,
      client,
      remote,
      sequence: new SequenceSpan(),
      verified: 0,
      verifyFailures: 0,
      sinceVerify: 0,
    });
    return this.#viewers.length - 1;
  }

  /** Drains every socket. */
  poll(): void {
    const recvmmsg = this.#lib.symbols.recvmmsg;
    const data = this.#data;
    for (const viewer of this.#viewers) {
      for (;;) {
        this.calls++;
        const n = recvmmsg(viewer.fd, this.#headers, BATCH, MSG_DONTWAIT, null);
        if (n <= 0) break;
        for (let i = 0; i < n; i++) {
          const length = this.#headerView.getUint32(i * MMSGHDR_BYTES + MSG_LEN_OFFSET, true);
          const at = i * SLOT_BYTES;
          const first = data[at];
          if (first <= 3) {
            // STUN: the server's consent checks must be answered or it ends the session (RFC 7675).
            const response = viewer.client.checkResponse(data.slice(at, at + length), viewer.remote);
            if (response) this.#send(viewer, response);
            continue;
          }
          // RTP only (RFC 7983: 128–191; RTCP packet types 192–223 in the second byte).
          if (first < 128 || first > 191 || length < 12) continue;
          const type = data[at + 1];
          if (type >= 192 && type <= 223) continue;
          const ssrc =
            ((data[at + 8] << 24) | (data[at + 9] << 16) | (data[at + 10] << 8) | data[at + 11]) >>> 0;
          viewer.sequence.add(ssrc, (data[at + 2] << 8) | data[at + 3]);
          // Every viewer's own n-th packet: a swarm-wide count could keep landing on the same viewers.
          if (++viewer.sinceVerify >= this.#verifyEvery) {
            viewer.sinceVerify = 0;
            const copy = this.#scratch.subarray(0, length);
            copy.set(data.subarray(at, at + length));
            if (viewer.srtp.unprotectRtp(copy, copy)) viewer.verified++;
            else {
              viewer.verifyFailures++;
              const reason = viewer.srtp.lastFailure ?? "unknown";
              this.failureReasons[reason] = (this.failureReasons[reason] ?? 0) + 1;
            }
          }
        }
        if (n < BATCH) break;
      }
    }
  }

  /** Counts so far, one entry per adopted viewer, in adoption order. */
  counts(): ViewerCounts[] {
    return this.#viewers.map((v) => ({
      received: v.sequence.received,
      span: v.sequence.span,
      verified: v.verified,
      verifyFailures: v.verifyFailures,
    }));
  }

  /** Datagrams the kernel dropped on these sockets (receive buffer full), from /proc/net/udp. */
  kernelDrops(): number {
    const ports = new Set(this.#viewers.map((v) => v.localPort));
    let drops = 0;
    for (const line of Deno.readTextFileSync("/proc/net/udp").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 13) continue;
      const port = parseInt(fields[1].split(":")[1], 16);
      if (ports.has(port)) drops += Number(fields[12]);
    }
    return drops;
  }

  close(): void {
    clearInterval(this.#timer);
    clearInterval(this.#consentTimer);
    for (const v of this.#viewers) this.#lib.symbols.close(v.fd);
    this.#viewers = [];
    this.#lib.close();
  }

  #sendConsent(): void {
    const tick = this.#consentNext++ % 10;
    for (let i = tick; i < this.#viewers.length; i += 10) {
      const v = this.#viewers[i];
      this.#send(v, v.client.consentCheck());
    }
  }

  #send(viewer: Viewer, datagram: Uint8Array): void {
    this.#lib.symbols.sendto(
      viewer.fd,
      datagram,
      BigInt(datagram.length),
      MSG_DONTWAIT,
      viewer.remoteSockaddr,
      16,
    );
  }
}
