/**
 * The process's open-file limit (RLIMIT_NOFILE, soft), read with `getrlimit` through libc because Deno has no
 * API for it and reading /proc/self/limits needs --allow-all. Deno raises the soft limit to the hard one at
 * start, so this is what the process can really open. Needs --allow-ffi; undefined without it or off Linux.
 */

const RLIMIT_NOFILE = 7;

const SYMBOLS = {
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

/** The soft open-file limit, or undefined when it cannot be read. */
export function openFileLimit(): number | undefined {
  if (Deno.build.os !== "linux" || typeof Deno.dlopen !== "function") return undefined;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
    const limits = new BigUint64Array(2);
    if (lib.symbols.getrlimit(RLIMIT_NOFILE, limits) !== 0) return undefined;
    // RLIM_INFINITY is all ones; any limit above 2^31 is as good as unlimited here.
    return limits[0] > 0x7fffffffn ? 0x7fffffff : Number(limits[0]);
  } catch {
    return undefined;
  } finally {
    lib?.close();
  }
}
