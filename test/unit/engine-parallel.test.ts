// Data-parallel gradients (core/engine/parallel.ts) against the same computation in this thread:
// one worker = the whole mini-batch's gradient; two workers = each half's mean gradient, averaged
// by size, with the halves' BN statistics combined into the whole mini-batch's. Then train() with
// workers: 2 against workers: 1, and the worker threads' shutdown on cancel and on error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyzeCfg } from '../../core/darknet/graph';
import { selectBackend } from '../../core/engine/backend';
import { headLossConfigs, yoloLoss, type TrainTruth } from '../../core/engine/loss';
import { DarknetModel, rng, variableKey } from '../../core/engine/model';
import { DataParallel } from '../../core/engine/parallel';
import { generateSyntheticDataset } from '../../core/data/synthetic';
import { readWeights } from '../../core/darknet/weights';
import { train } from '../../core/engine/trainer';
import type { TaskEvent } from '../../core/pipeline/events';
import { STEP_SCHEDULE, tinyDetectorCfg, TWO_SHAPES } from '../helpers/tiny-cfg';
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

// ---- train({ workers }) ----
// A small BN model on 64x64 synthetic shapes; 16 training images, batch 8.
const TRAIN_CFG = tinyDetectorCfg({
  net: { batch: 8, subdivisions: 1, ...STEP_SCHEDULE }, width: 64, height: 64,
  layers: [{ filters: 8, stride: 2 }, { filters: 16, stride: 2 }, { filters: 32, stride: 2 }],
  classes: 2, anchors: [[16, 16], [24, 24], [32, 32]], yolo: { jitter: '.1', ignore_thresh: '.6' },
});

let dir = '';
let data = '';
let cfg = '';

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'darkslim-par-'));
  const ds = await generateSyntheticDataset({
    outDir: join(dir, 'shapes'), seed: 9, train: 16, valid: 8, ...TWO_SHAPES,
  });
  data = ds.dataFile;
  cfg = join(dir, 'par.cfg');
  writeFileSync(cfg, TRAIN_CFG);
});
test.after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const lossesOf = (events: TaskEvent[]) => events.flatMap((e) => (e.type === 'metrics' ? [e.values.loss] : []));

test('train() with 2 workers: same losses as 1 worker with shard-sized subdivisions; the loss falls; checkpoints', async () => {
  // 2 workers × 4 images per mini-batch = in-thread subdivisions of 4 images: same shuffle, same
  // augmentation, same BN statistics per group of 4, same mean gradient → the same trajectory
  const common = { cfg, data, maxBatches: 6, evalEvery: 0, backend: 'wasm' as const, learningRate: 0.02, seed: 3 };
  const ev1: TaskEvent[] = [], ev2: TaskEvent[] = [];
  const r1 = await train({ ...common, outDir: join(dir, 'w1'), subdivisions: 2, onEvent: (e) => ev1.push(e) });
  const r2 = await train({ ...common, outDir: join(dir, 'w2'), workers: 2, onEvent: (e) => ev2.push(e) });
  const l1 = lossesOf(ev1), l2 = lossesOf(ev2);
  assert.equal(l1.length, 6);
  assert.equal(l2.length, 6);
  // (measured: bit-identical on wasm; the tolerances leave room for summation order elsewhere)
  assert.ok(Math.abs(l1[0] - l2[0]) <= 1e-6 * Math.abs(l1[0]), `first-step loss: 1 worker ${l1[0]}, 2 workers ${l2[0]}`);
  for (let i = 1; i < 6; i++) assert.ok(Math.abs(l1[i] - l2[i]) <= 1e-3 * Math.abs(l1[i]), `step ${i + 1} loss: ${l1[i]} vs ${l2[i]}`);
  assert.ok(l2[5] < l2[0], `loss with 2 workers did not fall: ${l2.join(', ')}`);
  const start = ev2.find((e) => e.type === 'start') as { info: Record<string, unknown> };
  assert.equal(start.info.workers, 2);
  assert.ok(ev2.some((e) => e.type === 'log' && /2 worker threads/.test(e.message)));
  // checkpoints: last (each epoch) and final, whole, with `seen`
  assert.equal(r2.iterations, 6);
  for (const p of [r2.outputs.last, r2.outputs.final]) {
    const w = readWeights(readFileSync(p), analyzeCfg(TRAIN_CFG));
    assert.ok(w.check.ok, w.check.message);
    assert.equal(w.weights.header.seen, 48n);
  }
  assert.ok(existsSync(join(dir, 'w2', 'par_state.json')));
  assert.deepEqual(readdirSync(join(dir, 'w2')).filter((f) => f.endsWith('.tmp')), []);
  // the same trained parameters as the in-thread run. The rolling BN statistics differ by design:
  // in-thread they are updated per subdivision, with workers once per mini-batch (combined stats)
  const graph = analyzeCfg(TRAIN_CFG);
  const wa = readWeights(readFileSync(r1.outputs.final), graph).weights, wb = readWeights(readFileSync(r2.outputs.final), graph).weights;
  for (const [i, la] of wa.layers) {
    const lb = wb.layers.get(i)!;
    assert.ok(maxRel(lb.weights, la.weights) < 1e-4 && maxRel(lb.biases, la.biases) < 1e-4, `layer ${i}: weights differ`);
    if (la.scales) assert.ok(maxRel(lb.scales!, la.scales) < 1e-4, `layer ${i}: BN scales differ`);
  }
});

test('train(): workers with distillation is refused, before anything starts', async () => {
  await assert.rejects(
    train({ cfg, data, outDir: join(dir, 'wd'), maxBatches: 1, backend: 'wasm', workers: 2, distill: { teacherCfg: cfg, teacherWeights: join(dir, 'none.weights') } }),
    /distillation runs in one thread: workers 2/,
  );
  await assert.rejects(train({ cfg, data, outDir: join(dir, 'wz'), maxBatches: 1, workers: 0 }), /workers must be a whole number/);
});

test('worker threads are closed on cancel and on error: the process exits by itself', () => {
  // in a child process: if a worker thread were left running, the child would never exit
  const script = join(dir, 'child.ts');
  writeFileSync(script, `
import { train } from ${JSON.stringify(join(repoRoot(), 'core', 'engine', 'trainer'))};
(async () => {
  const ctl = new AbortController();
  const c = await train({ cfg: ${JSON.stringify(cfg)}, data: ${JSON.stringify(data)}, outDir: ${JSON.stringify(join(dir, 'cancel'))}, maxBatches: 20, evalEvery: 0,
    backend: 'wasm', workers: 2, signal: ctl.signal, onEvent: (e) => { if (e.type === 'progress' && e.done === 2) ctl.abort(); } });
  console.log('cancelled', c.cancelled, c.iterations);
  try {
    // a learning rate that makes the loss diverge: train() throws inside the loop
    await train({ cfg: ${JSON.stringify(cfg)}, data: ${JSON.stringify(data)}, outDir: ${JSON.stringify(join(dir, 'nan'))}, maxBatches: 20, evalEvery: 0,
      backend: 'wasm', workers: 2, learningRate: 1e12, burnIn: 0, checkpoints: false });
    console.log('no error');
  } catch (e) { console.log('error', (e as Error).message.split(':')[0]); }
})();
`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot(), encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.signal, null, `the child did not exit by itself (worker threads left?)\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /cancelled true 2/);
  assert.match(r.stdout, /error the loss became/);
});
