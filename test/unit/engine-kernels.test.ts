// The wasm gradient kernels (core/engine/kernels.ts) against the cpu backend's own gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../../core/engine/backend';

function rand(shape: number[], seed: number): Float32Array {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s / 2 ** 32 - 0.5; }
  return out;
}

interface Case { name: string; x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' | number; depthwise: boolean }

const cases: Case[] = [
  { name: 'conv 3x3 s1 same', x: [2, 9, 7, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same', depthwise: false },
  { name: 'conv 3x3 s2 same', x: [3, 10, 9, 4], f: [3, 3, 4, 5], stride: 2, pad: 'same', depthwise: false },
  { name: 'conv 3x3 s2 valid', x: [2, 11, 8, 2], f: [3, 3, 2, 3], stride: 2, pad: 'valid', depthwise: false },
  { name: 'conv 1x1 s1', x: [2, 5, 5, 6], f: [1, 1, 6, 4], stride: 1, pad: 'valid', depthwise: false },
  { name: 'conv 5x5 pad 2', x: [2, 8, 8, 3], f: [5, 5, 3, 2], stride: 1, pad: 2, depthwise: false },
  { name: 'depthwise 3x3 s1 same', x: [2, 8, 7, 5], f: [3, 3, 5, 1], stride: 1, pad: 'same', depthwise: true },
  { name: 'depthwise 3x3 s2 same', x: [3, 9, 10, 4], f: [3, 3, 4, 1], stride: 2, pad: 'same', depthwise: true },
  { name: 'depthwise 3x3 s2 valid', x: [2, 10, 9, 3], f: [3, 3, 3, 1], stride: 2, pad: 'valid', depthwise: true },
  { name: 'depthwise 3x3 multiplier 2', x: [2, 7, 7, 3], f: [3, 3, 3, 2], stride: 1, pad: 'same', depthwise: true },
];

function grads(c: Case): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const x = tf.tensor4d(rand(c.x, 1), c.x as [number, number, number, number]);
    const f = tf.tensor4d(rand(c.f, 2), c.f as [number, number, number, number]);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
      const y = c.depthwise
        ? tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad)
        : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
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
