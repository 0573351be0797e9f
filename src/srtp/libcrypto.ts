/**
 * OpenSSL's libcrypto through `Deno.dlopen`: the few EVP and HMAC entry points SRTP needs. Opened once, on
 * first use; {@link libcrypto} returns undefined (with {@link libcryptoUnavailableReason}) when FFI is not
 * permitted or no library loads, so callers can fall back to the portable path.
 */

const SYMBOLS = {
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_aes_128_gcm: { parameters: [], result: "pointer" },
  EVP_aes_128_ctr: { parameters: [], result: "pointer" },
  EVP_sha1: { parameters: [], result: "pointer" },
  // (ctx, cipher, engine, key, iv)
  EVP_EncryptInit_ex: { parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"], result: "i32" },
  EVP_DecryptInit_ex: { parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"], result: "i32" },
  // (ctx, out, &outl, in, inl); out = NULL feeds AAD to GCM
  EVP_EncryptUpdate: { parameters: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  EVP_DecryptUpdate: { parameters: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  EVP_EncryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  // HMAC_CTX is deprecated in OpenSSL 3 but exported, and re-initialising it with a NULL key restores the
  // keyed state without rehashing the key, which EVP_MAC would also do at more calls per packet.
  HMAC_CTX_new: { parameters: [], result: "pointer" },
  HMAC_CTX_free: { parameters: ["pointer"], result: "void" },
  HMAC_Init_ex: { parameters: ["pointer", "buffer", "i32", "pointer", "pointer"], result: "i32" },
  HMAC_Update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  HMAC_Final: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbols. */
export type LibcryptoSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** GCM controls from openssl/evp.h. */
export const EVP_CTRL_GCM_GET_TAG = 0x10;
export const EVP_CTRL_GCM_SET_TAG = 0x11;

/** Where libcrypto is looked for, in order: the soname first, then common multiarch paths. */
export const LIBCRYPTO_CANDIDATES: readonly string[] = [
  "libcrypto.so.3",
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
  "/usr/lib/libcrypto.so.3",
  "/lib/x86_64-linux-gnu/libcrypto.so.3",
  "libcrypto.3.dylib",
  "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
  "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
];

/** An opened libcrypto. */
export interface Libcrypto {
  symbols: LibcryptoSymbols;
  /** The path or soname that loaded. */
  path: string;
  /** e.g. "OpenSSL 3.0.19 27 Jan 2026". */
  version: string;
  aes128Gcm: Deno.PointerValue;
  aes128Ctr: Deno.PointerValue;
  sha1: Deno.PointerValue;
}

let loaded: Libcrypto | undefined;
let reason: string | undefined;
let tried = false;

/** The shared libcrypto, opened on first call; undefined when unavailable (see the reason). */
export function libcrypto(): Libcrypto | undefined {
  if (!tried) {
    tried = true;
    try {
      loaded = open();
    } catch (e) {
      reason = (e as Error).message;
    }
  }
  return loaded;
}

/** Why {@link libcrypto} returned undefined, or undefined when it loaded (or was not tried yet). */
export function libcryptoUnavailableReason(): string | undefined {
  return reason;
}

function ffiGranted(path?: string): boolean {
  try {
    const state = Deno.permissions.querySync(path ? { name: "ffi", path } : { name: "ffi" }).state;
    return state === "granted";
  } catch {
    return false;
  }
}

function open(): Libcrypto {
  if (typeof Deno.dlopen !== "function") throw new Error("Deno.dlopen is not available");
  const anyGranted = ffiGranted();
  const errors: string[] = [];
  for (const path of LIBCRYPTO_CANDIDATES) {
    // A bare soname cannot be matched against --allow-ffi=<path>; try it only with blanket permission.
    if (!anyGranted && (!path.startsWith("/") || !ffiGranted(path))) continue;
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
    const s = lib.symbols;
    let version = "OpenSSL 3";
    try {
      const versionPtr = s.OpenSSL_version(0);
      if (versionPtr) version = new Deno.UnsafePointerView(versionPtr).getCString();
    } catch {
      // Reading C memory needs blanket --allow-ffi; with a path-scoped grant the soname must do.
    }
    if (!/^OpenSSL 3\b/.test(version)) {
      lib.close();
      errors.push(`${path}: ${version} is not OpenSSL 3`);
      continue;
    }
    return {
      symbols: s,
      path,
      version,
      aes128Gcm: s.EVP_aes_128_gcm(),
      aes128Ctr: s.EVP_aes_128_ctr(),
      sha1: s.EVP_sha1(),
    };
  }
  if (!anyGranted && errors.length === 0) throw new Error("--allow-ffi not granted");
  throw new Error(`libcrypto.so.3 not found (${errors.join("; ") || "no candidate"})`);
}
