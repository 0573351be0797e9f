/**
 * A publisher that ignores keyframe requests, like OBS reportedly does: Debian's simple-whip-client sending
 * a pre-encoded H.264 clip with a fixed GOP (made with ffmpeg), paced in real time by GStreamer. PLIs reach
 * rtph264pay but nothing upstream can make a keyframe, so keyframes come only every GOP.
 */
import {
  buildSoupShim,
  type ForeignProcess,
  hasCommand,
  hasGstElement,
  spawnForeign,
} from "../interop/harness.ts";
import type { NetNamespace } from "./netns.ts";

/** What is missing for {@link startClipPublisher}, or undefined when it can run. */
export function clipPublisherMissing(): string | undefined {
  const absent: string[] = [];
  if (!hasCommand("whip-client")) absent.push("whip-client (apt: simple-whip-client)");
  if (!hasCommand("ffmpeg")) absent.push("ffmpeg");
  if (!hasCommand("cc")) absent.push("cc (apt: gcc)");
  for (const element of ["webrtcbin", "qtdemux", "h264parse", "rtph264pay"]) {
    if (!hasGstElement(element)) absent.push(`GStreamer ${element}`);
  }
  return absent.length > 0 ? absent.join(", ") : undefined;
}

/**
 * Makes (once per temp dir) a 640x360 30 fps clip with a keyframe every `gopSeconds`: H.264 baseline (.mp4),
 * VP8 (.vp8.ivf) or VP9 (.vp9.ivf).
 */
export async function makeGopClip(
  seconds = 90,
  gopSeconds = 2,
  codec: "h264" | "vp8" | "vp9" = "h264",
): Promise<string> {
  const ext = codec === "h264" ? "mp4" : `${codec}.ivf`;
  const path = `${Deno.env.get("TMPDIR") ?? "/tmp"}/sfu-gop${gopSeconds}-${seconds}s.${ext}`;
  try {
    await Deno.stat(path);
    return path;
  } catch { /* make it */ }
  const gop = String(gopSeconds * 30);
  const result = await new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]
      .concat(["-t", String(seconds), "-g", gop, "-keyint_min", gop, "-pix_fmt", "yuv420p"])
      .concat(
        codec === "vp8"
          ? ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M", "-auto-alt-ref", "0"]
          : codec === "vp9"
          ? [
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "1M",
            "-auto-alt-ref",
            "0",
          ]
          : ["-c:v", "libx264", "-profile:v", "baseline", "-sc_threshold", "0", "-bf", "0"],
      )
      .concat([`${path}.tmp.${ext}`]),
  }).output();
  if (!result.success) throw new Error(`ffmpeg failed: ${new TextDecoder().decode(result.stderr)}`);
  await Deno.rename(`${path}.tmp.${ext}`, path);
  return path;
}

/**
 * Starts simple-whip-client publishing `clip` to `room`, inside `netns` (libnice never pairs loopback, so the
 * server must run in that namespace too).
 */
export async function startClipPublisher(
  baseUrl: string,
  token: string,
  room: string,
  clip: string,
  netns: NetNamespace,
): Promise<ForeignProcess & { cleanup(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "clip-publisher-" });
  const shim = await buildSoupShim(dir);
  // A .vp8.ivf or .vp9.ivf clip (from makeGopClip) is sent as VP8 or VP9, an .mp4 one as H.264.
  const vpx = /\.(vp[89])\.ivf$/.exec(clip)?.[1];
  const video = vpx
    ? `filesrc location=${clip} ! ivfparse ! identity sync=true ! rtp${vpx}pay pt=96 ssrc=2 ! queue ! ` +
      `application/x-rtp,media=video,encoding-name=${vpx.toUpperCase()},payload=96`
    : `filesrc location=${clip} ! qtdemux ! h264parse config-interval=-1 ! identity sync=true ! ` +
      "rtph264pay pt=96 ssrc=2 config-interval=-1 ! queue ! application/x-rtp,media=video,encoding-name=H264,payload=96";
  const process = spawnForeign(
    "whip-client",
    [
      "-u",
      `${baseUrl}/whip?room=${room}`,
      "-t",
      token,
      "-o",
      "-V",
      video,
    ],
    { LD_PRELOAD: shim },
    netns,
  );
  return Object.assign(process, {
    async cleanup() {
      await process.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  });
}
