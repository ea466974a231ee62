// Gradient kernels the tfjs wasm backend lacks or runs slowly (see ARCHITECTURE.md, "Choices
// already checked"), and a fused training batch norm:
//  * Conv2DBackpropFilter: 1×1 stride 1 as one matrix product; strided, the transposed patch
//    matrix of the input (im2col, a plain loop) times dy; otherwise a conv2d of the
//    batch↔channel-transposed input with the output gradient as filter;
//  * Conv2DBackpropInput: strided, dy times the transposed filter, the patches summed back into the
//    input (col2im); otherwise a stride-1 conv of the padded dy with the flipped filter;
//  * DepthwiseConv2dNativeBackpropFilter: a plain loop over the tensors' memory (3×3: nine tap sums
//    per channel in locals), 2-4x faster than the depthwise-conv formulation (whose "filter" is
//    the whole output gradient, a slow path in XNNPACK);
//  * DepthwiseConv2dNativeBackpropInput: stride 1, XNNPACK's depthwise conv of the padded dy with
//    the flipped filter; strided, a plain loop (the dilated dy would be mostly zeros);
//  * DarkslimBnAct / DarkslimBnActGrad: batch norm (batch statistics) + leaky/relu/linear in two
//    passes forward and two backward, replacing ~16 tfjs kernels per layer (wasm's Sum/Mean over
//    NHWC's outer axes transpose the whole tensor first). Registered on wasm and cpu.
// On wasm, the batch norm passes, the 1×1 filter gradient (also k×k convs', stride 1 or not, on
// their patch rows, where the output channels come in fours), the depthwise filter and input
// gradients (four channels at a time), im2col and the SGD step (sgdStep) run as WebAssembly loops
// on tfjs's own heap (train-kernels.wat): a yolo-fastest step at batch 8 takes about a third of the
// time it took with the plain loops and tfjs's matMul.
// DARKSLIM_TRAIN_SIMD=0 turns them off (benchmarks compare both).
// Ops run inside a kernel are not recorded on the gradient tape (tfjs engine kernelDepth > 0).
import * as tf from '@tensorflow/tfjs-core';
import { TRAIN_KERNELS_WASM_BASE64 } from './train-kernels-wasm';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

interface PadInfo { top: number; bottom: number; left: number; right: number }

function padInfoOf(
  xShape: [number, number, number, number], filterShape: [number, number, number, number],
  strides: [number, number] | number, pad: Pad, dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined, depthwise: boolean,
): { padInfo: PadInfo; outH: number; outW: number; strideH: number; strideW: number } {
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode, depthwise, 'channelsLast');
  return { padInfo: info.padInfo, outH: info.outHeight, outW: info.outWidth, strideH: info.strideHeight, strideW: info.strideWidth };
}

/** Pads (or crops, for negative amounts) the spatial dims of an NHWC tensor. */
function padCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let y = x;
  if (top > 0 || bottom > 0 || left > 0 || right > 0) {
    y = tf.pad(y, [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]]);
  }
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [, h, w] = y.shape;
    const t = Math.max(0, -top);
    const l = Math.max(0, -left);
    y = tf.slice(y, [0, t, l, 0], [-1, h - t - Math.max(0, -bottom), w - l - Math.max(0, -right), -1]);
  }
  return y;
}

/** dW[kh,kw,ci,co] = Σ_b,oh,ow x[b, oh·s+kh-top, ow·s+kw-left, ci] · dy[b,oh,ow,co] */
export function conv2dBackpropFilter(
  x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number],
  strides: [number, number] | number, pad: Pad, dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filterShape;
    const { padInfo, strideH, strideW } = padInfoOf(x.shape, filterShape, strides, pad, dimRoundingMode, false);
    if (kh === 1 && kw === 1 && strideH === 1 && strideW === 1 && padInfo.top === 0 && padInfo.left === 0 && padInfo.bottom === 0 && padInfo.right === 0) {
      const [b, h, w, ci] = x.shape;
      const co = dy.shape[3];
      // 4×4 tiles of Σ x ⊗ dy in SIMD registers (train-kernels.wat): ~6x tfjs's matMul for this
      // shape (a huge inner dimension, tiny outputs), which also needs a transposed operand
      if (ci % 4 === 0 && co % 4 === 0 && trainSimd(tf.backend())) return tf.engine().runKernel(CONV1X1_FILTER_GRAD, { x, dy }) as tf.Tensor4D;
      // 1×1 stride-1 conv: one matrix product. wasm's matMul with transposeA is slow, so transpose
      // the operand with fewer channels (the transpose costs a pass over it), then the tiny result.
      const x2 = tf.reshape(x, [b * h * w, ci]) as tf.Tensor2D, dy2 = tf.reshape(dy, [b * h * w, co]) as tf.Tensor2D;
      if (ci <= co) return tf.reshape(tf.matMul(tf.transpose(x2), dy2), [1, 1, ci, co]) as tf.Tensor4D; // [ci, co]
      const r = tf.matMul(tf.transpose(dy2), x2); // [co, ci]
      return tf.reshape(tf.transpose(r), [1, 1, ci, co]) as tf.Tensor4D;
    }
    const simdTiles = dy.shape[3] % 4 === 0 && trainSimd(tf.backend());
    if (strideH > 1 || strideW > 1 || simdTiles) {
      // dW[K, Co] = colsᵀ[K, P] · dy[P, Co] (K = kh·kw·Ci, P = B·Ho·Wo). Strided, the conv below would
      // need dy as a filter dilated by the stride, a slow path in XNNPACK; stride 1, its filter is
      // the whole dy (a 3x3 64→128 layer at 4x4, batch 8: 5 ms against 2 through the tiles)
      const [b, , , ci] = x.shape;
      const [, ho, wo, co] = dy.shape;
      const attrs: Im2colAttrs = { kh, kw, sh: strideH, sw: strideW, top: padInfo.top, left: padInfo.left, ho, wo };
      const K = kh * kw * ci, P = b * ho * wo;
      if (simdTiles) {
        // the patches as rows [P, K'] (one pass over x; K' = K rounded up to 4 with zero columns), then
        // the 1×1 filter gradient's SIMD tiles on them: no pass per column over a big input (the
        // first layer's 9.8 MB image batch, 27 columns), no packed copy of dy as tfjs's matMul makes
        const cols = tf.engine().runKernel(IM2COL, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
        const Kp = cols.shape[1];
        const dW = tf.engine().runKernel(CONV1X1_FILTER_GRAD, { x: tf.reshape(cols, [P, 1, 1, Kp]), dy: tf.reshape(dy, [P, 1, 1, co]) }) as tf.Tensor4D;
        return tf.reshape(Kp === K ? dW : tf.slice(dW, [0, 0, 0, 0], [1, 1, K, co]), [kh, kw, ci, co]) as tf.Tensor4D;
      }
      // the input's patches written already transposed (wasm's matMul with transposeA is slow)
      const colsT = tf.engine().runKernel(IM2COL_T, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
      const dW = tf.matMul(colsT, tf.reshape(dy, [P, co]) as tf.Tensor2D);
      return tf.reshape(dW, [kh, kw, ci, co]) as tf.Tensor4D;
    }
    // pad only (never crop the big input): extra rows/columns just give extra outputs, cut below;
    // the padding is the conv's own (no padded copy of the input)
    const xt = tf.transpose(x, [3, 1, 2, 0]); // [Ci, H, W, B]
    const f = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, B, Co]
    const pads: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [padInfo.top, Math.max(0, padInfo.bottom)], [padInfo.left, Math.max(0, padInfo.right)], [0, 0]];
    let r = tf.conv2d(xt, f as tf.Tensor4D, 1, pads, 'NHWC', [strideH, strideW]); // [Ci, ≥kh, ≥kw, Co]
    if (r.shape[1] !== kh || r.shape[2] !== kw) r = tf.slice(r, [0, 0, 0, 0], [-1, kh, kw, -1]);
    return tf.transpose(r, [1, 2, 0, 3]);
  });
}

/** Input gradient of a conv: a stride-1 conv of the stride-dilated, padded dy with the flipped filter. */
export function conv2dBackpropInput(
  xShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D,
  strides: [number, number] | number, pad: Pad, dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filter.shape;
    const { padInfo, strideH, strideW } = padInfoOf(xShape, filter.shape, strides, pad, dimRoundingMode, false);
    const [, h, w] = xShape;
    if (strideH > 1 || strideW > 1) {
      // strided: dcols[P, K] = dy[P, Co] · Wᵀ[Co, K], each patch then added back where it came from
      // (col2im); the conv below would run over a stride-dilated dy that is mostly zeros
      const [b, ho, wo, co] = dy.shape;
      const ci = filter.shape[2];
      const dCols = tf.matMul(tf.reshape(dy, [b * ho * wo, co]) as tf.Tensor2D, transposedFilter(filter));
      const attrs: Im2colAttrs = { kh, kw, sh: strideH, sw: strideW, top: padInfo.top, left: padInfo.left, ho, wo, inputShape: [b, h, w, ci] };
      return tf.engine().runKernel(COL2IM, { cols: dCols }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    }
    const d = dilate(dy, strideH, strideW);
    const top = kh - 1 - padInfo.top;
    const left = kw - 1 - padInfo.left;
    const bottom = h + kh - 1 - top - d.shape[1], right = w + kw - 1 - left - d.shape[2];
    const f = flipTransposeFilter(filter); // [kh, kw, Co, Ci]
    if (top >= 0 && bottom >= 0 && left >= 0 && right >= 0) return tf.conv2d(d, f, 1, [[0, 0], [top, bottom], [left, right], [0, 0]]);
    return tf.conv2d(padCrop(d, top, bottom, left, right), f, 1, 'valid');
  });
}

/**
 * The spatially flipped filter with in/out channels swapped, [kh, kw, Co, Ci], built in JS: filters
 * are small, and wasm's Reverse kernel costs more than the conv that uses its result.
 */
function flipTransposeFilter(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const src = filter.dataSync() as Float32Array;
  const out = new Float32Array(src.length);
  for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
    const s0 = ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
    const d0 = (a * kw + b) * co * ci;
    for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[d0 + o * ci + i] = src[s0 + i * co + o];
  }
  return tf.tensor4d(out, [kh, kw, co, ci]);
}

/** The filter [kh, kw, Ci, Co] as the matrix Wᵀ [Co, kh·kw·Ci], built in JS (filters are small). */
function transposedFilter(filter: tf.Tensor4D): tf.Tensor2D {
  const [kh, kw, ci, co] = filter.shape;
  const k = kh * kw * ci;
  const src = filter.dataSync() as Float32Array;
  const out = new Float32Array(src.length);
  for (let r = 0; r < k; r++) for (let o = 0; o < co; o++) out[o * k + r] = src[r * co + o];
  return tf.tensor2d(out, [co, k]);
}

/** The spatially flipped filter (same layout), built in JS (see flipTransposeFilter). */
function flipFilter(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, c, m] = filter.shape;
  const src = filter.dataSync() as Float32Array;
  const out = new Float32Array(src.length);
  const plane = c * m;
  for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
    out.set(src.subarray(((kh - 1 - a) * kw + (kw - 1 - b)) * plane, ((kh - 1 - a) * kw + (kw - 1 - b) + 1) * plane), (a * kw + b) * plane);
  }
  return tf.tensor4d(out, filter.shape);
}

/** Inserts stride-1 zeros between the spatial samples of an NHWC tensor. */
function dilate(x: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return x;
  const [b, h, w, c] = x.shape;
  const e = tf.reshape(x, [b, h, 1, w, 1, c]);
  const p = tf.pad(e, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  const r = tf.reshape(p, [b, h * sh, w * sw, c]);
  return tf.slice(r as tf.Tensor4D, [0, 0, 0, 0], [-1, (h - 1) * sh + 1, (w - 1) * sw + 1, -1]);
}

/** Input gradient of a depthwise conv (channel multiplier m). */
export function depthwiseBackpropInput(
  xShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D,
  strides: [number, number] | number, pad: Pad, dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filter.shape;
    const { padInfo, strideH, strideW } = padInfoOf(xShape, filter.shape, strides, pad, dimRoundingMode, true);
    const [, h, w] = xShape;
    const d = dilate(dy, strideH, strideW);
    const top = kh - 1 - padInfo.top;
    const left = kw - 1 - padInfo.left;
    const dp = padCrop(d, top, h + kh - 1 - top - d.shape[1], left, w + kw - 1 - left - d.shape[2]);
    const flipped = flipFilter(filter);
    if (m === 1) return tf.depthwiseConv2d(dp, flipped as tf.Tensor4D, 1, 'valid');
    // dx[c] = Σ_q corr(dy[c·m+q], flip(f[:,:,c,q])): reshape to [.., c, m], sum over q
    let acc: tf.Tensor4D | undefined;
    const dpr = tf.reshape(dp, [dp.shape[0], dp.shape[1], dp.shape[2], c, m]);
    for (let q = 0; q < m; q++) {
      const dq = tf.reshape(tf.slice(dpr, [0, 0, 0, 0, q], [-1, -1, -1, -1, 1]), [dp.shape[0], dp.shape[1], dp.shape[2], c]) as tf.Tensor4D;
      const fq = tf.slice(flipped, [0, 0, 0, q], [-1, -1, -1, 1]) as tf.Tensor4D;
      const r = tf.depthwiseConv2d(dq, fq, 1, 'valid');
      acc = acc ? (tf.add(acc, r) as tf.Tensor4D) : r;
    }
    return acc!;
  });
}


// ---------------------------------------------------------------------------------------------
// Kernels written as plain loops over the tensors' memory (the wasm heap, or the cpu backend's
// arrays): no copies, no transposes, one pass where the tf-op formulations above take several
// full-size kernels each (wasm's Sum/Mean over NHWC's outer axes transpose the whole tensor first).

interface WasmLike {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  disposeData(dataId: unknown): boolean;
  wasm?: { asm?: { memory?: unknown } };
}
interface CpuLike { data: { get(id: unknown): { values?: unknown } }; makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo }

/**
 * Raw access to a backend's float32 tensors. On wasm, `alloc` may grow the heap and detach earlier
 * views: allocate every output first, then take the views.
 */
class Raw {
  private readonly wasm?: WasmLike;
  private readonly cpu?: CpuLike;
  constructor(backend: unknown) {
    if (typeof (backend as WasmLike).typedArrayFromHeap === 'function') this.wasm = backend as WasmLike;
    else this.cpu = backend as CpuLike;
  }
  alloc(shape: number[]): tf.TensorInfo {
    if (this.wasm) return this.wasm.makeOutput(shape, 'float32');
    return this.cpu!.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1)));
  }
  view(t: tf.TensorInfo): Float32Array {
    if (t.dtype !== 'float32') throw new Error(`darkslim kernel: float32 tensor expected, got ${t.dtype}`);
    if (this.wasm) return this.wasm.typedArrayFromHeap(t);
    const v = this.cpu!.data.get(t.dataId).values;
    return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
  }
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** train-kernels.wat's exports: every pointer is a byte offset into tfjs-backend-wasm's heap. */
interface TrainSimd {
  stats(x: number, rows: number, C: number, sum: number, sq: number): void;
  apply(x: number, y: number, rows: number, C: number, a: number, b: number, k1: number, k2: number): void;
  gradStats(dy: number, y: number, x: number, rows: number, C: number, slope: number, sdz: number, sdzx: number): void;
  gradApply(dy: number, y: number, x: number, dx: number, rows: number, C: number, slope: number, k: number, p: number, q: number, m: number): void;
  conv1x1FilterGrad(x: number, dy: number, P: number, ci: number, co: number, acc: number): void;
  sgd(w: number, wOut: number, v: number, g: number, n: number, lr: number, momentum: number, decay: number): void;
  im2col(
    x: number, cols: number, B: number, H: number, W: number, C: number, Ho: number, Wo: number,
    sh: number, sw: number, kh: number, kw: number, top: number, left: number, Kp: number,
  ): void;
  /** mode 0: filter gradient (x, dy → float64 sums t); mode 1: input gradient (filter t, dy → dx in x). */
  depthwise(
    mode: 0 | 1, x: number, dy: number, t: number, ranges: number, B: number, H: number, W: number, C: number, Ho: number, Wo: number,
    sh: number, sw: number, kh: number, kw: number, top: number, left: number,
  ): void;
}

const trainSimdModules = new WeakMap<object, TrainSimd | null>();

/**
 * The SIMD training kernels (train-kernels.wat) instantiated on the wasm backend's own memory, or
 * null (the cpu backend, a runtime without WebAssembly SIMD, or DARKSLIM_TRAIN_SIMD=0, the
 * benchmarks' switch back to the plain loops and tfjs ops).
 */
function trainSimd(backend: unknown): TrainSimd | null {
  const memory = (backend as WasmLike).wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory) || process.env.DARKSLIM_TRAIN_SIMD === '0') return null;
  let m = trainSimdModules.get(memory);
  if (m === undefined) {
    try {
      m = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(TRAIN_KERNELS_WASM_BASE64, 'base64')), { env: { memory } }).exports as unknown as TrainSimd;
    } catch {
      m = null;
    }
    trainSimdModules.set(memory, m);
  }
  return m;
}

/** Heap byte offset of a wasm tensor (its data never moves; views of it detach when the heap grows). */
function heapOffset(backend: unknown, t: tf.TensorInfo): number {
  return (backend as WasmLike).typedArrayFromHeap(t).byteOffset;
}

/**
 * Runs `fn` with a temporary block of `bytes` bytes on the wasm heap, 8-byte aligned (float64
 * views), freed afterwards. `heap()` is the heap's current buffer (take views after allocating).
 */
function withScratch<T>(backend: unknown, bytes: number, fn: (at: number, heap: () => ArrayBufferLike) => T): T {
  const w = backend as WasmLike;
  const scratch = w.makeOutput([Math.ceil(bytes / 4) + 2], 'float32');
  try {
    return fn((heapOffset(backend, scratch) + 7) & ~7, () => w.typedArrayFromHeap(scratch).buffer);
  } finally {
    w.disposeData(scratch.dataId);
  }
}

/**
 * One SGD step of a variable `w` with velocity `v` in one WebAssembly call (train-kernels.wat: the
 * tfjs formulation's float32 operations, the same bits), where the tfjs ops take six kernels and
 * three new tensors per variable (~10 ms of a 60 ms step of the default model). The velocity is
 * updated in place; the new weights go to a new buffer that `w` is assigned: the wasm convs keep
 * XNNPACK operators with the filter packed, keyed by the filter's buffer, so a filter written in
 * place would go on being used as it was. False where it cannot (not wasm, no SIMD, or a velocity
 * buffer another tensor shares): use the tfjs ops.
 */
export function sgdStep(w: tf.Variable, v: tf.Variable, g: tf.Tensor, lr: number, momentum: number, decay: number): boolean {
  const backend = tf.backend() as unknown as WasmLike & { refCount(dataId: unknown): number };
  const simd = trainSimd(backend);
  if (!simd || w.dtype !== 'float32' || g.size !== w.size || v.size !== w.size || backend.refCount(v.dataId) !== 1) return false;
  const out = backend.makeOutput(w.shape, 'float32');
  simd.sgd(heapOffset(backend, w), heapOffset(backend, out), heapOffset(backend, v), heapOffset(backend, g), w.size, lr, momentum, decay);
  const next = tf.engine().makeTensorFromTensorInfo(out);
  w.assign(next);
  next.dispose();
  return true;
}

/** Kernel name of the fused training batch norm + activation (outputs y, batch mean, unbiased variance). */
export const BN_ACT = 'DarkslimBnAct';
/** Its gradient (outputs dx, dγ, dβ). */
export const BN_ACT_GRAD = 'DarkslimBnActGrad';
const BN_EPS = 0.00001;

/** attrs: slope of the activation below 0 (leaky 0.1, relu 0), linear: no activation at all. */
export interface BnActAttrs { slope: number; linear: boolean }

/** Elements per block of the channel-strided loops below: a block stays in L1 while each channel
 * runs over it with its own scalars in registers (no per-element channel index, no branches). */
const BLOCK_ELEMS = 4096;
function blockOf(C: number): number {
  return Math.max(C, Math.floor(BLOCK_ELEMS / C) * C);
}

type Floats = Float32Array | Float64Array;

/** Batch statistics from Σx and Σx² (n values a channel), and the scale a = γ/σ and shift b = β − μ·a. */
function bnScaleShift(s: Floats, ss: Floats, n: number, g: Floats, be: Floats, mo: Floats, vo: Floats, a: Floats, b: Floats): void {
  for (let c = 0; c < s.length; c++) {
    const m = s[c] / n;
    const v = Math.max(0, (ss[c] - s[c] * m) / Math.max(1, n - 1));
    mo[c] = m; vo[c] = v;
    const ac = g[c] / Math.sqrt(v + BN_EPS);
    a[c] = ac;
    b[c] = be[c] - m * ac;
  }
}

/**
 * dγ, dβ from Σdz and Σdz·x, and dx's coefficients: dx = k·dz + P·(x − μ) + Q
 * (k = γ·inv, P = −k·dγ·inv/(n−1), Q = −k·dβ/n).
 */
function bnGradCoefficients(sdz: Floats, sdzx: Floats, n: number, g: Floats, mv: Floats, vv: Floats, dgo: Floats, dbo: Floats, k: Floats, P: Floats, Q: Floats): void {
  for (let c = 0; c < sdz.length; c++) {
    const inv = 1 / Math.sqrt(vv[c] + BN_EPS);
    const dbeta = sdz[c];
    const dgamma = inv * (sdzx[c] - mv[c] * sdz[c]);
    dgo[c] = dgamma; dbo[c] = dbeta;
    const kc = g[c] * inv;
    k[c] = kc;
    P[c] = -kc * dgamma * inv / Math.max(1, n - 1);
    Q[c] = -kc * dbeta / n;
  }
}

/**
 * Batch norm in training mode (darknet: batch mean, unbiased variance, ε = 1e-5) + a piecewise-
 * linear activation over an [..., C] tensor: one pass for Σx, Σx² (in doubles), one for y.
 * act(z) = ½(1+s)·z + ½(1-s)·|z| (branch-free: a data-dependent branch mispredicts half the time),
 * + 0 so that no -0 reaches the gradient's sign test.
 */
function bnActForward(backend: unknown, x: tf.TensorInfo, gamma: tf.TensorInfo, beta: tf.TensorInfo, attrs: BnActAttrs): tf.TensorInfo[] {
  const C = x.shape[x.shape.length - 1];
  const size = sizeOf(x.shape);
  const n = size / C;
  const r = new Raw(backend);
  const yI = r.alloc(x.shape), mI = r.alloc([C]), vI = r.alloc([C]);
  const simd = trainSimd(backend);
  if (simd) {
    bnActForwardSimd(simd, backend, x, gamma, beta, attrs, yI, mI, vI);
    return [yI, mI, vI];
  }
  const xs = r.view(x), g = r.view(gamma), be = r.view(beta), y = r.view(yI), mo = r.view(mI), vo = r.view(vI);
  const s = new Float64Array(C), ss = new Float64Array(C);
  const BLK = blockOf(C);
  for (let i0 = 0; i0 < size; i0 += BLK) {
    const e = Math.min(size, i0 + BLK);
    for (let c = 0; c < C; c++) {
      let a1 = 0, a2 = 0;
      for (let i = i0 + c; i < e; i += C) { const v = xs[i]; a1 += v; a2 += v * v; }
      s[c] += a1; ss[c] += a2;
    }
  }
  const a = new Float64Array(C), b = new Float64Array(C);
  bnScaleShift(s, ss, n, g, be, mo, vo, a, b);
  const k1 = attrs.linear ? 1 : (1 + attrs.slope) / 2, k2 = attrs.linear ? 0 : (1 - attrs.slope) / 2;
  for (let i0 = 0; i0 < size; i0 += BLK) {
    const e = Math.min(size, i0 + BLK);
    for (let c = 0; c < C; c++) {
      const ac = a[c], bc = b[c];
      if (k2 === 0) for (let i = i0 + c; i < e; i += C) y[i] = xs[i] * ac + bc;
      else for (let i = i0 + c; i < e; i += C) { const z = xs[i] * ac + bc; y[i] = k1 * z + k2 * Math.abs(z) + 0; }
    }
  }
  return [yI, mI, vI];
}

/** bnActForward's two passes in train-kernels.wat (the per-channel arithmetic stays here, in doubles). */
function bnActForwardSimd(simd: TrainSimd, backend: unknown, x: tf.TensorInfo, gamma: tf.TensorInfo, beta: tf.TensorInfo, attrs: BnActAttrs, yI: tf.TensorInfo, mI: tf.TensorInfo, vI: tf.TensorInfo): void {
  const C = x.shape[x.shape.length - 1];
  const n = sizeOf(x.shape) / C;
  const w = backend as WasmLike;
  // scratch: Σx and Σx² (float64), then the per-channel scale a and shift b (float32)
  withScratch(backend, 24 * C, (sp, heap) => {
    new Float64Array(heap(), sp, 2 * C).fill(0);
    simd.stats(heapOffset(backend, x), n, C, sp, sp + 8 * C);
    const s = new Float64Array(heap(), sp, C), ss = new Float64Array(heap(), sp + 8 * C, C);
    const ab = new Float32Array(heap(), sp + 16 * C, 2 * C);
    bnScaleShift(s, ss, n, w.typedArrayFromHeap(gamma), w.typedArrayFromHeap(beta), w.typedArrayFromHeap(mI), w.typedArrayFromHeap(vI), ab.subarray(0, C), ab.subarray(C));
    const k1 = attrs.linear ? 1 : (1 + attrs.slope) / 2, k2 = attrs.linear ? 0 : (1 - attrs.slope) / 2;
    simd.apply(heapOffset(backend, x), heapOffset(backend, yI), n, C, sp + 16 * C, sp + 20 * C, k1, k2);
  });
}

/**
 * Gradient of bnActForward from its input x and output y (act'(z) from y's sign bit, read as an
 * int: y > 0 ⟺ bits > 0, branch-free as ((-bits) >>> 31)):
 *   dz = dy·act'(z); dβ = Σdz; dγ = Σdz·x̂; dx = γ·inv·(dz - dβ/n - x̂·dγ/(n-1))
 * (n-1: σ² is the unbiased estimate), dx computed as γ·inv·dz + P·x + Q per channel.
 */
function bnActBackward(backend: unknown, dy: tf.TensorInfo, x: tf.TensorInfo, yOut: tf.TensorInfo, gamma: tf.TensorInfo, mean: tf.TensorInfo, variance: tf.TensorInfo, attrs: BnActAttrs): tf.TensorInfo[] {
  const C = x.shape[x.shape.length - 1];
  const size = sizeOf(x.shape);
  const n = size / C;
  const r = new Raw(backend);
  const dxI = r.alloc(x.shape), dgI = r.alloc([C]), dbI = r.alloc([C]);
  const simd = trainSimd(backend);
  if (simd) {
    bnActBackwardSimd(simd, backend, dy, x, yOut, gamma, mean, variance, attrs, dxI, dgI, dbI);
    return [dxI, dgI, dbI];
  }
  const d = r.view(dy), xs = r.view(x), yf = r.view(yOut), g = r.view(gamma), mv = r.view(mean), vv = r.view(variance);
  const dx = r.view(dxI), dgo = r.view(dgI), dbo = r.view(dbI);
  const yb = new Int32Array(yf.buffer, yf.byteOffset, yf.length);
  const linear = attrs.linear;
  const slope = attrs.slope, k = 1 - slope;
  const BLK = blockOf(C);
  const sdz = new Float64Array(C), sdzx = new Float64Array(C);
  for (let i0 = 0; i0 < size; i0 += BLK) {
    const e = Math.min(size, i0 + BLK);
    for (let c = 0; c < C; c++) {
      let a1 = 0, a2 = 0;
      if (linear) for (let i = i0 + c; i < e; i += C) { const dz = d[i]; a1 += dz; a2 += dz * xs[i]; }
      else for (let i = i0 + c; i < e; i += C) { const dz = d[i] * (slope + k * ((-yb[i]) >>> 31)); a1 += dz; a2 += dz * xs[i]; }
      sdz[c] += a1; sdzx[c] += a2;
    }
  }
  const k1 = new Float64Array(C), P = new Float64Array(C), Q = new Float64Array(C);
  bnGradCoefficients(sdz, sdzx, n, g, mv, vv, dgo, dbo, k1, P, Q);
  for (let c = 0; c < C; c++) Q[c] -= P[c] * mv[c]; // P·x + Q here, P·(x − μ) + Q in the SIMD kernel
  for (let i0 = 0; i0 < size; i0 += BLK) {
    const e = Math.min(size, i0 + BLK);
    for (let c = 0; c < C; c++) {
      const kc = k1[c], pc = P[c], qc = Q[c];
      if (linear) for (let i = i0 + c; i < e; i += C) dx[i] = kc * d[i] + pc * xs[i] + qc;
      else for (let i = i0 + c; i < e; i += C) dx[i] = kc * d[i] * (slope + k * ((-yb[i]) >>> 31)) + pc * xs[i] + qc;
    }
  }
  return [dxI, dgI, dbI];
}

/** bnActBackward's two passes in train-kernels.wat; dx = k·dz + P·(x − μ) + Q' (no cancellation against μ in float32). */
function bnActBackwardSimd(
  simd: TrainSimd, backend: unknown, dy: tf.TensorInfo, x: tf.TensorInfo, yOut: tf.TensorInfo, gamma: tf.TensorInfo, mean: tf.TensorInfo, variance: tf.TensorInfo,
  attrs: BnActAttrs, dxI: tf.TensorInfo, dgI: tf.TensorInfo, dbI: tf.TensorInfo,
): void {
  const C = x.shape[x.shape.length - 1];
  const n = sizeOf(x.shape) / C;
  const w = backend as WasmLike;
  const slope = attrs.linear ? 1 : attrs.slope;
  // scratch: Σdz and Σdz·x (float64), then k, P, Q' (float32)
  withScratch(backend, 28 * C, (sp, heap) => {
    new Float64Array(heap(), sp, 2 * C).fill(0);
    simd.gradStats(heapOffset(backend, dy), heapOffset(backend, yOut), heapOffset(backend, x), n, C, slope, sp, sp + 8 * C);
    const sdz = new Float64Array(heap(), sp, C), sdzx = new Float64Array(heap(), sp + 8 * C, C);
    const kpq = new Float32Array(heap(), sp + 16 * C, 3 * C);
    bnGradCoefficients(sdz, sdzx, n, w.typedArrayFromHeap(gamma), w.typedArrayFromHeap(mean), w.typedArrayFromHeap(variance),
      w.typedArrayFromHeap(dgI), w.typedArrayFromHeap(dbI), kpq.subarray(0, C), kpq.subarray(C, 2 * C), kpq.subarray(2 * C));
    simd.gradApply(heapOffset(backend, dy), heapOffset(backend, yOut), heapOffset(backend, x), heapOffset(backend, dxI), n, C, slope,
      sp + 16 * C, sp + 20 * C, sp + 24 * C, heapOffset(backend, mean));
  });
}

interface ConvGeom {
  B: number; H: number; W: number; C: number; M: number; kh: number; kw: number; Ho: number; Wo: number;
  sh: number; sw: number; dh: number; dw: number; top: number; left: number;
}

function depthwiseGeom(xShape: number[], filterShape: number[], a: KernelAttrs): ConvGeom {
  const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number], a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true, 'channelsLast');
  return {
    B: xShape[0], H: xShape[1], W: xShape[2], C: xShape[3], M: filterShape[3], kh: filterShape[0], kw: filterShape[1],
    Ho: info.outHeight, Wo: info.outWidth, sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth,
    top: info.padInfo.top, left: info.padInfo.left,
  };
}

/** The output columns ow whose input column ow·s + kj·d - left lies inside [0, W): [lo, hi], inclusive (hi < lo: none). */
function colRange(g: ConvGeom, kj: number): [number, number] {
  const [lo, end] = validRange(kj * g.dw - g.left, g.sw, g.W, g.Wo);
  return [lo, end - 1];
}

/**
 * dW[ki,kj,c,q] = Σ_b,oh,ow x[b, oh·s+ki·d-top, ow·s+kj·d-left, c] · dy[b,oh,ow,c·M+q]
 * Per (row, tap), each channel's dot product runs over the row in a local accumulator.
 */
function depthwiseFilterGradRaw(x: Float32Array, dy: Float32Array, out: Float32Array, g: ConvGeom): void {
  const { B, H, W, C, M, kh, kw, Ho, Wo, sh, sw, dh, dw, top, left } = g;
  const CM = C * M;
  const acc = new Float64Array(kh * kw * CM);
  const lo = new Int32Array(kw), hi = new Int32Array(kw);
  for (let kj = 0; kj < kw; kj++) [lo[kj], hi[kj]] = colRange(g, kj);
  const xStep = sw * C;
  for (let b = 0; b < B; b++) for (let oh = 0; oh < Ho; oh++) {
    const dyRow = (b * Ho + oh) * Wo;
    for (let ki = 0; ki < kh; ki++) {
      const ih = oh * sh + ki * dh - top;
      if (ih < 0 || ih >= H) continue;
      const xRow = (b * H + ih) * W;
      for (let kj = 0; kj < kw; kj++) {
        const cnt = hi[kj] - lo[kj] + 1;
        if (cnt <= 0) continue;
        const aBase = (ki * kw + kj) * CM;
        const x0 = (xRow + lo[kj] * sw + kj * dw - left) * C;
        const d0 = (dyRow + lo[kj]) * CM;
        for (let c = 0; c < C; c++) {
          for (let q = 0; q < M; q++) {
            let s = 0;
            for (let t = 0, xi = x0 + c, di = d0 + c * M + q; t < cnt; t++, xi += xStep, di += CM) s += x[xi] * dy[di];
            acc[aBase + c * M + q] += s;
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) out[i] = acc[i];
}

/**
 * depthwiseFilterGradRaw for the common 3×3, multiplier 1, undilated case: per output row, the
 * three input rows are copied into zero-padded buffers (no bounds tests), then each channel runs
 * once over the row with its nine tap sums in locals (one dy load feeds nine products).
 */
function depthwiseFilterGrad3x3(x: Float32Array, dy: Float32Array, out: Float32Array, g: ConvGeom): void {
  const { B, H, W, C, Ho, Wo, sh, sw, top, left } = g;
  const Wp = (Wo - 1) * sw + 3;
  const r0 = new Float32Array(Wp * C), r1 = new Float32Array(Wp * C), r2 = new Float32Array(Wp * C);
  const rows = [r0, r1, r2];
  const acc = new Float64Array(9 * C);
  // input columns that land inside the padded row: iw + left < Wp
  const iwEnd = Math.min(W, Wp - left);
  const C2 = 2 * C, step = sw * C;
  for (let b = 0; b < B; b++) for (let oh = 0; oh < Ho; oh++) {
    for (let ki = 0; ki < 3; ki++) {
      const ih = oh * sh + ki - top;
      const row = rows[ki];
      if (ih < 0 || ih >= H) { row.fill(0); continue; }
      const src = (b * H + ih) * W * C;
      if (left > 0) row.fill(0, 0, left * C);
      row.set(x.subarray(src, src + iwEnd * C), left * C);
      if ((left + iwEnd) * C < row.length) row.fill(0, (left + iwEnd) * C);
    }
    const d0 = (b * Ho + oh) * Wo * C;
    for (let c = 0; c < C; c++) {
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0;
      for (let ow = 0, p = c, di = d0 + c; ow < Wo; ow++, p += step, di += C) {
        const d = dy[di];
        a0 += r0[p] * d; a1 += r0[p + C] * d; a2 += r0[p + C2] * d;
        a3 += r1[p] * d; a4 += r1[p + C] * d; a5 += r1[p + C2] * d;
        a6 += r2[p] * d; a7 += r2[p + C] * d; a8 += r2[p + C2] * d;
      }
      acc[c] += a0; acc[C + c] += a1; acc[2 * C + c] += a2;
      acc[3 * C + c] += a3; acc[4 * C + c] += a4; acc[5 * C + c] += a5;
      acc[6 * C + c] += a6; acc[7 * C + c] += a7; acc[8 * C + c] += a8;
    }
  }
  for (let i = 0; i < acc.length; i++) out[i] = acc[i];
}

/** dx[b,ih,iw,c] = Σ w[ki,kj,c,q] · dy[b,oh,ow,c·M+q] over the (oh, ow, ki, kj) that read x[b,ih,iw,c]. */
function depthwiseInputGradRaw(w: Float32Array, dy: Float32Array, dx: Float32Array, g: ConvGeom): void {
  const { B, H, W, C, M, kh, kw, Ho, Wo, sh, sw, dh, dw, top, left } = g;
  const CM = C * M;
  dx.fill(0);
  const lo = new Int32Array(kw), hi = new Int32Array(kw);
  for (let kj = 0; kj < kw; kj++) [lo[kj], hi[kj]] = colRange(g, kj);
  const xStep = sw * C;
  for (let b = 0; b < B; b++) for (let oh = 0; oh < Ho; oh++) {
    const dyRow = (b * Ho + oh) * Wo;
    for (let ki = 0; ki < kh; ki++) {
      const ih = oh * sh + ki * dh - top;
      if (ih < 0 || ih >= H) continue;
      const xRow = (b * H + ih) * W;
      for (let kj = 0; kj < kw; kj++) {
        const cnt = hi[kj] - lo[kj] + 1;
        if (cnt <= 0) continue;
        const wBase = (ki * kw + kj) * CM;
        const x0 = (xRow + lo[kj] * sw + kj * dw - left) * C;
        const d0 = (dyRow + lo[kj]) * CM;
        for (let c = 0; c < C; c++) {
          for (let q = 0; q < M; q++) {
            const wv = w[wBase + c * M + q];
            for (let t = 0, xi = x0 + c, di = d0 + c * M + q; t < cnt; t++, xi += xStep, di += CM) dx[xi] += wv * dy[di];
          }
        }
      }
    }
  }
}

type KernelAttrs = {
  strides: [number, number] | number; pad: Pad; dilations?: [number, number] | number; dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number]; inputShape: [number, number, number, number];
};

/** The SIMD kernels for a depthwise conv's gradients: multiplier 1, undilated, channels in fours. */
function depthwiseSimd(backend: unknown, g: ConvGeom): TrainSimd | null {
  return g.M === 1 && g.dh === 1 && g.dw === 1 && g.C % 4 === 0 ? trainSimd(backend) : null;
}

/** Depthwise filter gradient kernel (any backend with raw float32 memory: wasm, cpu). */
function depthwiseFilterGradKernel(backend: unknown, x: tf.TensorInfo, dy: tf.TensorInfo, a: KernelAttrs): tf.TensorInfo {
  const g = depthwiseGeom(x.shape, a.filterShape, a);
  const r = new Raw(backend);
  const out = r.alloc(a.filterShape);
  const simd = depthwiseSimd(backend, g);
  if (simd) {
    depthwiseFilterGradSimd(simd, backend, x, dy, out, g);
    return out;
  }
  if (g.kh === 3 && g.kw === 3 && g.M === 1 && g.dh === 1 && g.dw === 1) depthwiseFilterGrad3x3(r.view(x), r.view(dy), r.view(out), g);
  else depthwiseFilterGradRaw(r.view(x), r.view(dy), r.view(out), g);
  return out;
}

/** The depthwise filter gradient in train-kernels.wat (four channels per lane group, ~4x the loops above). */
function depthwiseFilterGradSimd(simd: TrainSimd, backend: unknown, x: tf.TensorInfo, dy: tf.TensorInfo, out: tf.TensorInfo, g: ConvGeom): void {
  const n = g.kh * g.kw * g.C;
  // scratch: the float64 sums, then each kj's column range
  withScratch(backend, 8 * n + 8 * g.kw, (sp, heap) => {
    new Float64Array(heap(), sp, n).fill(0);
    writeColumnRanges(new Int32Array(heap(), sp + 8 * n, 2 * g.kw), g);
    simd.depthwise(0, heapOffset(backend, x), heapOffset(backend, dy), sp, sp + 8 * n,
      g.B, g.H, g.W, g.C, g.Ho, g.Wo, g.sh, g.sw, g.kh, g.kw, g.top, g.left);
    (backend as WasmLike).typedArrayFromHeap(out).set(new Float64Array(heap(), sp, n));
  });
}

/** Each kj's first and last output column inside the image (colRange), as the int32 pairs train-kernels.wat reads. */
function writeColumnRanges(ranges: Int32Array, g: ConvGeom): void {
  for (let kj = 0; kj < g.kw; kj++) [ranges[2 * kj], ranges[2 * kj + 1]] = colRange(g, kj);
}

function depthwiseInputGradKernel(backend: unknown, dy: tf.TensorInfo, filter: tf.TensorInfo, a: KernelAttrs): tf.TensorInfo {
  const g = depthwiseGeom(a.inputShape, filter.shape, a);
  const r = new Raw(backend);
  const out = r.alloc(a.inputShape);
  const simd = depthwiseSimd(backend, g);
  if (simd) {
    withScratch(backend, 8 * g.kw, (sp, heap) => {
      writeColumnRanges(new Int32Array(heap(), sp, 2 * g.kw), g);
      r.view(out).fill(0);
      simd.depthwise(1, heapOffset(backend, out), heapOffset(backend, dy), heapOffset(backend, filter), sp,
        g.B, g.H, g.W, g.C, g.Ho, g.Wo, g.sh, g.sw, g.kh, g.kw, g.top, g.left);
    });
    return out;
  }
  depthwiseInputGradRaw(r.view(filter), r.view(dy), r.view(out), g);
  return out;
}

/** Kernel name of the SIMD filter gradient of a 1×1 stride-1 conv (wasm). */
export const CONV1X1_FILTER_GRAD = 'DarkslimConv1x1FilterGrad';

function conv1x1FilterGradKernel(backend: unknown, x: tf.TensorInfo, dy: tf.TensorInfo): tf.TensorInfo {
  const simd = trainSimd(backend)!;
  const ci = x.shape[3], co = dy.shape[3];
  const P = sizeOf(x.shape) / ci;
  const w = backend as WasmLike;
  const out = w.makeOutput([1, 1, ci, co], 'float32');
  withScratch(backend, 8 * ci * co, (sp, heap) => {
    new Float64Array(heap(), sp, ci * co).fill(0);
    simd.conv1x1FilterGrad(heapOffset(backend, x), heapOffset(backend, dy), P, ci, co, sp);
    w.typedArrayFromHeap(out).set(new Float64Array(heap(), sp, ci * co));
  });
  return out;
}

/** Kernel names of the patch matrix of a conv's input, transposed ([kh·kw·Ci, B·Ho·Wo]) or not ([B·Ho·Wo, kh·kw·Ci]), and of its inverse (patch gradients summed back into [B, H, W, Ci]). */
export const IM2COL_T = 'DarkslimIm2colT';
export const COL2IM = 'DarkslimCol2im';
export const IM2COL = 'DarkslimIm2col';

interface Im2colAttrs { kh: number; kw: number; sh: number; sw: number; top: number; left: number; ho: number; wo: number; inputShape?: [number, number, number, number] }

/** Output columns ox whose input column ox·s + off lies in [0, W): [lo, hi). */
function validRange(off: number, s: number, W: number, n: number): [number, number] {
  const lo = Math.min(n, Math.max(0, Math.ceil(-off / s)));
  const hi = Math.max(lo, Math.min(n, Math.floor((W - 1 - off) / s) + 1));
  return [lo, hi];
}

/** colsT[(a·kw + b)·C + c][(n·Ho + oy)·Wo + ox] = x[n, oy·sh + a − top, ox·sw + b − left, c], 0 outside. */
function im2colTKernel(backend: unknown, x: tf.TensorInfo, a: Im2colAttrs): tf.TensorInfo {
  const [B, H, W, C] = x.shape;
  const P = B * a.ho * a.wo;
  const r = new Raw(backend);
  const out = r.alloc([a.kh * a.kw * C, P]);
  const xs = r.view(x), cols = r.view(out);
  const { ho: Ho, wo: Wo, sh, sw } = a;
  for (let ky = 0; ky < a.kh; ky++) {
    for (let kx = 0; kx < a.kw; kx++) {
      const offX = kx - a.left;
      const [x0, x1] = validRange(offX, sw, W, Wo);
      for (let c = 0; c < C; c++) {
        let o = ((ky * a.kw + kx) * C + c) * P;
        for (let n = 0; n < B; n++) {
          for (let oy = 0; oy < Ho; oy++, o += Wo) {
            const iy = oy * sh + ky - a.top;
            if (iy < 0 || iy >= H) { cols.fill(0, o, o + Wo); continue; }
            if (x0 > 0) cols.fill(0, o, o + x0);
            if (x1 < Wo) cols.fill(0, o + x1, o + Wo);
            let i = ((n * H + iy) * W + x0 * sw + offX) * C + c;
            const step = sw * C;
            for (let ox = x0; ox < x1; ox++, i += step) cols[o + ox] = xs[i];
          }
        }
      }
    }
  }
  return out;
}

/** cols[(n·Ho + oy)·Wo + ox][(a·kw + b)·C + c] = x[n, oy·sh + a − top, ox·sw + b − left, c], 0 outside; rows padded with zeros to a multiple of 4 (train-kernels.wat). */
function im2colKernel(backend: unknown, x: tf.TensorInfo, a: Im2colAttrs): tf.TensorInfo {
  const [B, H, W, C] = x.shape;
  const Kp = (a.kh * a.kw * C + 3) & ~3;
  const out = (backend as WasmLike).makeOutput([B * a.ho * a.wo, Kp], 'float32');
  trainSimd(backend)!.im2col(heapOffset(backend, x), heapOffset(backend, out), B, H, W, C, a.ho, a.wo, a.sh, a.sw, a.kh, a.kw, a.top, a.left, Kp);
  return out;
}

/** dx[n, iy, ix, c] = Σ over the patches that read it of cols[p][(a·kw + b)·C + c] (cols is [P, kh·kw·C]). */
function col2imKernel(backend: unknown, cols: tf.TensorInfo, a: Im2colAttrs): tf.TensorInfo {
  const [B, H, W, C] = a.inputShape!;
  const K = a.kh * a.kw * C;
  const r = new Raw(backend);
  const out = r.alloc([B, H, W, C]);
  const dx = r.view(out), cs = r.view(cols);
  dx.fill(0);
  const { ho: Ho, wo: Wo, sh, sw } = a;
  let p = 0;
  for (let n = 0; n < B; n++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++, p++) {
        for (let ky = 0; ky < a.kh; ky++) {
          const iy = oy * sh + ky - a.top;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < a.kw; kx++) {
            const ix = ox * sw + kx - a.left;
            if (ix < 0 || ix >= W) continue;
            const d = ((n * H + iy) * W + ix) * C;
            const s0 = p * K + (ky * a.kw + kx) * C;
            for (let c = 0; c < C; c++) dx[d + c] += cs[s0 + c];
          }
        }
      }
    }
  }
  return out;
}

let registered = false;

/** Registers the kernels for the wasm backend (idempotent). */
export function registerWasmGradKernels(): void {
  if (registered) return;
  registered = true;
  const reg = (kernelName: string, fn: (inputs: tf.NamedTensorInfoMap, attrs: Record<string, unknown>) => tf.Tensor, replace = false) => {
    if (tf.getKernel(kernelName, 'wasm')) {
      if (!replace) return;
      tf.unregisterKernel(kernelName, 'wasm');
    }
    tf.registerKernel({
      kernelName, backendName: 'wasm',
      kernelFunc: ({ inputs, attrs }) => fn(inputs, attrs as unknown as Record<string, unknown>) as unknown as tf.TensorInfo,
    });
  };
  // wasm's Identity copies the tensor; tensors are immutable, so share the data as the cpu backend
  // does (tfjs clones every tensor a gradient saves: whole activations, each step)
  if (tf.getKernel('Identity', 'wasm')) {
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel({
      kernelName: 'Identity', backendName: 'wasm',
      kernelFunc: ({ inputs, backend }) => {
        const x = inputs.x as tf.TensorInfo;
        (backend as unknown as { incRef(id: unknown): void }).incRef(x.dataId);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      },
    });
  }
  reg('Conv2DBackpropFilter', (inputs, attrs) => {
    const a = attrs as unknown as KernelAttrs;
    return conv2dBackpropFilter(inputs.x as tf.Tensor4D, inputs.dy as tf.Tensor4D, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  });
  // wasm has Conv2DBackpropInput, but a naive one (4x slower than the forward conv): replace it
  reg('Conv2DBackpropInput', (inputs, attrs) => {
    const a = attrs as unknown as KernelAttrs;
    return conv2dBackpropInput(a.inputShape, inputs.dy as tf.Tensor4D, inputs.filter as tf.Tensor4D, a.strides, a.pad, a.dimRoundingMode);
  }, true);
  registerRaw('wasm');
}

const rawRegistered = new Set<string>();

/**
 * Registers the plain-loop kernels for a backend with raw float32 memory (wasm, cpu): the fused
 * training batch norm (+ its gradient), and on wasm the depthwise gradients it lacks.
 */
export function registerRaw(backendName: 'wasm' | 'cpu'): void {
  if (rawRegistered.has(backendName)) return;
  rawRegistered.add(backendName);
  const reg = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({ kernelName, backendName, kernelFunc });
  };
  type T = tf.TensorInfo;
  reg(BN_ACT, ({ inputs, backend, attrs }) => bnActForward(backend, inputs.x as T, inputs.gamma as T, inputs.beta as T, attrs as unknown as BnActAttrs));
  reg(BN_ACT_GRAD, ({ inputs, backend, attrs }) => {
    const i = inputs as Record<string, T>;
    return bnActBackward(backend, i.dy, i.x, i.y, i.gamma, i.mean, i.variance, attrs as unknown as BnActAttrs);
  });
  if (!tf.getGradient(BN_ACT)) {
    tf.registerGradient({
      kernelName: BN_ACT, inputsToSave: ['x', 'gamma'], outputsToSave: [true, true, true],
      gradFunc: (dys, saved, attrs) => {
        const dy = Array.isArray(dys) ? dys[0] : dys;
        const [x, gamma, y, mean, variance] = saved;
        // computed once, here: the tape runs each returned closure inside its own tidy
        const [dx, dgamma, dbeta] = tf.engine().runKernel(BN_ACT_GRAD, { dy, x, y, gamma, mean, variance }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
      },
    });
  }
  reg(IM2COL_T, ({ inputs, backend, attrs }) => im2colTKernel(backend, inputs.x as T, attrs as unknown as Im2colAttrs));
  reg(COL2IM, ({ inputs, backend, attrs }) => col2imKernel(backend, inputs.cols as T, attrs as unknown as Im2colAttrs));
  if (backendName === 'wasm') {
    reg(CONV1X1_FILTER_GRAD, ({ inputs, backend }) => conv1x1FilterGradKernel(backend, inputs.x as T, inputs.dy as T));
    reg(IM2COL, ({ inputs, backend, attrs }) => im2colKernel(backend, inputs.x as T, attrs as unknown as Im2colAttrs));
    reg('MaxPoolGrad', ({ inputs, backend, attrs }) => maxPoolGradKernel(backend, inputs.dy as T, inputs.input as T, attrs as unknown as PoolAttrs));
    reg('DepthwiseConv2dNativeBackpropFilter', ({ inputs, backend, attrs }) => depthwiseFilterGradKernel(backend, inputs.x as T, inputs.dy as T, attrs as unknown as KernelAttrs));
    reg('DepthwiseConv2dNativeBackpropInput', ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as KernelAttrs;
      const f = inputs.filter as T;
      const g = depthwiseGeom(a.inputShape, f.shape, a);
      // stride 1: XNNPACK's depthwise conv of the padded dy with the flipped filter is ~4x faster than
      // the loop; strided: the loop (the stride-dilated dy is mostly zeros)
      if (g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 && g.M === 1) {
        // (inputs are Tensors inside runKernel; returning a Tensor is what the engine expects too)
        return depthwiseBackpropInput(a.inputShape, inputs.dy as tf.Tensor4D, f as tf.Tensor4D, a.strides, a.pad, a.dimRoundingMode) as unknown as T;
      }
      return depthwiseInputGradKernel(backend, inputs.dy as T, f, a);
    });
  }
}

interface PoolAttrs { filterSize: [number, number] | number; strides: [number, number] | number; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' }

/**
 * Max pooling's gradient: each output's dy goes to the first largest input of its window (the cpu
 * backend's rule), summed where windows overlap. Replaces tfjs-backend-wasm 4.22's MaxPoolGrad,
 * whose gradients differ from the cpu backend's and from finite differences in training (stride
 * 1 windows, and darknet's size-2 stride-2 maxpool inside a network: test/unit/engine-loss.test.ts).
 */
function maxPoolGradKernel(backend: unknown, dy: tf.TensorInfo, x: tf.TensorInfo, a: PoolAttrs): tf.TensorInfo {
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  const raw = new Raw(backend);
  const out = raw.alloc(x.shape);
  const dx = raw.view(out), xv = raw.view(x), g = raw.view(dy);
  dx.fill(0);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      const y0 = oy * sh - top;
      for (let ox = 0; ox < Wo; ox++) {
        const x0 = ox * sw - left;
        const go = ((b * Ho + oy) * Wo + ox) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity, at = -1;
          for (let ky = 0; ky < fh; ky++) {
            const yy = y0 + ky;
            if (yy < 0 || yy >= H) continue;
            for (let kx = 0; kx < fw; kx++) {
              const xx = x0 + kx;
              if (xx < 0 || xx >= W) continue;
              const k = ((b * H + yy) * W + xx) * C + c;
              if (xv[k] > best || at < 0) { best = xv[k]; at = k; }
            }
          }
          if (at >= 0) dx[at] += g[go + c];
        }
      }
    }
  }
  return out;
}
