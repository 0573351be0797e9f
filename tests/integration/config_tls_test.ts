import assert from "node:assert/strict";
import { ConfigError, loadConfig, SETTINGS } from "../../src/config.ts";
import { selfSignedPem } from "../helpers/certificates.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("TLS_CERT/TLS_KEY: loaded when they match, one line naming the variable otherwise", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await selfSignedPem(dir, { key: "ec", certFile: "ec.crt", keyFile: "ec.key" });
    await selfSignedPem(dir, { key: "rsa", certFile: "rsa.crt", keyFile: "rsa.key" });
    assert.equal(loadConfig(env({})).tls, undefined);
    for (const name of ["ec", "rsa"]) {
      const tls = loadConfig(env({ TLS_CERT: `${dir}/${name}.crt`, TLS_KEY: `${dir}/${name}.key` })).tls;
      assert.ok(tls?.cert.includes("BEGIN CERTIFICATE") && tls.key.includes("PRIVATE KEY"));
    }
    const cases: [Record<string, string>, RegExp][] = [
      [{ TLS_CERT: `${dir}/ec.crt` }, /^TLS_KEY must be set together with TLS_CERT$/],
      [{ TLS_KEY: `${dir}/ec.key` }, /^TLS_CERT must be set together with TLS_KEY$/],
      [{ TLS_CERT: `${dir}/missing.crt`, TLS_KEY: `${dir}/ec.key` }, /^TLS_CERT: cannot read .*missing\.crt/],
      [{ TLS_CERT: `${dir}/ec.crt`, TLS_KEY: `${dir}/missing.key` }, /^TLS_KEY: cannot read /],
      [{ TLS_CERT: `${dir}/ec.key`, TLS_KEY: `${dir}/ec.key` }, /^TLS_CERT: .* no readable PEM certificate/],
      [{ TLS_CERT: `${dir}/ec.crt`, TLS_KEY: `${dir}/ec.crt` }, /^TLS_KEY: .* no readable unencrypted PEM/],
      [
        { TLS_CERT: `${dir}/ec.crt`, TLS_KEY: `${dir}/rsa.key` },
        /^TLS_KEY: .* is not the key of the certificate/,
      ],
    ];
    await Deno.writeTextFile(`${dir}/plain.txt`, "hello");
    cases.push([
      { TLS_CERT: `${dir}/plain.txt`, TLS_KEY: `${dir}/ec.key` },
      /^TLS_CERT: .* is not a PEM file$/,
    ]);
    for (const [vars, expected] of cases) {
      assert.throws(() => loadConfig(env(vars)), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, expected);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LOG_FORMAT is text or json and documented", () => {
  assert.equal(loadConfig(env({})).logFormat, "text");
  assert.equal(loadConfig(env({ LOG_FORMAT: "json" })).logFormat, "json");
  assert.throws(
    () => loadConfig(env({ LOG_FORMAT: "xml" })),
    /^ConfigError: LOG_FORMAT must be text or json/,
  );
  for (const name of ["LOG_FORMAT", "TLS_CERT", "TLS_KEY"]) {
    assert.ok(SETTINGS.some((s) => s.name === name), name);
  }
});
