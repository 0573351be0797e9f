/**
 * The benchmark's media: a 10-second 720p H.264 clip at ~2.4 Mbit/s plus 64 kbit/s Opus, encoded once with
 * ffmpeg and cached, then cut into RTP payloads (RFC 6184 single NAL units and FU-A; one Opus frame per
 * packet) with a send schedule that paces video the way a browser's pacer does.
 */
import { join } from "node:path";
import type { LightClient } from "./light_client.ts";

/** One RTP payload and when it leaves, relative to the start of a loop of the clip. */
export interface ScheduledPacket {
  /** Milliseconds from the loop start. */
  at: number;
  kind: "video" | "audio";
  payload: Uint8Array;
  marker: boolean;
  /** RTP timestamp relative to the loop start (90 kHz video, 48 kHz audio). */
  timestamp: number;
}

/** A loopable clip. */
export interface Clip {
  durationMs: number;
  packets: ScheduledPacket[];
  videoBitrate: number;
  /** How many packets of each kind one loop sends. */
  videoPackets: number;
  audioPackets: number;
}

const SECONDS = 10;
const FPS = 30;
/** Payload size that keeps SRTP datagrams at 1216 bytes (1200-byte RTP packets, as browsers send). */
const MAX_PAYLOAD = 1188;
/** libwebrtc's pacer sends at 2.5× the target rate. */
const PACING_BITS_PER_MS = 2.5 * 2500;

/** How the clip is encoded; the defaults are the benchmarks' (2.4 Mbit/s, a keyframe every 2 s, 10 s). */
export interface ClipShape {
  videoKbps: number;
  gopSeconds: number;
  seconds: number;
}

const DEFAULT_SHAPE: ClipShape = { videoKbps: 2400, gopSeconds: 2, seconds: SECONDS };

/** Encodes the clip into `dir` unless it is there already; returns the two file paths. */
export async function ensureClip(
  dir: string,
  shape: ClipShape = DEFAULT_SHAPE,
): Promise<{ video: string; audio: string }> {
  const isDefault = shape.videoKbps === DEFAULT_SHAPE.videoKbps &&
    shape.gopSeconds === DEFAULT_SHAPE.gopSeconds && shape.seconds === DEFAULT_SHAPE.seconds;
  const suffix = isDefault ? "" : `-${shape.videoKbps}k-gop${shape.gopSeconds}-${shape.seconds}s`;
  const video = join(dir, `clip-720p30${suffix}.h264`);
  const audio = join(dir, `clip-opus${suffix}.ogg`);
  if (await exists(video) && await exists(audio)) return { video, audio };
  await Deno.mkdir(dir, { recursive: true });
  const gop = String(shape.gopSeconds * FPS);
  const args = [
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `testsrc2=size=1280x720:rate=${FPS}`,
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000",
    // Noise keeps the encoder at its target rate; a clean test pattern would undershoot it.
    ...["-map", "0:v", "-t", String(shape.seconds), "-vf", "noise=alls=16:allf=t", "-c:v", "libx264"],
    ...[
      "-preset",
      "veryfast",
      "-profile:v",
      "baseline",
      "-pix_fmt",
      "yuv420p",
      "-b:v",
      `${shape.videoKbps}k`,
    ],
    ...[
      "-maxrate",
      `${shape.videoKbps}k`,
      "-bufsize",
      `${shape.videoKbps / 2}k`,
      "-g",
      gop,
      "-keyint_min",
      gop,
    ],
    ...["-sc_threshold", "0"],
    ...["-bsf:v", "h264_metadata=aud=insert", "-f", "h264", video + ".part"],
    ...["-map", "1:a", "-t", String(shape.seconds), "-c:a", "libopus", "-b:a", "64k", "-ac", "2"],
    ...["-f", "ogg", audio + ".part"],
  ];
  const { code, stderr } = await new Deno.Command("ffmpeg", { args, stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) throw new Error(`ffmpeg failed: ${new TextDecoder().decode(stderr)}`);
  await Deno.rename(video + ".part", video);
  await Deno.rename(audio + ".part", audio);
  return { video, audio };
}

/** Reads the cached clip into a send schedule. */
export async function loadClip(dir: string, shape: ClipShape = DEFAULT_SHAPE): Promise<Clip> {
  const files = await ensureClip(dir, shape);
  const h264 = await Deno.readFile(files.video);
  const ogg = await Deno.readFile(files.audio);
  const durationMs = shape.seconds * 1000;
  const packets: ScheduledPacket[] = [];

  let pacerFree = 0;
  const units = accessUnits(h264);
  units.forEach((nals, frame) => {
    const frameAt = (frame * 1000) / FPS;
    const payloads = nals.flatMap(packetizeNal);
    payloads.forEach((payload, i) => {
      const at = Math.max(frameAt, pacerFree);
      pacerFree = at + ((payload.length + 28) * 8) / PACING_BITS_PER_MS;
      packets.push({
        at: Math.min(at, durationMs - 1),
        kind: "video",
        payload,
        marker: i === payloads.length - 1,
        timestamp: frame * (90000 / FPS),
      });
    });
  });
  const videoPackets = packets.length;
  const opus = opusPackets(ogg);
  let audioPackets = 0;
  opus.forEach((payload, i) => {
    const at = i * 20;
    if (at >= durationMs) return;
    packets.push({ at, kind: "audio", payload, marker: false, timestamp: i * 960 });
    audioPackets++;
  });
  packets.sort((a, b) => a.at - b.at);
  return { durationMs, packets, videoBitrate: (h264.length * 8) / shape.seconds, videoPackets, audioPackets };
}

/** Splits Annex-B H.264 into access units at access unit delimiters; the delimiters are dropped. */
export function accessUnits(stream: Uint8Array): Uint8Array[][] {
  const units: Uint8Array[][] = [];
  let current: Uint8Array[] = [];
  for (const nal of nalUnits(stream)) {
    if ((nal[0] & 0x1f) === 9) {
      if (current.length > 0) units.push(current);
      current = [];
    } else {
      current.push(nal);
    }
  }
  if (current.length > 0) units.push(current);
  return units;
}

function nalUnits(stream: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < stream.length; i++) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  return starts.map((start, k) => {
    let end = k + 1 < starts.length ? starts[k + 1] - 3 : stream.length;
    while (end > start && stream[end - 1] === 0) end--; // the zero of a 4-byte start code
    return stream.subarray(start, end);
  });
}

/** RFC 6184: a single NAL unit packet when it fits, FU-A fragments otherwise. */
export function packetizeNal(nal: Uint8Array): Uint8Array[] {
  if (nal.length <= MAX_PAYLOAD) return [nal];
  const indicator = (nal[0] & 0xe0) | 28;
  const type = nal[0] & 0x1f;
  const out: Uint8Array[] = [];
  for (let offset = 1; offset < nal.length; offset += MAX_PAYLOAD - 2) {
    const chunk = nal.subarray(offset, Math.min(nal.length, offset + MAX_PAYLOAD - 2));
    const start = offset === 1 ? 0x80 : 0;
    const end = offset + chunk.length >= nal.length ? 0x40 : 0;
    const payload = new Uint8Array(chunk.length + 2);
    payload[0] = indicator;
    payload[1] = start | end | type;
    payload.set(chunk, 2);
    out.push(payload);
  }
  return out;
}

/** The Opus packets of an Ogg stream (RFC 7845), without the OpusHead and OpusTags headers. */
export function opusPackets(ogg: Uint8Array): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let partial: number[] = [];
  let offset = 0;
  while (offset + 27 <= ogg.length) {
    if (
      ogg[offset] !== 0x4f || ogg[offset + 1] !== 0x67 || ogg[offset + 2] !== 0x67 || ogg[offset + 3] !== 0x53
    ) {
      throw new Error(`Ogg: no capture pattern at ${offset}`);
    }
    const segments = ogg[offset + 26];
    let data = offset + 27 + segments;
    for (let i = 0; i < segments; i++) {
      const lacing = ogg[offset + 27 + i];
      for (let j = 0; j < lacing; j++) partial.push(ogg[data + j]);
      data += lacing;
      if (lacing < 255) {
        packets.push(Uint8Array.from(partial));
        partial = [];
      }
    }
    offset = data;
  }
  return packets.slice(2);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Sends the clip through a light WHIP client in a loop, on its schedule, until stopped. */
export function publishClip(client: LightClient, clip: Clip): { sent: () => number; stop: () => void } {
  const start = performance.now();
  let loop = 0;
  let index = 0;
  let videoSeq = Math.floor(Math.random() * 65536);
  let audioSeq = Math.floor(Math.random() * 65536);
  const videoBase = Math.floor(Math.random() * 2 ** 31);
  const audioBase = Math.floor(Math.random() * 2 ** 31);
  let sent = 0;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    const elapsed = performance.now() - start;
    while (clip.packets[index].at + loop * clip.durationMs <= elapsed) {
      const p = clip.packets[index];
      const isVideo = p.kind === "video";
      const packet = new Uint8Array(12 + p.payload.length);
      const view = new DataView(packet.buffer);
      packet[0] = 0x80;
      packet[1] = (p.marker ? 0x80 : 0) |
        (isVideo ? client.media.videoPayloadType : client.media.audioPayloadType!);
      view.setUint16(2, isVideo ? videoSeq++ & 0xffff : audioSeq++ & 0xffff);
      const loopTicks = isVideo ? loop * clip.durationMs * 90 : loop * clip.durationMs * 48;
      view.setUint32(4, ((isVideo ? videoBase : audioBase) + loopTicks + p.timestamp) >>> 0);
      view.setUint32(8, isVideo ? client.videoSsrc : client.audioSsrc);
      packet.set(p.payload, 12);
      client.sendRtp(packet);
      sent++;
      if (++index === clip.packets.length) {
        index = 0;
        loop++;
      }
    }
    setTimeout(tick, 1);
  };
  tick();
  return { sent: () => sent, stop: () => stopped = true };
}
