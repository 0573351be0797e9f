/**
 * Both backends against each other and against the RFC vectors: what one protects the other unprotects, the
 * wire bytes are identical, and both keep the same rollover counter and replay window.
 */
import { deepEqual, notEqual, ok, throws } from "node:assert/strict";
import {
  createSrtpContext,
  nativeSrtpAvailable,
  srtpBackendName,
  type SrtpContext,
} from "../../src/srtp/context.ts";
import { libcrypto } from "../../src/srtp/libcrypto.ts";
import { NativeSrtpContext } from "../../src/srtp/native.ts";
import { hex, rtcpPacket, rtpPacket, toHex } from "../helpers/srtp_packets.ts";
import type { SessionKeys } from "../../src/srtp/keys.ts";

const native = nativeSrtpAvailable();
const backends = ["native", "portable"] as const;
const profiles = [7, 1] as const;

function keys(profile: 1 | 7, seed: number) {
  const saltLength = profile === 7 ? 12 : 14;
  const bytes = (n: number, s: number) => Uint8Array.from({ length: n }, (_, i) => (s * 31 + i * 17) & 0xff);
  return {
    a: { key: bytes(16, seed), salt: bytes(saltLength, seed + 1) },
    b: { key: bytes(16, seed + 2), salt: bytes(saltLength, seed + 3) },
  };
}

/** Two ends of one session: `sender` writes with key a, `receiver` reads key a. */
function pair(
  profile: 1 | 7,
  senderBackend: "native" | "portable",
  receiverBackend: "native" | "portable",
  replayWindow?: number,
) {
  const k = keys(profile, profile);
  const sender = createSrtpContext({
    profile,
    backend: senderBackend,
    localMasterKey: k.a.key,
    localMasterSalt: k.a.salt,
    remoteMasterKey: k.b.key,
    remoteMasterSalt: k.b.salt,
  });
  const receiver = createSrtpContext({
    profile,
    backend: receiverBackend,
    replayWindow,
    localMasterKey: k.b.key,
    localMasterSalt: k.b.salt,
    remoteMasterKey: k.a.key,
    remoteMasterSalt: k.a.salt,
  });
  return { sender, receiver };
}

for (const profile of profiles) {
  for (const from of backends) {
    for (const to of backends) {
      Deno.test({
        name: `profile ${profile}: RTP ${from} -> ${to} across a sequence rollover`,
        ignore: !native && (from === "native" || to === "native"),
        fn() {
          const { sender, receiver } = pair(profile, from, to);
          deepEqual([sender.backend, receiver.backend], [from, to]);
          for (let i = 0; i < 40; i++) {
            const plain = rtpPacket({ seq: 65520 + i, payloadLength: 50 + i * 29, marker: i % 5 === 0 });
            const wire = sender.protectRtp(plain);
            deepEqual(wire.length, plain.length + sender.rtpOverhead);
            notEqual(toHex(wire.subarray(12, plain.length)), toHex(plain.subarray(12)));
            const back = receiver.unprotectRtp(wire);
            deepEqual(back && toHex(back), toHex(plain), `packet ${i} (${receiver.lastFailure})`);
          }
        },
      });
      Deno.test({
        name: `profile ${profile}: RTCP ${from} -> ${to}`,
        ignore: !native && (from === "native" || to === "native"),
        fn() {
          const { sender, receiver } = pair(profile, from, to);
          for (let i = 0; i < 5; i++) {
            const plain = rtcpPacket(0x55667788, i);
            const wire = sender.protectRtcp(plain);
            deepEqual(wire.length, plain.length + sender.rtcpOverhead);
            const back = receiver.unprotectRtcp(wire);
            deepEqual(back && toHex(back), toHex(plain), `packet ${i} (${receiver.lastFailure})`);
          }
        },
      });
    }
  }

  for (const from of backends) {
    Deno.test({
      name:
        `profile ${profile}: ${from} protectRtpInto seals packets of changing header length into reused slots`,
      ignore: !native && from === "native",
      fn() {
        const { sender, receiver } = pair(profile, from, from);
        const batch = new Uint8Array(4 * 2048);
        const slots = [0, 1, 2, 3].map((i) => batch.subarray(i * 2048, (i + 1) * 2048));
        for (let i = 0; i < 12; i++) {
          // One rewritten packet per round, sealed for several "viewers" into reused slots; header lengths
          // change between rounds (CSRCs) while the slot objects stay the same.
          const plain = rtpPacket({ seq: 100 + i, payloadLength: 40 + i * 90, marker: i % 3 === 0 });
          const csrcs = i % 4 === 3 ? 1 : 0;
          const packet = new Uint8Array(plain.length + csrcs * 4);
          packet.set(plain.subarray(0, 12));
          packet[0] = (packet[0] & 0xf0) | csrcs;
          packet.set(plain.subarray(12), 12 + csrcs * 4);
          const slot = slots[i % 4];
          const written = sender.protectRtpInto(packet, 12 + csrcs * 4, slot);
          deepEqual(written, packet.length + sender.rtpOverhead);
          const back = receiver.unprotectRtp(slot.slice(0, written));
          deepEqual(back && toHex(back), toHex(packet), `packet ${i} (${receiver.lastFailure})`);
        }
      },
    });
  }

  Deno.test({
    name: `profile ${profile}: native and portable write identical bytes`,
    ignore: !native,
    fn() {
      const n = pair(profile, "native", "native").sender;
      const p = pair(profile, "portable", "portable").sender;
      const packets = [
        rtpPacket({ seq: 65534 }),
        rtpPacket({ seq: 65535, csrcs: [1, 2] }),
        rtpPacket({ seq: 0, extensions: [{ id: 1, data: [9] }, { id: 3, data: [1, 2, 3] }] }),
        rtpPacket({ seq: 1, padding: 4, payloadLength: 33 }),
        rtpPacket({ seq: 2, payloadLength: 0 }),
        rtpPacket({ seq: 3, ssrc: 0xdeadbeef, payloadLength: 1188 }),
      ];
      for (const packet of packets) deepEqual(toHex(n.protectRtp(packet)), toHex(p.protectRtp(packet)));
      for (let i = 0; i < 3; i++) {
        deepEqual(toHex(n.protectRtcp(rtcpPacket())), toHex(p.protectRtcp(rtcpPacket())));
      }
    },
  });

  for (const backend of backends) {
    Deno.test({
      name: `profile ${profile}: ${backend} rejects replays, tampering, truncation and the wrong key`,
      ignore: !native && backend === "native",
      fn() {
        const { sender, receiver } = pair(profile, backend, backend);
        const first = sender.protectRtp(rtpPacket({ seq: 1000 }));
        const second = sender.protectRtp(rtpPacket({ seq: 1001 }));
        ok(receiver.unprotectRtp(second));
        ok(receiver.unprotectRtp(first), "out of order inside the window is fine");
        deepEqual(receiver.unprotectRtp(first), undefined);
        deepEqual(receiver.lastFailure, "replay");

        for (const at of [1, 14, 60]) {
          const wire = sender.protectRtp(rtpPacket({ seq: 1002 + at }));
          wire[at] ^= 0x01;
          deepEqual(receiver.unprotectRtp(wire), undefined, `flipped byte ${at}`);
          deepEqual(receiver.lastFailure, "auth");
          wire[at] ^= 0x01;
          ok(receiver.unprotectRtp(wire), "a failed attempt must not burn the index");
        }
        const tag = sender.protectRtp(rtpPacket({ seq: 2000 }));
        tag[tag.length - 1] ^= 0x80;
        deepEqual(receiver.unprotectRtp(tag), undefined);
        deepEqual(receiver.unprotectRtp(new Uint8Array(15).fill(0x80)), undefined);
        deepEqual(receiver.lastFailure, "malformed");

        const rtcp = sender.protectRtcp(rtcpPacket());
        ok(receiver.unprotectRtcp(rtcp));
        deepEqual(receiver.unprotectRtcp(rtcp), undefined);
        deepEqual(receiver.lastFailure, "replay");
        const bad = sender.protectRtcp(rtcpPacket());
        bad[10] ^= 0x40;
        deepEqual(receiver.unprotectRtcp(bad), undefined);
        deepEqual(receiver.lastFailure, "auth");

        // Its own packets come back with the other key and fail.
        deepEqual(sender.unprotectRtp(sender.protectRtp(rtpPacket({ seq: 5 }))), undefined);
        sender.close();
        receiver.close();
      },
    });
  }

  Deno.test({
    name: `profile ${profile}: packets older than a 128-packet window are dropped`,
    ignore: !native,
    fn() {
      const { sender, receiver } = pair(profile, "native", "portable", 128);
      const [tooOld, edge, kept] = [10, 11, 12].map((seq) => sender.protectRtp(rtpPacket({ seq })));
      for (let seq = 13; seq < 140; seq++) ok(receiver.unprotectRtp(sender.protectRtp(rtpPacket({ seq }))));
      deepEqual(receiver.unprotectRtp(tooOld), undefined, "139 - 10 = 129 behind");
      deepEqual(receiver.lastFailure, "replay");
      deepEqual(receiver.unprotectRtp(edge), undefined, "139 - 11 = 128 behind is just outside");
      ok(receiver.unprotectRtp(kept), "139 - 12 = 127 behind is inside");
    },
  });

  Deno.test({
    name: `profile ${profile}: a sender's ROC survives reordering around the wrap`,
    ignore: !native,
    fn() {
      const { sender, receiver } = pair(profile, "native", "native");
      const order = [65533, 65534, 0, 65535, 1, 2, 65532];
      const wires = order.map((seq) => sender.protectRtp(rtpPacket({ seq })));
      // Delivered in order of sending, so the receiver sees the same reordering.
      for (const [i, wire] of wires.entries()) {
        ok(receiver.unprotectRtp(wire), `seq ${order[i]}: ${receiver.lastFailure}`);
      }
      // 65532 was sent after the wrap with ROC 0 (index 65532), not ROC 1.
      ok(receiver.unprotectRtp(sender.protectRtp(rtpPacket({ seq: 3 }))));
    },
  });
}

Deno.test({
  name: "the default 1024-packet window accepts a retransmission 1000 packets late, once",
  ignore: !native,
  fn() {
    const { sender, receiver } = pair(7, "native", "native");
    const lost = sender.protectRtp(rtpPacket({ seq: 65000 }));
    for (let seq = 65001; seq < 66000; seq++) {
      ok(receiver.unprotectRtp(sender.protectRtp(rtpPacket({ seq }))));
    }
    ok(receiver.unprotectRtp(lost.slice()), "999 behind, never received");
    deepEqual(receiver.unprotectRtp(lost.slice()), undefined);
    deepEqual(receiver.lastFailure, "replay");
  },
});

Deno.test({
  name: "in-place protect and unprotect reuse the caller's buffer",
  ignore: !native,
  fn() {
    for (const profile of profiles) {
      const { sender, receiver } = pair(profile, "native", "native");
      const plain = rtpPacket({ seq: 7, payloadLength: 300 });
      const buffer = new Uint8Array(2048);
      buffer.set(plain);
      const wire = sender.protectRtp(buffer.subarray(0, plain.length), 12, buffer);
      deepEqual(wire.buffer, buffer.buffer);
      const copy = wire.slice();
      const back = receiver.unprotectRtp(copy, copy)!;
      deepEqual(back.buffer, copy.buffer);
      deepEqual(toHex(back), toHex(plain));
      throws(() => sender.protectRtp(plain, 12, new Uint8Array(plain.length)), RangeError);
      throws(() => sender.protectRtp(new Uint8Array(4)), RangeError);
    }
  },
});

// RFC 7714 §16-17 give session keys, not master keys, so these build the native context directly.
const RFC7714_KEY = hex("000102030405060708090a0b0c0d0e0f");
const RFC7714_SALT = hex("517569642070726f2071756f");
const RFC7714_RTP = hex(`8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
  20646976 69736120 696e2070 61727465 73207472 6573`);
const RFC7714_RTCP = hex(`81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
  deadbeef deadbeef deadbeef deadbeef deadbeef`);

function rfc7714Context(): SrtpContext {
  const session: SessionKeys = {
    rtpKey: RFC7714_KEY,
    rtpSalt: RFC7714_SALT,
    rtpAuthKey: new Uint8Array(0),
    rtcpKey: RFC7714_KEY,
    rtcpSalt: RFC7714_SALT,
    rtcpAuthKey: new Uint8Array(0),
  };
  return new NativeSrtpContext(libcrypto()!, 7, { local: session, remote: session });
}

Deno.test({
  name: "RFC 7714 §16.1: AEAD_AES_128_GCM SRTP vector",
  ignore: !native,
  fn() {
    const expected =
      `8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf
      8833899d7f27beb16a9152cf765ee4390cce`.replace(/\s+/g, "");
    const ctx = rfc7714Context();
    deepEqual(toHex(ctx.protectRtp(RFC7714_RTP)), expected);
    deepEqual(toHex(ctx.unprotectRtp(hex(expected))!), toHex(RFC7714_RTP));
  },
});

Deno.test({
  name: "RFC 7714 §17.1 and §17.3: AEAD_AES_128_GCM SRTCP vectors (encrypted and authenticated-only)",
  ignore: !native,
  fn() {
    const encrypted = hex(`81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
      c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4`);
    const ctx = rfc7714Context();
    let wire: Uint8Array = new Uint8Array(0);
    for (let index = 1; index <= 0x5d4; index++) wire = ctx.protectRtcp(RFC7714_RTCP);
    deepEqual(toHex(wire), toHex(encrypted));
    deepEqual(toHex(rfc7714Context().unprotectRtcp(encrypted)!), toHex(RFC7714_RTCP));

    const authenticatedOnly = hex(`81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
      deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4`);
    deepEqual(toHex(rfc7714Context().unprotectRtcp(authenticatedOnly)!), toHex(RFC7714_RTCP));
    authenticatedOnly[20] ^= 1;
    deepEqual(rfc7714Context().unprotectRtcp(authenticatedOnly), undefined);
  },
});

Deno.test({
  name: "RFC 3711 B.2: the AES-CM keystream for SSRC 0, index 0",
  ignore: !native,
  fn() {
    const session: SessionKeys = {
      rtpKey: hex("2B7E151628AED2A6ABF7158809CF4F3C"),
      rtpSalt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
      rtpAuthKey: new Uint8Array(20),
      rtcpKey: new Uint8Array(16),
      rtcpSalt: new Uint8Array(14),
      rtcpAuthKey: new Uint8Array(20),
    };
    const ctx = new NativeSrtpContext(libcrypto()!, 1, { local: session, remote: session });
    const zeros = rtpPacket({ seq: 0, ssrc: 0, payloadLength: 48 });
    zeros.fill(0, 12);
    const wire = ctx.protectRtp(zeros);
    deepEqual(
      toHex(wire.subarray(12, 60)),
      "e03ead0935c95e80e166b16dd92b4eb4d23513162b02d0f72a43a2fe4a5f97ab41e95b3bb0a2e8dd477901e4fca894c0",
    );
  },
});

Deno.test("createSrtpContext validates its options and names its backend", () => {
  const k = keys(7, 1);
  const options = {
    localMasterKey: k.a.key,
    localMasterSalt: k.a.salt,
    remoteMasterKey: k.b.key,
    remoteMasterSalt: k.b.salt,
  };
  throws(() => createSrtpContext({ profile: 2, ...options }), RangeError);
  throws(() => createSrtpContext({ profile: 1, ...options }), /salt/);
  deepEqual(createSrtpContext({ profile: 7, backend: "portable", ...options }).backend, "portable");
  deepEqual(createSrtpContext({ profile: 7, ...options }).backend, native ? "native" : "portable");
  ok(srtpBackendName().startsWith(native ? "native (OpenSSL 3" : "portable (werift"));
});
