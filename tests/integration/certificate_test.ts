import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { ConfigError } from "../../src/config.ts";
import { loadOrCreateCertificate } from "../../src/peer/certificate.ts";
import { selfSignedPem } from "../helpers/certificates.ts";

Deno.test("generates an ECDSA certificate when CERTS_DIR is empty, then reuses it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const created = await loadOrCreateCertificate(dir);
    assert.equal(created.generated, true);
    assert.deepEqual(created.signatureHash, { hash: 4, signature: 3 });
    assert.equal(
      created.fingerprint,
      new X509Certificate(await Deno.readTextFile(`${dir}/cert.pem`)).fingerprint256,
    );
    const again = await loadOrCreateCertificate(dir);
    assert.equal(again.generated, false);
    assert.equal(again.fingerprint, created.fingerprint);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loads an RSA pair made by the seed's openssl command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await selfSignedPem(dir, { key: "rsa", subject: "/CN=test" });
    const loaded = await loadOrCreateCertificate(dir);
    assert.equal(loaded.generated, false);
    assert.deepEqual(loaded.signatureHash, { hash: 4, signature: 1 });
    assert.match(loaded.keyPem, /BEGIN PRIVATE KEY/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a half-present or broken pair is a configuration error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, "not a certificate");
    await assert.rejects(() => loadOrCreateCertificate(dir), (e: unknown) => {
      assert.ok(e instanceof ConfigError && /key\.pem is missing/.test(e.message));
      return true;
    });
    await Deno.writeTextFile(`${dir}/key.pem`, "not a key");
    await assert.rejects(() => loadOrCreateCertificate(dir), (e: unknown) => {
      assert.ok(e instanceof ConfigError && /not valid PEM/.test(e.message));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
