// The wasm gradient kernels (core/engine/kernels.ts) against the cpu backend's own gradients, and
// the fused training batch norm kernel against the same math in tf ops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../../core/engine/backend';
import { batchNormActTrain, batchNormActTrainOps } from '../../core/engine/model';
import { Sgd } from '../../core/engine/optimizer';

function rand(shape: number[], seed: number): Float32Array {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s / 2 ** 32 - 0.5; }
  return out;
}

type Explicit = [[number, number], [number, number], [number, number], [number, number]];
interface Case { name: string; x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' | number | Explicit; depthwise: boolean }
const pad1: Explicit = [[0, 0], [1, 1], [1, 1], [0, 0]];

const cases: Case[] = [
  { name: 'conv 3x3 s1 same', x: [2, 9, 7, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same', depthwise: false },
  { name: 'conv 3x3 s2 same', x: [3, 10, 9, 4], f: [3, 3, 4, 5], stride: 2, pad: 'same', depthwise: false },
  { name: 'conv 3x3 s2 valid', x: [2, 11, 8, 2], f: [3, 3, 2, 3], stride: 2, pad: 'valid', depthwise: false },
  { name: 'conv 1x1 s1', x: [2, 5, 5, 6], f: [1, 1, 6, 4], stride: 1, pad: 'valid', depthwise: false },
  { name: 'conv 5x5 pad 2', x: [2, 8, 8, 3], f: [5, 5, 3, 2], stride: 1, pad: 2, depthwise: false },
  // strided convs take the patch-matrix path (im2col / col2im): darknet's explicit padding, odd and even sizes
  { name: 'conv 3x3 s2 pad 1, even size', x: [3, 12, 10, 5], f: [3, 3, 5, 6], stride: 2, pad: pad1, depthwise: false },
  { name: 'conv 3x3 s2 pad 1, odd size', x: [2, 11, 9, 3], f: [3, 3, 3, 4], stride: 2, pad: pad1, depthwise: false },
  { name: 'conv 5x5 s2 pad 2', x: [2, 9, 10, 3], f: [5, 5, 3, 2], stride: 2, pad: 2, depthwise: false },
  { name: 'conv 3x3 s3 valid', x: [2, 10, 11, 2], f: [3, 3, 2, 3], stride: 3, pad: 'valid', depthwise: false },
  { name: 'conv 3x3 s2 pad 1, 8 outputs (patch rows, SIMD tiles)', x: [2, 10, 12, 4], f: [3, 3, 4, 8], stride: 2, pad: pad1, depthwise: false },
  // stride 1 with outputs in fours takes the same patch rows + SIMD tiles on wasm
  { name: 'conv 3x3 s1 pad 1, 8 outputs (patch rows, SIMD tiles)', x: [3, 9, 11, 6], f: [3, 3, 6, 8], stride: 1, pad: pad1, depthwise: false },
  { name: 'conv 5x5 s1 pad 2, 4 outputs', x: [2, 8, 7, 3], f: [5, 5, 3, 4], stride: 1, pad: 2, depthwise: false },
  { name: 'conv 3x3 s1 valid, 12 outputs', x: [2, 7, 9, 5], f: [3, 3, 5, 12], stride: 1, pad: 'valid', depthwise: false },
  { name: 'depthwise 3x3 s1 same', x: [2, 8, 7, 5], f: [3, 3, 5, 1], stride: 1, pad: 'same', depthwise: true },
  { name: 'depthwise 3x3 s2 same', x: [3, 9, 10, 4], f: [3, 3, 4, 1], stride: 2, pad: 'same', depthwise: true },
  { name: 'depthwise 3x3 s2 valid', x: [2, 10, 9, 3], f: [3, 3, 3, 1], stride: 2, pad: 'valid', depthwise: true },
  { name: 'depthwise 3x3 multiplier 2', x: [2, 7, 7, 3], f: [3, 3, 3, 2], stride: 1, pad: 'same', depthwise: true },
  // the model's explicit padding (model.ts), the 3x3 fast path with several channels and images
  { name: 'depthwise 3x3 s1 pad 1, 4 images', x: [4, 9, 11, 8], f: [3, 3, 8, 1], stride: 1, pad: pad1, depthwise: true },
  { name: 'depthwise 3x3 s2 pad 1, even size', x: [3, 12, 10, 6], f: [3, 3, 6, 1], stride: 2, pad: pad1, depthwise: true },
  { name: 'depthwise 3x3 s2 pad 1, odd size', x: [2, 11, 9, 5], f: [3, 3, 5, 1], stride: 2, pad: pad1, depthwise: true },
  { name: 'depthwise 3x3 s1 valid', x: [2, 7, 8, 4], f: [3, 3, 4, 1], stride: 1, pad: 'valid', depthwise: true },
  { name: 'depthwise 5x5 s1 pad 2', x: [2, 8, 9, 7], f: [5, 5, 7, 1], stride: 1, pad: 2, depthwise: true },
  { name: 'depthwise 5x5 s2 pad 2', x: [2, 9, 9, 3], f: [5, 5, 3, 1], stride: 2, pad: 2, depthwise: true },
  // channels in fours: the SIMD depthwise filter gradient (train-kernels.wat)
  { name: 'depthwise 5x5 s2 pad 2, 8 channels', x: [2, 11, 9, 8], f: [5, 5, 8, 1], stride: 2, pad: 2, depthwise: true },
  { name: 'depthwise 3x3 s2 pad 1, 12 channels, odd size', x: [3, 13, 11, 12], f: [3, 3, 12, 1], stride: 2, pad: pad1, depthwise: true },
  { name: 'depthwise 3x3 s1 valid, 4 channels', x: [2, 6, 7, 4], f: [3, 3, 4, 1], stride: 1, pad: 'valid', depthwise: true },
  // 1x1 filter gradient: both operand orders (fewer input or fewer output channels)
  { name: 'conv 1x1 fewer inputs', x: [3, 6, 5, 2], f: [1, 1, 2, 7], stride: 1, pad: 'valid', depthwise: false },
  { name: 'conv 1x1 fewer outputs', x: [3, 6, 5, 9], f: [1, 1, 9, 3], stride: 1, pad: 'valid', depthwise: false },
  // channels in fours: the SIMD 1×1 filter gradient (train-kernels.wat), several blocks of 256 pixels
  { name: 'conv 1x1 SIMD tiles', x: [4, 20, 18, 8], f: [1, 1, 8, 12], stride: 1, pad: 'valid', depthwise: false },
  { name: 'conv 1x1 SIMD, one tile row', x: [2, 7, 9, 16], f: [1, 1, 16, 4], stride: 1, pad: 'valid', depthwise: false },
];

function grads(c: Case): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const x = tf.tensor4d(rand(c.x, 1), c.x as [number, number, number, number]);
    const f = tf.tensor4d(rand(c.f, 2), c.f as [number, number, number, number]);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
      const y = c.depthwise
        ? tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same')
        : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same');
      // a non-uniform upstream gradient
      return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
    });
    const [gx, gf] = g([x, f]);
    return [gx.dataSync() as Float32Array, gf.dataSync() as Float32Array];
  });
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return err / (scale || 1);
}

test('wasm conv/depthwise gradient kernels equal the cpu backend', async () => {
  await selectBackend('cpu');
  const ref = cases.map(grads);
  const info = await selectBackend('wasm');
  assert.equal(info.name, 'wasm');
  cases.forEach((c, i) => {
    const [gx, gf] = grads(c);
    assert.ok(maxRel(gx, ref[i][0]) < 1e-5, `${c.name}: input gradient off by ${maxRel(gx, ref[i][0])}`);
    assert.ok(maxRel(gf, ref[i][1]) < 1e-5, `${c.name}: filter gradient off by ${maxRel(gf, ref[i][1])}`);
  });
});

// darknet's maxpool as the model builds it: pad with -1e30 (size-1 in total, more at the end), then
// a 'valid' max pool; stride 1 windows overlap (yolov3-tiny's last maxpool, SPP's 5/9/13)
const poolCases = [
  { x: [2, 12, 12, 6], size: 2, stride: 2 }, { x: [2, 13, 11, 4], size: 2, stride: 1 },
  { x: [2, 9, 9, 5], size: 5, stride: 1 }, { x: [1, 10, 8, 3], size: 3, stride: 2 },
];

function poolGrad(c: (typeof poolCases)[number]): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(rand(c.x, 7), c.x as [number, number, number, number]);
    const g = tf.grad((a: tf.Tensor) => {
      const p = c.size - 1, b = Math.floor(p / 2);
      const xp = tf.pad(a, [[0, 0], [b, p - b], [b, p - b], [0, 0]], -1e30) as tf.Tensor4D;
      const y = tf.maxPool(xp, [c.size, c.size], [c.stride, c.stride], 'valid');
      return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
    });
    return g(x).dataSync() as Float32Array;
  });
}

test('wasm max-pool gradient equals the cpu backend (overlapping windows included)', async () => {
  await selectBackend('cpu');
  const ref = poolCases.map(poolGrad);
  await selectBackend('wasm');
  poolCases.forEach((c, i) => {
    const g = poolGrad(c);
    assert.ok(maxRel(g, ref[i]) < 1e-6, `maxpool ${c.size}/${c.stride} on ${c.x.join('x')}: gradient off by ${maxRel(g, ref[i])}`);
  });
});

const bnCases: { shape: [number, number, number, number]; act: string }[] = [
  { shape: [3, 5, 4, 6], act: 'leaky' },
  { shape: [2, 7, 3, 5], act: 'linear' },
  { shape: [4, 3, 5, 3], act: 'relu' },
  { shape: [2, 1, 3, 4], act: 'leaky' }, // few values per channel (n = 6)
  // wasm's SIMD kernels (train-kernels.wat) sum blocks of ~4096 values: several blocks, with and without tail channels
  { shape: [4, 16, 16, 24], act: 'leaky' },
  { shape: [2, 20, 20, 7], act: 'relu' },
  { shape: [3, 9, 11, 13], act: 'linear' },
];

/** y, batch mean, variance and the gradients (x, γ, β) of a BN+activation under a non-uniform dy. */
function bnRun(fn: typeof batchNormActTrain, shape: [number, number, number, number], act: string, seed: number): Float32Array[] {
  return tf.tidy(() => {
    const C = shape[3];
    // an offset and a scale per channel, so that mean and variance are not trivial
    const x = tf.add(tf.mul(tf.tensor4d(rand(shape, seed), shape), tf.linspace(0.5, 3, C)), tf.linspace(-1, 2, C)) as tf.Tensor4D;
    const gamma = tf.tensor1d(rand([C], seed + 1).map((v) => v + 0.7));
    const beta = tf.tensor1d(rand([C], seed + 2));
    const w = tf.sin(tf.reshape(tf.range(0, x.size), shape));
    let stats: Float32Array[] = [];
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
      const r = fn(a as tf.Tensor4D, b as tf.Tensor1D, c as tf.Tensor1D, act);
      stats = [r.y.dataSync() as Float32Array, r.mean.dataSync() as Float32Array, r.variance.dataSync() as Float32Array];
      return tf.sum(tf.mul(r.y, w));
    });
    const [gx, gg, gb] = g([x, gamma, beta]);
    return [...stats, gx.dataSync() as Float32Array, gg.dataSync() as Float32Array, gb.dataSync() as Float32Array];
  });
}

test('fused batch norm + activation kernel equals the tf-op formulation (wasm and cpu)', async () => {
  await selectBackend('cpu');
  const ref = bnCases.map((c, i) => bnRun(batchNormActTrainOps, c.shape, c.act, 10 + i));
  const cpuKernel = bnCases.map((c, i) => bnRun(batchNormActTrain, c.shape, c.act, 10 + i));
  await selectBackend('wasm');
  const wasmKernel = bnCases.map((c, i) => bnRun(batchNormActTrain, c.shape, c.act, 10 + i));
  const names = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'];
  bnCases.forEach((c, i) => {
    for (const [label, got] of [['cpu', cpuKernel[i]], ['wasm', wasmKernel[i]]] as const) {
      got.forEach((a, k) => {
        const e = maxRel(a, ref[i][k]);
        assert.ok(e < 2e-5, `${label} ${c.act} ${c.shape}: ${names[k]} off by ${e}`);
      });
    }
  });
});

// SGD: the one-call WebAssembly step (wasm) gives the bits of the tfjs ops (the cpu backend, and wasm
// with DARKSLIM_TRAIN_SIMD=0), over sizes with and without a SIMD tail, with and without decay
test('the one-call SGD step equals the tfjs formulation bit for bit, and never writes a shared buffer', async () => {
  const sizes = [1, 3, 4, 37, 1000];
  const run = async (backend: 'wasm' | 'cpu', simd: boolean) => {
    await selectBackend(backend);
    const prev = process.env.DARKSLIM_TRAIN_SIMD;
    if (!simd) process.env.DARKSLIM_TRAIN_SIMD = '0';
    try {
      // variables that own their buffers (the initial tensors disposed), as the model's are
      const vars = sizes.map((n, i) => {
        const t = tf.tensor1d(rand([n], 100 + i));
        const v = tf.variable(t, true, `sgd${backend}${simd}${i}`);
        t.dispose();
        return v;
      });
      const sgd = new Sgd(0.949, 0.0005, new Set(vars.filter((_, i) => i % 2 === 0)));
      for (let step = 0; step < 4; step++) {
        const grads = new Map(vars.map((v, i) => [v, tf.tensor1d(rand([sizes[i]], 200 + 10 * step + i))] as [tf.Variable, tf.Tensor]));
        sgd.apply(grads, 0.001 * (step + 1));
        for (const g of grads.values()) g.dispose();
      }
      const out = { w: vars.map((v) => Array.from(v.dataSync())), vel: [...sgd.state().values()].map((a) => Array.from(a)) };
      sgd.dispose();
      vars.forEach((v) => v.dispose());
      return out;
    } finally {
      if (prev === undefined) delete process.env.DARKSLIM_TRAIN_SIMD; else process.env.DARKSLIM_TRAIN_SIMD = prev;
    }
  };
  const oneCall = await run('wasm', true);
  assert.deepEqual(oneCall, await run('wasm', false));
  assert.deepEqual(oneCall, await run('cpu', false));

  // the weights are never written in place: a tensor that still shares a variable's first buffer
  // keeps its values (and a velocity buffer that is shared takes the tfjs ops)
  await selectBackend('wasm');
  const init = tf.tensor1d([1, 2, 3, 4, 5]);
  const shared = tf.variable(init, true, 'sgdShared');
  const sgd = new Sgd(0.9, 0, new Set());
  for (let k = 0; k < 2; k++) {
    const g = tf.ones([5]);
    sgd.apply(new Map([[shared, g]]), 0.5);
    g.dispose();
  }
  assert.deepEqual(Array.from(init.dataSync()), [1, 2, 3, 4, 5]);
  Array.from(shared.dataSync()).forEach((w, i) => assert.ok(Math.abs(w - (i + 1 - 0.5 - 0.5 * 1.9)) < 1e-6, `w[${i}] = ${w}`));
  tf.dispose([init, shared]);
  sgd.dispose();
});
