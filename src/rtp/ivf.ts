/** IVF, the simple container ffmpeg reads VP8, VP9 and AV1 frames from (a 32-byte header, then frames). */

/** An IVF file holding one frame: what a thumbnail decoder is fed. */
export function ivfFile(
  fourcc: "VP80" | "VP90" | "AV01",
  width: number,
  height: number,
  frame: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(32 + 12 + frame.length);
  const view = new DataView(out.buffer);
  out.set([0x44, 0x4b, 0x49, 0x46]); // "DKIF"
  view.setUint16(4, 0, true); // version
  view.setUint16(6, 32, true); // header length
  for (let i = 0; i < 4; i++) out[8 + i] = fourcc.charCodeAt(i);
  view.setUint16(12, width & 0xffff, true);
  view.setUint16(14, height & 0xffff, true);
  view.setUint32(16, 30, true); // time base 1/30: irrelevant for one frame
  view.setUint32(20, 1, true);
  view.setUint32(24, 1, true); // frame count
  view.setUint32(32, frame.length, true);
  // 8-byte presentation timestamp 0
  out.set(frame, 44);
  return out;
}
