// The network input of an image file, bit for bit what core/data's loadImage + prepareInput give
// (darknet resize_image / letterbox_image on the decoded RGB image), but computed straight from
// the decoder's interleaved bytes: no full-size float image is built, and only the source rows
// the vertical pass needs go through the horizontal pass. This is the decoding cost that has to
// hide behind inference in `map`; test/unit/onnx-pipeline.test.ts checks it equals core/data's.
import sharp from 'sharp';

const f = Math.fround;

const BYTE_TO_FLOAT = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; ++i) t[i] = i / 255;
  return t;
})();

export interface DecodedInput {
  /** [3, netH, netW] planar RGB in [0,1]. */
  tensor: Float32Array;
  /** Original image size (after EXIF orientation). */
  width: number;
  height: number;
}

/** Same decoding options as core/data loadImage (EXIF orientation applied, ICC ignored). */
export async function decodeRgb(path: string): Promise<{ data: Buffer; width: number; height: number }> {
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    raw = await sharp(path, { autoOrient: true, ignoreIcc: true, failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new Error(`cannot decode image: ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { width, height, channels } = raw.info;
  if (channels !== 3) throw new Error(`cannot decode image: ${path}: expected 3 channels after decoding, got ${channels}`);
  return { data: raw.data, width, height };
}

/** Horizontal taps per output column: byte offsets of the two source pixels and their weights. */
interface ColumnTaps {
  ia: Int32Array;
  ib: Int32Array;
  wa: Float32Array;
  wb: Float32Array;
}

// Datasets repeat a few image widths: the taps of the last few (iw, w) pairs are kept.
const tapsCache = new Map<number, ColumnTaps>();

function columnTaps(iw: number, w: number): ColumnTaps {
  const key = iw * 65536 + w;
  const hit = tapsCache.get(key);
  if (hit) return hit;
  const wScale = f((iw - 1) / (w - 1));
  const t: ColumnTaps = { ia: new Int32Array(w), ib: new Int32Array(w), wa: new Float32Array(w), wb: new Float32Array(w) };
  for (let c = 0; c < w; ++c) {
    if (c === w - 1 || iw === 1) {
      t.ia[c] = t.ib[c] = (iw - 1) * 3;
      t.wa[c] = 1;
      t.wb[c] = 0;
      continue;
    }
    const sx = f(c * wScale);
    const i = Math.min(Math.trunc(sx), iw - 1);
    const d = f(sx - i);
    t.ia[c] = i * 3;
    t.ib[c] = Math.min(i + 1, iw - 1) * 3;
    t.wa[c] = f(1 - d);
    t.wb[c] = d;
  }
  if (tapsCache.size >= 16) tapsCache.delete(tapsCache.keys().next().value!);
  tapsCache.set(key, t);
  return t;
}

// The loops below are separate small functions with typed-array arguments only, so V8 compiles
// each into a tight monomorphic loop (float32 rounding via Math.fround is a single conversion).

/** One source row through darknet's horizontal pass, three planes [r.. g.. b..] of w into dst. */
function horizontalRow(
  bytes: Uint8Array, base: number, ia: Int32Array, ib: Int32Array, wa: Float32Array, wb: Float32Array,
  dst: Float32Array, w: number,
): void {
  const L = BYTE_TO_FLOAT;
  const w2 = 2 * w;
  for (let c = 0; c < w; ++c) {
    const a = base + ia[c];
    const b = base + ib[c];
    const pa = wa[c];
    const pb = wb[c];
    dst[c] = f(f(pa * L[bytes[a]]) + f(pb * L[bytes[b]]));
    dst[w + c] = f(f(pa * L[bytes[a + 1]]) + f(pb * L[bytes[b + 1]]));
    dst[w2 + c] = f(f(pa * L[bytes[a + 2]]) + f(pb * L[bytes[b + 2]]));
  }
}

/** darknet's vertical pass for one output row: (1-dy)*a + dy*b, per plane. */
function verticalRow(a: Float32Array, b: Float32Array, dy1: number, dy: number, out: Float32Array, o: number, plane: number, w: number): void {
  for (let k = 0, s = 0, d = o; k < 3; k++, s += w, d += plane) {
    for (let c = 0; c < w; ++c) out[d + c] = f(f(dy1 * a[s + c]) + f(dy * b[s + c]));
  }
}

/** The last output row: darknet skips the dy term there. */
function verticalLastRow(a: Float32Array, dy1: number, out: Float32Array, o: number, plane: number, w: number): void {
  for (let k = 0, s = 0, d = o; k < 3; k++, s += w, d += plane) {
    for (let c = 0; c < w; ++c) out[d + c] = f(dy1 * a[s + c]);
  }
}

function copyInterleaved(bytes: Uint8Array, iw: number, w: number, h: number, out: Float32Array, outW: number, plane: number, dx: number, dy: number): void {
  const L = BYTE_TO_FLOAT;
  for (let y = 0; y < h; y++) {
    const o = (dy + y) * outW + dx;
    for (let x = 0, s = y * iw * 3; x < w; x++, s += 3) {
      out[o + x] = L[bytes[s]];
      out[plane + o + x] = L[bytes[s + 1]];
      out[2 * plane + o + x] = L[bytes[s + 2]];
    }
  }
}

/**
 * darknet resize_image() of an interleaved 8-bit RGB image to w x h, written into `out` (planes of
 * outW x outH) at offset (dx, dy). Float32 arithmetic in darknet's order (see core/data/image.ts).
 * Each output row needs the horizontal pass of two source rows; those are computed on demand into
 * a two-row cache (consecutive output rows mostly share one).
 */
export function resizeInterleavedInto(
  bytes: Uint8Array, iw: number, ih: number, w: number, h: number,
  out: Float32Array, outW: number, outH: number, dx: number, dy: number,
): void {
  const plane = outW * outH;
  if (iw === w && ih === h) {
    copyInterleaved(bytes, iw, w, h, out, outW, plane, dx, dy);
    return;
  }
  const { ia, ib, wa, wb } = columnTaps(iw, w);
  let rowA = new Float32Array(3 * w);
  let rowB = new Float32Array(3 * w);
  let idxA = -1;
  let idxB = -1;
  const stride = iw * 3;
  const hScale = h === 1 ? 0 : f((ih - 1) / (h - 1));
  for (let r = 0; r < h; ++r) {
    const sy = f(r * hScale);
    const iy = Math.min(Math.trunc(sy), ih - 1);
    const ddy = f(sy - iy);
    const dy1 = f(1 - ddy);
    if (idxA !== iy) {
      if (idxB === iy) {
        const t = rowA;
        rowA = rowB;
        rowB = t;
        idxB = idxA;
      } else {
        horizontalRow(bytes, iy * stride, ia, ib, wa, wb, rowA, w);
      }
      idxA = iy;
    }
    const o = (dy + r) * outW + dx;
    if (r === h - 1 || ih === 1) {
      verticalLastRow(rowA, dy1, out, o, plane, w);
      continue;
    }
    const iy1 = Math.min(iy + 1, ih - 1);
    let b = rowB;
    if (iy1 === iy) b = rowA;
    else if (idxB !== iy1) {
      horizontalRow(bytes, iy1 * stride, ia, ib, wa, wb, rowB, w);
      idxB = iy1;
    }
    verticalRow(rowA, b, dy1, ddy, out, o, plane, w);
  }
}

/** darknet letterbox_image() sizes: fit inside w x h keeping the aspect ratio. */
export function letterboxFit(iw: number, ih: number, w: number, h: number): { newW: number; newH: number; dx: number; dy: number } {
  let newW: number;
  let newH: number;
  if (f(w / iw) < f(h / ih)) {
    newW = w;
    newH = Math.trunc((ih * w) / iw);
  } else {
    newH = h;
    newW = Math.trunc((iw * h) / ih);
  }
  newW = Math.max(1, newW);
  newH = Math.max(1, newH);
  return { newW, newH, dx: Math.trunc((w - newW) / 2), dy: Math.trunc((h - newH) / 2) };
}

/** The network input from interleaved RGB bytes: resize_image to netW x netH, or letterbox. */
export function inputFromInterleaved(bytes: Uint8Array, iw: number, ih: number, netW: number, netH: number, letterBox: boolean): Float32Array {
  const out = new Float32Array(3 * netW * netH);
  if (!letterBox) {
    resizeInterleavedInto(bytes, iw, ih, netW, netH, out, netW, netH, 0, 0);
    return out;
  }
  const { newW, newH, dx, dy } = letterboxFit(iw, ih, netW, netH);
  out.fill(0.5);
  if (newW <= netW && newH <= netH && dx >= 0 && dy >= 0) {
    resizeInterleavedInto(bytes, iw, ih, newW, newH, out, netW, netH, dx, dy);
  } else {
    // Cannot happen with darknet's fit; keep the general path simple and exact.
    const tmp = new Float32Array(3 * newW * newH);
    resizeInterleavedInto(bytes, iw, ih, newW, newH, tmp, newW, newH, 0, 0);
    for (let k = 0; k < 3; k++) {
      for (let y = 0; y < newH; y++) {
        const ty = dy + y;
        if (ty < 0 || ty >= netH) continue;
        for (let x = 0; x < newW; x++) {
          const tx = dx + x;
          if (tx >= 0 && tx < netW) out[(k * netH + ty) * netW + tx] = tmp[(k * newH + y) * newW + x];
        }
      }
    }
  }
  return out;
}

/** Decode an image file and build the network input, as loadImage + prepareInput do. */
export async function decodeForNetwork(path: string, netW: number, netH: number, letterBox: boolean): Promise<DecodedInput> {
  const { data, width, height } = await decodeRgb(path);
  return { tensor: inputFromInterleaved(data, width, height, netW, netH, letterBox), width, height };
}
