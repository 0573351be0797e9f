/**
 * Certificates for tests, made once here: a DTLS client certificate (werift, in memory) and PEM files made
 * by `openssl` (apt: openssl) for the server's DTLS identity, HTTPS and Redis over TLS.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { createSelfSignedCertificate } from "werift";

/** A DTLS client certificate and its SDP fingerprint. */
export interface ClientCertificate {
  certPem: string;
  keyPem: string;
  /** sha-256, colon-separated upper-case hex. */
  fingerprint: string;
}

/** Makes a self-signed ECDSA P-256 certificate for a test client's DTLS; one can serve a whole run. */
export async function createClientCertificate(): Promise<ClientCertificate> {
  const created = await createSelfSignedCertificate({ hash: 4, signature: 3 } as never, 23 as never);
  return {
    certPem: created.certPem,
    keyPem: created.keyPem,
    fingerprint: new X509Certificate(created.certPem).fingerprint256.toUpperCase(),
  };
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  assert.ok(out.success, `openssl ${args[0]}: ${new TextDecoder().decode(out.stderr).trim()}`);
}

const KEY_ARGS = {
  rsa: ["-newkey", "rsa:2048"],
  ec: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
};

/** Options of {@link selfSignedPem}. */
export interface SelfSignedOptions {
  /** "rsa" is RSA-2048 (what the seed's README command makes), "ec" ECDSA P-256. */
  key: "rsa" | "ec";
  /** File names in `dir` (default cert.pem, key.pem: what CERTS_DIR expects). */
  certFile?: string;
  keyFile?: string;
  /** Default /CN=localhost. */
  subject?: string;
  /**
   * A TLS server certificate for localhost and 127.0.0.1: subjectAltName, serverAuth, and not a CA (rustls
   * refuses a CA certificate as a server's, and `req -x509` makes one by default).
   */
  tlsServer?: boolean;
}

/** Writes a self-signed certificate and its unencrypted key into `dir`; returns their paths. */
export async function selfSignedPem(
  dir: string,
  options: SelfSignedOptions,
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, options.certFile ?? "cert.pem");
  const key = join(dir, options.keyFile ?? "key.pem");
  const server = options.tlsServer
    ? [
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      ...["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"],
    ]
    : [];
  await openssl([
    ...["req", "-x509", "-nodes", "-days", "2", ...KEY_ARGS[options.key]],
    ...["-subj", options.subject ?? "/CN=localhost", ...server, "-keyout", key, "-out", cert],
  ]);
  return { cert, key };
}

/** A CA and an ECDSA server certificate for 127.0.0.1 signed by it, written into `dir`. */
export async function caAndServerPem(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const path = (name: string) => join(dir, name);
  const ec = [...KEY_ARGS.ec, "-nodes"];
  await openssl([
    ...["req", "-x509", ...ec, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2"],
    ...["-subj", "/CN=test CA"],
  ]);
  await openssl([
    "req",
    ...ec,
    "-keyout",
    path("server.key"),
    "-out",
    path("server.csr"),
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(path("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  await openssl([
    ...["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key")],
    ...["-CAcreateserial", "-out", path("server.pem"), "-days", "2", "-extfile", path("ext.cnf")],
  ]);
  return { ca: path("ca.pem"), cert: path("server.pem"), key: path("server.key") };
}
