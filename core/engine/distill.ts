// Knowledge distillation losses for YOLO heads (METHOD.md §3), as values and hand gradients with
// respect to the student's raw head outputs, in the same form as the [yolo] loss (loss.ts): the
// trainer adds `grad` to the ground-truth gradient and the tape sees Σ raw·∂L/∂raw.
//
// Layout of one head's raw output, per image: [H, W, A, 5 + C] (NHWC, anchor-major channels):
// tx, ty, tw, th, objectness logit, class logits. The teacher's head has the same layout (same cfg
// heads; pruning never changes a head).
//
// Methods
//  * hinton: α·T²·KL(σ(z_t/T) ‖ σ(z_s/T)) on every class logit (binary KL, since YOLO uses a
//    sigmoid per class), and the ground-truth loss scaled by (1 − α).
//  * objectness (Mehta & Ozturk 2018): the teacher's predictions go through feature-map NMS first,
//    then  L_cls += λ·ô_T·BCE(σ(s_cls), σ(t_cls)),  L_box += λ·ô_T·‖b_s − b_T‖²,
//    L_obj += λ·BCE(σ(s_obj), ô_T), where ô_T is the teacher's objectness (0 where FM-NMS suppressed
//    it) and b = (σ(tx), σ(ty), tw, th), the box in the network's own parametrisation.
//    With gtFirst the L_obj term skips the cells the ground truth assigns to a box: there the
//    teacher's objectness (below 1) pulls against the label's 1, and on the raccoon study the
//    distilled students ended with a higher ground-truth objectness loss than fine-tuned ones.
//
// Feature-map NMS neighbourhood: a teacher prediction survives when no other prediction of the same
// scale within a (2r+1)×(2r+1) block of cells (r = 1 by default, all anchors of those cells) whose
// top class is the same has a higher objectness; ties keep the first in (row, column, anchor) order.
// This is the paper's "3×3 neighbourhood, same class" rule applied across anchors.

export type DistillMethod = 'hinton' | 'objectness';

export interface DistillOptions {
  method: DistillMethod;
  /** Hinton temperature. */
  T: number;
  /** Hinton weight of the soft targets; the ground truth gets 1 − α. */
  alpha: number;
  /** Weight of the objectness-scaled teacher terms. */
  lambda: number;
  /** FM-NMS neighbourhood radius in cells (1 → 3×3). */
  radius: number;
  /**
   * objectness method: leave the objectness of the cells the ground truth assigns to a box to the
   * ground truth (no teacher objectness term there; box and class terms stay).
   */
  gtFirst?: boolean;
  /**
   * Feature imitation (off by default): layers (the same index in teacher and student, as channel
   * pruning keeps the layer indices) whose student output, through a trainable 1×1 adapter to the
   * teacher's channel count, learns the teacher's output by mean squared error × featureWeight.
   * The adapters only serve the loss: they are not part of the saved student.
   */
  featureLayers?: number[];
  featureWeight?: number;
}

export const DEFAULT_DISTILL: DistillOptions = { method: 'objectness', T: 3, alpha: 0.5, lambda: 1, radius: 1 };

export interface DistillParts {
  cls: number;
  box: number;
  obj: number;
  /** Feature imitation (0 when off). */
  feat?: number;
  total: number;
  /** Teacher predictions that survived FM-NMS (objectness method). */
  kept: number;
}

export interface DistillResult {
  /** ∂L_distill/∂raw, same layout as the student's raw output, already divided by the batch size. */
  grad: Float32Array;
  /** Factor for the ground-truth loss and its gradient (1 − α for hinton, 1 otherwise). */
  gtScale: number;
  parts: DistillParts;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Factor of the ground-truth loss under these options (1 − α for hinton, 1 otherwise). */
export function gtScaleOf(opts: DistillOptions): number {
  return opts.method === 'hinton' ? 1 - opts.alpha : 1;
}

/** Binary cross-entropy of probability p against target t, without the target's own entropy, so it
 * is 0 when p = t (the binary KL divergence KL(t‖p)). */
function binaryKl(t: number, p: number): number {
  const eps = 1e-12;
  const a = t > 0 ? t * Math.log(t / Math.max(p, eps)) : 0;
  const b = t < 1 ? (1 - t) * Math.log((1 - t) / Math.max(1 - p, eps)) : 0;
  return a + b;
}

/**
 * Feature-map NMS over one head of the teacher. Returns 1 for every (b, y, x, a) prediction kept.
 * `raw` is [B, H, W, A·(5+C)].
 */
export function featureMapNms(raw: Float32Array, shape: readonly number[], anchors: number, classes: number, radius = 1): Uint8Array {
  const [B, H, W] = shape;
  const A = anchors;
  const per = 5 + classes;
  const n = B * H * W * A;
  const obj = new Float32Array(n);
  const top = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const o = r * per;
    obj[r] = sigmoid(raw[o + 4]);
    let best = 0;
    for (let c = 1; c < classes; c++) if (raw[o + 5 + c] > raw[o + 5 + best]) best = c;
    top[r] = best;
  }
  const keep = new Uint8Array(n);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let a = 0; a < A; a++) {
          const r = ((b * H + y) * W + x) * A + a;
          let survives = true;
          for (let dy = -radius; dy <= radius && survives; dy++) {
            const yy = y + dy;
            if (yy < 0 || yy >= H) continue;
            for (let dx = -radius; dx <= radius && survives; dx++) {
              const xx = x + dx;
              if (xx < 0 || xx >= W) continue;
              for (let aa = 0; aa < A; aa++) {
                const q = ((b * H + yy) * W + xx) * A + aa;
                if (q === r || top[q] !== top[r]) continue;
                if (obj[q] > obj[r] || (obj[q] === obj[r] && q < r)) { survives = false; break; }
              }
            }
          }
          keep[r] = survives ? 1 : 0;
        }
      }
    }
  }
  return keep;
}

/** Distillation loss and gradient of one head; `gtObjState` is the ground truth's assignment per row (HeadTargets.objState). */
export function distillHead(student: Float32Array, teacher: Float32Array, shape: readonly number[], anchors: number, classes: number, opts: DistillOptions, gtObjState?: Int8Array): DistillResult {
  if (student.length !== teacher.length) {
    throw new Error(`distillation: student head has ${student.length} values but the teacher's has ${teacher.length}; the heads must match`);
  }
  const B = shape[0];
  const per = 5 + classes;
  const rows = student.length / per;
  const grad = new Float32Array(student.length);
  const parts: DistillParts = { cls: 0, box: 0, obj: 0, total: 0, kept: 0 };
  const inv = 1 / B;

  if (opts.method === 'hinton') {
    const { T, alpha } = opts;
    for (let r = 0; r < rows; r++) {
      const o = r * per + 5;
      for (let c = 0; c < classes; c++) {
        const pt = sigmoid(teacher[o + c] / T);
        const ps = sigmoid(student[o + c] / T);
        parts.cls += alpha * T * T * binaryKl(pt, ps) * inv;
        // d/ds of T²·KL(pt ‖ σ(s/T)) = T·(σ(s/T) − pt)
        grad[o + c] = alpha * T * (ps - pt) * inv;
      }
    }
    parts.total = parts.cls;
    return { grad, gtScale: gtScaleOf(opts), parts };
  }

  const { lambda } = opts;
  const keep = featureMapNms(teacher, shape, anchors, classes, opts.radius);
  for (let r = 0; r < rows; r++) {
    const o = r * per;
    const oT = keep[r] ? sigmoid(teacher[o + 4]) : 0;
    if (keep[r]) parts.kept++;
    // objectness: BCE(σ(s_obj), ô_T)
    if (!(opts.gtFirst && gtObjState && gtObjState[r] === 2)) {
      const so = sigmoid(student[o + 4]);
      parts.obj += lambda * binaryKl(oT, so) * inv;
      grad[o + 4] = lambda * (so - oT) * inv;
    }
    if (oT === 0) continue;
    // box: ‖b_s − b_T‖² with b = (σ(tx), σ(ty), tw, th)
    for (let k = 0; k < 4; k++) {
      const s = k < 2 ? sigmoid(student[o + k]) : student[o + k];
      const t = k < 2 ? sigmoid(teacher[o + k]) : teacher[o + k];
      const d = s - t;
      parts.box += lambda * oT * d * d * inv;
      grad[o + k] = lambda * oT * 2 * d * (k < 2 ? s * (1 - s) : 1) * inv;
    }
    // classes: BCE(σ(s_c), σ(t_c)) weighted by the teacher's objectness
    for (let c = 0; c < classes; c++) {
      const pt = sigmoid(teacher[o + 5 + c]);
      const ps = sigmoid(student[o + 5 + c]);
      parts.cls += lambda * oT * binaryKl(pt, ps) * inv;
      grad[o + 5 + c] = lambda * oT * (ps - pt) * inv;
    }
  }
  parts.total = parts.cls + parts.box + parts.obj;
  return { grad, gtScale: 1, parts };
}

// ---- the teacher in training (trainer.ts) ----

/** Sum of the parts of several heads / mini-batches. */
export function addDistillParts(into: DistillParts, p: DistillParts, scale = 1): void {
  into.cls += p.cls * scale; into.box += p.box * scale; into.obj += p.obj * scale; into.total += p.total * scale; into.kept += p.kept;
  if (p.feat !== undefined) into.feat = (into.feat ?? 0) + p.feat * scale;
}

export const emptyDistillParts = (): DistillParts => ({ cls: 0, box: 0, obj: 0, total: 0, kept: 0 });

/** Options from partial ones, validated (clear errors for the CLI and the trainer). */
export function distillOptions(o: Partial<DistillOptions> = {}): DistillOptions {
  const d: DistillOptions = { ...DEFAULT_DISTILL };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (d as unknown as Record<string, unknown>)[k] = v;
  if (d.method !== 'hinton' && d.method !== 'objectness') throw new Error(`distillation method must be hinton or objectness (got "${d.method}")`);
  if (!(d.T > 0)) throw new Error(`distillation temperature T must be > 0 (got ${d.T})`);
  if (!(d.alpha >= 0 && d.alpha <= 1)) throw new Error(`distillation alpha must be within 0..1 (got ${d.alpha})`);
  if (!(d.lambda >= 0)) throw new Error(`distillation lambda must be ≥ 0 (got ${d.lambda})`);
  if (!(Number.isInteger(d.radius) && d.radius >= 0)) throw new Error(`FM-NMS radius must be a non-negative integer (got ${d.radius})`);
  if (d.featureLayers && !d.featureLayers.every((i) => Number.isInteger(i) && i >= 0)) throw new Error(`feature imitation layers must be layer indices (got ${d.featureLayers.join(',')})`);
  if (d.featureWeight !== undefined && !(d.featureWeight >= 0)) throw new Error(`feature imitation weight must be ≥ 0 (got ${d.featureWeight})`);
  return d;
}

/** What the teacher/student check compares: the input and every [yolo] head. */
export interface DistillNetSpec {
  netW: number;
  netH: number;
  channels: number;
  heads: { index: number; classes: number; anchors: number[]; in: readonly number[]; newCoords?: boolean }[];
}

/**
 * Throws a clear error unless teacher and student take the same input and have the same heads
 * (count, classes, anchors, grid): distillation compares their raw head outputs cell by cell.
 */
export function checkDistillPair(teacher: DistillNetSpec, student: DistillNetSpec, names = { teacher: 'teacher', student: 'student' }): void {
  const t = names.teacher, s = names.student;
  if (teacher.netW !== student.netW || teacher.netH !== student.netH || teacher.channels !== student.channels) {
    throw new Error(`distillation: the teacher ${t} takes ${teacher.netW}x${teacher.netH}x${teacher.channels} input but the student ${s} ${student.netW}x${student.netH}x${student.channels}; they must be the same`);
  }
  if (teacher.heads.length !== student.heads.length) {
    throw new Error(`distillation: the teacher ${t} has ${teacher.heads.length} [yolo] heads but the student ${s} has ${student.heads.length}; they must have the same heads`);
  }
  teacher.heads.forEach((th, k) => {
    const sh = student.heads[k];
    const where = `[yolo] head ${k + 1} (teacher layer ${th.index}, student layer ${sh.index})`;
    if (th.classes !== sh.classes) throw new Error(`distillation: ${where}: the teacher has classes=${th.classes}, the student classes=${sh.classes}`);
    if (th.anchors.join(',') !== sh.anchors.join(',')) throw new Error(`distillation: ${where}: the teacher's anchors (mask order) are ${th.anchors.join(',')}, the student's ${sh.anchors.join(',')}`);
    // the distillation terms read head outputs as logits; new_coords heads hold probabilities
    if (th.newCoords || sh.newCoords) throw new Error(`distillation: ${where}: new_coords=1 heads (the ${th.newCoords ? 'teacher' : 'student'}'s) are not supported yet: their outputs are probabilities, not logits`);
    if (th.in[1] !== sh.in[1] || th.in[2] !== sh.in[2]) throw new Error(`distillation: ${where}: the teacher's grid is ${th.in[2]}x${th.in[1]}, the student's ${sh.in[2]}x${sh.in[1]}`);
  });
}

/**
 * The distillation gradient of every head of one mini-batch, given the teacher's raw outputs:
 * a hook for yoloLoss (HeadLossHook). `parts` accumulates the loss parts of all heads.
 */
export function distillHook(teacherHeads: Float32Array[], heads: { classes: number; anchors: number[] }[], opts: DistillOptions, parts: DistillParts):
  (h: number, raw: Float32Array, shape: number[], objState?: Int8Array) => { grad: Float32Array; gtScale: number } {
  return (h, raw, shape, objState) => {
    const r = distillHead(raw, teacherHeads[h], shape, heads[h].anchors.length / 2, heads[h].classes, opts, objState);
    addDistillParts(parts, r.parts);
    return { grad: r.grad, gtScale: r.gtScale };
  };
}
