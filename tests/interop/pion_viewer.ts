/**
 * The Pion v3 WHEP viewer (tests/interop/pion_whep): built from Debian's Pion sources in GOPATH mode into a
 * temporary directory, run against a server on loopback, its one JSON line parsed.
 */
import { hasCommand } from "./harness.ts";

const SOURCE = new URL("./pion_whep/", import.meta.url).pathname;
const DEBIAN_GOPATH = "/usr/share/gocode";

/** What one track's packets looked like to the viewer. */
export interface PionStreamStats {
  packets: number;
  bytes: number;
  /** Sequence numbers between the lowest and highest received that never arrived. */
  missing: number;
  /** Packets with a lower sequence number than one received before them. */
  outOfOrder: number;
  duplicates: number;
  firstPacketMs: number;
  firstIsKeyframe: boolean;
}

/** The viewer's report. */
export interface PionViewerResult {
  connected: boolean;
  video: PionStreamStats;
  audio: PionStreamStats;
  /** SRTP packets Pion refused as replayed (outside or repeated in its replay window). */
  srtpReplayed: number;
  srtpAuthFailures: number;
  srtpOtherFailures: number;
  bye: boolean;
  byeMs: number;
  closedMs: number;
  error?: string;
}

/** Why the Pion viewer cannot be built here, or undefined when it can. */
export function pionViewerMissing(): string | undefined {
  if (!hasCommand("go")) return "go (apt: golang-go)";
  try {
    Deno.statSync(`${DEBIAN_GOPATH}/src/github.com/pion/webrtc/settingengine.go`);
    return undefined;
  } catch {
    return "Pion's sources (apt: golang-github-pion-webrtc.v3-dev)";
  }
}

/** Builds the viewer into `dir`; returns the binary's path. */
export async function buildPionViewer(dir: string): Promise<string> {
  // GOPATH mode: the program sits in <dir>/src/pion_whep, and the /v3 import paths resolve through Go's
  // minimal module compatibility against Debian's sources.
  // (A copy, not a symlink: go resolves the working directory and would find itself outside GOPATH.)
  await Deno.mkdir(`${dir}/src/pion_whep`, { recursive: true });
  for (const file of ["main.go", "go.mod"]) {
    await Deno.copyFile(SOURCE + file, `${dir}/src/pion_whep/${file}`);
  }
  const binary = `${dir}/pion_whep`;
  const { code, stderr } = await new Deno.Command("go", {
    args: ["build", "-o", binary, "."],
    cwd: `${dir}/src/pion_whep`,
    // Go's default build cache is kept: the second build of Pion takes seconds instead of a minute.
    env: { GO111MODULE: "off", GOPATH: `${DEBIAN_GOPATH}:${dir}`, GOFLAGS: "" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`go build failed: ${new TextDecoder().decode(stderr)}`);
  return binary;
}

/** A running viewer; `result` resolves with its report when it exits. */
export interface PionViewer {
  result: Promise<PionViewerResult>;
  kill(): void;
}

/**
 * Starts the viewer on `whepUrl` (loopback only); it counts for `seconds`, or until a BYE with `untilBye`;
 * with `transportCc` it offers transport-wide congestion control and sends Pion's feedback.
 */
export function startPionViewer(
  binary: string,
  whepUrl: string,
  options: { seconds: number; untilBye?: boolean; transportCc?: boolean },
): PionViewer {
  const child = new Deno.Command(binary, {
    args: [
      "-url",
      whepUrl,
      "-duration",
      `${options.seconds}s`,
      ...(options.untilBye ? ["-until-bye"] : []),
      ...(options.transportCc ? ["-twcc"] : []),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const result = child.output().then(({ stdout, stderr }) => {
    const text = new TextDecoder().decode(stdout).trim();
    try {
      return JSON.parse(text.split("\n").pop() ?? "") as PionViewerResult;
    } catch {
      throw new Error(`the Pion viewer printed no report: ${text}\n${new TextDecoder().decode(stderr)}`);
    }
  });
  return {
    result,
    kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    },
  };
}
