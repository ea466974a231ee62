// The [yolo] layer's training loss as AlexeyAB darknet computes it (yolo_layer.c forward_yolo_layer):
//  * every predicted box whose best IoU with a truth is ≤ ignore_thresh learns objectness 0
//    (darknet only counts truths when one of the box's class scores is > .25);
//  * each truth goes to the cell holding its centre and to the best anchor over ALL anchors of the
//    model (by IoU of width/height); the head whose mask holds that anchor trains it (plus every
//    other anchor of the head with IoU > iou_thresh); best IoU > truth_thresh also assigns;
//  * positives learn objectness 1 (×obj_normalizer), one-hot classes (×cls_normalizer), and the box:
//    mse: x,y towards the offset within the cell (darknet's delta tx - σ(x), i.e. a logistic
//    cross-entropy on the raw output), w,h squared error in log space, all × (2 - w·h)·iou_normalizer;
//    giou/diou/ciou: iou_normalizer·(1 - IoU-kind) on the decoded box (here with its exact gradient;
//    darknet's hand-written derivative drops the logistic's factor on x,y).
// new_coords=1 (scaled-YOLOv4, YOLOv7): the head conv applies the logistic itself, so the head holds
// probabilities p: the box is x = (i + p·s - (s-1)/2)/W, w = (2p)²·anchor; objectness and classes
// are p. Darknet's deltas are then plain differences (target - p) that go back through the conv's
// logistic: here L = ½(p - t)² per entry (x,y against the offset in the cell, w,h against
// sqrt(w·netW / (4·anchor))), the tape adds the logistic's factor.
// Darknet sums the deltas over the batch and updates with learning_rate/batch, so the loss here is
// the per-image mean. Objectness, class and mse-box terms are computed in JS from the head outputs
// with their gradients (what darknet calls delta) and enter the tape as Σ raw·∂L/∂raw; IoU losses
// are tf ops on the gathered predictions.
import * as tf from '@tensorflow/tfjs-core';
import { SectionOptions } from '../darknet/options';
import type { ModelGraph } from '../darknet/types';
import type { YoloSpec } from '../onnx/layers';

export type IouLoss = 'mse' | 'iou' | 'giou' | 'diou' | 'ciou';

export interface HeadLossConfig {
  index: number;
  classes: number;
  /** All anchors of the layer (anchors=), pairs in network pixels. */
  allAnchors: number[];
  mask: number[];
  scaleXY: number;
  ignoreThresh: number;
  truthThresh: number;
  iouThresh: number;
  iouNormalizer: number;
  clsNormalizer: number;
  objNormalizer: number;
  iouLoss: IouLoss;
  /** new_coords=1: the head holds probabilities (the conv's logistic), boxes decode as (2p)². */
  newCoords: boolean;
  netW: number;
  netH: number;
}

/** One object of a training image: class and box relative to the network input (0..1). */
export interface TrainTruth {
  classId: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface LossParts {
  total: number;
  box: number;
  obj: number;
  cls: number;
  /** Truths assigned to an anchor, and their mean IoU with the predicted box. */
  count: number;
  avgIou: number;
}

export function headLossConfigs(graph: ModelGraph, heads: YoloSpec[]): HeadLossConfig[] {
  return heads.map((h) => {
    const l = graph.layers[h.index];
    const o = new SectionOptions(l.section);
    const kind = o.str('iou_loss', 'mse').toLowerCase();
    const iouLoss: IouLoss = kind === 'giou' || kind === 'diou' || kind === 'ciou' || kind === 'iou' ? kind : 'mse';
    return {
      index: h.index, classes: h.classes, allAnchors: l.yolo!.anchors, mask: l.yolo!.mask, scaleXY: h.scaleXY,
      ignoreThresh: o.float('ignore_thresh', 0.5), truthThresh: o.float('truth_thresh', 1), iouThresh: o.float('iou_thresh', 1),
      iouNormalizer: o.float('iou_normalizer', 0.75), clsNormalizer: o.float('cls_normalizer', 1), objNormalizer: o.float('obj_normalizer', 1),
      iouLoss, newCoords: h.newCoords, netW: h.netW, netH: h.netH,
    };
  });
}

interface Box { x: number; y: number; w: number; h: number }

function overlap(x1: number, w1: number, x2: number, w2: number): number {
  const l = Math.max(x1 - w1 / 2, x2 - w2 / 2);
  const r = Math.min(x1 + w1 / 2, x2 + w2 / 2);
  return r - l;
}

export function iou(a: Box, b: Box): number {
  const w = overlap(a.x, a.w, b.x, b.w), h = overlap(a.y, a.h, b.y, b.h);
  if (w <= 0 || h <= 0) return 0;
  const i = w * h;
  const u = a.w * a.h + b.w * b.h - i;
  return u > 0 ? i / u : 0;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
/** log(1 + e^v), stable */
const softplus = (v: number) => (v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v)));
/** Binary cross-entropy of logit v against target t, minus its minimum (so 0 at σ(v) = t). */
function bce(v: number, t: number): number {
  const ent = t > 0 && t < 1 ? -(t * Math.log(t) + (1 - t) * Math.log(1 - t)) : 0;
  return softplus(v) - t * v - ent;
}

export interface HeadTargets {
  /** ∂L/∂raw for objectness, classes and (mse) box, same layout as the raw head [B,H,W,A,5+C]. */
  grad: Float32Array;
  /** IoU-loss positives: flat row index (b,j,i,a) and truth box, when iou_loss is not mse. */
  iouRows: number[];
  iouTruths: number[];
  iouScale: number[];
  iouAnchors: number[];
  iouCells: number[];
  /** Per row (b,j,i,a): 0 background, 1 ignored (overlaps a truth), 2 assigned to a truth. */
  objState: Int8Array;
  parts: LossParts;
}

/**
 * Targets and hand gradients of one head. `raw` is the head's raw NHWC output
 * [B, H, W, A·(5+C)] (= [B,H,W,A,5+C]); gradients are already divided by the batch size.
 */
export function headTargets(raw: Float32Array, shape: number[], cfg: HeadLossConfig, truths: TrainTruth[][]): HeadTargets {
  const [B, H, W] = shape;
  const A = cfg.mask.length;
  const C = cfg.classes;
  const per = 5 + C;
  const grad = new Float32Array(raw.length);
  const s = cfg.scaleXY;
  const inv = 1 / B;
  const anchorsTotal = cfg.allAnchors.length / 2;
  let boxLoss = 0, objLoss = 0, clsLoss = 0, count = 0, iouSum = 0;
  const iouRows: number[] = [], iouTruths: number[] = [], iouScale: number[] = [], iouAnchors: number[] = [], iouCells: number[] = [];
  const objState = new Int8Array(B * H * W * A); // 0 negative, 1 ignored, 2 positive
  const clsTarget = new Float32Array(B * H * W * A * C);

  const nc = cfg.newCoords;
  // the probability an objectness / class entry stands for
  const prob = nc ? (v: number) => v : sigmoid;
  const predBox = (o: number, i: number, j: number, a: number): Box => {
    const n = cfg.mask[a];
    if (nc) {
      return {
        x: (i + raw[o] * s - 0.5 * (s - 1)) / W,
        y: (j + raw[o + 1] * s - 0.5 * (s - 1)) / H,
        w: 4 * raw[o + 2] * raw[o + 2] * cfg.allAnchors[2 * n] / cfg.netW,
        h: 4 * raw[o + 3] * raw[o + 3] * cfg.allAnchors[2 * n + 1] / cfg.netH,
      };
    }
    return {
      x: (i + sigmoid(raw[o]) * s - 0.5 * (s - 1)) / W,
      y: (j + sigmoid(raw[o + 1]) * s - 0.5 * (s - 1)) / H,
      w: Math.exp(raw[o + 2]) * cfg.allAnchors[2 * n] / cfg.netW,
      h: Math.exp(raw[o + 3]) * cfg.allAnchors[2 * n + 1] / cfg.netH,
    };
  };

  const assign = (b: number, t: TrainTruth, i: number, j: number, a: number): void => {
    const cell = ((b * H + j) * W + i) * A + a;
    const o = cell * per;
    const n = cfg.mask[a];
    objState[cell] = 2;
    clsTarget[cell * C + t.classId] = 1;
    const pb = predBox(o, i, j, a);
    iouSum += iou(pb, t);
    count++;
    if (cfg.iouLoss === 'mse' && nc) {
      const scale = (2 - t.w * t.h) * cfg.iouNormalizer;
      const targets = [t.x * W - i, t.y * H - j, Math.sqrt(t.w * cfg.netW / (4 * cfg.allAnchors[2 * n])), Math.sqrt(t.h * cfg.netH / (4 * cfg.allAnchors[2 * n + 1]))];
      for (let k = 0; k < 4; k++) {
        // x,y: the offset s·p - (s-1)/2 against the truth's; w,h: p against sqrt(w / 4·anchor)
        const k2 = k < 2 ? s : 1;
        const out = k < 2 ? s * raw[o + k] - 0.5 * (s - 1) : raw[o + k];
        grad[o + k] += scale * k2 * (out - targets[k]) * inv;
        boxLoss += scale * 0.5 * (out - targets[k]) * (out - targets[k]);
      }
    } else if (cfg.iouLoss === 'mse') {
      const scale = (2 - t.w * t.h) * cfg.iouNormalizer;
      const tx = t.x * W - i, ty = t.y * H - j;
      const tw = Math.log(t.w * cfg.netW / cfg.allAnchors[2 * n]);
      const th = Math.log(t.h * cfg.netH / cfg.allAnchors[2 * n + 1]);
      for (const [k, target] of [[0, tx], [1, ty]] as const) {
        // L = s·softplus(v) - ((s-1)/2 + t)·v, whose gradient is out - t with out = s·σ(v) - (s-1)/2
        const v = raw[o + k];
        const out = s * sigmoid(v) - 0.5 * (s - 1);
        grad[o + k] += scale * (out - target) * inv;
        const q = Math.min(1 - 1e-7, Math.max(1e-7, (target + 0.5 * (s - 1)) / s));
        const vStar = Math.log(q / (1 - q));
        const f = (z: number) => s * softplus(z) - (0.5 * (s - 1) + target) * z;
        boxLoss += scale * (f(v) - f(vStar));
      }
      for (const [k, target] of [[2, tw], [3, th]] as const) {
        const v = raw[o + k];
        grad[o + k] += scale * (v - target) * inv;
        boxLoss += scale * 0.5 * (v - target) * (v - target);
      }
    } else {
      iouRows.push(cell);
      iouTruths.push(t.x, t.y, t.w, t.h);
      iouScale.push(cfg.iouNormalizer);
      iouAnchors.push(cfg.allAnchors[2 * n] / cfg.netW, cfg.allAnchors[2 * n + 1] / cfg.netH);
      iouCells.push(i, j);
    }
  };

  for (let b = 0; b < B; b++) {
    const ts = (truths[b] ?? []).filter((t) => t.classId >= 0 && t.classId < C && t.w > 0 && t.h > 0);
    // objectness: negatives unless a truth overlaps enough (ignore) or truth_thresh assigns
    for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
      const cell = ((b * H + j) * W + i) * A + a;
      const o = cell * per;
      if (ts.length === 0) continue;
      const pb = predBox(o, i, j, a);
      let anyClass = false;
      for (let k = 0; k < C; k++) if (prob(raw[o + 5 + k]) > 0.25) { anyClass = true; break; }
      let bestMatch = 0, best = 0, bestT = -1;
      for (let t = 0; t < ts.length; t++) {
        const v = iou(pb, ts[t]);
        if (v > bestMatch && anyClass) bestMatch = v;
        if (v > best) { best = v; bestT = t; }
      }
      if (bestMatch > cfg.ignoreThresh) objState[cell] = 1;
      if (cfg.truthThresh < 1 && best > cfg.truthThresh && bestT >= 0) assign(b, ts[bestT], i, j, a);
    }
    for (const t of ts) {
      const i = Math.min(W - 1, Math.max(0, Math.floor(t.x * W)));
      const j = Math.min(H - 1, Math.max(0, Math.floor(t.y * H)));
      let bestIou = 0, bestN = 0;
      for (let n = 0; n < anchorsTotal; n++) {
        const v = iou({ x: 0, y: 0, w: cfg.allAnchors[2 * n] / cfg.netW, h: cfg.allAnchors[2 * n + 1] / cfg.netH }, { x: 0, y: 0, w: t.w, h: t.h });
        if (v > bestIou) { bestIou = v; bestN = n; }
      }
      const a = cfg.mask.indexOf(bestN);
      if (a >= 0) assign(b, t, i, j, a);
      if (cfg.iouThresh < 1) {
        for (let m = 0; m < A; m++) {
          const n = cfg.mask[m];
          if (n === bestN) continue;
          const v = iou({ x: 0, y: 0, w: cfg.allAnchors[2 * n] / cfg.netW, h: cfg.allAnchors[2 * n + 1] / cfg.netH }, { x: 0, y: 0, w: t.w, h: t.h });
          if (v > cfg.iouThresh) assign(b, t, i, j, m);
        }
      }
    }
  }
  // objectness and classes
  for (let cell = 0; cell < objState.length; cell++) {
    const o = cell * per;
    const v = raw[o + 4];
    const st = objState[cell];
    if (st === 1) continue;
    const target = st === 2 ? 1 : 0;
    grad[o + 4] = cfg.objNormalizer * (prob(v) - target) * inv;
    objLoss += cfg.objNormalizer * (nc ? 0.5 * (v - target) * (v - target) : bce(v, target));
    if (st === 2) {
      for (let k = 0; k < C; k++) {
        const u = raw[o + 5 + k];
        const tk = clsTarget[cell * C + k];
        grad[o + 5 + k] = cfg.clsNormalizer * (prob(u) - tk) * inv;
        clsLoss += cfg.clsNormalizer * (nc ? 0.5 * (u - tk) * (u - tk) : bce(u, tk));
      }
    }
  }
  const parts: LossParts = {
    total: (boxLoss + objLoss + clsLoss) * inv, box: boxLoss * inv, obj: objLoss * inv, cls: clsLoss * inv,
    count, avgIou: count ? iouSum / count : 0,
  };
  return { grad, iouRows, iouTruths, iouScale, iouAnchors, iouCells, objState, parts };
}

/**
 * rawFlat's rows at `rows`, with the scatter-add of the gathered gradients written in JS: tfjs's
 * gather gradient needs UnsortedSegmentSum, which wasm lacks, and a one-hot matMul's gradient is
 * a transposed product over every cell (35 ms a step for yolo-fastest's 20x20 head at batch 8).
 */
function gatherRows(rawFlat: tf.Tensor2D, rows: number[]): tf.Tensor2D {
  const [N, F] = rawFlat.shape;
  const index = tf.tensor1d(rows, 'int32');
  const op = tf.customGrad(((x: tf.Tensor) => ({
    value: tf.gather(x, index),
    gradFunc: (dy: tf.Tensor) => {
      const d = dy.dataSync() as Float32Array;
      const out = new Float32Array(N * F);
      for (let p = 0; p < rows.length; p++) {
        const o = rows[p] * F, i = p * F;
        for (let f = 0; f < F; f++) out[o + f] += d[i + f];
      }
      return tf.tensor2d(out, [N, F]);
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(rawFlat) as tf.Tensor2D;
}

/** 1 - IoU-kind of the predictions gathered at `rows` (tf ops, differentiable). Sum over rows. */
function iouLossTensor(rawFlat: tf.Tensor2D, t: HeadTargets, cfg: HeadLossConfig, W: number, H: number): tf.Scalar {
  const P = t.iouRows.length;
  const rows = gatherRows(rawFlat, t.iouRows); // [P, 5+C]
  const s = cfg.scaleXY;
  const cells = tf.tensor2d(t.iouCells, [P, 2]);
  const pxy = tf.slice(rows, [0, 0], [P, 2]);
  const pwh = tf.slice(rows, [0, 2], [P, 2]);
  const xy = tf.div(tf.add(tf.sub(tf.mul(cfg.newCoords ? pxy : tf.sigmoid(pxy), s), 0.5 * (s - 1)), cells), tf.tensor1d([W, H]));
  const wh = tf.mul(cfg.newCoords ? tf.mul(tf.square(pwh), 4) : tf.exp(pwh), tf.tensor2d(t.iouAnchors, [P, 2]));
  const truth = tf.tensor2d(t.iouTruths, [P, 4]);
  const txy = tf.slice(truth, [0, 0], [P, 2]);
  const twh = tf.slice(truth, [0, 2], [P, 2]);
  const p1 = tf.sub(xy, tf.div(wh, 2)), p2 = tf.add(xy, tf.div(wh, 2));
  const t1 = tf.sub(txy, tf.div(twh, 2)), t2 = tf.add(txy, tf.div(twh, 2));
  const iw = tf.relu(tf.sub(tf.minimum(p2, t2), tf.maximum(p1, t1)));
  const inter = tf.prod(iw, 1);
  const union = tf.sub(tf.add(tf.prod(wh, 1), tf.prod(twh, 1)), inter);
  const iouV = tf.div(inter, tf.add(union, 1e-9));
  let loss: tf.Tensor = tf.sub(1, iouV);
  const cwh = tf.sub(tf.maximum(p2, t2), tf.minimum(p1, t1)); // enclosing box
  if (cfg.iouLoss === 'giou') {
    const area = tf.add(tf.prod(cwh, 1), 1e-9);
    loss = tf.add(loss, tf.div(tf.sub(area, union), area));
  } else if (cfg.iouLoss === 'diou' || cfg.iouLoss === 'ciou') {
    const c2 = tf.add(tf.sum(tf.square(cwh), 1), 1e-9);
    const d2 = tf.sum(tf.square(tf.sub(xy, txy)), 1);
    loss = tf.add(loss, tf.div(d2, c2));
    if (cfg.iouLoss === 'ciou') {
      const at = tf.atan(tf.div(tf.slice(twh, [0, 0], [P, 1]), tf.slice(twh, [0, 1], [P, 1])));
      const ap = tf.atan(tf.div(tf.slice(wh, [0, 0], [P, 1]), tf.add(tf.slice(wh, [0, 1], [P, 1]), 1e-9)));
      const v = tf.reshape(tf.mul(4 / (Math.PI * Math.PI), tf.square(tf.sub(at, ap))), [P]);
      // α is a constant weight (no gradient through it), as in the CIoU paper
      const alpha = tf.tensor1d(tf.div(v, tf.add(tf.add(tf.sub(1, iouV), v), 1e-9)).dataSync() as Float32Array);
      loss = tf.add(loss, tf.mul(alpha, v));
    }
  }
  return tf.sum(tf.mul(loss, tf.tensor1d(t.iouScale))) as tf.Scalar;
}

/**
 * An extra loss on a head's raw output (distillation): `grad` (∂L/∂raw, divided by the batch size)
 * is added to the ground-truth gradient, which is first scaled by `gtScale`. Returning undefined
 * leaves the head's loss as it is. `objState` is the ground truth's objectness assignment
 * (HeadTargets.objState).
 */
export type HeadLossHook = (head: number, raw: Float32Array, shape: number[], objState: Int8Array) => { grad: Float32Array; gtScale: number } | undefined;

/**
 * The loss of all heads for a batch, as a scalar whose gradient is darknet's (see above), plus the
 * parts as numbers (the ground-truth parts, unscaled). Reads the head outputs (dataSync): call
 * inside tf.variableGrads. `hook` adds a loss of its own per head (see HeadLossHook).
 */
export function yoloLoss(heads: tf.Tensor4D[], cfgs: HeadLossConfig[], truths: TrainTruth[][], hook?: HeadLossHook): { loss: tf.Scalar; parts: LossParts } {
  const parts: LossParts = { total: 0, box: 0, obj: 0, cls: 0, count: 0, avgIou: 0 };
  let loss: tf.Scalar = tf.scalar(0);
  let iouWeighted = 0;
  heads.forEach((head, h) => {
    const cfg = cfgs[h];
    const raw = head.dataSync() as Float32Array;
    const t = headTargets(raw, head.shape, cfg, truths);
    const extra = hook?.(h, raw, head.shape, t.objState);
    const gtScale = extra ? extra.gtScale : 1;
    if (extra) {
      if (extra.grad.length !== t.grad.length) throw new Error(`loss hook: head ${h} gradient has ${extra.grad.length} values, the head ${t.grad.length}`);
      for (let k = 0; k < t.grad.length; k++) t.grad[k] = gtScale * t.grad[k] + extra.grad[k];
    }
    loss = tf.add(loss, tf.sum(tf.mul(head, tf.tensor(t.grad, head.shape)))) as tf.Scalar;
    if (t.iouRows.length) {
      const [B, H, W, ch] = head.shape;
      const flat = tf.reshape(head, [B * H * W * cfg.mask.length, ch / cfg.mask.length]) as tf.Tensor2D;
      const il = tf.div(iouLossTensor(flat, t, cfg, W, H), B) as tf.Scalar;
      const v = il.dataSync()[0];
      t.parts.box += v;
      t.parts.total += v;
      loss = tf.add(loss, gtScale === 1 ? il : tf.mul(il, gtScale)) as tf.Scalar;
    }
    parts.total += t.parts.total; parts.box += t.parts.box; parts.obj += t.parts.obj; parts.cls += t.parts.cls;
    parts.count += t.parts.count; iouWeighted += t.parts.avgIou * t.parts.count;
  });
  parts.avgIou = parts.count ? iouWeighted / parts.count : 0;
  return { loss, parts };
}
