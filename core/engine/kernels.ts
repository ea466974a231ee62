// Gradient kernels the tfjs wasm backend lacks, written with ops it has (see ARCHITECTURE.md,
// "Choices already checked"): Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter and
// DepthwiseConv2dNativeBackpropInput. Each is expressed as a (depthwise) convolution:
//  * filter gradient of a conv: correlate the batch↔channel-transposed input with the output
//    gradient used as a filter, dilated by the stride;
//  * filter gradient of a depthwise conv: the same with batch·channels folded into channels;
//  * input gradient of a depthwise conv: a depthwise conv of the stride-dilated, padded output
//    gradient with the spatially flipped filter.
// Ops run inside a kernel are not recorded on the gradient tape (tfjs engine kernelDepth > 0).
import * as tf from '@tensorflow/tfjs-core';

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
      // 1×1 stride-1 conv: dWᵀ = dyᵀ·x, one matrix product (wasm's matMul with transposeA is slow:
      // transpose the usually smaller dy instead, then the tiny result)
      const [b, h, w, ci] = x.shape;
      const co = dy.shape[3];
      const r = tf.matMul(tf.transpose(tf.reshape(dy, [b * h * w, co])) as tf.Tensor2D, tf.reshape(x, [b * h * w, ci]) as tf.Tensor2D); // [co, ci]
      return tf.reshape(tf.transpose(r), [1, 1, ci, co]) as tf.Tensor4D;
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

/** Filter gradient of a depthwise conv (channel multiplier m). */
export function depthwiseBackpropFilter(
  x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number],
  strides: [number, number] | number, pad: Pad, dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filterShape;
    const { padInfo, outH, outW, strideH, strideW } = padInfoOf(x.shape, filterShape, strides, pad, dimRoundingMode, true);
    const [b] = x.shape;
    const xp = padCrop(x, padInfo.top, Math.max(0, padInfo.bottom), padInfo.left, Math.max(0, padInfo.right));
    const [, hp, wp] = xp.shape;
    // [1, H, W, B·C]: channel index b·C + c
    const xf = tf.reshape(tf.transpose(xp, [1, 2, 0, 3]), [1, hp, wp, b * c]);
    const parts: tf.Tensor[] = [];
    for (let q = 0; q < m; q++) {
      // output channel c·m + q of dy pairs with input channel c
      const dyq = m === 1 ? dy : tf.reshape(tf.slice(tf.reshape(dy, [b, outH, outW, c, m]), [0, 0, 0, 0, q], [-1, -1, -1, -1, 1]), [b, outH, outW, c]);
      const f = tf.reshape(tf.transpose(dyq, [1, 2, 0, 3]), [outH, outW, b * c, 1]) as tf.Tensor4D;
      let r = tf.depthwiseConv2d(xf as tf.Tensor4D, f, 1, 'valid', 'NHWC', [strideH, strideW]); // [1, ≥kh, ≥kw, B·C]
      if (r.shape[1] !== kh || r.shape[2] !== kw) r = tf.slice(r, [0, 0, 0, 0], [-1, kh, kw, -1]);
      parts.push(tf.sum(tf.reshape(r, [kh, kw, b, c]), 2)); // [kh, kw, c]
    }
    return tf.stack(parts, 3) as tf.Tensor4D;
  });
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
  type A = { strides: [number, number] | number; pad: Pad; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number]; inputShape: [number, number, number, number] };
  reg('Conv2DBackpropFilter', (inputs, attrs) => {
    const a = attrs as unknown as A;
    return conv2dBackpropFilter(inputs.x as tf.Tensor4D, inputs.dy as tf.Tensor4D, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  });
  // wasm has Conv2DBackpropInput, but a naive one (4x slower than the forward conv): replace it
  reg('Conv2DBackpropInput', (inputs, attrs) => {
    const a = attrs as unknown as A;
    return conv2dBackpropInput(a.inputShape, inputs.dy as tf.Tensor4D, inputs.filter as tf.Tensor4D, a.strides, a.pad, a.dimRoundingMode);
  }, true);
  reg('DepthwiseConv2dNativeBackpropFilter', (inputs, attrs) => {
    const a = attrs as unknown as A;
    return depthwiseBackpropFilter(inputs.x as tf.Tensor4D, inputs.dy as tf.Tensor4D, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  });
  reg('DepthwiseConv2dNativeBackpropInput', (inputs, attrs) => {
    const a = attrs as unknown as A;
    return depthwiseBackpropInput(a.inputShape, inputs.dy as tf.Tensor4D, inputs.filter as tf.Tensor4D, a.strides, a.pad, a.dimRoundingMode);
  });
}
