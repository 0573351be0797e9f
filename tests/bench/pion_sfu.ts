/**
 * Builds the Pion anchor (`tests/bench/pion_sfu/main.go`) offline from Debian's Pion WebRTC v3 sources
 * (`apt-get install golang-go golang-github-pion-webrtc.v3-dev`) and caches the binary by source hash.
 *
 * Go's GOPATH mode does the offline build: the program sits in `<tmp>/src/pion_sfu/` with a one-line
 * `go.mod`, and the `/v3` import paths resolve to Debian's sources under `/usr/share/gocode/src` through
 * Go's minimal module compatibility.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";

const SOURCE = new URL("./pion_sfu/main.go", import.meta.url).pathname;
const DEBIAN_GOPATH = "/usr/share/gocode";

/** Returns the path of a built `pion_sfu` binary under `cacheDir`, building it when the source changed. */
export async function buildPionSfu(cacheDir: string): Promise<string> {
  const source = await Deno.readFile(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 12);
  const binary = join(cacheDir, `pion_sfu-${hash}`);
  try {
    await Deno.stat(binary);
    return binary;
  } catch { /* not built yet */ }
  try {
    await Deno.stat(join(DEBIAN_GOPATH, "src/github.com/pion/webrtc/go.mod"));
  } catch {
    throw new Error(
      "Pion's sources are missing: apt-get install -y golang-go golang-github-pion-webrtc.v3-dev",
    );
  }
  await Deno.mkdir(cacheDir, { recursive: true });
  const gopath = await Deno.makeTempDir({ prefix: "pion-sfu-build-" });
  try {
    const dir = join(gopath, "src/pion_sfu");
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(join(dir, "main.go"), source);
    await Deno.writeTextFile(join(dir, "go.mod"), "module pion_sfu\n");
    const { code, stderr } = await new Deno.Command("go", {
      args: ["build", "-o", binary + ".part", "."],
      cwd: dir,
      env: { GO111MODULE: "off", GOPATH: `${DEBIAN_GOPATH}:${gopath}`, GOFLAGS: "" },
      stdout: "null",
      stderr: "piped",
    }).output().catch((e) => {
      throw new Error(`cannot run go (apt-get install -y golang-go): ${(e as Error).message}`);
    });
    if (code !== 0) throw new Error(`building the Pion SFU failed:\n${new TextDecoder().decode(stderr)}`);
    await Deno.rename(binary + ".part", binary);
    return binary;
  } finally {
    await Deno.remove(gopath, { recursive: true }).catch(() => {});
  }
}
