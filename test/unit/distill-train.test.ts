// Distillation inside the trainer (core/engine/trainer.ts `distill`) and `darkslim distill`: a tiny
// teacher trained here, a narrower student with the same head; the loss falls, the distillation
// parts are reported, teacher = student gives a zero Hinton gradient, mismatched heads are refused,
// the CLI runs end to end and SIGINT cancels it cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../cli/main';
import { analyzeCfg } from '../../core/darknet/graph';
import { readWeights, writeWeights } from '../../core/darknet/weights';
import { generateSyntheticDataset } from '../../core/data/synthetic';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../core/engine/backend';
import { headTargets, yoloLoss, type HeadLossConfig, type IouLoss } from '../../core/engine/loss';
import { initWeights } from '../../core/engine/model';
import { distill, train } from '../../core/engine/trainer';
import { parseEventLine, type TaskEvent } from '../../core/pipeline/events';
import { repoRoot } from '../helpers/root';
import { TWO_SHAPES } from '../helpers/tiny-cfg';

/** A tiny detector; `w` scales the widths, `bn` turns batch norm on, one [yolo] head of `classes`. */
function cfgText(o: { w?: number; bn?: boolean; classes?: number; size?: number; decay?: number; newCoords?: boolean } = {}): string {
  const w = o.w ?? 1, bn = o.bn ?? true, classes = o.classes ?? 2, size = o.size ?? 64;
  const conv = (filters: number, k: number, stride: number) => `[convolutional]\n${bn ? 'batch_normalize=1\n' : ''}filters=${filters}\nsize=${k}\nstride=${stride}\npad=1\nactivation=leaky\n`;
  return `[net]
batch=8
subdivisions=2
width=${size}
height=${size}
channels=3
momentum=0.9
decay=${o.decay ?? 0.0005}
learning_rate=0.01
burn_in=0
max_batches=100
policy=steps
steps=80
scales=.1
flip=1
hue=.05
saturation=1.3
exposure=1.3

${conv(8 * w, 3, 2)}
${conv(16 * w, 3, 2)}
${conv(8 * w, 1, 1)}
${conv(16 * w, 3, 1)}
[shortcut]
from=-3
activation=linear

${conv(32 * w, 3, 2)}
[convolutional]
size=1
stride=1
pad=1
filters=${3 * (5 + classes)}
activation=${o.newCoords ? 'logistic' : 'linear'}

[yolo]
mask=0,1,2
anchors=16,16, 24,24, 32,32
classes=${classes}
num=3
jitter=.1
ignore_thresh=.6
iou_normalizer=0.75
${o.newCoords ? 'new_coords=1\n' : ''}`;
}

let dir = '';
let data = '';
let teacherCfg = '', teacherW = '';
let studentCfg = '', studentW = '';

/** Writes a cfg and freshly initialised weights for it. */
function model(name: string, text: string, seed = 3): { cfg: string; weights: string } {
  const cfg = join(dir, `${name}.cfg`);
  const weights = join(dir, `${name}.weights`);
  writeFileSync(cfg, text);
  writeFileSync(weights, writeWeights(analyzeCfg(text), initWeights(analyzeCfg(text), seed)));
  return { cfg, weights };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'darkslim-distill-'));
  const ds = await generateSyntheticDataset({
    outDir: join(dir, 'shapes'), seed: 5, train: 48, valid: 16, ...TWO_SHAPES,
  });
  data = ds.dataFile;
  // the teacher: the full-width model, trained a little
  teacherCfg = join(dir, 'teacher.cfg');
  writeFileSync(teacherCfg, cfgText());
  const r = await train({ cfg: teacherCfg, data, outDir: join(dir, 'teacher'), epochs: 6, backend: 'wasm', checkpoints: false, evalEvery: 0, evalLimit: 0 });
  teacherW = r.outputs.final;
  // the student: half the width, the same head
  ({ cfg: studentCfg, weights: studentW } = model('student', cfgText({ w: 0.5 })));
});

after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('yoloLoss hook: the head gradient is gtScale·(ground truth) + the hook\'s, the IoU term scaled too', async () => {
  await selectBackend('wasm');
  const shape = [2, 3, 3, 2 * 7];
  const n = shape.reduce((a, b) => a * b, 1);
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 * 2 - 1; };
  const raw = Float32Array.from({ length: n }, rnd);
  const extra = Float32Array.from({ length: n }, rnd);
  const truths = [[{ classId: 1, x: 0.4, y: 0.6, w: 0.3, h: 0.4 }], [{ classId: 0, x: 0.7, y: 0.2, w: 0.5, h: 0.2 }]];
  for (const iouLoss of ['mse', 'ciou'] as IouLoss[]) {
    const cfg: HeadLossConfig = {
      index: 0, classes: 2, allAnchors: [16, 16, 32, 32], mask: [0, 1], scaleXY: 1, ignoreThresh: 0.7, truthThresh: 1, iouThresh: 1,
      iouNormalizer: 0.75, clsNormalizer: 1, objNormalizer: 1, iouLoss, newCoords: false, netW: 64, netH: 64,
    };
    const grad = (hook?: Parameters<typeof yoloLoss>[3]) => tf.tidy(() => tf.grad((h: tf.Tensor) => yoloLoss([h as tf.Tensor4D], [cfg], truths, hook).loss)(tf.tensor4d(raw, shape as [number, number, number, number])).dataSync() as Float32Array);
    const plain = grad();
    const zero = grad(() => ({ grad: new Float32Array(n), gtScale: 0 }));
    const mixed = grad((h, r, sh) => { assert.equal(h, 0); assert.deepEqual(sh, shape); assert.deepEqual(r, raw); return { grad: extra, gtScale: 0.3 }; });
    const gt = headTargets(raw, shape, cfg, truths).grad;
    let worst = 0;
    for (let k = 0; k < n; k++) {
      assert.equal(zero[k], 0, `${iouLoss}: gtScale 0 leaves no gradient`);
      worst = Math.max(worst, Math.abs(mixed[k] - (0.3 * plain[k] + extra[k])));
    }
    assert.ok(worst < 1e-5, `${iouLoss}: worst ${worst}`);
    if (iouLoss === 'ciou') assert.ok(plain.some((g, k) => Math.abs(g - gt[k]) > 1e-4), 'ciou: the IoU term is part of the gradient');
  }
});

const metrics = (events: TaskEvent[]) => events.flatMap((e) => (e.type === 'metrics' ? [e.values] : []));
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('objectness distillation trains the student: task `distill`, the loss falls, the distillation parts are reported', async () => {
  const events: TaskEvent[] = [];
  const out = join(dir, 'obj');
  const r = await distill({
    cfg: studentCfg, weights: studentW, teacher: { cfg: teacherCfg, weights: teacherW }, data, outDir: out, epochs: 5, backend: 'wasm',
    evalEvery: 0, onEvent: (e) => events.push(e),
  });
  assert.equal(r.cancelled, false);
  assert.equal(r.iterations, 30);
  assert.ok(events.every((e) => e.task === 'distill'), 'every event is labelled distill');
  const start = events.find((e) => e.type === 'start');
  assert.ok(start && start.type === 'start');
  assert.equal(start.info.distillMethod, 'objectness');
  assert.equal(start.info.teacherWeights, teacherW);
  const m = metrics(events);
  assert.equal(m.length, 30);
  for (const v of m) {
    for (const k of ['distill', 'distillCls', 'distillBox', 'distillObj', 'distillKept', 'gtLoss']) assert.ok(Number.isFinite(v[k]), `metric ${k}`);
    // objectness method: the ground truth keeps its full weight, the objective is the sum
    assert.ok(Math.abs(v.loss - (v.gtLoss + v.distill)) < 1e-6 * Math.max(1, v.loss));
    assert.ok(Math.abs(v.distill - (v.distillCls + v.distillBox + v.distillObj)) < 1e-6 * Math.max(1, v.distill));
    assert.ok(v.distillKept > 0, 'FM-NMS keeps some teacher predictions');
  }
  const head = avg(m.slice(0, 5).map((v) => v.loss)), tail = avg(m.slice(-5).map((v) => v.loss));
  assert.ok(tail < head * 0.8, `loss ${head} → ${tail}`);
  const dHead = avg(m.slice(0, 5).map((v) => v.distill)), dTail = avg(m.slice(-5).map((v) => v.distill));
  assert.ok(dTail < dHead, `distillation loss ${dHead} → ${dTail}`);
  assert.ok(r.lastDistill && r.firstDistill && r.lastDistill.total > 0);
  // the same checkpoints as training, named after the student
  assert.ok(existsSync(join(out, 'student_final.weights')) && existsSync(join(out, 'student_last.weights')) && existsSync(join(out, 'student_state.json')));
  const done = events.find((e) => e.type === 'done');
  assert.ok(done && done.type === 'done' && typeof done.summary.distillLoss === 'number');
  assert.ok(readWeights(readFileSync(r.outputs.final), analyzeCfg(readFileSync(studentCfg, 'utf8'))).check.ok);
});

test('hinton: the ground truth is weighted 1 − α and the soft-target term is reported on the classes only', async () => {
  const events: TaskEvent[] = [];
  const r = await distill({
    cfg: studentCfg, weights: studentW, teacher: { cfg: teacherCfg, weights: teacherW }, data, outDir: join(dir, 'hinton'), maxBatches: 4, backend: 'wasm',
    method: 'hinton', T: 2, alpha: 0.25, evalEvery: 0, evalLimit: 0, checkpoints: false, onEvent: (e) => events.push(e),
  });
  assert.equal(r.iterations, 4);
  for (const v of metrics(events)) {
    assert.ok(v.distillCls > 0);
    assert.equal(v.distillBox, 0);
    assert.equal(v.distillObj, 0);
    assert.ok(Math.abs(v.loss - (0.75 * v.gtLoss + v.distill)) < 1e-6 * Math.max(1, v.loss));
  }
});

test('teacher = student with identical weights: the Hinton gradient is exactly zero (α = 1 leaves the weights untouched)', async () => {
  // no batch norm (training and inference forward are the same ops) and no weight decay, so any
  // difference between the teacher's and the student's outputs would move the weights
  const text = cfgText({ bn: false, decay: 0 });
  const same = model('same', text, 11);
  const events: TaskEvent[] = [];
  // the teacher on the training engine itself: bit-identical outputs, so exactly zero
  const r = await train({
    cfg: same.cfg, weights: same.weights, data, outDir: join(dir, 'same'), maxBatches: 3, backend: 'wasm', evalEvery: 0, evalLimit: 0,
    distill: { teacherCfg: same.cfg, teacherWeights: same.weights, runtime: 'tfjs', options: { method: 'hinton', T: 3, alpha: 1 } }, onEvent: (e) => events.push(e),
  });
  assert.ok(events.every((e) => e.task === 'distill'));
  for (const v of metrics(events)) {
    assert.equal(v.distill, 0);
    assert.ok(v.gtLoss > 0, 'the ground-truth loss is there but weighted 0');
  }
  const graph = analyzeCfg(text);
  const before = readWeights(readFileSync(same.weights), graph).weights;
  const afterW = readWeights(readFileSync(r.outputs.final), graph).weights;
  for (const [i, lw] of before.layers) {
    assert.deepEqual(afterW.layers.get(i)!.weights, lw.weights, `layer ${i} weights`);
    assert.deepEqual(afterW.layers.get(i)!.biases, lw.biases, `layer ${i} biases`);
  }
  // the default teacher runtime (onnxruntime) agrees with the engine to float rounding
  const events2: TaskEvent[] = [];
  const rOnnx = await distill({
    cfg: same.cfg, weights: same.weights, teacher: { cfg: same.cfg, weights: same.weights }, data, outDir: join(dir, 'same-onnx'), maxBatches: 3, backend: 'wasm',
    method: 'hinton', T: 3, alpha: 1, evalEvery: 0, evalLimit: 0, onEvent: (e) => events2.push(e),
  });
  const start = events2.find((e) => e.type === 'start');
  assert.match(String(start?.type === 'start' && start.info.teacherRuntime), /^onnxruntime/);
  for (const v of metrics(events2)) assert.ok(v.distill < 1e-9, `distillation loss ${v.distill}`);
  const onnxW = readWeights(readFileSync(rOnnx.outputs.final), graph).weights;
  let worst = 0;
  for (const [i, lw] of before.layers) lw.weights.forEach((w, k) => { worst = Math.max(worst, Math.abs(w - onnxW.layers.get(i)!.weights[k])); });
  assert.ok(worst < 1e-5, `weights moved by ${worst}`);
  // with α < 1 the ground truth moves them: the check above can fail
  const r2 = await distill({
    cfg: same.cfg, weights: same.weights, teacher: { cfg: same.cfg, weights: same.weights }, data, outDir: join(dir, 'same2'), maxBatches: 1, backend: 'wasm',
    method: 'hinton', alpha: 0.5, evalEvery: 0, evalLimit: 0,
  });
  const moved = readWeights(readFileSync(r2.outputs.final), graph).weights;
  assert.notDeepEqual(moved.layers.get(0)!.weights, before.layers.get(0)!.weights);
});

test('teacher and student with different heads or input sizes are refused with a clear error', async () => {
  const other = model('teacher3', cfgText({ classes: 3 }));
  const events: TaskEvent[] = [];
  await assert.rejects(
    distill({ cfg: studentCfg, weights: studentW, teacher: other, data, outDir: join(dir, 'bad1'), epochs: 1, backend: 'wasm', onEvent: (e) => events.push(e) }),
    /\[yolo\] head 1 \(teacher layer 7, student layer 7\): the teacher has classes=3, the student classes=2/,
  );
  assert.ok(events.some((e) => e.type === 'error' && e.task === 'distill'));
  assert.ok(!events.some((e) => e.type === 'start'), 'refused before training starts');
  const big = model('teacher96', cfgText({ size: 96 }));
  await assert.rejects(
    distill({ cfg: studentCfg, weights: studentW, teacher: big, data, outDir: join(dir, 'bad2'), epochs: 1, backend: 'wasm' }),
    /takes 96x96x3 input but the student .* 64x64x3/,
  );
  await assert.rejects(
    distill({ cfg: studentCfg, weights: studentW, teacher: { cfg: teacherCfg, weights: join(dir, 'missing.weights') }, data, outDir: join(dir, 'bad3'), epochs: 1, backend: 'wasm' }),
    /teacher weights .*missing\.weights do not exist/,
  );
  await assert.rejects(
    distill({ cfg: studentCfg, weights: studentW, teacher: { cfg: teacherCfg, weights: teacherW }, data, outDir: join(dir, 'bad4'), epochs: 1, backend: 'wasm', method: 'hinton', alpha: 2 }),
    /alpha must be within 0\.\.1/,
  );
  const scaled = model('teacherNC', cfgText({ newCoords: true }));
  await assert.rejects(
    distill({ cfg: studentCfg, weights: studentW, teacher: scaled, data, outDir: join(dir, 'bad5'), epochs: 1, backend: 'wasm' }),
    /new_coords=1 heads \(the teacher's\) are not supported/,
  );
});

test('feature imitation (optional): a 1×1 adapter learns the teacher\'s features, on either teacher runtime', async () => {
  const run = async (runtime: 'onnx' | 'tfjs', iters: number) => {
    const events: TaskEvent[] = [];
    await train({
      cfg: studentCfg, weights: studentW, data, outDir: join(dir, `feat-${runtime}`), maxBatches: iters, backend: 'wasm', evalEvery: 0, evalLimit: 0, checkpoints: false, augment: false,
      distill: { teacherCfg, teacherWeights: teacherW, runtime, options: { method: 'objectness', featureLayers: [5], featureWeight: 2 } }, onEvent: (e) => events.push(e),
    });
    return { m: metrics(events), start: events.find((e) => e.type === 'start') };
  };
  const onnx = await run('onnx', 12);
  assert.ok(onnx.start?.type === 'start' && onnx.start.info.featureLayers === '5');
  for (const v of onnx.m) {
    assert.ok(v.distillFeat > 0);
    assert.ok(Math.abs(v.distill - (v.distillCls + v.distillBox + v.distillObj + v.distillFeat)) < 1e-6 * Math.max(1, v.distill));
  }
  const head = avg(onnx.m.slice(0, 3).map((v) => v.distillFeat)), tail = avg(onnx.m.slice(-3).map((v) => v.distillFeat));
  assert.ok(tail < head, `feature loss ${head} → ${tail}`);
  // the same first step (same data, weights, identity-initialised adapter) on the engine's teacher
  const tfjs = await run('tfjs', 1);
  assert.ok(Math.abs(tfjs.m[0].distillFeat - onnx.m[0].distillFeat) < 1e-4 * onnx.m[0].distillFeat, `${tfjs.m[0].distillFeat} vs ${onnx.m[0].distillFeat}`);
  await assert.rejects(
    train({ cfg: studentCfg, weights: studentW, data, outDir: join(dir, 'feat-bad'), maxBatches: 1, backend: 'wasm', distill: { teacherCfg, teacherWeights: teacherW, options: { featureLayers: [7] } } }),
    /feature imitation layer 7 is a \[yolo\] layer/,
  );
  await assert.rejects(
    train({ cfg: studentCfg, weights: studentW, data, outDir: join(dir, 'feat-bad'), maxBatches: 1, backend: 'wasm', distill: { teacherCfg, teacherWeights: teacherW, options: { featureLayers: [40] } } }),
    /feature imitation layer 40 does not exist in both models/,
  );
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  // only strings: the test runner reports through the same stream in binary chunks, let those pass
  process.stdout.write = ((s: string | Uint8Array, ...rest: unknown[]) => (typeof s === 'string' ? ((out += s), true) : (o as (...a: unknown[]) => boolean)(s, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: unknown[]) => (typeof s === 'string' ? ((err += s), true) : (e as (...a: unknown[]) => boolean)(s, ...rest))) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

test('darkslim distill end to end: --json streams distill events and writes the student', async () => {
  const out = join(dir, 'cli');
  const r = await cli(['distill', '--teacher', teacherCfg, teacherW, '--student', studentCfg, studentW, '--data', data, '--method', 'hinton', '--T', '2', '--alpha', '0.5',
    '--imitate', '5', '--imitate-weight', '0.5', '--epochs', '1', '--out', out, '--backend', 'wasm', '--seed', '4', '--json']);
  assert.equal(r.code, 0, r.err);
  const events = r.out.split('\n').map(parseEventLine).filter((e): e is TaskEvent => !!e);
  assert.ok(events.length > 5 && events.every((e) => e.task === 'distill'));
  const start = events.find((e) => e.type === 'start');
  assert.ok(start?.type === 'start' && start.info.distillMethod === 'hinton' && start.info.T === 2 && start.info.alpha === 0.5, JSON.stringify(start));
  assert.ok(metrics(events).every((v) => v.distill > 0 && v.distillFeat > 0));
  assert.ok(start.info.featureLayers === '5' && start.info.featureWeight === 0.5);
  assert.ok(events.some((e) => e.type === 'eval'), 'mAP at the end');
  assert.ok(existsSync(join(out, 'student_final.weights')));
  // human output: the progress lines and the teacher on stderr, nothing on stdout
  const h = await cli(['distill', '--teacher', teacherCfg, teacherW, '--student', studentCfg, studentW, '--data', data, '--lambda', '0.5', '--gt-first', '--epochs', '1', '--out', join(dir, 'cli2'), '--backend', 'wasm']);
  assert.equal(h.code, 0, h.err);
  assert.equal(h.out, '');
  assert.match(h.err, /method objectness \(lambda 0\.5, FM-NMS radius 1, ground truth first\)/);
  assert.match(h.err, /distillation [\d.]+ \(cls/);
  // usage errors
  const u1 = await cli(['distill', '--teacher', teacherCfg, '--student', studentCfg, studentW, '--data', data]);
  assert.equal(u1.code, 2);
  assert.match(u1.err, /--teacher needs two values/);
  const u2 = await cli(['distill', '--teacher', teacherCfg, teacherW, '--data', data]);
  assert.match(u2.err, /missing --student/);
  const u3 = await cli(['distill', '--teacher', teacherCfg, teacherW, '--student', studentCfg, studentW, '--data', data, '--method', 'soft']);
  assert.equal(u3.code, 2);
  assert.match(u3.err, /method must be hinton or objectness/);
});

test('darkslim distill: SIGINT stops between iterations, exit 130, no final weights', async () => {
  const out = join(dir, 'sigint');
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot(), 'cli', 'main.ts'), 'distill', '--teacher', teacherCfg, teacherW, '--student', studentCfg, studentW,
    '--data', data, '--epochs', '50', '--out', out, '--backend', 'wasm', '--json'], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  let sent = false;
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
    if (!sent && /"type":"progress"/.test(stdout)) { sent = true; child.kill('SIGINT'); }
  });
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.ok(sent, `training started: ${stderr.slice(-2000)}`);
  assert.equal(code, 130);
  const done = stdout.split('\n').map(parseEventLine).find((e) => e?.type === 'done');
  assert.ok(done?.type === 'done' && done.cancelled && done.task === 'distill');
  assert.ok(!existsSync(join(out, 'student_final.weights')));
});
