/**
 * Per-packet cost of the SRTP backends and of the forwarder's rewrite + protect step, on 1200-byte packets.
 * Run: `deno bench --allow-all tests/bench/srtp_bench.ts`.
 */
import { Buffer } from "node:buffer";
import { RtpHeader, SrtpSession } from "werift";
import { createSrtpContext, nativeSrtpAvailable, type SrtpContext } from "../../src/srtp/context.ts";
import { RtpRewriter } from "../../src/srtp/rtp_rewrite.ts";

const PAYLOAD = 1188;

function packet(seq: number): Uint8Array {
  const p = new Uint8Array(12 + PAYLOAD);
  p[0] = 0x80;
  p[1] = 102;
  p[2] = seq >> 8;
  p[3] = seq;
  p[8] = 0x12;
  for (let i = 12; i < p.length; i++) p[i] = i;
  return p;
}

function context(profile: 1 | 7, backend: "native" | "portable"): SrtpContext {
  const saltLength = profile === 7 ? 12 : 14;
  return createSrtpContext({
    profile,
    backend,
    localMasterKey: new Uint8Array(16).fill(1),
    localMasterSalt: new Uint8Array(saltLength).fill(2),
    remoteMasterKey: new Uint8Array(16).fill(1),
    remoteMasterSalt: new Uint8Array(saltLength).fill(2),
  });
}

const plain = packet(1);
const backends = nativeSrtpAvailable() ? ["native", "portable"] as const : ["portable"] as const;

for (const profile of [7, 1] as const) {
  for (const backend of backends) {
    const ctx = context(profile, backend);
    const out = new Uint8Array(1500);
    let seq = 0;
    Deno.bench(`protectRtp ${backend} profile ${profile} into a reused buffer`, {
      group: `protect ${profile}`,
    }, () => {
      plain[3] = seq++;
      ctx.protectRtp(plain, 12, out);
    });
    let receiver = context(profile, backend);
    const wires = Array.from({ length: 4096 }, (_, i) => ctx.protectRtp(packet(i)));
    const scratch = new Uint8Array(1500);
    let i = 0;
    Deno.bench(`unprotectRtp ${backend} profile ${profile}`, { group: `unprotect ${profile}` }, () => {
      // Replays are rejected before any crypto, so start a fresh receiver after each round.
      if (i === wires.length) {
        i = 0;
        receiver = context(profile, backend);
      }
      receiver.unprotectRtp(wires[i++], scratch);
    });
  }

  const session = new SrtpSession({
    keys: {
      localMasterKey: Buffer.alloc(16, 1),
      localMasterSalt: Buffer.alloc(profile === 7 ? 12 : 14, 2),
      remoteMasterKey: Buffer.alloc(16, 1),
      remoteMasterSalt: Buffer.alloc(profile === 7 ? 12 : 14, 2),
    },
    profile,
  });
  const header = RtpHeader.deSerialize(Buffer.from(plain));
  const payload = Buffer.from(plain.subarray(12));
  Deno.bench(
    `werift SrtpSession.encrypt profile ${profile} (today's path)`,
    { group: `protect ${profile}` },
    () => {
      header.sequenceNumber = (header.sequenceNumber + 1) & 0xffff;
      session.encrypt(payload, header);
    },
  );
}

if (nativeSrtpAvailable()) {
  const rewriter = new RtpRewriter();
  const viewers = Array.from(
    { length: 100 },
    (_, i) => ({ ctx: context(7, "native"), ssrc: i + 1, offset: i * 77 }),
  );
  const publisherPacket = packet(1000);
  const out = new Uint8Array(1500);
  for (const reuse of [false, true]) {
    Deno.bench(
      `one packet to 100 viewers: rewrite + protect into ${reuse ? "one reused buffer" : "new arrays"}`,
      { group: "fan-out" },
      () => {
        rewriter.load(publisherPacket);
        for (const v of viewers) {
          const seq = (rewriter.sequenceNumber + v.offset) & 0xffff;
          rewriter.setStream(96, v.ssrc, seq, rewriter.timestamp + v.offset);
          v.ctx.protectRtp(rewriter.packet, rewriter.headerLength, reuse ? out : undefined);
        }
      },
    );
  }
}
