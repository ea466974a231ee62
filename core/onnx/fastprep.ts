// The network input of an image file, bit for bit what core/data's loadImage + prepareInput give
// (darknet resize_image / letterbox_image on the decoded RGB image), but computed straight from
// the decoder's interleaved bytes: no full-size float image is built, and only the source rows
// the vertical pass needs go through the horizontal pass, both passes in WebAssembly (resize.wat).
// This is the decoding cost that has to hide behind inference in `map`;
// test/unit/onnx-pipeline.test.ts checks it equals core/data's.
import { decodeImageBytes, resizeImage, rgbFromInterleaved } from '../data/image';
import { RESIZE_WASM_BASE64 } from './resize-wasm';

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

// The two passes run in WebAssembly (resize.wat): its f32 arithmetic is darknet's float32 without
// a Math.fround per operation, and the vertical pass uses four lanes. Same results, ~4x faster.
interface ResizeKernels {
  memory: WebAssembly.Memory;
  horizontal(src: number, ia: number, ib: number, wa: number, wb: number, dst: number, w: number): void;
  vertical(a: number, b: number, dy1: number, dy: number, out: number, n: number): void;
  scale(a: number, dy1: number, out: number, n: number): void;
}

let kernels: ResizeKernels | null | undefined;

/** The compiled kernels of this thread, with the byte → float table in place; null without WebAssembly. */
function resizeKernels(): ResizeKernels | null {
  if (kernels === undefined) {
    try {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(RESIZE_WASM_BASE64, 'base64')));
      kernels = instance.exports as unknown as ResizeKernels;
      new Float32Array(kernels.memory.buffer, 0, 256).set(BYTE_TO_FLOAT);
    } catch {
      kernels = null; // a runtime without WebAssembly SIMD: core/data's resize (exact, slower)
    }
  }
  return kernels;
}

const align16 = (n: number) => (n + 15) & ~15;

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

/** Planes [3][h][w] at `src` copied into `out` (planes of outW x outH) at offset (dx, dy). */
function pastePlanes(src: Float32Array, w: number, h: number, out: Float32Array, outW: number, outH: number, dx: number, dy: number): void {
  const plane = outW * outH;
  for (let k = 0; k < 3; k++) {
    if (w === outW) {
      out.set(src.subarray(k * w * h, (k + 1) * w * h), k * plane + dy * outW + dx);
      continue;
    }
    for (let y = 0; y < h; y++) out.set(src.subarray((k * h + y) * w, (k * h + y + 1) * w), k * plane + (dy + y) * outW + dx);
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
  const k = resizeKernels();
  if (!k) {
    pastePlanes(resizeImage(rgbFromInterleaved(bytes, iw, ih), w, h).data, w, h, out, outW, outH, dx, dy);
    return;
  }
  // Layout after the 1 KiB table: taps, two cached rows, the w x h planes, the source bytes.
  const IA = 1024;
  const IB = IA + 4 * w;
  const WA = IB + 4 * w;
  const WB = WA + 4 * w;
  let rowA = align16(WB + 4 * w);
  let rowB = align16(rowA + 12 * w);
  const OUT = align16(rowB + 12 * w);
  const SRC = align16(OUT + 12 * w * h);
  const end = SRC + iw * ih * 3;
  if (end > k.memory.buffer.byteLength) k.memory.grow(Math.ceil((end - k.memory.buffer.byteLength) / 65536));
  const mem = k.memory.buffer;
  const taps = columnTaps(iw, w);
  new Int32Array(mem, IA, w).set(taps.ia);
  new Int32Array(mem, IB, w).set(taps.ib);
  new Float32Array(mem, WA, w).set(taps.wa);
  new Float32Array(mem, WB, w).set(taps.wb);
  new Uint8Array(mem, SRC, iw * ih * 3).set(bytes.subarray(0, iw * ih * 3));

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
        k.horizontal(SRC + iy * stride, IA, IB, WA, WB, rowA, w);
      }
      idxA = iy;
    }
    const o = OUT + 4 * r * w;
    if (r === h - 1 || ih === 1) {
      for (let p = 0; p < 3; p++) k.scale(rowA + 4 * p * w, dy1, o + 4 * p * w * h, w);
      continue;
    }
    const iy1 = Math.min(iy + 1, ih - 1);
    let b = rowB;
    if (iy1 === iy) b = rowA;
    else if (idxB !== iy1) {
      k.horizontal(SRC + iy1 * stride, IA, IB, WA, WB, rowB, w);
      idxB = iy1;
    }
    for (let p = 0; p < 3; p++) k.vertical(rowA + 4 * p * w, b + 4 * p * w, dy1, ddy, o + 4 * p * w * h, w);
  }
  pastePlanes(new Float32Array(mem, OUT, 3 * w * h), w, h, out, outW, outH, dx, dy);
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
  const { data, width, height } = await decodeImageBytes(path);
  return { tensor: inputFromInterleaved(data, width, height, netW, netH, letterBox), width, height };
}
