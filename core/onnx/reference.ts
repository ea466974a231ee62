// A straightforward forward pass of a darknet network over Float32Arrays, written as darknet itself
// computes each layer (naive convolution, BN unfused: (x - mean)/sqrt(var + .00001f)*scale + bias,
// darknet's own activation formulas, -FLT_MAX padding in maxpool, flat-index shortcut, ...). It is
// slow on purpose: it exists to check the ONNX export and onnxruntime against an independent
// implementation, one image at a time (batch 1).
import type { ConvSpec, LayerSpec, NetworkSpec, PoolSpec, YoloSpec } from './layers';
import { headRows } from './layers';

const f = Math.fround;
const EPS = f(0.00001);

export interface ReferenceResult {
  /** Output of every layer, CHW (batch 1), indexed by layer. */
  layers: Float32Array[];
  /** Decoded [yolo] outputs in the exported layout ([rows][5 + classes]), by layer index. */
  heads: Map<number, Float32Array>;
}

const expf = (x: number): number => f(Math.exp(x));
const logistic = (x: number): number => f(1 / f(1 + expf(-x)));
const tanhAct = (x: number): number => f(f(2 / f(1 + expf(f(-2 * x)))) - 1);
function softplus(x: number, threshold: number): number {
  if (x > threshold) return x;
  if (x < -threshold) return expf(x);
  return f(Math.log(f(expf(x) + 1)));
}

/** darknet activate() for one value (activations.h). */
export function activateScalar(x: number, a: string): number {
  switch (a) {
    case 'linear': return x;
    case 'logistic': return logistic(x);
    case 'loggy': return f(f(2 / f(1 + expf(-x))) - 1);
    case 'relu': return x > 0 ? x : 0;
    case 'relu6': return Math.min(Math.max(x, 0), 6);
    case 'elu': return x >= 0 ? x : f(expf(x) - 1);
    case 'selu': return x >= 0 ? f(f(1.0507) * x) : f(f(f(1.0507) * f(1.6732)) * f(expf(x) - 1));
    case 'gelu': return f(0.5 * x * (1 + Math.tanh(0.797885 * x + 0.035677 * f(Math.pow(x, 3)))));
    case 'relie': return x > 0 ? x : f(f(0.01) * x);
    case 'ramp': return f((x > 0 ? x : 0) + f(f(0.1) * x));
    case 'leaky':
    case 'revleaky': return x > 0 ? x : f(f(0.1) * x);
    case 'tanh': return tanhAct(x);
    case 'plse':
      if (x < -4) return f(f(0.01) * f(x + 4));
      if (x > 4) return f(f(f(0.01) * f(x - 4)) + 1);
      return f(f(f(0.125) * x) + 0.5);
    case 'stair': {
      const n = Math.floor(x);
      if (n % 2 === 0) return Math.floor(x / 2);
      return f(f(x - n) + Math.floor(x / 2));
    }
    case 'hardtan': return x < -1 ? -1 : x > 1 ? 1 : x;
    case 'lhtan':
      if (x < 0) return f(f(0.001) * x);
      if (x > 1) return f(f(f(0.001) * f(x - 1)) + 1);
      return x;
    case 'mish': return f(x * tanhAct(softplus(x, 20)));
    case 'hard_mish':
      if (x > 0) return x;
      if (x > -2) return f(f(f(x * x) / 2) + x);
      return 0;
    case 'swish': return f(x * logistic(x));
    default: throw new Error(`activation ${a} has no scalar form`);
  }
}

/** Applies activation `a` in place to a CHW tensor with `c` channels. */
export function activateArray(x: Float32Array, c: number, a: string): void {
  if (a === 'linear') return;
  if (a.startsWith('normalize_channels')) {
    const hw = x.length / c;
    const eps = f(0.0001);
    for (let i = 0; i < hw; i++) {
      if (a === 'normalize_channels') {
        let sum = eps;
        for (let k = 0; k < c; k++) { const v = x[k * hw + i]; if (v > 0) sum = f(sum + v); }
        for (let k = 0; k < c; k++) { const v = x[k * hw + i]; x[k * hw + i] = v > 0 ? f(v / sum) : 0; }
      } else {
        let max = 0;
        if (a.endsWith('maxval')) {
          max = -Infinity;
          for (let k = 0; k < c; k++) max = Math.max(max, x[k * hw + i]);
        }
        let sum = eps;
        for (let k = 0; k < c; k++) sum = f(sum + expf(f(x[k * hw + i] - max)));
        for (let k = 0; k < c; k++) x[k * hw + i] = f(expf(f(x[k * hw + i] - max)) / sum);
      }
    }
    return;
  }
  for (let i = 0; i < x.length; i++) x[i] = activateScalar(x[i], a);
}

/** darknet im2col_cpu_ext for one group: rows (ci, ky, kx), columns the output positions; 0 outside the image. */
function im2col(s: ConvSpec, input: Float32Array, group: number, col: Float32Array): Float32Array {
  const [c, h, w] = s.in;
  const [, oh, ow] = s.out;
  const k = s.size;
  const d = s.dilation;
  const pad = s.padding * d;
  const cg = c / s.groups;
  const n = oh * ow;
  col.fill(0);
  for (let ci = 0; ci < cg; ci++) {
    const inPlane = (group * cg + ci) * h * w;
    for (let ky = 0; ky < k; ky++) {
      for (let kx = 0; kx < k; kx++) {
        const row = ((ci * k + ky) * k + kx) * n;
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * s.strideY + ky * d - pad;
          if (iy < 0 || iy >= h) continue;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * s.strideX + kx * d - pad;
            if (ix >= 0 && ix < w) col[row + oy * ow + ox] = input[inPlane + iy * w + ix];
          }
        }
      }
    }
  }
  return col;
}

function conv(s: ConvSpec, input: Float32Array): Float32Array {
  const [c, h, w] = s.in;
  const [outC, oh, ow] = s.out;
  const k = s.size;
  const cg = c / s.groups;
  const fg = outC / s.groups;
  const kk = cg * k * k;
  const n = oh * ow;
  const weights = s.weights;
  const out = new Float32Array(outC * n);
  const acc = new Float64Array(n);
  const direct = k === 1 && s.strideX === 1 && s.strideY === 1 && s.padding === 0 && oh === h && ow === w;
  const buffer = direct ? undefined : new Float32Array(kk * n);
  for (let g = 0; g < s.groups; g++) {
    // gemm_nn order: for each filter, for each row of the column matrix, along the positions.
    const col = buffer ? im2col(s, input, g, buffer) : input.subarray(g * cg * n, (g + 1) * cg * n);
    for (let o = g * fg; o < (g + 1) * fg; o++) {
      acc.fill(0);
      const wBase = o * kk;
      for (let r = 0; r < kk; r++) {
        const wv = weights[wBase + r];
        if (wv === 0) continue;
        const base = r * n;
        for (let j = 0; j < n; j++) acc[j] += wv * col[base + j];
      }
      const base = o * n;
      if (s.bn) {
        const mean = s.bn.mean[o];
        const sd = Math.sqrt(f(s.bn.variance[o] + EPS));
        const scale = s.bn.scales[o];
        const bias = s.biases[o];
        for (let j = 0; j < n; j++) out[base + j] = f(f(f(f(f(acc[j]) - mean) / sd) * scale) + bias);
      } else {
        const bias = s.biases[o];
        for (let j = 0; j < n; j++) out[base + j] = f(f(acc[j]) + bias);
      }
    }
  }
  activateArray(out, outC, s.activation);
  return out;
}

function pool(s: PoolSpec, input: Float32Array): Float32Array {
  const [c, h, w] = s.in;
  const [, oh, ow] = s.out;
  const off = -Math.floor(s.padding / 2);
  const out = new Float32Array(c * oh * ow);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let max = -3.4028234663852886e38;
        let sum = 0;
        let count = 0;
        for (let n = 0; n < s.size; n++) {
          for (let m = 0; m < s.size; m++) {
            const y = off + i * s.strideY + n;
            const x = off + j * s.strideX + m;
            const valid = y >= 0 && y < h && x >= 0 && x < w;
            const v = valid ? input[(k * h + y) * w + x] : -3.4028234663852886e38;
            if (s.kind === 'maxpool') { if (v > max) max = v; } else if (valid) { sum = f(sum + v); count++; }
          }
        }
        out[(k * oh + i) * ow + j] = s.kind === 'maxpool' ? max : f(sum / count);
      }
    }
  }
  return out;
}

/** Decodes a [yolo] layer's input (darknet layout [A][5+C][H][W]) into rows [(y*W+x)*A+a][5+C]. */
export function decodeYolo(s: YoloSpec, input: Float32Array): Float32Array {
  const [, H, W] = s.in;
  const A = s.anchors.length / 2;
  const C = s.classes;
  const E = 5 + C;
  const hw = H * W;
  const act = new Float32Array(input);
  const alpha = f(s.scaleXY);
  const beta = f(-0.5 * (s.scaleXY - 1));
  for (let n = 0; n < A; n++) {
    const base = n * E * hw;
    if (!s.newCoords) {
      for (let i = 0; i < 2 * hw; i++) act[base + i] = logistic(act[base + i]);
      for (let i = 4 * hw; i < E * hw; i++) act[base + i] = logistic(act[base + i]);
    }
    for (let i = 0; i < 2 * hw; i++) act[base + i] = f(f(act[base + i] * alpha) + beta);
  }
  const rows = new Float32Array(headRows(s) * E);
  for (let cell = 0; cell < hw; cell++) {
    const row = Math.floor(cell / W);
    const col = cell % W;
    for (let n = 0; n < A; n++) {
      const r = (cell * A + n) * E;
      const at = (e: number): number => act[n * E * hw + e * hw + cell];
      const aw = s.anchors[2 * n];
      const ah = s.anchors[2 * n + 1];
      rows[r] = f(f(col + at(0)) / W);
      rows[r + 1] = f(f(row + at(1)) / H);
      if (s.newCoords) {
        rows[r + 2] = f(f(f(f(at(2) * at(2)) * 4) * aw) / s.netW);
        rows[r + 3] = f(f(f(f(at(3) * at(3)) * 4) * ah) / s.netH);
      } else {
        rows[r + 2] = f((Math.exp(at(2)) * aw) / s.netW);
        rows[r + 3] = f((Math.exp(at(3)) * ah) / s.netH);
      }
      for (let e = 4; e < E; e++) rows[r + e] = at(e);
    }
  }
  return rows;
}

function forwardLayer(s: LayerSpec, get: (i: number) => Float32Array): Float32Array {
  const x = get(s.inputs[0]);
  switch (s.kind) {
    case 'conv':
      return conv(s, x);
    case 'maxpool':
    case 'local_avgpool':
      return pool(s, x);
    case 'avgpool': {
      const [c, h, w] = s.in;
      const out = new Float32Array(c);
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let i = 0; i < h * w; i++) sum = f(sum + x[k * h * w + i]);
        out[k] = f(sum / (h * w));
      }
      return out;
    }
    case 'route': {
      const out = new Float32Array(s.out[0] * s.out[1] * s.out[2]);
      let offset = 0;
      s.inputs.forEach((i) => {
        const src = get(i);
        const part = src.length / s.groups;
        out.set(src.subarray(part * s.groupId, part * (s.groupId + 1)), offset);
        offset += part;
      });
      return out;
    }
    case 'shortcut': {
      const out = new Float32Array(x);
      for (let k = 1; k < s.inputs.length; k++) {
        const add = get(s.inputs[k]);
        const n = Math.min(out.length, add.length);
        for (let i = 0; i < n; i++) out[i] = f(out[i] + add[i]);
      }
      activateArray(out, s.out[0], s.activation);
      return out;
    }
    case 'upsample': {
      const [c, h, w] = s.in;
      const [, oh, ow] = s.out;
      const st = s.stride;
      const scale = f(s.scale);
      const out = new Float32Array(c * oh * ow);
      if (!s.reverse) {
        for (let k = 0; k < c; k++) {
          for (let j = 0; j < oh; j++) {
            for (let i = 0; i < ow; i++) {
              out[(k * oh + j) * ow + i] = f(scale * x[(k * h + Math.floor(j / st)) * w + Math.floor(i / st)]);
            }
          }
        }
      } else {
        for (let k = 0; k < c; k++) {
          for (let j = 0; j < h; j++) {
            for (let i = 0; i < w; i++) {
              const o = (k * oh + Math.floor(j / st)) * ow + Math.floor(i / st);
              out[o] = f(out[o] + f(scale * x[(k * h + j) * w + i]));
            }
          }
        }
      }
      return out;
    }
    case 'scale_channels':
    case 'sam': {
      const from = get(s.inputs[1]);
      const [c, h, w] = s.out;
      const hw = h * w;
      const out = new Float32Array(from.length);
      for (let i = 0; i < out.length; i++) {
        const sc = s.kind === 'sam' ? x[i] : s.scaleWh ? x[i % hw] : x[Math.floor(i / hw)];
        out[i] = f(sc * from[i]);
      }
      activateArray(out, c, s.activation);
      return out;
    }
    case 'identity':
      return x;
    case 'activation': {
      const out = new Float32Array(x);
      activateArray(out, s.out[0], s.activation);
      return out;
    }
    case 'batchnorm': {
      const [c, h, w] = s.in;
      const out = new Float32Array(x.length);
      for (let k = 0; k < c; k++) {
        const sd = Math.sqrt(f(s.bn.variance[k] + EPS));
        for (let i = 0; i < h * w; i++) {
          const v = x[k * h * w + i];
          out[k * h * w + i] = f(f(f(f(v - s.bn.mean[k]) / sd) * s.bn.scales[k]) + s.biases[k]);
        }
      }
      return out;
    }
    case 'yolo':
      return x;
  }
}

/** Runs the network on one CHW input. */
export function referenceForward(spec: NetworkSpec, input: Float32Array): ReferenceResult {
  const expected = spec.input[0] * spec.input[1] * spec.input[2];
  if (input.length !== expected) throw new Error(`reference input has ${input.length} values, the network needs ${expected}`);
  const layers: Float32Array[] = [];
  const heads = new Map<number, Float32Array>();
  const get = (i: number): Float32Array => (i < 0 ? input : layers[i]);
  for (const s of spec.layers) {
    const out = forwardLayer(s, get);
    layers[s.index] = out;
    if (s.kind === 'yolo') heads.set(s.index, decodeYolo(s, out));
  }
  return { layers, heads };
}
