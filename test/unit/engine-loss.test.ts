// The [yolo] loss: gradients of the whole tiny network (through BN in training mode, shortcut,
// route, upsample, maxpool) against central finite differences of the loss value, for the mse and
// the IoU-kind box losses; and the assignment rules on hand-made heads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { analyzeCfg } from '../../core/darknet/graph';
import { selectBackend } from '../../core/engine/backend';
import { headLossConfigs, headTargets, yoloLoss, type TrainTruth } from '../../core/engine/loss';
import { DarknetModel, initWeights, rng } from '../../core/engine/model';

function tinyCfg(iouLoss: string, scaleXY = 1, newCoords = false, dilation = 1): string {
  const conv = (f: number, s: number, k: number, act = 'leaky', bn = 1, d = 1) =>
    `[convolutional]\nbatch_normalize=${bn}\nfilters=${f}\nsize=${k}\nstride=${s}\npad=1\ndilation=${d}\nactivation=${act}\n`;
  const yolo = (mask: string) => `[yolo]\nmask=${mask}\nanchors=6,6, 10,12, 14,10, 20,20\nclasses=2\nnum=4\nignore_thresh=1\ntruth_thresh=1\niou_loss=${iouLoss}\niou_normalizer=0.5\ncls_normalizer=1.5\nobj_normalizer=0.8\nscale_x_y=${scaleXY}\n${newCoords ? 'new_coords=1\n' : ''}`;
  // new_coords: the head convs apply the logistic themselves
  const head = newCoords ? 'logistic' : 'linear';
  return `[net]\nwidth=24\nheight=24\nchannels=3\n`
    + conv(6, 1, 3, 'mish') // 0
    + `[maxpool]\nsize=2\nstride=2\n` // 1: 12
    + conv(8, 1, 3, 'leaky', 1, dilation) // 2
    + conv(8, 1, 1, 'swish') // 3
    + `[shortcut]\nfrom=-2\nactivation=linear\n` // 4
    + conv(8, 2, 3) // 5: 6
    + conv(14, 1, 1, head, 0) // 6
    + yolo('2,3') // 7
    + `[route]\nlayers=-3\n` // 8
    + `[upsample]\nstride=2\n` // 9: 12
    + `[route]\nlayers=-1,4\n` // 10
    + conv(8, 1, 3, 'leaky') // 11 (depthwise below needs equal channels)
    + `[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\ngroups=8\ndilation=${dilation}\nactivation=leaky\n` // 12
    + conv(14, 1, 1, head, 0) // 13
    + yolo('0,1'); // 14
}

const TRUTHS: TrainTruth[][] = [
  [{ classId: 0, x: 0.3, y: 0.4, w: 0.3, h: 0.35 }, { classId: 1, x: 0.7, y: 0.62, w: 0.8, h: 0.7 }],
  [{ classId: 1, x: 0.52, y: 0.21, w: 0.25, h: 0.4 }],
];

async function gradientCheck(iouLoss: string, scaleXY = 1, perVariable = 1, newCoords = false, backend: 'cpu' | 'wasm' = 'cpu', dilation = 1): Promise<void> {
  await selectBackend(backend);
  const graph = analyzeCfg(tinyCfg(iouLoss, scaleXY, newCoords, dilation));
  assert.deepEqual(graph.diagnostics.filter((d) => d.severity === 'error'), []);
  const model = DarknetModel.create(graph, initWeights(graph, 7));
  const cfgs = headLossConfigs(graph, model.spec.heads);
  const r = rng(3);
  const input = tf.tensor4d(Float32Array.from({ length: 2 * 24 * 24 * 3 }, () => r()), [2, 24, 24, 3]);
  const lossValue = (): number => tf.tidy(() => yoloLoss(model.forward(input, { training: true }).heads, cfgs, TRUTHS).parts.total);
  const vars = model.variables();
  const { grads, value } = tf.variableGrads(() => yoloLoss(model.forward(input, { training: true }).heads, cfgs, TRUTHS).loss, vars);
  value.dispose();
  // a few entries of kernels, γ and biases across the network
  const picks: [tf.Variable, number][] = [];
  for (const v of vars) for (let k = 0; k < perVariable; k++) picks.push([v, Math.floor(r() * v.size)]);
  const errs: number[] = [];
  const eps = Number(process.env.GC_EPS ?? 5e-4);
  for (const [v, i] of picks) {
    const data = Float32Array.from(v.dataSync());
    const orig = data[i];
    data[i] = orig + eps; v.assign(tf.tensor(data, v.shape));
    const up = lossValue();
    data[i] = orig - eps; v.assign(tf.tensor(data, v.shape));
    const down = lossValue();
    data[i] = orig; v.assign(tf.tensor(data, v.shape));
    const numeric = (up - down) / (2 * eps);
    const analytic = grads[v.name].dataSync()[i];
    const err = Math.abs(numeric - analytic) / Math.max(1e-2, Math.abs(numeric) + Math.abs(analytic));
    errs.push(err);
    if (process.env.GC_DEBUG) console.log(v.name, i, analytic, numeric, err);
    // leaky/maxpool/intersection kinks near the first layers make single differences noisy
    assert.ok(process.env.GC_DEBUG || err < 5e-2, `${iouLoss}: ${v.name}[${i}] analytic ${analytic} vs numeric ${numeric}`);
  }
  const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
  assert.ok(mean < 5e-3, `${iouLoss}: mean relative error ${mean}`);
  tf.dispose(grads);
  model.dispose();
  input.dispose();
}

test('gradient check: mse box loss (finite differences through the whole net)', async () => {
  await gradientCheck('mse', 1, 2);
});

test('gradient check: mse with scale_x_y=1.1', async () => {
  await gradientCheck('mse', 1.1);
});

test('gradient check: ciou box loss', async () => {
  await gradientCheck('ciou');
});

test('gradient check: giou box loss', async () => {
  await gradientCheck('giou');
});

test('gradient check on the wasm backend (its fused batch norm, conv, depthwise and max-pool gradient kernels)', async () => {
  await gradientCheck('mse', 1, 2, false, 'wasm');
  await gradientCheck('ciou', 2, 1, true, 'wasm');
});

test('gradient check: dilated convs (dilation 2, a plain and a depthwise one), cpu and wasm', async () => {
  await gradientCheck('mse', 1, 2, false, 'cpu', 2);
  await gradientCheck('mse', 1, 2, false, 'wasm', 2);
});

test('gradient check: new_coords=1 (logistic head convs, (2p)² boxes), mse and ciou, scale_x_y=2', async () => {
  await gradientCheck('mse', 2, 1, true);
  await gradientCheck('ciou', 2, 1, true);
});

test('assignment: the best anchor over all heads gets the truth; ignore_thresh spares good boxes', () => {
  const cfg = {
    index: 0, classes: 2, allAnchors: [6, 6, 10, 12, 14, 10, 20, 20], mask: [2, 3], scaleXY: 1, ignoreThresh: 0.5, truthThresh: 1,
    iouThresh: 1, iouNormalizer: 1, clsNormalizer: 1, objNormalizer: 1, iouLoss: 'mse' as const, newCoords: false, netW: 24, netH: 24,
  };
  const H = 4, W = 4, A = 2, per = 7;
  const raw = new Float32Array(H * W * A * per);
  // a box of 20x20 px at cell (1,2) matches anchor 3 (mask index 1)
  const t: TrainTruth = { classId: 1, x: (1 + 0.5) / 4, y: (2 + 0.5) / 4, w: 20 / 24, h: 20 / 24 };
  const r1 = headTargets(raw, [1, H, W, A * per], cfg, [[t]]);
  assert.equal(r1.parts.count, 1);
  const cell = ((2 * W + 1) * A + 1) * per;
  assert.ok(r1.grad[cell + 4] < 0, 'objectness pushed up at the assigned anchor');
  assert.ok(r1.grad[cell + 5] > 0 && r1.grad[cell + 6] < 0, 'class 1 pushed up, class 0 down');
  // objState (what a distillation hook sees): 2 at the assigned row only
  assert.equal(r1.objState[cell / per], 2);
  assert.equal([...r1.objState].filter((v) => v === 2).length, 1);
  // a 6x6 box belongs to anchor 0, which this head does not hold: nothing assigned here
  const r2 = headTargets(raw, [1, H, W, A * per], cfg, [[{ classId: 0, x: 0.5, y: 0.5, w: 6 / 24, h: 6 / 24 }]]);
  assert.equal(r2.parts.count, 0);
  // every other cell is a negative (σ(0) = .5 objectness, no class above .25 is needed for ignore)
  const negatives = [...Array(H * W * A).keys()].filter((c) => r2.grad[c * per + 4] > 0).length;
  assert.equal(negatives, H * W * A);
  // a prediction that matches the truth well is ignored (no objectness gradient)
  const raw3 = new Float32Array(raw);
  raw3[cell + 2] = 0; raw3[cell + 3] = 0; // exp(0)*20/24 = the truth's size, centre at σ(0)=.5
  const r3 = headTargets(raw3, [1, H, W, A * per], cfg, [[{ ...t, classId: 0 }]]);
  const neighbour = ((2 * W + 1) * A + 0) * per; // anchor 2 (14x10) in the same cell: IoU 0.35 < .5
  assert.ok(r3.grad[neighbour + 4] > 0);
  assert.equal(r3.objState[neighbour / per], 0);
});

test('new_coords=1: the head holds probabilities; a prediction equal to the truth has no box gradient', () => {
  const cfg = {
    index: 0, classes: 1, allAnchors: [8, 8, 16, 16], mask: [0, 1], scaleXY: 2, ignoreThresh: 0.7, truthThresh: 1,
    iouThresh: 1, iouNormalizer: 1, clsNormalizer: 1, objNormalizer: 1, iouLoss: 'mse' as const, newCoords: true, netW: 32, netH: 32,
  };
  const H = 4, W = 4, A = 2, per = 6;
  const raw = new Float32Array(H * W * A * per).fill(0.5);
  // a 16x12 px box centred in cell (2,1) + (0.25, 0.75) goes to anchor 1 (16x16)
  const t: TrainTruth = { classId: 0, x: (2 + 0.25) / 4, y: (1 + 0.75) / 4, w: 16 / 32, h: 12 / 32 };
  const cell = ((1 * W + 2) * A + 1) * per;
  // offset = 2p - 0.5 → p = (offset + 0.5) / 2; size = 4p²·anchor → p = sqrt(size / (4·anchor))
  raw[cell] = (0.25 + 0.5) / 2; raw[cell + 1] = (0.75 + 0.5) / 2;
  raw[cell + 2] = Math.sqrt(16 / (4 * 16)); raw[cell + 3] = Math.sqrt(12 / (4 * 16));
  raw[cell + 4] = 0.9; raw[cell + 5] = 0.2;
  const r = headTargets(raw, [1, H, W, A * per], cfg, [[t]]);
  assert.equal(r.parts.count, 1);
  assert.ok(Math.abs(r.parts.avgIou - 1) < 1e-6, `IoU ${r.parts.avgIou}`);
  for (let k = 0; k < 4; k++) assert.ok(Math.abs(r.grad[cell + k]) < 1e-7, `box entry ${k}: ${r.grad[cell + k]}`);
  // objectness and class: p - target, not σ(p) - target
  assert.ok(Math.abs(r.grad[cell + 4] - (0.9 - 1)) < 1e-6, `objectness ${r.grad[cell + 4]}`);
  assert.ok(Math.abs(r.grad[cell + 5] - (0.2 - 1)) < 1e-6, `class ${r.grad[cell + 5]}`);
  // a negative cell: p = 0.5 → gradient 0.5
  assert.ok(Math.abs(r.grad[4] - 0.5) < 1e-6);
});
