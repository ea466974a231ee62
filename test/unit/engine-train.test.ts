// Training loop on a tiny synthetic dataset: the loss falls and mAP rises; checkpoints, `seen`,
// cancellation, resuming, sparsity training and the events stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeCfg } from '../../core/darknet/graph';
import { readWeights } from '../../core/darknet/weights';
import { generateSyntheticDataset } from '../../core/data/synthetic';
import { train } from '../../core/engine/trainer';
import type { TaskEvent } from '../../core/pipeline/events';
import { STEP_SCHEDULE, tinyDetectorCfg, TWO_SHAPES } from '../helpers/tiny-cfg';

const CFG = tinyDetectorCfg({
  net: { batch: 8, subdivisions: 2, ...STEP_SCHEDULE, burn_in: 10, flip: 1, hue: '.05', saturation: 1.3, exposure: 1.3 }, width: 64, height: 64,
  layers: [{ filters: 8, stride: 2 }, { filters: 16, stride: 2 }, { filters: 8, size: 1 }, { filters: 16 }, { shortcut: -3 }, { filters: 32, stride: 2 }],
  classes: 2, anchors: [[16, 16], [24, 24], [32, 32]], yolo: { jitter: '.1', ignore_thresh: '.6', iou_normalizer: 0.75 },
});

let dir = '';
let data = '';

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'darkslim-train-'));
  const ds = await generateSyntheticDataset({
    outDir: join(dir, 'shapes'), seed: 5, train: 64, valid: 24, ...TWO_SHAPES,
  });
  data = ds.dataFile;
  require('node:fs').writeFileSync(join(dir, 'tiny.cfg'), CFG);
});

test.after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('training lowers the loss and raises mAP; checkpoints carry `seen`', async () => {
  const events: TaskEvent[] = [];
  const out = join(dir, 'run1');
  const before = await train({ cfg: join(dir, 'tiny.cfg'), data, outDir: join(dir, 'run0'), maxBatches: 1, learningRate: 1e-9, backend: 'wasm', checkpoints: false });
  const r = await train({ cfg: join(dir, 'tiny.cfg'), data, outDir: out, epochs: 16, evalEvery: 8, backend: 'wasm', onEvent: (e) => events.push(e) });
  assert.equal(r.cancelled, false);
  assert.equal(r.iterations, 128);
  const losses = events.filter((e) => e.type === 'metrics').map((e) => (e.type === 'metrics' ? e.values.loss : NaN));
  const head = losses.slice(0, 8).reduce((a, b) => a + b, 0) / 8;
  const tail = losses.slice(-8).reduce((a, b) => a + b, 0) / 8;
  assert.ok(tail < head * 0.7, `loss ${head} → ${tail}`);
  assert.ok((r.map ?? 0) > (before.map ?? 0) + 0.1, `mAP ${before.map} → ${r.map}`);
  const types = new Set(events.map((e) => e.type));
  for (const t of ['start', 'progress', 'metrics', 'gamma', 'eval', 'checkpoint', 'done']) assert.ok(types.has(t as TaskEvent['type']), `no ${t} event`);
  const graph = analyzeCfg(CFG);
  const final = readWeights(readFileSync(r.outputs.final), graph);
  assert.ok(final.check.ok, final.check.message);
  assert.equal(final.weights.header.seen, 128n * 8n);
  assert.ok(existsSync(r.outputs.best) && existsSync(r.outputs.last));
  assert.deepEqual(readdirSync(out).filter((f) => f.endsWith('.tmp')), []);
});

test('cancelling stops between iterations and leaves only complete files', async () => {
  const controller = new AbortController();
  const out = join(dir, 'run2');
  const r = await train({
    cfg: join(dir, 'tiny.cfg'), data, outDir: out, epochs: 5, backend: 'wasm', signal: controller.signal,
    onEvent: (e) => { if (e.type === 'progress' && e.done === 11) controller.abort(); },
  });
  assert.equal(r.cancelled, true);
  assert.equal(r.iterations, 11);
  assert.equal(r.outputs.final, undefined);
  // one epoch (8 iterations) completed: its checkpoint is there and whole
  const last = readWeights(readFileSync(join(out, 'tiny_last.weights')), analyzeCfg(CFG));
  assert.ok(last.check.ok);
  assert.equal(last.weights.header.seen, 64n);
  assert.deepEqual(readdirSync(out).filter((f) => f.endsWith('.tmp')), []);

  // resume continues from the checkpoint (iteration 8) to the end
  const events: TaskEvent[] = [];
  const r2 = await train({ cfg: join(dir, 'tiny.cfg'), data, outDir: out, epochs: 2, resume: true, evalEvery: 0, backend: 'wasm', onEvent: (e) => events.push(e) });
  const start = events.find((e) => e.type === 'start') as { info: Record<string, unknown> };
  assert.equal(start.info.resumedAt, 8);
  assert.equal(r2.iterations, 16);
  const final = readWeights(readFileSync(r2.outputs.final), analyzeCfg(CFG));
  assert.equal(final.weights.header.seen, 128n);
});

test('sparsity training pushes the prunable γ towards zero', async () => {
  // fraction of |γ| below 0.2 (with lr .01, momentum .9 and λ 1 the sign step alone is ±0.1)
  const below01 = (e: TaskEvent) => (e.type === 'gamma' ? e.counts.slice(0, 6).reduce((a, b) => a + b, 0) / e.count : NaN);
  let base = NaN;
  await train({
    cfg: join(dir, 'tiny.cfg'), data, outDir: join(dir, 'run3'), epochs: 4, evalEvery: 0, backend: 'wasm', checkpoints: false, burnIn: 0,
    onEvent: (e) => { if (e.type === 'gamma') base = below01(e); },
  });
  const gammas: { small: number; lambda?: number; count: number }[] = [];
  await train({
    cfg: join(dir, 'tiny.cfg'), data, outDir: join(dir, 'run4'), epochs: 4, evalEvery: 0, backend: 'wasm', checkpoints: false,
    sparsity: { lambda: 1, schedule: 'decay' }, burnIn: 0,
    onEvent: (e) => { if (e.type === 'gamma') gammas.push({ small: below01(e), lambda: e.lambda, count: e.count }); },
  });
  const last = gammas[gammas.length - 1];
  assert.ok(last.count > 0);
  // by half of training (before the decay lets them regrow) most |γ| are small
  const peak = Math.max(...gammas.map((g) => g.small));
  assert.ok(peak > base + 0.5, `fraction of |γ| < 0.2: ${base} without, ${peak} with sparsity`);
  // the decay schedule cuts λ to 1% after half of training
  assert.equal(gammas[0].lambda, 1);
  assert.ok(Math.abs((last.lambda ?? 0) - 0.01) < 1e-9, `λ at the end ${last.lambda}`);
});

test('a new_coords=1 model (logistic head, (2p)² boxes, ciou, scale_x_y 2) trains: the loss falls, boxes fit better', async () => {
  // darknet's new_coords loss is a squared error on probabilities: objectness of the few positives
  // rises slowly (its gradient carries p(1-p)), so a run this short is judged on the loss and the
  // IoU of the assigned boxes, not on mAP
  const cfg = join(dir, 'scaled.cfg');
  require('node:fs').writeFileSync(cfg, tinyDetectorCfg({
    net: { batch: 8, subdivisions: 1, ...STEP_SCHEDULE }, width: 64, height: 64,
    layers: [{ filters: 8, stride: 2 }, { filters: 16, stride: 2 }, { filters: 32, stride: 2 }], headActivation: 'logistic',
    classes: 2, anchors: [[16, 16], [24, 24], [32, 32]],
    yolo: { new_coords: 1, scale_x_y: 2, iou_loss: 'ciou', iou_normalizer: 0.5, ignore_thresh: '.6' },
  }));
  const events: TaskEvent[] = [];
  await train({ cfg, data, outDir: join(dir, 'nc'), epochs: 10, evalEvery: 0, evalLimit: 0, backend: 'wasm', checkpoints: false, onEvent: (e) => events.push(e) });
  const metrics = events.flatMap((e) => (e.type === 'metrics' ? [e.values] : []));
  const mean = (rows: typeof metrics, k: string) => rows.reduce((a, r) => a + (r[k] ?? 0), 0) / rows.length;
  const first = metrics.slice(0, 8), last = metrics.slice(-8);
  assert.ok(mean(last, 'loss') < mean(first, 'loss') * 0.5, `loss ${mean(first, 'loss')} → ${mean(last, 'loss')}`);
  assert.ok(mean(last, 'box') < mean(first, 'box'), `box loss ${mean(first, 'box')} → ${mean(last, 'box')}`);
  assert.ok(mean(last, 'avgIou') > mean(first, 'avgIou') + 0.1, `IoU of the assigned boxes ${mean(first, 'avgIou')} → ${mean(last, 'avgIou')}`);
});

test('mosaic=1 (half the batches 4-image mosaics) trains: the loss falls', async () => {
  const cfg = join(dir, 'tiny-mosaic.cfg');
  require('node:fs').writeFileSync(cfg, CFG.replace('[net]\n', '[net]\nmosaic=1\n'));
  const events: TaskEvent[] = [];
  const r = await train({ cfg, data, outDir: join(dir, 'run-mosaic'), epochs: 8, evalEvery: 0, backend: 'wasm', checkpoints: false, onEvent: (e) => events.push(e) });
  assert.equal(r.iterations, 64);
  const losses = events.filter((e) => e.type === 'metrics').map((e) => (e.type === 'metrics' ? e.values.loss : NaN));
  assert.ok(losses.every(Number.isFinite), 'finite losses');
  const head = losses.slice(0, 8).reduce((a, b) => a + b, 0) / 8;
  const tail = losses.slice(-8).reduce((a, b) => a + b, 0) / 8;
  assert.ok(tail < head * 0.8, `loss ${head} → ${tail}`);
});
