/**
 * The one place the media path asks "which codec?": keyframe detection for the keyframe cache and waiting
 * viewers, the depacketizer for frame rate, picture size and thumbnails, and the bytes ffmpeg decodes a
 * keyframe from. Everything else forwards packets without looking inside them.
 */
import { startsKeyframe as h264StartsKeyframe } from "./keyframe.ts";
import { H264Depacketizer } from "./h264_depacketizer.ts";
import { Vp8Depacketizer, vp8StartsKeyframe } from "./vp8.ts";
import { Vp9Depacketizer, vp9StartsKeyframe } from "./vp9.ts";
import { Av1Depacketizer, av1StartsKeyframe } from "./av1.ts";
import { H265Depacketizer, h265StartsKeyframe } from "./h265.ts";
import type { VideoDepacketizer, VideoFrame } from "./frame_buffer.ts";
import { ivfFile } from "./ivf.ts";

/** The video codecs the media path understands (the same short names as `VIDEO_CODECS`). */
export type VideoCodec = "h264" | "av1" | "vp9" | "vp8" | "h265";

/** A keyframe as ffmpeg reads it: its input format (`-f`) and the bytes. */
export interface DecoderInput {
  format: "h264" | "hevc" | "ivf";
  data: Uint8Array;
}

/** What the media path needs to know about one video codec. */
export interface VideoCodecSupport {
  codec: VideoCodec;
  /** True when the RTP payload begins a picture a decoder can start from. */
  startsKeyframe(payload: Uint8Array): boolean;
  newDepacketizer(): VideoDepacketizer;
  /** A rebuilt keyframe in a form ffmpeg decodes (a fresh copy, safe to keep). */
  decoderInput(frame: VideoFrame): DecoderInput;
}

const IVF_FOURCC = { vp8: "VP80", vp9: "VP90", av1: "AV01" } as const;

function ivfSupport(
  codec: "vp8" | "vp9" | "av1",
  startsKeyframe: (payload: Uint8Array) => boolean,
  newDepacketizer: () => VideoDepacketizer,
): VideoCodecSupport {
  return {
    codec,
    startsKeyframe,
    newDepacketizer,
    decoderInput: (frame) => ({
      format: "ivf",
      data: ivfFile(IVF_FOURCC[codec], frame.width ?? 0, frame.height ?? 0, frame.data),
    }),
  };
}

const SUPPORT: Record<VideoCodec, VideoCodecSupport> = {
  h264: {
    codec: "h264",
    startsKeyframe: h264StartsKeyframe,
    newDepacketizer: () => new H264Depacketizer(),
    decoderInput: (frame) => ({ format: "h264", data: frame.data.slice() }),
  },
  h265: {
    codec: "h265",
    startsKeyframe: h265StartsKeyframe,
    newDepacketizer: () => new H265Depacketizer(),
    decoderInput: (frame) => ({ format: "hevc", data: frame.data.slice() }),
  },
  vp8: ivfSupport("vp8", vp8StartsKeyframe, () => new Vp8Depacketizer()),
  vp9: ivfSupport("vp9", vp9StartsKeyframe, () => new Vp9Depacketizer()),
  av1: ivfSupport("av1", av1StartsKeyframe, () => new Av1Depacketizer()),
};

/** The codec-specific parts of the media path for `codec`. */
export function videoCodecSupport(codec: VideoCodec): VideoCodecSupport {
  return SUPPORT[codec];
}
