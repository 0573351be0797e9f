/**
 * How fast a Chromium publisher with a detailed 720p picture (a noisy clip made with ffmpeg, sent with
 * degradationPreference "maintain-resolution") reaches its bitrate, with transport-wide congestion feedback
 * (the default) and with REMB only (TRANSPORT_CC=off, the baseline). Prints the send rate every second.
 * Run: deno run --unstable-net --allow-all tests/bench/publisher_ramp.ts
 */
import { launchChromium } from "../helpers/browser.ts";
import { startServerProcess } from "../helpers/server_process.ts";
import { publishFromPage } from "../helpers/webrtc_clients.ts";

const SECONDS = Number(Deno.env.get("RAMP_SECONDS") ?? "15");
const TARGET_KBPS = 2000;

async function noisyClip(): Promise<string> {
  const clip = `${Deno.env.get("TMPDIR") ?? "/tmp"}/sfu-noisy-720p.y4m`;
  try {
    await Deno.stat(clip);
    return clip;
  } catch { /* make it */ }
  const ffmpeg = await new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"]
      .concat(["-vf", "noise=alls=30:allf=t+u", "-t", "2", "-pix_fmt", "yuv420p", "-y", clip]),
  }).output();
  if (!ffmpeg.success) throw new Error("ffmpeg could not make the clip");
  return clip;
}

async function ramp(label: string, env: Record<string, string>, clip: string): Promise<number | undefined> {
  const server = await startServerProcess(env);
  const browser = await launchChromium([`--use-file-for-fake-video-capture=${clip}`]);
  try {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(page, {
      token: server.token,
      room: "ramp",
      width: 1280,
      height: 720,
      degradation: "maintain-resolution",
    });
    const start = performance.now();
    let lastBytes = 0;
    let reachedAt: number | undefined;
    const line: string[] = [];
    for (let s = 1; s <= SECONDS; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      const bytes = await page.evaluate(async () => {
        const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
        let sent = 0;
        (await pc.getStats()).forEach((r) => {
          if (r.type === "outbound-rtp" && r.kind === "video") sent = r.bytesSent;
        });
        return sent;
      });
      const kbps = lastBytes === 0 ? 0 : ((bytes - lastBytes) * 8) / 1000;
      lastBytes = bytes;
      line.push(kbps.toFixed(0));
      if (reachedAt === undefined && kbps >= TARGET_KBPS) reachedAt = (performance.now() - start) / 1000;
    }
    console.log(`${label.padEnd(28)} kbit/s per second: ${line.join(" ")}`);
    return reachedAt;
  } finally {
    await browser.close();
    await server.stop();
  }
}

const clip = await noisyClip();
const withTwcc = await ramp("transport-cc (default)", {}, clip);
const withRemb = await ramp("REMB only (TRANSPORT_CC=off)", { TRANSPORT_CC: "off" }, clip);
const show = (t: number | undefined) => t === undefined ? `not within ${SECONDS} s` : `${t.toFixed(1)} s`;
console.log(
  `\ntime to ${TARGET_KBPS} kbit/s: transport-cc ${show(withTwcc)}, REMB-only baseline ${show(withRemb)}`,
);
