import assert from 'node:assert/strict';
import { test } from 'node:test';
import { distillHead, featureMapNms, type DistillOptions } from '../../core/engine/distill';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const logit = (p: number) => Math.log(p / (1 - p));

/** A head [B=1, H, W, A·(5+C)] filled by a function of (y, x, a, k). */
function head(H: number, W: number, A: number, C: number, f: (y: number, x: number, a: number, k: number) => number): Float32Array {
  const per = 5 + C;
  const out = new Float32Array(H * W * A * per);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let a = 0; a < A; a++) for (let k = 0; k < per; k++) {
    out[((y * W + x) * A + a) * per + k] = f(y, x, a, k);
  }
  return out;
}

test('feature-map NMS keeps the most confident prediction of a class in each 3×3 neighbourhood', () => {
  // 1×5 grid, 2 anchors, 2 classes. Class 0 objects at x=1 (obj .9) and x=2 (obj .6): x=2 is
  // suppressed by x=1. x=4 has class 0 with obj .5 but x=1 is two cells away: kept.
  // x=2 anchor 1 predicts class 1 (obj .8): a different class, kept.
  const objAt: Record<string, [number, number]> = { '1,0': [0.9, 0], '2,0': [0.6, 0], '2,1': [0.8, 1], '4,0': [0.5, 0] };
  const raw = head(1, 5, 2, 2, (_y, x, a, k) => {
    const o = objAt[`${x},${a}`];
    if (k === 4) return logit(o ? o[0] : 0.01);
    if (k === 5) return o && o[1] === 0 ? 3 : -3;
    if (k === 6) return o && o[1] === 1 ? 3 : -3;
    return 0;
  });
  const keep = featureMapNms(raw, [1, 1, 5, 2 * 7], 2, 2, 1);
  const kept = (x: number, a: number) => keep[x * 2 + a];
  assert.equal(kept(1, 0), 1);
  assert.equal(kept(2, 0), 0);
  assert.equal(kept(2, 1), 1);
  assert.equal(kept(4, 0), 1);
  // background predictions near x=1 with class 1 are suppressed by the class-1 object at x=2
  assert.equal(kept(1, 1), 0);
  // radius 0: nothing is compared across cells, only across anchors of the same cell
  const keep0 = featureMapNms(raw, [1, 1, 5, 14], 2, 2, 0);
  assert.equal(keep0[2 * 2 + 0], 1);
});

test('hinton: value and gradient of α·T²·KL on hand-computed logits', () => {
  const opts: DistillOptions = { method: 'hinton', T: 2, alpha: 0.5, lambda: 1, radius: 1 };
  const student = head(1, 1, 1, 2, (_y, _x, _a, k) => (k === 5 ? 1 : k === 6 ? -1 : 0));
  const teacher = head(1, 1, 1, 2, (_y, _x, _a, k) => (k === 5 ? 3 : k === 6 ? -1 : 0));
  const r = distillHead(student, teacher, [1, 1, 1, 7], 1, 2, opts);
  const pt = sigmoid(3 / 2), ps = sigmoid(1 / 2);
  const kl = pt * Math.log(pt / ps) + (1 - pt) * Math.log((1 - pt) / (1 - ps));
  assert.ok(Math.abs(r.parts.cls - 0.5 * 4 * kl) < 1e-9);
  assert.ok(Math.abs(r.grad[5] - 0.5 * 2 * (ps - pt)) < 1e-7);
  assert.equal(r.grad[6], 0); // equal logits: no pull
  assert.equal(r.gtScale, 0.5);
  assert.equal(r.grad[4], 0); // hinton touches class scores only
});

test('objectness-scaled: the terms scale with the teacher objectness, and vanish where FM-NMS suppressed it', () => {
  const opts: DistillOptions = { method: 'objectness', T: 1, alpha: 0, lambda: 2, radius: 1 };
  const teacher = head(1, 1, 1, 1, (_y, _x, _a, k) => [0.5, -0.5, 0.2, 0.1, logit(0.8), logit(0.9)][k]);
  const student = head(1, 1, 1, 1, (_y, _x, _a, k) => [0, 0, 0, 0, 0, 0][k]);
  const r = distillHead(student, teacher, [1, 1, 1, 6], 1, 1, opts);
  assert.equal(r.parts.kept, 1);
  const oT = 0.8;
  // obj: λ·BCE(σ(0)=.5, .8)
  const objKl = oT * Math.log(oT / 0.5) + (1 - oT) * Math.log((1 - oT) / 0.5);
  assert.ok(Math.abs(r.parts.obj - 2 * objKl) < 1e-6);
  assert.ok(Math.abs(r.grad[4] - 2 * (0.5 - oT)) < 1e-6);
  // box: λ·ô·Σ(b_s − b_T)²; x,y through the sigmoid
  const bx = [0.5 - sigmoid(0.5), 0.5 - sigmoid(-0.5), -0.2, -0.1];
  assert.ok(Math.abs(r.parts.box - 2 * oT * bx.reduce((s, d) => s + d * d, 0)) < 1e-6);
  assert.ok(Math.abs(r.grad[2] - 2 * oT * 2 * -0.2) < 1e-6);
  assert.ok(Math.abs(r.grad[0] - 2 * oT * 2 * bx[0] * 0.25) < 1e-6);
  // a suppressed neighbour contributes only the objectness term towards 0
  const teacher2 = head(1, 2, 1, 1, (_y, x, _a, k) => (k === 4 ? logit(x === 0 ? 0.9 : 0.7) : k === 5 ? 2 : 0.3));
  const student2 = head(1, 2, 1, 1, () => 0.1);
  const r2 = distillHead(student2, teacher2, [1, 1, 2, 6], 1, 1, opts);
  assert.equal(r2.parts.kept, 1);
  for (const k of [0, 1, 2, 3, 5]) assert.equal(r2.grad[6 + k], 0, `suppressed cell, channel ${k}`);
  assert.ok(Math.abs(r2.grad[6 + 4] - 2 * sigmoid(0.1)) < 1e-6);
});

test('gtFirst: the cells the ground truth assigns keep their objectness to it; box and class terms stay', () => {
  const opts: DistillOptions = { method: 'objectness', T: 1, alpha: 0, lambda: 2, radius: 1 };
  // two cells: the teacher keeps cell 0 (obj .9); cell 1 is suppressed
  const teacher = head(1, 2, 1, 1, (_y, x, _a, k) => (k === 4 ? logit(x === 0 ? 0.9 : 0.7) : k === 5 ? 2 : 0.3));
  const student = head(1, 2, 1, 1, () => 0.1);
  const all = distillHead(student, teacher, [1, 1, 2, 6], 1, 1, opts, Int8Array.from([2, 0]));
  const gtFirst = distillHead(student, teacher, [1, 1, 2, 6], 1, 1, { ...opts, gtFirst: true }, Int8Array.from([2, 0]));
  assert.ok(all.grad[4] < 0, 'without gtFirst the teacher pulls cell 0 towards .9');
  assert.equal(gtFirst.grad[4], 0, 'with gtFirst the assigned cell has no teacher objectness term');
  for (const k of [0, 1, 2, 3, 5]) assert.equal(gtFirst.grad[k], all.grad[k], `box/class channel ${k} unchanged`);
  assert.equal(gtFirst.grad[6 + 4], all.grad[6 + 4], 'a cell the ground truth does not assign is distilled as before');
  assert.ok(gtFirst.parts.obj < all.parts.obj);
  // an ignored cell (state 1) is not a ground-truth positive: distilled as before
  const ignored = distillHead(student, teacher, [1, 1, 2, 6], 1, 1, { ...opts, gtFirst: true }, Int8Array.from([1, 0]));
  assert.equal(ignored.grad[4], all.grad[4]);
});

test('gradient check: hand gradients equal finite differences of the loss', () => {
  let seed = 3;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 * 4 - 2; };
  const shape = [2, 2, 3, 2 * 8];
  const n = 2 * 2 * 3 * 2 * 8;
  const teacher = Float32Array.from({ length: n }, rnd);
  const student = Float32Array.from({ length: n }, rnd);
  for (const opts of [
    { method: 'hinton', T: 3, alpha: 0.7, lambda: 1, radius: 1 },
    { method: 'objectness', T: 1, alpha: 0, lambda: 1.5, radius: 1 },
  ] as DistillOptions[]) {
    const r = distillHead(student, teacher, shape, 2, 3, opts);
    const f = (s: Float32Array) => distillHead(s, teacher, shape, 2, 3, opts).parts.total;
    let worst = 0;
    for (let i = 0; i < n; i += 3) {
      const h = 1e-3;
      const plus = Float64Array.from(student); plus[i] += h;
      const minus = Float64Array.from(student); minus[i] -= h;
      const numeric = (f(Float32Array.from(plus)) - f(Float32Array.from(minus))) / (2 * h);
      worst = Math.max(worst, Math.abs(numeric - r.grad[i]));
    }
    assert.ok(worst < 2e-4, `${opts.method}: worst gradient error ${worst}`);
  }
});

test('mismatched heads are a clear error', () => {
  assert.throws(() => distillHead(new Float32Array(12), new Float32Array(6), [1, 1, 1, 6], 1, 1, { method: 'hinton', T: 1, alpha: 0.5, lambda: 1, radius: 1 }), /student head has 12 values but the teacher's has 6/);
});
