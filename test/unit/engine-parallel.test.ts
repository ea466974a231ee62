// Data-parallel gradients (core/engine/parallel.ts) against the same computation in this thread:
// one worker = the whole mini-batch's gradient; two workers = each half's mean gradient, averaged
// by size, with the halves' BN statistics combined into the whole mini-batch's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyzeCfg } from '../../core/darknet/graph';
import { selectBackend } from '../../core/engine/backend';
import { headLossConfigs, yoloLoss, type TrainTruth } from '../../core/engine/loss';
import { DarknetModel, rng, variableKey } from '../../core/engine/model';
import { DataParallel } from '../../core/engine/parallel';
import { repoRoot } from '../helpers/root';

// the default model's layers at a small input, 5 images (uneven halves: 3 + 2)
const cfgText = readFileSync(join(repoRoot(), 'core', 'engine', 'models', 'darkslim-tiny.cfg'), 'utf8')
  .replace(/^width=\d+/m, 'width=32').replace(/^height=\d+/m, 'height=32');
const N = 5;

function inThread(model: DarknetModel, x: Float32Array, n: number, truths: TrainTruth[][]): { grads: Map<string, Float32Array>; stats: Map<number, [Float32Array, Float32Array]> } {
  const { width: w, height: h } = model.graph.net;
  const cfgs = headLossConfigs(model.graph, model.spec.heads);
  let stats = new Map<number, [Float32Array, Float32Array]>();
  let out = new Map<string, Float32Array>();
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const f = model.forward(tf.tensor4d(x, [n, h, w, 3]), { training: true });
      stats = new Map(f.bnStats.map((s) => [s.index, [s.mean.dataSync() as Float32Array, s.variance.dataSync() as Float32Array]]));
      return yoloLoss(f.heads, cfgs, truths).loss;
    }, model.variables());
    out = new Map(model.variables().map((v) => [variableKey(v), grads[v.name].dataSync() as Float32Array]));
  });
  return { grads: out, stats };
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let scale = 0, err = 0;
  for (let i = 0; i < b.length; i++) { scale = Math.max(scale, Math.abs(b[i])); err = Math.max(err, Math.abs(a[i] - b[i])); }
  return err / (scale || 1);
}

test('data-parallel gradients equal the in-thread ones (1 and 2 workers)', async () => {
  await selectBackend('wasm');
  const graph = analyzeCfg(cfgText);
  const model = DarknetModel.create(graph, undefined, 3);
  const { width: w, height: h } = graph.net;
  const plane = w * h * 3;
  const r = rng(7);
  const x = Float32Array.from({ length: N * plane }, () => r());
  const truths: TrainTruth[][] = Array.from({ length: N }, (_, i) => [{ classId: i % 4, x: 0.3 + 0.4 * r(), y: 0.3 + 0.4 * r(), w: 0.2 + 0.3 * r(), h: 0.2 + 0.3 * r() }]);

  const whole = inThread(model, x, N, truths);
  const a = inThread(model, x.subarray(0, 3 * plane), 3, truths.slice(0, 3));
  const b = inThread(model, x.subarray(3 * plane), 2, truths.slice(3));

  const one = await DataParallel.create({ cfgText, workers: 1, backend: 'wasm' });
  const two = await DataParallel.create({ cfgText, workers: 2, backend: 'wasm' });
  try {
    const r1 = await one.gradients(model, x, N, truths);
    const r2 = await two.gradients(model, x, N, truths);
    for (const [k, g] of whole.grads) {
      assert.ok(maxRel(r1.grads.get(k)!, g) < 1e-5, `1 worker: ${k} off by ${maxRel(r1.grads.get(k)!, g)}`);
      const expect = g.map((_, i) => (3 * a.grads.get(k)![i] + 2 * b.grads.get(k)![i]) / N);
      assert.ok(maxRel(r2.grads.get(k)!, expect) < 1e-5, `2 workers: ${k} off by ${maxRel(r2.grads.get(k)!, expect)}`);
    }
    // BN statistics: one worker = the whole mini-batch's; two = the halves' statistics (each half
    // is normalised with its own, so deeper layers differ from the whole's) combined exactly
    const check = (label: string, got: Float32Array, want: Float32Array) => assert.ok(maxRel(got, want) < 1e-4, `${label} off by ${maxRel(got, want)}`);
    assert.ok(whole.stats.size > 0);
    assert.equal(r1.bnStats.length, whole.stats.size);
    assert.equal(r2.bnStats.length, whole.stats.size);
    for (const s of r1.bnStats) {
      const [m, v] = whole.stats.get(s.index)!;
      check(`1 worker, layer ${s.index} mean`, s.mean, m);
      check(`1 worker, layer ${s.index} variance`, s.variance, v);
    }
    for (const s of r2.bnStats) {
      const o = graph.layers[s.index].output;
      const na = 3 * o[0] * o[1], nb = 2 * o[0] * o[1];
      const [ma, va] = a.stats.get(s.index)!, [mb, vb] = b.stats.get(s.index)!;
      const m = ma.map((_, c) => (na * ma[c] + nb * mb[c]) / (na + nb));
      const v = va.map((_, c) => ((na - 1) * va[c] + (nb - 1) * vb[c] + na * (ma[c] - m[c]) ** 2 + nb * (mb[c] - m[c]) ** 2) / (na + nb - 1));
      check(`2 workers, layer ${s.index} mean`, s.mean, m);
      check(`2 workers, layer ${s.index} variance`, s.variance, v);
    }
    // the first BN layer sees the raw input: there the split statistics are the whole batch's
    const first = r2.bnStats[0];
    check('2 workers, first layer mean vs whole', first.mean, whole.stats.get(first.index)![0]);
    check('2 workers, first layer variance vs whole', first.variance, whole.stats.get(first.index)![1]);
    assert.ok(r2.parts.total > 0 && Number.isFinite(r2.parts.total));
  } finally {
    await one.close();
    await two.close();
    model.dispose();
  }
});
