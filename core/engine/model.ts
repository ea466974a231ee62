// A trainable TensorFlow.js model built from a darknet graph + weights: plain tf ops over explicit
// variables, NHWC inside. Layer semantics come from core/onnx/layers.ts (networkSpec), the same
// reading the ONNX exporter uses, so the forward pass equals the exported model's.
//
// Batch norm trains as darknet's forward_batchnorm_layer does: batch mean and *unbiased* variance
// (1/(n-1)) over batch×spatial, x̂ = (x-μ)/√(σ²+.00001), rolling = .99·rolling + .01·batch stat.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelGraph, ModelWeights, LayerWeights, WeightsHeader } from '../darknet/types';
import { networkSpec, type ConvSpec, type LayerSpec, type NetworkSpec, type YoloSpec } from '../onnx/layers';
import { rng } from '../random';
import { BN_ACT } from './kernels';
export { rng } from '../random';

const BN_EPS = 0.00001;

export interface ConvParams {
  spec: ConvSpec;
  /** tf layout [k, k, c/groups, filters] (depthwise: [k, k, c, multiplier]). */
  kernel: tf.Variable;
  /** darknet biases (β with BN). */
  bias: tf.Variable;
  /** BN γ (darknet "scales"). */
  gamma?: tf.Variable;
  rollingMean?: Float32Array;
  rollingVariance?: Float32Array;
  depthwise: boolean;
}

export interface ForwardOptions {
  training?: boolean;
  /** Also return these layers' outputs (NHWC). */
  keep?: number[];
}

export interface ForwardResult {
  /** Raw outputs of the [yolo] layers (their inputs), NHWC [B, H, W, A·(5+C)], in layer order. */
  heads: tf.Tensor4D[];
  layers: Map<number, tf.Tensor4D>;
  /** Batch statistics of BN convs (training only): to pass to updateRollingStats after the step. */
  bnStats: { index: number; mean: tf.Tensor1D; variance: tf.Tensor1D }[];
}


/**
 * Fresh weights as darknet initialises a conv layer (make_convolutional_layer): weights uniform in
 * ±√(2/(k²·c/groups)), biases 0, γ 1, rolling mean 0, rolling variance 1. One deliberate addition:
 * the objectness biases of the convs feeding [yolo] start at -4.6 (σ ≈ 0.01), the usual prior that
 * spares the first iterations the flood of negative-objectness gradient.
 */
export function initWeights(graph: ModelGraph, seed = 1): ModelWeights {
  const rand = rng(seed);
  const layers = new Map<number, LayerWeights>();
  const heads = new Map<number, YoloLike>();
  for (const l of graph.layers) {
    // new_coords heads read the conv's logistic output directly: a -4.6 bias (objectness 0.01) would
    // leave positives a gradient of p(1-p) ≈ 0.01, so they start at 0 (0.5)
    if (l.type === 'yolo' && l.yolo && !l.yolo.newCoords) heads.set(l.inputs[0], { classes: l.yolo.classes, anchors: l.yolo.mask.length });
  }
  for (const l of graph.layers) {
    if (l.type === 'convolutional' && l.conv) {
      const c = l.conv;
      const cg = l.input[2] / c.groups;
      const n = c.filters;
      const weights = new Float32Array(n * cg * c.size * c.size);
      const scale = Math.sqrt(2 / (c.size * c.size * cg));
      for (let i = 0; i < weights.length; i++) weights[i] = scale * (rand() * 2 - 1);
      const biases = new Float32Array(n);
      const head = heads.get(l.index);
      if (head) {
        const per = n / head.anchors;
        for (let a = 0; a < head.anchors; a++) biases[a * per + 4] = -4.6;
      }
      const lw: LayerWeights = { index: l.index, offset: 0, biases, weights };
      if (c.batchNormalize) {
        lw.scales = new Float32Array(n).fill(1);
        lw.rollingMean = new Float32Array(n);
        lw.rollingVariance = new Float32Array(n).fill(1);
      }
      layers.set(l.index, lw);
    } else if (l.type === 'batchnorm') {
      const c = l.output[2];
      layers.set(l.index, {
        index: l.index, offset: 0, biases: new Float32Array(c), scales: new Float32Array(c).fill(1),
        rollingMean: new Float32Array(c), rollingVariance: new Float32Array(c).fill(1), weights: new Float32Array(0),
      });
    }
  }
  return { header: { major: 0, minor: 2, revision: 5, seen: 0n, headerBytes: 20 }, layers, loadedLayers: graph.layers.length, bytes: 0 };
}

interface YoloLike { classes: number; anchors: number }

/** darknet [n][c/g][k][k] → tf [k][k][c/g][n] (or depthwise [k][k][c][m] with n = c·m + q). */
function toTfKernel(w: Float32Array, n: number, cg: number, k: number, depthwise: boolean, cin: number): Float32Array {
  const out = new Float32Array(w.length);
  if (depthwise) {
    const m = n / cin;
    for (let o = 0; o < n; o++) {
      const c = Math.floor(o / m), q = o % m;
      for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) out[((kh * k + kw) * cin + c) * m + q] = w[(o * k + kh) * k + kw];
    }
    return out;
  }
  for (let o = 0; o < n; o++) for (let ci = 0; ci < cg; ci++) for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) {
    out[((kh * k + kw) * cg + ci) * n + o] = w[((o * cg + ci) * k + kh) * k + kw];
  }
  return out;
}

function fromTfKernel(t: Float32Array, n: number, cg: number, k: number, depthwise: boolean, cin: number): Float32Array {
  const out = new Float32Array(t.length);
  if (depthwise) {
    const m = n / cin;
    for (let o = 0; o < n; o++) {
      const c = Math.floor(o / m), q = o % m;
      for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) out[(o * k + kh) * k + kw] = t[((kh * k + kw) * cin + c) * m + q];
    }
    return out;
  }
  for (let o = 0; o < n; o++) for (let ci = 0; ci < cg; ci++) for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) {
    out[((o * cg + ci) * k + kh) * k + kw] = t[((kh * k + kw) * cg + ci) * n + o];
  }
  return out;
}

const TRAINABLE_ACTIVATIONS = new Set(['linear', 'logistic', 'relu', 'relu6', 'leaky', 'revleaky', 'relie', 'mish', 'swish', 'tanh', 'elu', 'selu', 'gelu', 'hard_mish', 'ramp', 'loggy']);

export function activation(x: tf.Tensor, name: string): tf.Tensor {
  switch (name) {
    case 'linear': return x;
    case 'logistic': return tf.sigmoid(x);
    case 'loggy': return tf.sub(tf.mul(tf.sigmoid(x), 2), 1);
    case 'relu': return tf.relu(x);
    case 'relu6': return tf.relu6(x);
    case 'leaky': case 'revleaky': return tf.leakyRelu(x, 0.1);
    case 'relie': return tf.leakyRelu(x, 0.01);
    case 'ramp': return tf.add(tf.relu(x), tf.mul(x, 0.1));
    case 'mish': return tf.mul(x, tf.tanh(tf.softplus(x)));
    case 'swish': return tf.mul(x, tf.sigmoid(x));
    case 'tanh': return tf.tanh(x);
    case 'elu': return tf.elu(x);
    case 'selu': return tf.where(tf.greaterEqual(x, 0), tf.mul(x, 1.0507), tf.mul(tf.sub(tf.exp(x), 1), 1.0507 * 1.6732));
    case 'gelu': return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.add(tf.mul(x, 0.797885), tf.mul(tf.pow(x, 3), 0.035677))), 1));
    case 'hard_mish': return tf.where(tf.greater(x, 0), x, tf.where(tf.greater(x, -2), tf.add(tf.mul(tf.square(x), 0.5), x), tf.zerosLike(x)));
    default: throw new Error(`activation ${name} is not supported by the training engine (supported: ${[...TRAINABLE_ACTIVATIONS].join(', ')})`);
  }
}

/** Activations whose derivative is a function of the output's sign (fused into the BN op below). */
const FUSABLE_ACTIVATIONS = new Set(['linear', 'leaky', 'revleaky', 'relu', 'relie']);

function slopeOf(act: string): number {
  return act === 'leaky' || act === 'revleaky' ? 0.1 : act === 'relie' ? 0.01 : 0;
}

/**
 * Batch norm in training mode (darknet: batch mean, unbiased variance) + a piecewise-linear
 * activation as one op with a hand-written gradient: ~16 full-size kernels per layer instead of
 * the ~60 autodiff records for the same math (the dominant cost of a small-model step on wasm).
 *   x̂ = (c - μ)·inv, inv = (σ² + ε)^-½, z = γ·x̂ + β, y = act(z)
 *   dz = dy·act'(y); dβ = Σdz; dγ = Σdz·x̂; dc = γ·inv·(dz - dβ/n - x̂·dγ/(n-1))
 * (the (n-1) because σ² is the unbiased 1/(n-1) estimate).
 */
export function batchNormActTrain(c: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, act: string): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (tf.getKernel(BN_ACT, tf.getBackend())) {
    // the same math as one plain-loop kernel with its own gradient (kernels.ts, wasm and cpu)
    const [y, mean, variance] = tf.engine().runKernel(BN_ACT, { x: c, gamma, beta }, { slope: slopeOf(act), linear: act === 'linear' }) as tf.Tensor[];
    return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }
  return batchNormActTrainOps(c, gamma, beta, act);
}

/** batchNormActTrain in tf ops (backends without the fused kernel, e.g. tfjs-node; the tests' reference). */
export function batchNormActTrainOps(c: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, act: string): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const [b, h, w] = c.shape;
  const n = b * h * w;
  let mean: tf.Tensor1D | undefined, variance: tf.Tensor1D | undefined;
  const slope = slopeOf(act);
  const op = tf.customGrad(((cIn: tf.Tensor, g: tf.Tensor, be: tf.Tensor, save: tf.GradSaveFunc) => {
    const m = tf.mean(cIn, [0, 1, 2]) as tf.Tensor1D;
    const d = tf.sub(cIn, m);
    const v = tf.div(tf.sum(tf.square(d), [0, 1, 2]), Math.max(1, n - 1)) as tf.Tensor1D;
    const inv = tf.rsqrt(tf.add(v, BN_EPS)) as tf.Tensor1D;
    const xhat = tf.mul(d, inv);
    const z = tf.add(tf.mul(xhat, g), be);
    const y = act === 'linear' ? z : tf.leakyRelu(z, slope);
    // kept past the op's scope; re-tracked in the caller's scope below
    mean = tf.keep(m); variance = tf.keep(v);
    save([xhat, inv, g, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, iv, gg, yy] = saved;
        const dz = act === 'linear' ? dy : tf.mul(dy, tf.step(yy, slope));
        const dbeta = tf.sum(dz, [0, 1, 2]);
        const dgamma = tf.sum(tf.mul(dz, xh), [0, 1, 2]);
        const k1 = tf.mul(gg, iv);
        const k2 = tf.mul(k1, tf.div(dgamma, Math.max(1, n - 1)));
        const k3 = tf.mul(k1, tf.div(dbeta, n));
        const dc = tf.sub(tf.mul(dz, k1), tf.add(tf.mul(xh, k2), k3));
        return [dc, dgamma, dbeta];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = op(c, gamma, beta) as tf.Tensor4D;
  const m = tf.clone(mean!), v = tf.clone(variance!);
  mean!.dispose(); variance!.dispose();
  return { y, mean: m, variance: v };
}

let modelSeq = 0;

/** A variable's name without the per-model prefix (stable across processes: w12, b12, g12). */
export function variableKey(v: tf.Variable): string {
  return v.name.replace(/^m\d+_/, '');
}

export class DarknetModel {
  readonly spec: NetworkSpec;
  private readonly prefix = `m${++modelSeq}_`;
  readonly convs = new Map<number, ConvParams>();
  /** Standalone [batchnorm] layers (inference statistics only; their parameters are not trained). */
  private readonly bnLayers = new Map<number, { scale: tf.Tensor1D; shift: tf.Tensor1D }>();
  header: WeightsHeader;

  private constructor(readonly graph: ModelGraph, weights: ModelWeights) {
    this.spec = networkSpec(graph, weights);
    this.header = { ...weights.header };
    for (const l of this.spec.layers) {
      if (l.kind === 'conv') {
        const cin = l.in[0];
        const depthwise = l.groups > 1 && l.groups === cin;
        const cg = cin / l.groups;
        const kernel = toTfKernel(l.weights, l.filters, cg, l.size, depthwise, cin);
        const shape: [number, number, number, number] = depthwise ? [l.size, l.size, cin, l.filters / cin] : [l.size, l.size, cg, l.filters];
        const p: ConvParams = {
          spec: l, depthwise,
          kernel: tf.variable(tf.tensor4d(kernel, shape), true, `${this.prefix}w${l.index}`),
          bias: tf.variable(tf.tensor1d(Float32Array.from(l.biases)), true, `${this.prefix}b${l.index}`),
        };
        if (l.bn) {
          p.gamma = tf.variable(tf.tensor1d(Float32Array.from(l.bn.scales)), true, `${this.prefix}g${l.index}`);
          p.rollingMean = Float32Array.from(l.bn.mean);
          p.rollingVariance = Float32Array.from(l.bn.variance);
        }
        this.convs.set(l.index, p);
      } else if (l.kind === 'batchnorm') {
        const c = l.in[0];
        const a = new Float32Array(c), b = new Float32Array(c);
        for (let k = 0; k < c; k++) {
          a[k] = l.bn.scales[k] / Math.sqrt(l.bn.variance[k] + BN_EPS);
          b[k] = l.biases[k] - l.bn.mean[k] * a[k];
        }
        this.bnLayers.set(l.index, { scale: tf.keep(tf.tensor1d(a)), shift: tf.keep(tf.tensor1d(b)) });
      }
    }
  }

  /** Builds the model from a graph and its weights (initWeights(graph) for a fresh one). */
  static create(graph: ModelGraph, weights?: ModelWeights, seed = 1): DarknetModel {
    const w = weights ?? initWeights(graph, seed);
    if (weights && weights.loadedLayers < graph.layers.length) {
      // partial weights (a backbone): initialise the rest, as darknet does
      const fresh = initWeights(graph, seed);
      for (const [i, lw] of weights.layers) fresh.layers.set(i, lw);
      fresh.header = { ...weights.header };
      return new DarknetModel(graph, fresh);
    }
    return new DarknetModel(graph, w);
  }

  get heads(): YoloSpec[] {
    return this.spec.heads;
  }

  /** All trainable variables (kernels, biases, γ). */
  variables(): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const p of this.convs.values()) {
      out.push(p.kernel, p.bias);
      if (p.gamma) out.push(p.gamma);
    }
    return out;
  }

  /** Checks that every layer can be trained (activations, dilation). Throws naming the layer. */
  checkTrainable(): void {
    for (const l of this.spec.layers) {
      const act = 'activation' in l ? (l as { activation: string }).activation : undefined;
      if (act && !TRAINABLE_ACTIVATIONS.has(act)) throw new Error(`layer ${l.index} [${l.name}]: activation=${act} cannot be trained`);
      if (l.kind === 'conv' && l.dilation > 1 && (l.strideX > 1 || l.strideY > 1)) {
        throw new Error(`layer ${l.index} [${l.name}]: dilation=${l.dilation} with stride ${l.strideX}x${l.strideY} cannot be trained (dilated convolutions train with stride 1 only)`);
      }
      if (l.kind === 'shortcut' && l.ins.some((s) => s.join() !== l.ins[0].join())) throw new Error(`layer ${l.index} [shortcut]: inputs of different shapes cannot be trained`);
    }
  }

  /** Forward pass on an NHWC batch. Call inside tf.tidy / tf.variableGrads. */
  forward(x: tf.Tensor4D, opts: ForwardOptions = {}): ForwardResult {
    const training = opts.training ?? false;
    const outs = new Map<number, tf.Tensor4D>();
    outs.set(-1, x);
    const heads: tf.Tensor4D[] = [];
    const bnStats: ForwardResult['bnStats'] = [];
    const keep = new Set(opts.keep ?? []);
    const layers = new Map<number, tf.Tensor4D>();
    for (const l of this.spec.layers) {
      const input = outs.get(l.inputs[0])!;
      const y = this.layer(l, input, outs, training, bnStats);
      if (l.kind === 'yolo') heads.push(input);
      outs.set(l.index, y);
      if (keep.has(l.index)) layers.set(l.index, y);
    }
    return { heads, layers, bnStats };
  }

  private layer(l: LayerSpec, x: tf.Tensor4D, outs: Map<number, tf.Tensor4D>, training: boolean, bnStats: ForwardResult['bnStats']): tf.Tensor4D {
    switch (l.kind) {
      case 'conv': return this.conv(this.convs.get(l.index)!, x, training, bnStats);
      case 'maxpool':
      case 'local_avgpool': {
        const begin = Math.floor(l.padding / 2);
        const end = l.padding - begin;
        const pads: [number, number][] = [[0, 0], [begin, end], [begin, end], [0, 0]];
        if (l.kind === 'maxpool') {
          const xp = l.padding > 0 ? tf.pad(x, pads, -1e30) : x;
          return tf.maxPool(xp, [l.size, l.size], [l.strideY, l.strideX], 'valid');
        }
        // average over the valid cells only
        const xp = l.padding > 0 ? tf.pad(x, pads) : x;
        const sum = tf.avgPool(xp, [l.size, l.size], [l.strideY, l.strideX], 'valid');
        if (l.padding === 0) return sum;
        const ones = tf.pad(tf.ones([1, x.shape[1], x.shape[2], 1]), pads) as tf.Tensor4D;
        const count = tf.avgPool(ones, [l.size, l.size], [l.strideY, l.strideX], 'valid');
        return tf.div(sum, count);
      }
      case 'avgpool': return tf.mean(x, [1, 2], true);
      case 'route': {
        const parts = l.inputs.map((i, k) => {
          const t = outs.get(i)!;
          if (l.groups === 1) return t;
          const c = l.ins[k][0] / l.groups;
          return tf.slice(t, [0, 0, 0, l.groupId * c], [-1, -1, -1, c]);
        });
        return parts.length === 1 ? parts[0] : tf.concat(parts, 3);
      }
      case 'shortcut': {
        let acc: tf.Tensor4D = x;
        for (let k = 1; k < l.inputs.length; k++) {
          const other = outs.get(l.inputs[k])!;
          if (l.ins[k].join() !== l.ins[0].join()) throw new Error(`layer ${l.index} [shortcut]: inputs of different shapes are not supported by the training engine`);
          acc = tf.add(acc, other);
        }
        return activation(acc, l.activation) as tf.Tensor4D;
      }
      case 'upsample': {
        const [, h, w] = x.shape;
        if (l.reverse) {
          const s = l.stride;
          return tf.mul(tf.avgPool(x, [s, s], [s, s], 'valid'), s * s * l.scale);
        }
        // nearest upsampling as a broadcast (its gradient is a plain sum; the cpu backend's
        // ResizeNearestNeighborGrad gives wrong gradients for this case)
        const s = l.stride;
        const c = x.shape[3];
        const b = x.shape[0];
        const cols = tf.mul(tf.reshape(x, [b * h, w, 1, c]), tf.ones([1, 1, s, 1])); // [b·h, w, s, c]
        const rows = tf.mul(tf.reshape(cols, [b, h, 1, w * s * c]), tf.ones([1, 1, s, 1])); // [b, h, s, w·s·c]
        let y: tf.Tensor4D = tf.reshape(rows, [b, h * s, w * s, c]);
        if (l.scale !== 1) y = tf.mul(y, l.scale);
        return y;
      }
      case 'scale_channels':
      case 'sam': {
        const feature = outs.get(l.inputs[1])!;
        let scales: tf.Tensor = x;
        if (l.kind === 'scale_channels') {
          const [b, fh, fw, fc] = feature.shape;
          scales = l.scaleWh ? tf.reshape(x, [b, fh, fw, 1]) : tf.reshape(x, [b, 1, 1, fc]);
        }
        return activation(tf.mul(feature, scales), l.activation) as tf.Tensor4D;
      }
      case 'identity': return x;
      case 'activation': return activation(x, l.activation) as tf.Tensor4D;
      case 'batchnorm': {
        const p = this.bnLayers.get(l.index)!;
        return tf.add(tf.mul(x, p.scale), p.shift);
      }
      case 'yolo': return x;
    }
  }

  private conv(p: ConvParams, x: tf.Tensor4D, training: boolean, bnStats: ForwardResult['bnStats']): tf.Tensor4D {
    const s = p.spec;
    const pad = s.padding * s.dilation; // darknet's im2col pads pad·dilation
    // explicit padding inside the conv (no padded copy of the input, no pad/slice on the tape)
    const padding: 'valid' | [[number, number], [number, number], [number, number], [number, number]] = pad > 0 ? [[0, 0], [pad, pad], [pad, pad], [0, 0]] : 'valid';
    const strides: [number, number] = [s.strideY, s.strideX];
    const dil: [number, number] = [s.dilation, s.dilation];
    const convolve = (input: tf.Tensor4D, pads: typeof padding, dilations: [number, number]): tf.Tensor4D => {
      if (p.depthwise) return tf.depthwiseConv2d(input, p.kernel as tf.Tensor4D, strides, pads, 'NHWC', dilations);
      if (s.groups === 1) return tf.conv2d(input, p.kernel as tf.Tensor4D, strides, pads, 'NHWC', dilations);
      const cg = s.in[0] / s.groups;
      const fg = s.filters / s.groups;
      const parts: tf.Tensor4D[] = [];
      for (let g = 0; g < s.groups; g++) {
        const xs = tf.slice(input, [0, 0, 0, g * cg], [-1, -1, -1, cg]);
        const ks = tf.slice(p.kernel as tf.Tensor4D, [0, 0, 0, g * fg], [-1, -1, -1, fg]);
        parts.push(tf.conv2d(xs, ks, strides, pads, 'NHWC', dilations));
      }
      return tf.concat(parts, 3);
    };
    let y: tf.Tensor4D = s.dilation > 1 && s.strideX === 1 && s.strideY === 1
      ? atrous(x, pad, s.dilation, s.size, (t) => convolve(t, 'valid', [1, 1]))
      : convolve(x, padding, dil);
    if (p.gamma) {
      if (training) {
        if (FUSABLE_ACTIVATIONS.has(s.activation)) {
          const r = batchNormActTrain(y, p.gamma as tf.Tensor1D, p.bias as tf.Tensor1D, s.activation);
          bnStats.push({ index: s.index, mean: r.mean, variance: r.variance });
          return r.y;
        }
        const [b, h, w] = y.shape;
        const n = b * h * w;
        const mean = tf.mean(y, [0, 1, 2]) as tf.Tensor1D;
        const d = tf.sub(y, mean);
        const variance = tf.div(tf.sum(tf.square(d), [0, 1, 2]), Math.max(1, n - 1)) as tf.Tensor1D;
        bnStats.push({ index: s.index, mean, variance });
        y = tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(variance, BN_EPS))), p.gamma), p.bias);
      } else {
        const inv = new Float32Array(s.filters);
        const rv = p.rollingVariance!, rm = p.rollingMean!;
        const shift = new Float32Array(s.filters);
        for (let k = 0; k < s.filters; k++) { inv[k] = 1 / Math.sqrt(rv[k] + BN_EPS); shift[k] = -rm[k] * inv[k]; }
        // γ·(y·inv + shift) + β folded into one scale and one shift
        const scale = tf.mul(p.gamma, tf.tensor1d(inv));
        const offset = tf.add(tf.mul(p.gamma, tf.tensor1d(shift)), p.bias);
        y = tf.add(tf.mul(y, scale), offset);
      }
    } else {
      y = tf.add(y, p.bias);
    }
    return activation(y, s.activation) as tf.Tensor4D;
  }

  /** rolling = .99·rolling + .01·batch statistic (darknet). Disposes the statistics. */
  updateRollingStats(stats: ForwardResult['bnStats'], momentum = 0.99): void {
    for (const st of stats) {
      const p = this.convs.get(st.index)!;
      const m = st.mean.dataSync();
      const v = st.variance.dataSync();
      const rm = p.rollingMean!, rv = p.rollingVariance!;
      for (let k = 0; k < rm.length; k++) {
        rm[k] = momentum * rm[k] + (1 - momentum) * m[k];
        rv[k] = momentum * rv[k] + (1 - momentum) * v[k];
      }
      st.mean.dispose();
      st.variance.dispose();
    }
  }

  /** Decoded head outputs like the ONNX model's yolo_<i>: [B, H·W·A, 5+C] rows per head. */
  decode(heads: tf.Tensor4D[]): { data: Float32Array; rows: number; batch: number; classes: number }[] {
    return heads.map((t, h) => decodeHead(t.dataSync() as Float32Array, t.shape, this.spec.heads[h]));
  }

  /** Current parameters as darknet weights (fresh arrays), `seen` as given. */
  toWeights(seen: bigint = this.header.seen): ModelWeights {
    const layers = new Map<number, LayerWeights>();
    for (const [index, p] of this.convs) {
      const s = p.spec;
      const cin = s.in[0];
      const weights = fromTfKernel(p.kernel.dataSync() as Float32Array, s.filters, cin / s.groups, s.size, p.depthwise, cin);
      const lw: LayerWeights = { index, offset: 0, biases: Float32Array.from(p.bias.dataSync()), weights };
      if (p.gamma) {
        lw.scales = Float32Array.from(p.gamma.dataSync());
        lw.rollingMean = Float32Array.from(p.rollingMean!);
        lw.rollingVariance = Float32Array.from(p.rollingVariance!);
      }
      layers.set(index, lw);
    }
    for (const l of this.spec.layers) {
      if (l.kind === 'batchnorm') {
        layers.set(l.index, { index: l.index, offset: 0, biases: Float32Array.from(l.biases), scales: Float32Array.from(l.bn.scales), rollingMean: Float32Array.from(l.bn.mean), rollingVariance: Float32Array.from(l.bn.variance), weights: new Float32Array(0) });
      }
    }
    const header: WeightsHeader = { major: 0, minor: 2, revision: 5, seen, headerBytes: 20 };
    if (this.header.headerBytes === 20 || this.header.major * 10 + this.header.minor >= 2) Object.assign(header, { major: this.header.major, minor: this.header.minor, revision: this.header.revision });
    return { header, layers, loadedLayers: this.graph.layers.length, bytes: 0 };
  }

  /** Loads parameters (e.g. from a checkpoint) into the variables. */
  assign(weights: ModelWeights): void {
    for (const [index, p] of this.convs) {
      const lw = weights.layers.get(index);
      if (!lw) throw new Error(`checkpoint has no weights for layer ${index}`);
      const s = p.spec;
      const cin = s.in[0];
      p.kernel.assign(tf.tensor(toTfKernel(lw.weights, s.filters, cin / s.groups, s.size, p.depthwise, cin), p.kernel.shape));
      p.bias.assign(tf.tensor1d(Float32Array.from(lw.biases)));
      if (p.gamma && lw.scales) {
        p.gamma.assign(tf.tensor1d(Float32Array.from(lw.scales)));
        p.rollingMean = Float32Array.from(lw.rollingMean!);
        p.rollingVariance = Float32Array.from(lw.rollingVariance!);
      }
    }
    this.header = { ...weights.header };
  }

  dispose(): void {
    for (const p of this.convs.values()) {
      p.kernel.dispose(); p.bias.dispose(); p.gamma?.dispose();
    }
    for (const b of this.bnLayers.values()) { b.scale.dispose(); b.shift.dispose(); }
  }
}

/** Decodes one raw NHWC head exactly as the ONNX exporter's yolo output (see core/onnx/export.ts). */
export function decodeHead(raw: Float32Array, shape: number[], head: YoloSpec): { data: Float32Array; rows: number; batch: number; classes: number } {
  const [b, h, w] = shape;
  const A = head.anchors.length / 2;
  const C = head.classes;
  const per = 5 + C;
  const rows = h * w * A;
  const out = new Float32Array(b * rows * per);
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const s = head.scaleXY;
  for (let bi = 0; bi < b; bi++) {
    for (let cell = 0; cell < h * w; cell++) {
      const cx = cell % w, cy = Math.floor(cell / w);
      for (let a = 0; a < A; a++) {
        const src = ((bi * h * w + cell) * A + a) * per;
        const dst = src;
        let tx = raw[src], ty = raw[src + 1];
        if (!head.newCoords) { tx = sig(tx); ty = sig(ty); }
        if (s !== 1) { tx = tx * s - 0.5 * (s - 1); ty = ty * s - 0.5 * (s - 1); }
        out[dst] = (tx + cx) / w;
        out[dst + 1] = (ty + cy) / h;
        const tw = raw[src + 2], th = raw[src + 3];
        out[dst + 2] = (head.newCoords ? tw * tw * 4 : Math.exp(tw)) * head.anchors[2 * a] / head.netW;
        out[dst + 3] = (head.newCoords ? th * th * 4 : Math.exp(th)) * head.anchors[2 * a + 1] / head.netH;
        for (let k = 4; k < per; k++) out[dst + k] = head.newCoords ? raw[src + k] : sig(raw[src + k]);
      }
    }
  }
  return { data: out, rows, batch: b, classes: C };
}

/** Planar CHW images → one NHWC Float32Array. */
export function chwToNhwc(images: Float32Array[], w: number, h: number, c = 3): Float32Array {
  const out = new Float32Array(images.length * w * h * c);
  const plane = w * h;
  let o = 0;
  for (const img of images) {
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) out[o++] = img[k * plane + p];
  }
  return out;
}

/**
 * A stride-1 convolution with dilation d, written as tfjs can differentiate it (its conv gradients
 * refuse dilation): the padded input's d×d phases become batch entries (spaceToBatchND), each is
 * convolved with the undilated kernel ('valid'), and batchToSpaceND interleaves the results, as
 * TensorFlow's atrous convolution does. `conv` runs the undilated 'valid' convolution.
 */
export function atrous(x: tf.Tensor4D, pad: number, d: number, size: number, conv: (t: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  const hp = h + 2 * pad;
  const wp = w + 2 * pad;
  // extra rows/columns at the end so that each side divides by d (they reach no kept output)
  const eh = (d - (hp % d)) % d;
  const ew = (d - (wp % d)) % d;
  const xp = tf.pad(x, [[0, 0], [pad, pad + eh], [pad, pad + ew], [0, 0]]);
  const phases = tf.spaceToBatchND(xp, [d, d], [[0, 0], [0, 0]]) as tf.Tensor4D;
  const y = tf.batchToSpaceND(conv(phases), [d, d], [[0, 0], [0, 0]]) as tf.Tensor4D;
  return tf.slice(y, [0, 0, 0, 0], [-1, hp - d * (size - 1), wp - d * (size - 1), -1]);
}
