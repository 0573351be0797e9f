/**
 * The fuzz targets: every entry point that sees network bytes, each fed random and mutated inputs derived
 * from real ones (Chromium offers, signed STUN checks, the recorded DTLS handshake, SRTP/RTCP from the test
 * clients, H.264 from the local ffmpeg). Beyond "nothing throws", each checks the invariants that matter:
 * forged STUN never gets an answer, a datagram from an unknown address never makes the server send, the
 * connected sessions survive whatever arrives, HTTP never answers 500.
 */
import { AccessPolicy } from "../../src/http/auth.ts";
import { Buffer } from "node:buffer";
import { classes, Message, methods, parseMessage, RtpHeader, RtpPacket } from "werift";
import { classifyDatagram } from "../../src/net/demux.ts";
import { answerCheck, stunLocalUfrag } from "../../src/peer/ice_lite.ts";
import { Peer, type PeerAddress } from "../../src/peer/peer.ts";
import { parseOffer, SdpError } from "../../src/sdp/offer.ts";
import { SessionError } from "../../src/rooms/errors.ts";
import { H264Depacketizer, MAX_ACCESS_UNIT_BYTES } from "../../src/rtp/h264_depacketizer.ts";
import { type VideoCodec, videoCodecSupport } from "../../src/rtp/video_codec.ts";
import { MAX_FRAME_BYTES } from "../../src/rtp/frame_buffer.ts";
import { type FixtureCodec, type FixturePacket, rtpFixture } from "../fixtures/rtp_fixture.ts";
import {
  buildBye,
  buildEmptyReceiverReport,
  buildNack,
  buildPli,
  buildReceiverReport,
  buildRemb,
  buildSenderReport,
  compound,
  readRtcp,
} from "../../src/rtp/rtcp.ts";
import { createRouter } from "../../src/http/routes.ts";
import { serveUi } from "../../src/http/ui.ts";
import { RateLimiter } from "../../src/http/rate_limit.ts";
import { RoomDirectory } from "../../src/rooms/directory.ts";
import { RoomBus } from "../../src/rooms/bus.ts";
import { RoomFeed } from "../../src/http/notifications.ts";
import { ThumbnailFiles } from "../../src/http/rooms.ts";
import {
  encodeTestStream,
  groupAccessUnits,
  packetizeStream,
  splitAnnexB,
} from "../fixtures/h264_fixture.ts";
import type { FuzzTarget } from "./engine.ts";
import { mutateBytes, mutateSdp, randomDatagram, type Rng } from "./mutate.ts";
import { answerCredentials, rtpHeader } from "./werift_client.ts";
import type { World } from "./world.ts";

/** What the targets share: the in-process server and the seed inputs recorded from it. */
export interface FuzzContext {
  world: World;
  /** H.264 RTP payloads of a short ffmpeg-encoded stream, in order. */
  h264: { payload: Uint8Array; seq: number; timestamp: number; marker: boolean }[];
  /** VP8, VP9, H.265 and AV1 RTP packets of short ffmpeg-encoded streams, in order. */
  codecs: Map<FixtureCodec, FixturePacket[]>;
  closeables: (() => void | Promise<void>)[];
}

/** Builds the shared context; the world must already be running. */
export async function createContext(world: World): Promise<FuzzContext> {
  const stream = await encodeTestStream({ width: 160, height: 96, frames: 12, gop: 6, slices: 2 });
  const h264 = packetizeStream(groupAccessUnits(splitAnnexB(stream)), 300, 65500);
  const codecs = new Map<FixtureCodec, FixturePacket[]>();
  for (const codec of ["vp8", "vp9", "h265", "av1"] as const) {
    codecs.set(codec, await rtpFixture(codec, { width: 160, height: 96, frames: 12, gop: 6 }));
  }
  return { world, h264, codecs, closeables: [] };
}

/** All targets over one context. */
export function createTargets(ctx: FuzzContext): FuzzTarget[] {
  return [
    demuxTarget(ctx),
    stunTarget(ctx),
    udpTarget(ctx),
    dtlsTarget(ctx),
    srtpTarget(ctx),
    rtpTarget(ctx),
    h264Target(ctx),
    codecsTarget(ctx),
    rtcpTarget(),
    sdpTarget(ctx),
    sessionsTarget(ctx),
    httpTarget(ctx),
  ];
}

class InvariantError extends Error {
  override name = "InvariantError";
}

function hex(data: Uint8Array): string {
  return [...data.subarray(0, 40)].map((b) => b.toString(16).padStart(2, "0")).join("") +
    (data.length > 40 ? `… (${data.length} bytes)` : "");
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new InvariantError(message);
}

/** The world's sessions are still up: the publisher and every viewer connected, the room live. */
function checkSessionsAlive(ctx: FuzzContext): void {
  const room = ctx.world.room;
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new InvariantError(`${message}; last close: ${ctx.world.closes.at(-1) ?? "none"}`);
  };
  check(
    room.live && room.publisher.state === "connected",
    `publisher session died (${room.publisher.state})`,
  );
  check(room.viewers.size === ctx.world.viewers.length, `viewer count fell to ${room.viewers.size}`);
  for (const v of room.viewers) check(v.peer.state === "connected", `viewer session died (${v.peer.state})`);
}

// ---------------------------------------------------------------------------------------------------------
// STUN inputs

interface StunParty {
  localUfrag: string;
  localPwd: string;
  remoteUfrag: string;
  address: PeerAddress;
}

function parties(ctx: FuzzContext): StunParty[] {
  const w = ctx.world;
  const answers = [w.publisherAnswer, ...w.viewerAnswers];
  const clients = [w.publisher, ...w.viewers];
  return answers.map((answer, i) => {
    const server = answerCredentials(answer);
    return {
      localUfrag: server.ufrag,
      localPwd: server.pwd,
      remoteUfrag: clients[i].ufrag,
      address: clients[i].address,
    };
  });
}

type StunKind = "signed" | "wrong-key" | "unsigned" | "other";

/** A binding request (or another STUN message) for `party`, signed as `kind` says. */
function stunInput(rng: Rng, party: StunParty): { data: Uint8Array; kind: StunKind } {
  const kind: StunKind = rng.pick(["signed", "signed", "wrong-key", "unsigned", "other"] as const);
  const method = kind === "other" ? rng.pick([methods.BINDING, 0x003, 0x004, 0x00f]) : methods.BINDING;
  const cls = kind === "other"
    ? rng.pick([classes.REQUEST, classes.INDICATION, classes.RESPONSE, classes.ERROR])
    : classes.REQUEST;
  const message = new Message(method, cls, Buffer.from(rng.bytes(12)));
  const username = rng.chance(0.85) ? `${party.localUfrag}:${party.remoteUfrag}` : rng.pick([
    `${party.localUfrag}:`,
    `:${party.remoteUfrag}`,
    party.localUfrag,
    "x".repeat(rng.int(600)),
    "",
  ]);
  if (rng.chance(0.95)) message.setAttribute("USERNAME", username);
  if (rng.chance(0.8)) message.setAttribute("PRIORITY", rng.u32());
  if (rng.chance(0.5)) message.setAttribute("ICE-CONTROLLING", BigInt(rng.u32()) << 16n);
  else if (rng.chance(0.3)) message.setAttribute("ICE-CONTROLLED", BigInt(rng.u32()));
  if (rng.chance(0.5)) message.setAttribute("USE-CANDIDATE", null);
  if (kind === "signed") message.addMessageIntegrity(Buffer.from(party.localPwd, "utf8"));
  if (kind === "wrong-key") {
    const wrong = rng.chance(0.5)
      // Change the last character to one it is not (the random password may itself end in "x").
      ? party.localPwd.slice(0, -1) + (party.localPwd.endsWith("x") ? "y" : "x")
      : new TextDecoder().decode(rng.bytes(8));
    message.addMessageIntegrity(Buffer.from(wrong, "utf8"));
  }
  if (rng.chance(0.9)) message.addFingerprint();
  return { data: new Uint8Array(message.bytes), kind };
}

/** Mutates a STUN message, then (usually) repairs the length field and FINGERPRINT so parsing goes deep. */
function mutateStun(rng: Rng, data: Uint8Array): Uint8Array {
  const out = mutateBytes(rng, data, [], 1200);
  if (out.length >= 20 && rng.chance(0.6)) {
    new DataView(out.buffer, out.byteOffset).setUint16(2, (out.length - 20) & 0xfffc);
    // 0x8028 = FINGERPRINT, the last attribute when present.
    const at = out.length - 8;
    if (at >= 20 && out[at] === 0x80 && out[at + 1] === 0x28) {
      const crc = (crc32(out.subarray(0, at)) ^ 0x5354554e) >>> 0;
      new DataView(out.buffer, out.byteOffset).setUint32(at + 4, crc);
    }
  }
  return out;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------------
// Targets

function demuxTarget(ctx: FuzzContext): FuzzTarget {
  const seeds = () => [...ctx.world.publisher.dtlsSent, ...ctx.world.viewers.flatMap((v) => v.dtlsSent)];
  const counts: Record<string, number> = {};
  return {
    name: "demux",
    weight: 10,
    run(rng) {
      const data = rng.chance(0.5) ? randomDatagram(rng) : mutateBytes(rng, rng.pick(seeds()));
      const kind = classifyDatagram(data);
      counts[kind] = (counts[kind] ?? 0) + 1;
      const first = data[0];
      if (kind === "stun") check(first <= 3 && data.length >= 20, "stun misclassified");
      if (kind === "dtls") check(first >= 20 && first <= 63 && data.length >= 13, "dtls misclassified");
      if (kind === "rtp" || kind === "rtcp") check(first >= 128 && first <= 191 && data.length >= 8, "rtp");
      if (kind === "rtp") check(data.length >= 12, "short rtp");
    },
    stats: () => counts,
  };
}

function stunTarget(ctx: FuzzContext): FuzzTarget {
  const all = parties(ctx);
  let answered = 0;
  let routed = 0;
  return {
    name: "stun",
    weight: 12,
    run(rng) {
      const party = rng.pick(all);
      const { data: clean, kind } = stunInput(rng, party);
      const data = rng.chance(0.6) ? mutateStun(rng, clean) : clean;
      const ufrag = stunLocalUfrag(data);
      check(ufrag === undefined || typeof ufrag === "string", "ufrag type");
      if (ufrag === party.localUfrag) routed++;
      const from = { hostname: `127.0.0.${1 + rng.int(4)}`, port: 1 + rng.int(65535) };
      const answer = answerCheck(data, party, from);
      if (kind !== "signed") check(answer === undefined, `a ${kind} check was answered`);
      if (answer) {
        answered++;
        // The response must be a well-formed, signed success response.
        const parsed = parseMessage(Buffer.from(answer.response), Buffer.from(party.localPwd, "utf8"));
        check(parsed?.messageClass === classes.RESPONSE, "malformed success response");
      }
    },
    stats: () => ({ answered, routed }),
  };
}

function udpTarget(ctx: FuzzContext): FuzzTarget {
  const w = ctx.world;
  const all = parties(ctx);
  const known = new Set(all.map((p) => `${p.address.hostname}|${p.address.port}`));
  // Encrypted media from the real clients, to mutate and replay.
  const srtpSeeds: Uint8Array[] = [];
  for (let i = 0; i < 32; i++) {
    const p = ctx.h264[i % ctx.h264.length];
    srtpSeeds.push(w.publisher.protectRtp(
      rtpHeader({
        payloadType: w.room.video.payloadType,
        sequenceNumber: 30000 + i,
        timestamp: p.timestamp,
        ssrc: 7,
      }),
      p.payload,
    ));
  }
  for (const v of w.viewers) {
    srtpSeeds.push(v.protectRtcp(compound(buildEmptyReceiverReport(9), buildPli(9, 1))));
  }
  let errorsBefore = 0;
  let caught = 0;
  return {
    name: "udp",
    weight: 16,
    run(rng) {
      const party = rng.pick(all);
      const unknownSource = rng.chance(0.5);
      const from = unknownSource
        ? { hostname: `127.0.0.${1 + rng.int(3)}`, port: 1 + rng.int(65535) }
        : party.address;
      if (unknownSource && known.has(`${from.hostname}|${from.port}`)) return;
      let data: Uint8Array;
      const r = rng.int(5);
      if (r === 0) {
        const { data: stun, kind } = stunInput(rng, party);
        // A correctly signed check from a stranger's address would legitimately move the session there.
        data = unknownSource && kind === "signed"
          ? mutateBytes(rng, stun.subarray(0, stun.length - 8))
          : stun;
        if (rng.chance(0.5)) data = mutateStun(rng, data);
        if (unknownSource && kind === "signed" && data.length >= 20) data[data.length - 1] ^= 0x55;
      } else if (r === 1) {
        const seeds = [...w.publisher.dtlsSent, ...w.viewers.flatMap((v) => v.dtlsSent)];
        data = rng.chance(0.2) ? rng.pick(seeds).slice() : mutateBytes(rng, rng.pick(seeds), seeds);
      } else if (r === 2) {
        data = mutateBytes(rng, rng.pick(srtpSeeds), srtpSeeds);
      } else {
        data = randomDatagram(rng);
      }
      const out = w.socket.counters.datagramsOut;
      errorsBefore = w.socket.counters.internalErrors;
      w.socket.handleDatagram(data, from, performance.now());
      if (w.socket.counters.internalErrors > errorsBefore) {
        caught++;
        throw new InvariantError(
          `handleDatagram swallowed an exception for a ${classifyDatagram(data)} datagram`,
        );
      }
      if (unknownSource) {
        check(
          w.socket.counters.datagramsOut === out,
          "the server answered a datagram from an unknown address",
        );
      }
      try {
        checkSessionsAlive(ctx);
      } catch (e) {
        throw new InvariantError(`${(e as Error).message}; datagram ${hex(data)}`);
      }
    },
    stats: () => ({ caught, junk: w.socket.counters.junk, unknownPeer: w.socket.counters.unknownPeer }),
  };
}

function dtlsTarget(ctx: FuzzContext): FuzzTarget {
  const w = ctx.world;
  const seeds = () => [...w.publisher.dtlsSent, ...w.viewers.flatMap((v) => v.dtlsSent)];
  const from = { hostname: "127.0.0.9", port: 40000 };
  let peer: Peer | undefined;
  let peers = 0;
  let sent = 0;
  let deep = 0;
  let lastSent: Uint8Array | undefined;
  let flight4Sent = false;
  const fresh = (): Peer => {
    peers++;
    const p = new Peer({
      id: `fuzz-${peers}`,
      localUfrag: "fuzzsrv1",
      localPwd: "fuzzserverpasswordfuzzserver",
      remoteUfrag: "fuzzcli1",
      remotePwd: "fuzzclientpasswordfuzzclient",
      remoteFingerprint: { algorithm: "sha-256", value: w.clientCertificate.fingerprint },
      certificate: w.certificate,
      transmit: (data) => {
        sent++;
        lastSent = data;
        // A ServerHello (handshake type 2) in the first record means the cookie exchange was passed.
        if (data[0] === 22 && data.length > 13 && data[13] === 2) flight4Sent = true;
      },
      events: {
        onConnected() {},
        onClosed() {},
      },
      now: performance.now(),
      consentTimeoutMs: 3_600_000,
    });
    const check = new Message(methods.BINDING, classes.REQUEST);
    check.setAttribute("USERNAME", "fuzzsrv1:fuzzcli1");
    check.addMessageIntegrity(Buffer.from("fuzzserverpasswordfuzzserver", "utf8"));
    check.addFingerprint();
    p.handleStun(new Uint8Array(check.bytes), from, performance.now());
    return p;
  };
  return {
    name: "dtls",
    weight: 3,
    async run(rng) {
      const records = seeds();
      if (rng.chance(0.15)) {
        // Deep mode: a fresh handshake that gets past the cookie exchange, so the server builds its flight 4
        // and then parses (mutated) client certificates, key exchanges, verifies and Finished messages.
        peer?.close("deleted");
        peer = fresh();
        const [hello1, hello2, ...flight5] = w.publisher.dtlsSent;
        lastSent = undefined;
        flight4Sent = false;
        peer.handleDtls(hello1, from, performance.now());
        await new Promise((r) => setTimeout(r, 0));
        const cookie = lastSent ? helloVerifyCookie(lastSent) : undefined;
        const hello = cookie ? withCookie(hello2, cookie) : undefined;
        if (!hello) return;
        peer.handleDtls(rng.chance(0.2) ? mutateBytes(rng, hello) : hello, from, performance.now());
        await new Promise((r) => setTimeout(r, 0));
        if (flight4Sent) deep++;
        for (const record of flight5) {
          const data = rng.chance(0.5) ? mutateBytes(rng, record, records) : record;
          peer.handleDtls(data, from, performance.now());
        }
        await new Promise((r) => setTimeout(r, 0));
        return;
      }
      if (!peer || peer.state === "closed" || rng.chance(0.02)) {
        peer?.close("deleted");
        peer = fresh();
      }
      const count = 1 + rng.int(3);
      for (let i = 0; i < count; i++) {
        const data = rng.chance(0.3)
          ? rng.pick(records).slice()
          : rng.chance(0.8)
          ? mutateBytes(rng, rng.pick(records), records)
          : randomDatagram(rng);
        if (data.length > 0 && rng.chance(0.5)) data[0] = rng.pick([20, 21, 22, 23, 24, 25, 63]);
        peer.handleDtls(data, from, performance.now());
      }
    },
    stats: () => ({ peers, sent, deep }),
  };
}

/** The cookie of a HelloVerifyRequest record (RFC 6347 §4.2.1), if `record` is one. */
function helloVerifyCookie(record: Uint8Array): Uint8Array | undefined {
  // 13-byte record header, 12-byte handshake header (type 3), server_version, cookie<0..2^8-1>.
  if (record.length < 28 || record[0] !== 22 || record[13] !== 3) return undefined;
  const length = record[27];
  return record.length >= 28 + length ? record.slice(28, 28 + length) : undefined;
}

/** A copy of a recorded ClientHello-with-cookie carrying `cookie` instead (same length only). */
function withCookie(hello: Uint8Array, cookie: Uint8Array): Uint8Array | undefined {
  // Record header 13, handshake header 12, client_version 2, random 32, session_id<0..32>, cookie<0..255>.
  if (hello.length < 60 || hello[0] !== 22 || hello[13] !== 1) return undefined;
  const at = 13 + 12 + 2 + 32 + 1 + hello[59];
  if (hello[at] !== cookie.length) return undefined;
  const out = hello.slice();
  out.set(cookie, at + 1);
  return out;
}

/** Plain RTP seeds: fixture payloads with header extensions, CSRCs and padding. */
function rtpSeeds(ctx: FuzzContext): Uint8Array[] {
  const pt = ctx.world.room.video.payloadType;
  const seeds: Uint8Array[] = [];
  ctx.h264.slice(0, 24).forEach((p, i) => {
    const header = new RtpHeader({
      payloadType: pt,
      sequenceNumber: p.seq,
      timestamp: p.timestamp,
      ssrc: 0x1234,
      marker: p.marker,
    });
    if (i % 3 === 1) {
      header.extension = true;
      header.extensions = [{ id: 3, payload: Buffer.from([1, 2, 3]) }, {
        id: 1,
        payload: Buffer.from([0, 7]),
      }];
    }
    if (i % 4 === 2) header.csrc = [1, 2, 3];
    seeds.push(new Uint8Array(new RtpPacket(header, Buffer.from(p.payload)).serialize()));
  });
  return seeds;
}

function srtpTarget(ctx: FuzzContext): FuzzTarget {
  const w = ctx.world;
  const room = w.room;
  let sequence = 1000;
  let forwardedBefore = 0;
  return {
    name: "srtp",
    weight: 8,
    run(rng) {
      const r = rng.int(4);
      const now = performance.now();
      if (r <= 1) {
        // Well-encrypted publisher RTP with fuzzed contents: reaches Room.handlePublisherRtp.
        const p = rng.pick(ctx.h264);
        const payload = rng.chance(0.5)
          ? mutateBytes(rng, p.payload, ctx.h264.map((x) => x.payload))
          : p.payload;
        sequence = rng.chance(0.9) ? (sequence + 1) & 0xffff : rng.int(65536);
        const header = rtpHeader({
          payloadType: rng.chance(0.9) ? room.video.payloadType : rng.int(128),
          sequenceNumber: sequence,
          timestamp: rng.chance(0.9) ? p.timestamp : rng.u32(),
          ssrc: rng.chance(0.95) ? 0x1234 : rng.u32(),
          marker: rng.chance(0.5) ? p.marker : rng.chance(0.5),
        });
        header.padding = rng.chance(0.05);
        if (header.padding) header.paddingSize = 1 + rng.int(255);
        const data = w.publisher.protectRtp(header, payload);
        srtpInput(
          w,
          room.publisher,
          rng.chance(0.1) ? mutateBytes(rng, data) : data,
          false,
          w.publisher.address,
          now,
        );
      } else if (r === 2) {
        // Well-encrypted viewer RTCP with fuzzed contents: NACKs, PLIs, reports.
        const i = rng.int(w.viewers.length);
        const viewer = [...room.viewers][i];
        const plain = rtcpInput(rng, viewer?.video?.ssrc ?? 1);
        let data: Uint8Array;
        try {
          data = w.viewers[i].protectRtcp(plain);
        } catch {
          return; // too mangled for the client's SRTCP to encrypt
        }
        if (viewer) srtpInput(w, viewer.peer, data, true, w.viewers[i].address, now);
      } else {
        const data = randomDatagram(rng);
        if (data.length > 1) data[0] = 0x80 | (data[0] & 0x3f);
        srtpInput(w, room.publisher, data, rng.chance(0.5), w.publisher.address, now);
      }
      checkSessionsAlive(ctx);
    },
    stats: () => {
      const forwarded = [...room.viewers].reduce((n, v) => n + v.peer.counters.rtpOut, 0) - forwardedBefore;
      forwardedBefore += forwarded;
      return { forwarded, decryptFailures: room.publisher.counters.decryptFailures };
    },
  };
}

function rtpTarget(ctx: FuzzContext): FuzzTarget {
  const seeds = rtpSeeds(ctx);
  const room = ctx.world.room;
  return {
    name: "rtp",
    weight: 10,
    run(rng) {
      const data = rng.chance(0.15) ? randomDatagram(rng) : mutateBytes(rng, rng.pick(seeds), seeds);
      if (data.length > 0 && rng.chance(0.7)) data[0] = 0x80 | (data[0] & 0x3f);
      room.handlePublisherRtp(data, performance.now());
      checkSessionsAlive(ctx);
    },
  };
}

function h264Target(ctx: FuzzContext): FuzzTarget {
  let depacketizer = new H264Depacketizer();
  let units = 0;
  let keyframes = 0;
  const payloads = ctx.h264.map((p) => p.payload);
  return {
    name: "h264",
    weight: 14,
    run(rng) {
      if (rng.chance(0.01)) depacketizer = new H264Depacketizer();
      const start = rng.int(ctx.h264.length);
      const n = 1 + rng.int(12);
      for (let k = 0; k < n; k++) {
        const p = ctx.h264[(start + k) % ctx.h264.length];
        let payload = p.payload;
        if (rng.chance(0.3)) payload = mutateBytes(rng, payload, payloads, 70000);
        if (rng.chance(0.01)) payload = rng.bytes(rng.int(200000));
        const seq = rng.chance(0.9) ? p.seq : rng.int(65536);
        const ts = rng.chance(0.95) ? p.timestamp : rng.u32();
        const marker = rng.chance(0.95) ? p.marker : !p.marker;
        const unit = depacketizer.push(payload, seq, ts, marker);
        if (unit) {
          units++;
          if (unit.isKeyframe) keyframes++;
          check(unit.data.length > 4 && unit.data[0] === 0 && unit.data[3] === 1, "unit not Annex-B");
          check(unit.data.length <= MAX_ACCESS_UNIT_BYTES + 2 * 4096 + 8, "unit over the cap");
        }
      }
    },
    stats: () => ({ units, keyframes, dropped: depacketizer.droppedCount }),
  };
}

/** VP8, VP9, H.265 and AV1: keyframe detection and depacketizers on mutated, reordered and lost packets. */
function codecsTarget(ctx: FuzzContext): FuzzTarget {
  const codecs = [...ctx.codecs.keys()];
  const depacketizers = new Map(codecs.map((c) => [c, videoCodecSupport(c as VideoCodec).newDepacketizer()]));
  let frames = 0;
  let keyframes = 0;
  return {
    name: "codecs",
    weight: 14,
    run(rng) {
      const codec = rng.pick(codecs);
      const support = videoCodecSupport(codec as VideoCodec);
      const packets = ctx.codecs.get(codec)!;
      const payloads = packets.map((p) => p.payload);
      if (rng.chance(0.01)) depacketizers.get(codec)!.reset();
      const depacketizer = depacketizers.get(codec)!;
      const start = rng.int(packets.length);
      const n = 1 + rng.int(12);
      for (let k = 0; k < n; k++) {
        const p = packets[(start + k) % packets.length];
        let payload = p.payload;
        if (rng.chance(0.3)) payload = mutateBytes(rng, payload, payloads, 70000);
        if (rng.chance(0.01)) payload = rng.bytes(rng.int(200000));
        support.startsKeyframe(payload);
        const seq = rng.chance(0.9) ? p.seq : rng.int(65536);
        const ts = rng.chance(0.95) ? p.timestamp : rng.u32();
        const marker = rng.chance(0.95) ? p.marker : !p.marker;
        const frame = depacketizer.push(payload, seq, ts, marker);
        if (frame) {
          frames++;
          check(frame.data.length <= MAX_FRAME_BYTES + 3 * 4096 + 16, `${codec} frame over the cap`);
          if (frame.isKeyframe) {
            keyframes++;
            check(support.decoderInput(frame).data.length > 0, `${codec} keyframe without decoder input`);
          }
        }
      }
    },
    stats: () => ({ frames, keyframes }),
  };
}

function rtcpInput(rng: Rng, mediaSsrc: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    switch (rng.int(7)) {
      case 0:
        parts.push(buildPli(rng.u32(), mediaSsrc));
        break;
      case 1: {
        const seqs = Array.from({ length: 1 + rng.int(40) }, () => rng.int(65536));
        parts.push(buildNack(rng.u32(), mediaSsrc, seqs));
        break;
      }
      case 2:
        parts.push(buildReceiverReport(rng.u32(), [{
          ssrc: rng.chance(0.8) ? mediaSsrc : rng.u32(),
          fractionLost: rng.int(256),
          cumulativeLost: rng.int(0x800000),
          highestSequence: rng.u32(),
          jitter: rng.u32(),
          lastSenderReport: rng.u32(),
          delaySinceLastSenderReport: rng.u32(),
        }]));
        break;
      case 3:
        parts.push(buildSenderReport({
          ssrc: rng.u32(),
          ntpSeconds: rng.u32(),
          ntpFraction: rng.u32(),
          rtpTimestamp: rng.u32(),
          packetCount: rng.u32(),
          octetCount: rng.u32(),
        }));
        break;
      case 4:
        parts.push(buildRemb(rng.u32(), rng.int(100_000_000), [mediaSsrc]));
        break;
      case 5:
        parts.push(buildBye([rng.u32()]));
        break;
      default:
        parts.push(buildEmptyReceiverReport(rng.u32()));
    }
  }
  const packet = compound(buildEmptyReceiverReport(rng.u32()), ...parts);
  return rng.chance(0.5) ? mutateBytes(rng, packet) : packet;
}

function rtcpTarget(): FuzzTarget {
  let nacks = 0;
  return {
    name: "rtcp",
    weight: 10,
    run(rng) {
      const packet = rng.chance(0.2) ? randomDatagram(rng) : rtcpInput(rng, rng.u32());
      const summary = readRtcp(packet);
      let count = 0;
      for (const nack of summary.nacks) {
        for (const s of nack.sequenceNumbers) check(Number.isInteger(s) && s >= 0 && s <= 0xffff, "nack seq");
        count += nack.sequenceNumbers.length;
      }
      check(count <= (packet.length / 4) * 17, "more NACKed packets than the packet can name");
      nacks += count;
    },
    stats: () => ({ nacks }),
  };
}

function sdpTarget(ctx: FuzzContext): FuzzTarget {
  const fixtures = [ctx.world.fixtures.publish, ctx.world.fixtures.watch];
  let accepted = 0;
  return {
    name: "sdp",
    weight: 6,
    run(rng) {
      const sdp = mutateSdp(rng, rng.pick(fixtures), fixtures);
      try {
        const offer = parseOffer(sdp);
        accepted++;
        check(/^[A-Za-z0-9+/]{4,256}$/.test(offer.iceUfrag), "bad ufrag accepted");
        check(offer.media.length > 0 && offer.media.length <= 16, "media count");
      } catch (e) {
        if (!(e instanceof SdpError)) throw e;
      }
    },
    stats: () => ({ accepted }),
  };
}

/** Every line of an answer must be one well-formed SDP line: nothing from the offer may break out of one. */
function checkAnswer(answer: string): void {
  check(answer.endsWith("\r\n"), "answer does not end with CRLF");
  for (const line of answer.slice(0, -2).split("\r\n")) {
    check(/^[a-z]=[^\r\n\0]*$/.test(line), `malformed answer line ${JSON.stringify(line.slice(0, 80))}`);
  }
}

function sessionsTarget(ctx: FuzzContext): FuzzTarget {
  const w = ctx.world;
  const offers = [w.publisher.offer(w.fixtures.publish), w.viewers[0].offer(w.fixtures.watch)];
  let created = 0;
  const statuses: Record<string, number> = {};
  return {
    name: "sessions",
    weight: 4,
    run(rng) {
      const publish = rng.chance(0.5);
      const sdp = rng.chance(0.9)
        ? mutateSdp(rng, publish ? offers[0] : offers[1], offers)
        : offers[publish ? 0 : 1];
      // "dup" exercises a takeover: a clean publisher first, then the fuzzed offer for the same room. (The
      // world's own room "fuzz" is never published to: a valid takeover that sends media would replace its
      // publisher.)
      const name = rng.chance(0.8) ? `f${rng.u32().toString(36)}` : rng.pick(["dup", "", "a/b"]);
      let first: { sessionId: string } | undefined;
      try {
        if (publish && name === "dup") first = w.sessions.publish(offers[0], "dup");
        const session = publish
          ? w.sessions.publish(sdp, name)
          : w.sessions.watch(rng.chance(0.9) ? "fuzz" : "nope", sdp);
        if (first) {
          // A takeover happens at the new session's first packet: an offer alone must not cut the publisher.
          check(
            w.sessions.has("whip", first.sessionId),
            "an offer that sent no media ended the live publisher",
          );
        }
        created++;
        checkAnswer(session.answer);
        w.sessions.end(publish ? "whip" : "whep", session.sessionId);
      } catch (e) {
        if (!(e instanceof SessionError)) throw e;
        statuses[e.refusal] = (statuses[e.refusal] ?? 0) + 1;
      } finally {
        // Refused or waiting for media, the takeover left the first publisher in place: end it.
        if (first && w.sessions.has("whip", first.sessionId)) w.sessions.end("whip", first.sessionId);
      }
      checkSessionsAlive(ctx);
    },
    stats: () => ({ created, ...statuses }),
  };
}

const METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD", "PUT", "TRACE", "FOO", "CONNECTX"];
const PATHS = [
  "/",
  "/whip",
  "/whip/",
  "/whep",
  "/whep/fuzz",
  "/whep/%zz",
  "/whep/%E0%A4%A",
  "/rooms",
  "/rooms/fuzz",
  "/rooms/%",
  "/rooms/%E0%A4%A",
  "/rooms/fuzz/thumbnail.jpg",
  "/rooms/%ff/thumbnail.jpg",
  "/rooms/../../etc/passwd/thumbnail.jpg",
  "/rooms/..%2f..%2fetc%2fpasswd/thumbnail.jpg",
  "/notifications",
  "/healthz",
  "/assets/lobby.js",
  "/assets/..%2f..%2fdeno.json",
  "/assets/%2e%2e/deno.json",
  "/watch/fuzz",
  "/watch/%zz",
  "/publish",
  "/index.html",
  "//whip",
  "/whip/AAAAAAAAAAAAAAAAAAAAAAAA",
  "/whep/AAAAAAAAAAAAAAAAAAAAAAAA",
];

function httpTarget(ctx: FuzzContext): FuzzTarget {
  const w = ctx.world;
  const bus = new RoomBus(w.busName);
  const directory = new RoomDirectory(bus);
  const feed = new RoomFeed(directory, { maxClients: 50 });
  const thumbnails = new ThumbnailFiles(w.dir, directory);
  ctx.closeables.push(() => feed.close(), () => directory.close());
  const errors: string[] = [];
  const token = "fuzz-token-1234";
  const handler = createRouter({
    sessions: w.sessions,
    directory,
    feed,
    thumbnails,
    access: new AccessPolicy({ masterKey: token }),
    frontendUrl: "*",
    log: (level, message) => {
      if (level === "error") errors.push(message);
    },
    extra: [serveUi],
    rateLimiter: new RateLimiter(30, { maxClients: 1000 }),
  });
  const offers = [w.publisher.offer(w.fixtures.publish), w.viewers[0].offer(w.fixtures.watch)];
  const statuses: Record<string, number> = {};
  return {
    name: "http",
    weight: 6,
    async run(rng) {
      const method = rng.pick(METHODS);
      let path = rng.pick(PATHS);
      if (rng.chance(0.2)) {
        path += rng.pick(["?room=x", "?target_id=fuzz", "?target_id=%zz", "?w=160", "?w=1e9", "?"]);
      }
      if (rng.chance(0.2)) path = new TextDecoder().decode(mutateBytes(rng, new TextEncoder().encode(path)));
      let url: string;
      try {
        url = new URL(path.startsWith("/") ? path : "/" + path, "http://fuzz.local").href;
      } catch {
        return; // not a URL Deno.serve could hand over
      }
      const headers = new Headers();
      if (rng.chance(0.7)) {
        headers.set(
          "Content-Type",
          rng.pick([
            "application/sdp",
            "application/sdp; charset=utf-8",
            "text/plain",
            "application/trickle-ice-sdpfrag",
            "",
            "APPLICATION/SDP",
          ]),
        );
      }
      if (rng.chance(0.6)) {
        headers.set(
          "Authorization",
          rng.pick([
            `Bearer ${token}`,
            "Bearer wrong",
            "Bearer",
            "Basic Zm9vOmJhcg==",
            `bearer   ${token}`,
            "x".repeat(rng.int(9000)),
          ]),
        );
      }
      if (rng.chance(0.2)) headers.set("If-None-Match", rng.pick(["*", '"x"', 'W/"abc", "def"', ""]));
      if (rng.chance(0.1)) headers.set("If-Match", rng.pick(["*", '"x"']));
      let body: BodyInit | undefined;
      if (method !== "GET" && method !== "HEAD" && rng.chance(0.8)) {
        const r = rng.int(6);
        if (r <= 1) body = rng.chance(0.7) ? mutateSdp(rng, rng.pick(offers), offers) : rng.pick(offers);
        else if (r === 2) body = rng.bytes(rng.length(2000)) as Uint8Array<ArrayBuffer>;
        else if (r === 3) body = new Uint8Array(64 * 1024 + rng.int(3)).fill(0x61);
        else if (r === 4) body = erroringStream(rng);
        else body = "a=ice-ufrag:abcd\r\na=ice-pwd:" + "p".repeat(24) + "\r\n";
        if (rng.chance(0.1)) headers.set("Content-Length", String(rng.pick([0, 5, 1 << 30, -1])));
      }
      let req: Request;
      try {
        req = new Request(url, { method, headers, body, signal: AbortSignal.timeout(2000) });
      } catch {
        return;
      }
      const info = {
        remoteAddr: {
          hostname: rng.chance(0.5)
            ? `10.0.${rng.int(4)}.${rng.int(256)}`
            : `2001:db8::${rng.int(65536).toString(16)}`,
        },
      };
      const errorsBefore = errors.length;
      const response = await handler(req, info);
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      // Session-creating requests that worked are ended so the server never fills up.
      const location = response.headers.get("Location");
      if (response.status === 201 && location) {
        const [, kind, id] = location.split("/");
        if (w.sessions.has(kind as "whip", id)) w.sessions.end(kind as "whip", id);
      }
      // No path, however encoded, may get a file from outside web/ (deno.json, the DTLS key).
      if (response.status === 200 && response.headers.get("Content-Type") !== "text/event-stream") {
        const text = await response.text();
        check(!text.includes('"nodeModulesDir"') && !text.includes("PRIVATE KEY"), `path traversal: ${path}`);
      } else {
        await response.body?.cancel().catch(() => {});
      }
      check(
        response.status !== 500,
        `HTTP 500 for ${method} ${path}: ${errors.slice(errorsBefore).join(" | ")}`,
      );
      checkSessionsAlive(ctx);
    },
    stats: () => statuses,
  };
}

function erroringStream(rng: Rng): ReadableStream<Uint8Array> {
  const chunks = rng.int(4);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent++ < chunks) controller.enqueue(rng.bytes(100));
      else controller.error(new Error("client went away"));
    },
  });
}

/**
 * One SRTP or SRTCP datagram into `peer` and what it returned on to the session layer, as the socket's read
 * loop routes it, without the loop's catch: an exception reaches the fuzzer.
 */
function srtpInput(
  w: World,
  peer: Peer,
  data: Uint8Array,
  isRtcp: boolean,
  from: PeerAddress,
  now: number,
): void {
  const input = peer.handleInput(data, isRtcp ? "rtcp" : "rtp", from, now);
  if (input === "rtp") w.sessions.media.rtp(peer, peer.received, now);
  else if (input === "rtcp") w.sessions.media.rtcp(peer, peer.received, now);
}
