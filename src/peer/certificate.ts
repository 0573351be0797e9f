/** The server's DTLS certificate: loaded from CERTS_DIR, or generated (self-signed ECDSA P-256) when absent. */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { createSelfSignedCertificate } from "werift";
import { ConfigError } from "../config.ts";

/** A certificate ready for werift's DtlsServer, with its SDP fingerprint. */
export interface ServerCertificate {
  certPem: string;
  keyPem: string;
  /** TLS SignatureAndHashAlgorithm: sha256 with RSA (1) or ECDSA (3). */
  signatureHash: { hash: number; signature: number };
  /** sha-256 fingerprint, colon-separated upper-case hex. */
  fingerprint: string;
  generated: boolean;
}

/** Loads `key.pem`/`cert.pem` from `dir`, generating and saving a pair when both are absent. */
export async function loadOrCreateCertificate(dir: string): Promise<ServerCertificate> {
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  const keyExists = await exists(keyPath);
  const certExists = await exists(certPath);
  if (!keyExists && !certExists) {
    const created = await createSelfSignedCertificate({ hash: 4, signature: 3 } as never, 23 as never);
    try {
      await Deno.writeTextFile(keyPath, created.keyPem, { mode: 0o600 });
      await Deno.writeTextFile(certPath, created.certPem);
    } catch (e) {
      throw new ConfigError(`CERTS_DIR: cannot write ${certPath}: ${(e as Error).message}`);
    }
    return { ...describe(created.certPem, created.keyPem, "CERTS_DIR"), generated: true };
  }
  if (!keyExists) throw new ConfigError(`CERTS_DIR: ${certPath} exists but ${keyPath} is missing`);
  if (!certExists) throw new ConfigError(`CERTS_DIR: ${keyPath} exists but ${certPath} is missing`);
  let keyPem: string;
  let certPem: string;
  try {
    keyPem = await Deno.readTextFile(keyPath);
    certPem = await Deno.readTextFile(certPath);
  } catch (e) {
    throw new ConfigError(`CERTS_DIR: cannot read certificate files: ${(e as Error).message}`);
  }
  return { ...describe(certPem, keyPem, "CERTS_DIR"), generated: false };
}

function describe(certPem: string, keyPem: string, variable: string): Omit<ServerCertificate, "generated"> {
  let cert: X509Certificate;
  let keyType: string | undefined;
  try {
    cert = new X509Certificate(certPem);
    keyType = createPrivateKey(keyPem).asymmetricKeyType;
  } catch (e) {
    throw new ConfigError(`${variable}: key.pem or cert.pem is not valid PEM: ${(e as Error).message}`);
  }
  if (keyType !== "rsa" && keyType !== "ec") {
    throw new ConfigError(`${variable}: key.pem is ${keyType}; use an RSA or ECDSA P-256 key`);
  }
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new ConfigError(`${variable}: key.pem does not belong to cert.pem`);
  }
  // werift expects PKCS#8 ("BEGIN PRIVATE KEY"); `openssl req -newkey rsa:2048` writes that already, but
  // older tools write PKCS#1/SEC1, so normalise.
  const pkcs8 = createPrivateKey(keyPem).export({ type: "pkcs8", format: "pem" }).toString();
  return {
    certPem,
    keyPem: pkcs8,
    signatureHash: { hash: 4, signature: keyType === "rsa" ? 1 : 3 },
    fingerprint: cert.fingerprint256.toUpperCase(),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new ConfigError(`CERTS_DIR: cannot access ${path}: ${(e as Error).message}`);
  }
}
