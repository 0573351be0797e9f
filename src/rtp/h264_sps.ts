/**
 * Picture size from an H.264 sequence parameter set (ITU-T H.264 section 7.3.2.1.1).
 *
 * Only the fields up to `frame_cropping` are read; VUI is ignored. The parse is done on each new SPS
 * (rare), so it allocates a small unescaped copy rather than reading around emulation-prevention bytes.
 *
 * @module
 */
import { BitReader, Truncated, unescapeRbsp } from "./bit_reader.ts";

/** Width and height of the decoded (cropped) picture in luma samples. */
export interface SpsDimensions {
  width: number;
  height: number;
}

// Profiles whose SPS carries chroma_format_idc, bit depths and scaling lists (7.3.2.1.1).
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

// Level 6.2 tops out at 8192x4320 (Table A-1 MaxFS 139264 macroblocks); anything far above is garbage.
const MAX_DIMENSION = 16384;

function skipScalingList(r: BitReader, size: number): void {
  // 7.3.2.1.1.1: only the deltas are in the bitstream; stop once next_scale hits 0.
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      next = (last + r.se() + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/**
 * Reads the cropped picture size from an SPS NAL unit (1-byte NAL header included; a leading Annex-B start
 * code is tolerated). Returns undefined for anything that is not a well-formed SPS.
 *
 * @example
 * ```ts
 * const dims = parseSpsDimensions(spsNal); // { width: 1280, height: 720 }
 * ```
 */
export function parseSpsDimensions(sps: Uint8Array): SpsDimensions | undefined {
  let start = 0;
  if (sps.length >= 4 && sps[0] === 0 && sps[1] === 0) {
    if (sps[2] === 1) start = 3;
    else if (sps[2] === 0 && sps[3] === 1) start = 4;
  }
  if (sps.length < start + 4 || (sps[start] & 0x1f) !== 7) return undefined;
  const r = new BitReader(unescapeRbsp(sps, start + 1));
  try {
    const profileIdc = r.bits(8);
    r.bits(16); // constraint_set flags + reserved, level_idc
    r.ue(); // seq_parameter_set_id
    let chromaFormatIdc = 1;
    let separateColourPlane = 0;
    if (HIGH_PROFILES.has(profileIdc)) {
      chromaFormatIdc = r.ue();
      if (chromaFormatIdc > 3) return undefined;
      if (chromaFormatIdc === 3) separateColourPlane = r.bit();
      r.ue(); // bit_depth_luma_minus8
      r.ue(); // bit_depth_chroma_minus8
      r.bit(); // qpprime_y_zero_transform_bypass_flag
      if (r.bit()) { // seq_scaling_matrix_present_flag
        const lists = chromaFormatIdc === 3 ? 12 : 8;
        for (let i = 0; i < lists; i++) {
          if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
        }
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const picOrderCntType = r.ue();
    if (picOrderCntType === 0) {
      r.ue(); // log2_max_pic_order_cnt_lsb_minus4
    } else if (picOrderCntType === 1) {
      r.bit(); // delta_pic_order_always_zero_flag
      r.se(); // offset_for_non_ref_pic
      r.se(); // offset_for_top_to_bottom_field
      const cycle = r.ue();
      if (cycle > 255) return undefined;
      for (let i = 0; i < cycle; i++) r.se();
    } else if (picOrderCntType !== 2) {
      return undefined;
    }
    r.ue(); // max_num_ref_frames
    r.bit(); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
    r.bit(); // direct_8x8_inference_flag
    let width = widthMbs * 16;
    let height = (2 - frameMbsOnly) * heightMapUnits * 16;
    if (r.bit()) { // frame_cropping_flag
      const left = r.ue();
      const right = r.ue();
      const top = r.ue();
      const bottom = r.ue();
      // 7.4.2.1.1: crop offsets are in chroma sample units (equations 7-19 to 7-22).
      const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
      const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
      const subHeightC = chromaArrayType === 1 ? 2 : 1;
      width -= subWidthC * (left + right);
      height -= subHeightC * (2 - frameMbsOnly) * (top + bottom);
    }
    if (width <= 0 || height <= 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) return undefined;
    return { width, height };
  } catch (err) {
    if (err instanceof Truncated) return undefined;
    throw err;
  }
}
