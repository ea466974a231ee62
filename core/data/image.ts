// Image loading and darknet's own resampling (AlexeyAB src/image.c), bit-for-bit in float32.
//
// Layout is darknet's `image`: planar CHW, RGB, values in [0,1] — data[c*h*w + y*w + x].
//
// Decoding decisions (darknet `detector map`/`test` load images with OpenCV's imread(IMREAD_COLOR)
// when built with OPENCV, which is the usual build):
//   * EXIF orientation IS applied — imread(IMREAD_COLOR) rotates/flips by the EXIF Orientation tag
//     (OpenCV >= 3.1). A darknet built without OpenCV (stb_image) would not; pass
//     { autoOrient: false } to mimic that build.
//   * embedded ICC profiles are ignored (OpenCV does not colour-manage); sharp would otherwise
//     convert to sRGB.
//   * alpha is dropped, grey is replicated to three channels, 16-bit samples are reduced to 8 bits
//     (IMREAD_COLOR always yields 8-bit BGR); darknet then swaps to RGB and divides by 255.
// JPEG decoders differ slightly between libjpeg builds (IDCT, chroma upsampling), so pixel values
// can differ from a given OpenCV build by a few 1/255 steps; the resampling below is exact.

import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { decodeJpegNative } from './native-jpeg';

export interface RgbImage {
  width: number;
  height: number;
  /** Planar CHW RGB in [0,1], length 3*width*height. */
  data: Float32Array;
}

export interface LoadImageOptions {
  /** Apply the EXIF Orientation tag (OpenCV imread behaviour). Default true. */
  autoOrient?: boolean;
}

const f = Math.fround;

/** byte/255 as darknet stores it (float). */
const BYTE_TO_FLOAT = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; ++i) t[i] = i / 255;
  return t;
})();

export async function loadImage(path: string, opts: LoadImageOptions = {}): Promise<RgbImage> {
  const { data, width, height } = await decodeImageBytes(path, opts);
  return rgbFromInterleaved(data, width, height);
}

/**
 * An image file as interleaved 8-bit RGB (HWC) with the decisions above. Plain JPEGs go through
 * the native decoder when it is built (the same libjpeg-turbo decode, 50-65% of sharp's CPU time); everything
 * else, and every JPEG it declines, through sharp.
 */
export async function decodeImageBytes(path: string, opts: LoadImageOptions = {}): Promise<{ data: Buffer; width: number; height: number }> {
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    const bytes = await readFile(path);
    const native = await decodeJpegNative(bytes);
    if (native) return native;
    raw = await sharp(bytes, { autoOrient: opts.autoOrient ?? true, ignoreIcc: true, failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot decode image: ${path}: ${reason}`);
  }
  const { width, height, channels } = raw.info;
  if (channels !== 3) throw new Error(`cannot decode image: ${path}: expected 3 channels after decoding, got ${channels}`);
  return { data: raw.data, width, height };
}

/** Interleaved 8-bit RGB (HWC) → planar float image. */
export function rgbFromInterleaved(bytes: Uint8Array, width: number, height: number): RgbImage {
  const plane = width * height;
  if (bytes.length < plane * 3) throw new RangeError(`expected ${plane * 3} bytes for ${width}x${height} RGB, got ${bytes.length}`);
  const data = new Float32Array(plane * 3);
  const lut = BYTE_TO_FLOAT;
  for (let i = 0, j = 0; i < plane; ++i, j += 3) {
    data[i] = lut[bytes[j]];
    data[plane + i] = lut[bytes[j + 1]];
    data[2 * plane + i] = lut[bytes[j + 2]];
  }
  return { width, height, data };
}

/** Planar float image → interleaved 8-bit RGB, as darknet's save_image (truncating 255*v, clamped). */
export function rgbToInterleaved(img: RgbImage): Uint8Array {
  const plane = img.width * img.height;
  const out = new Uint8Array(plane * 3);
  for (let k = 0; k < 3; ++k) {
    const off = k * plane;
    for (let i = 0; i < plane; ++i) {
      const v = img.data[off + i];
      out[i * 3 + k] = v <= 0 ? 0 : v >= 1 ? 255 : Math.trunc(f(255 * v));
    }
  }
  return out;
}

function channelsOf(img: RgbImage): number {
  const plane = img.width * img.height;
  const c = plane > 0 ? img.data.length / plane : 3;
  if (!Number.isInteger(c) || c < 1) throw new RangeError(`image data length ${img.data.length} is not a multiple of ${img.width}x${img.height}`);
  return c;
}

interface HTaps {
  ia: Int32Array;
  ib: Int32Array;
  wa: Float32Array;
  wb: Float32Array;
}

/** One row of darknet's horizontal pass: dst[c] = (1-dx)*src[ia] + dx*src[ib], float32 steps. */
function horizontalRow(src: Float32Array, off: number, t: HTaps, dst: Float32Array, w: number): void {
  const { ia, ib, wa, wb } = t;
  for (let c = 0; c < w; ++c) dst[c] = f(f(wa[c] * src[off + ia[c]]) + f(wb[c] * src[off + ib[c]]));
}

/**
 * darknet resize_image(): bilinear, separable — a horizontal pass into a (w x im.h) buffer, then a
 * vertical pass. Sample positions are c*(im.w-1)/(w-1) (corners aligned); the last output column
 * copies the last input column; the last output row takes only the (1-dy) term of its top source
 * row (darknet skips the dy term there). All arithmetic in float32 in darknet's order.
 * Same size returns a copy. A target height of 1 is undefined in darknet (0*inf); here it samples
 * row 0. Works for any channel count (data length / (w*h)).
 */
export function resizeImage(img: RgbImage, w: number, h: number): RgbImage {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new RangeError(`resize target must be positive integers, got ${w}x${h}`);
  const iw = img.width;
  const ih = img.height;
  const ch = channelsOf(img);
  if (iw === w && ih === h) return { width: w, height: h, data: img.data.slice() };
  const src = img.data;

  // Horizontal taps per output column: part[c] = (1-dx)*row[ia] + dx*row[ib]. The last column
  // (and 1-pixel-wide sources) copy row[iw-1]: weights (1, 0) give exactly that value.
  const wScale = f((iw - 1) / (w - 1)); // (float)(im.w - 1) / (w - 1); w == 1 → inf, never used
  const taps: HTaps = { ia: new Int32Array(w), ib: new Int32Array(w), wa: new Float32Array(w), wb: new Float32Array(w) };
  for (let c = 0; c < w; ++c) {
    if (c === w - 1 || iw === 1) {
      taps.ia[c] = taps.ib[c] = iw - 1;
      taps.wa[c] = 1;
      taps.wb[c] = 0;
      continue;
    }
    const sx = f(c * wScale);
    // For extreme upscaling float rounding can put sx on the last column; darknet would read one
    // past the row there (undefined); we clamp both taps inside the row.
    const i = Math.min(Math.trunc(sx), iw - 1);
    const d = f(sx - i);
    taps.ia[c] = i;
    taps.ib[c] = Math.min(i + 1, iw - 1);
    taps.wa[c] = f(1 - d);
    taps.wb[c] = d;
  }

  // Darknet runs the horizontal pass over every source row into a w x im.h buffer, then the
  // vertical pass. Each output row only needs two of those rows, so they are computed on demand
  // into a two-row cache (same values, far less memory traffic).
  const hScale = h === 1 ? 0 : f((ih - 1) / (h - 1));
  const out = new Float32Array(w * h * ch);
  let rowA = new Float32Array(w);
  let rowB = new Float32Array(w);
  for (let k = 0; k < ch; ++k) {
    const plane = k * ih * iw;
    let idxA = -1;
    let idxB = -1;
    for (let r = 0; r < h; ++r) {
      const sy = f(r * hScale);
      // When float rounding leaves sy just below ih-1 on the last row, darknet really does output
      // only (1-dy)*row[ih-2] with dy ~ 1 (a nearly black last row); this is reproduced.
      const iy = Math.min(Math.trunc(sy), ih - 1);
      const dy = f(sy - iy);
      const dy1 = f(1 - dy);
      const o = (k * h + r) * w;
      if (idxA !== iy) {
        if (idxB === iy) {
          const t = rowA;
          rowA = rowB;
          rowB = t;
          idxB = -1;
        } else {
          horizontalRow(src, plane + iy * iw, taps, rowA, w);
        }
        idxA = iy;
      }
      if (r === h - 1 || ih === 1) {
        for (let c = 0; c < w; ++c) out[o + c] = f(dy1 * rowA[c]);
        continue;
      }
      const iy1 = Math.min(iy + 1, ih - 1); // clamp: darknet would read past the plane
      let b = rowB;
      if (iy1 === iy) b = rowA;
      else if (idxB !== iy1) {
        horizontalRow(src, plane + iy1 * iw, taps, rowB, w);
        idxB = iy1;
      }
      for (let c = 0; c < w; ++c) out[o + c] = f(f(dy1 * rowA[c]) + f(dy * b[c]));
    }
  }
  return { width: w, height: h, data: out };
}

export interface Letterboxed {
  image: RgbImage;
  /** Size of the resized picture inside the box. */
  newWidth: number;
  newHeight: number;
  /** Offset of the picture inside the box (darknet: (w - new_w) / 2, integer division). */
  dx: number;
  dy: number;
}

/**
 * darknet letterbox_image() (AlexeyAB): resize keeping the aspect ratio so the picture fits
 * w x h — if w/im.w < h/im.h (float compare) new_w = w, new_h = im.h*w/im.w, else new_h = h,
 * new_w = im.w*h/im.h (integer division) — with resize_image(), then paste it centred at
 * ((w-new_w)/2, (h-new_h)/2) on a canvas filled with 0.5.
 */
export function letterboxImage(img: RgbImage, w: number, h: number): Letterboxed {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new RangeError(`letterbox target must be positive integers, got ${w}x${h}`);
  let newW: number;
  let newH: number;
  if (f(w / img.width) < f(h / img.height)) {
    newW = w;
    newH = Math.trunc((img.height * w) / img.width);
  } else {
    newH = h;
    newW = Math.trunc((img.width * h) / img.height);
  }
  // Degenerate aspect ratios can truncate to 0; darknet would then divide by zero. Keep >= 1.
  newW = Math.max(1, newW);
  newH = Math.max(1, newH);
  const ch = channelsOf(img);
  const resized = resizeImage(img, newW, newH);
  const dx = Math.trunc((w - newW) / 2);
  const dy = Math.trunc((h - newH) / 2);
  const out = new Float32Array(w * h * ch).fill(0.5);
  const rd = resized.data;
  for (let k = 0; k < ch; ++k) {
    for (let y = 0; y < newH; ++y) {
      const ty = dy + y;
      if (ty < 0 || ty >= h) continue;
      const srcRow = (k * newH + y) * newW;
      const dstRow = (k * h + ty) * w + dx;
      out.set(rd.subarray(srcRow, srcRow + newW), dstRow);
    }
  }
  return { image: { width: w, height: h, data: out }, newWidth: newW, newHeight: newH, dx, dy };
}

export interface PreparedInput {
  /** 1 x 3 x netH x netW, planar RGB in [0,1]. */
  tensor: Float32Array;
  letterBox: boolean;
  netW: number;
  netH: number;
  imageW: number;
  imageH: number;
}

/**
 * The network input darknet builds in `detector map` / `detector test`: resize_image() to the
 * network size (stretch), or letterbox_image() when the cfg/CLI asks for letter_box.
 */
export function prepareInput(img: RgbImage, netW: number, netH: number, letterBox: boolean): PreparedInput {
  const image = letterBox ? letterboxImage(img, netW, netH).image : resizeImage(img, netW, netH);
  return { tensor: image.data, letterBox, netW, netH, imageW: img.width, imageH: img.height };
}
