import { deepEqual, throws } from "node:assert/strict";
import { aesCmPrf, asSrtpProfile, deriveSessionKeys } from "./keys.ts";
import { hex, toHex } from "../../tests/helpers/srtp_packets.ts";

// RFC 3711 Appendix B.3.
const MASTER_KEY = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
const MASTER_SALT = hex("0EC675AD498AFEEBB6960B3AABE6");

Deno.test("AES-CM PRF reproduces RFC 3711 B.3 session key, salt and auth key", () => {
  deepEqual(toHex(aesCmPrf(MASTER_KEY, MASTER_SALT, 0, 16)), "c61e7a93744f39ee10734afe3ff7a087");
  deepEqual(toHex(aesCmPrf(MASTER_KEY, MASTER_SALT, 2, 14)), "30cbbc08863d8c85d49db34a9ae1");
  deepEqual(
    toHex(aesCmPrf(MASTER_KEY, MASTER_SALT, 1, 94)),
    "cebe321f6ff7716b6fd4ab49af256a156d38baa48f0a0acf3c34e2359e6cdbce" +
      "e049646c43d9327ad175578ef72270986371c10c9a369ac2f94a8c5fbcdddc25" +
      "6d6e919a48b610ef17c2041e474035766b68642c59bbfc2f34db60dbdfb2",
  );
});

Deno.test("deriveSessionKeys gives AES-CM 16/20/14-byte keys and GCM 16/0/12-byte keys", () => {
  const cm = deriveSessionKeys(1, MASTER_KEY, MASTER_SALT);
  deepEqual(toHex(cm.rtpKey), "c61e7a93744f39ee10734afe3ff7a087");
  deepEqual(toHex(cm.rtpAuthKey), "cebe321f6ff7716b6fd4ab49af256a156d38baa4");
  deepEqual(toHex(cm.rtpSalt), "30cbbc08863d8c85d49db34a9ae1");
  deepEqual([cm.rtcpKey.length, cm.rtcpAuthKey.length, cm.rtcpSalt.length], [16, 20, 14]);

  const gcm = deriveSessionKeys(7, MASTER_KEY, MASTER_SALT.subarray(0, 12));
  deepEqual([gcm.rtpKey.length, gcm.rtpAuthKey.length, gcm.rtpSalt.length], [16, 0, 12]);
  // A 12-byte salt is the 14-byte one with its last two bytes zero.
  const padded = new Uint8Array(14);
  padded.set(MASTER_SALT.subarray(0, 12));
  deepEqual(gcm.rtcpKey, aesCmPrf(MASTER_KEY, padded, 3, 16));
});

Deno.test("deriveSessionKeys and asSrtpProfile reject what they cannot use", () => {
  throws(() => deriveSessionKeys(7, MASTER_KEY, MASTER_SALT), RangeError);
  throws(() => deriveSessionKeys(1, MASTER_KEY.subarray(1), MASTER_SALT), RangeError);
  throws(() => asSrtpProfile(2), RangeError);
  deepEqual(asSrtpProfile(7), 7);
});
