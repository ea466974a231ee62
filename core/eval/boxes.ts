// Boxes, detections and NMS with AlexeyAB darknet's exact semantics (src/box.c, src/yolo_layer.c).
//
// Darknet computes everything here in 32-bit floats. Every arithmetic step below is rounded with
// Math.fround in darknet's operation order, so IoU values (and therefore `> thresh` decisions made
// on them) are the same bits darknet gets, barring compiler FMA contraction / -ffast-math.

const f = Math.fround;

/** Centre-based box: (x, y) centre, (w, h) size. Coordinates are relative (0..1) unless stated. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One candidate box, as darknet's `detection` struct. */
export interface Detection {
  box: Box;
  objectness: number;
  /** Per-class probability objectness*class_prob, 0 where it was not above the threshold (darknet). */
  prob: Float32Array;
  classes: number;
}

/** darknet overlap(): 1-D intersection length (may be negative). */
function overlap(x1: number, w1: number, x2: number, w2: number): number {
  const l1 = f(x1 - f(w1 / 2));
  const l2 = f(x2 - f(w2 / 2));
  const left = l1 > l2 ? l1 : l2;
  const r1 = f(x1 + f(w1 / 2));
  const r2 = f(x2 + f(w2 / 2));
  const right = r1 < r2 ? r1 : r2;
  return f(right - left);
}

/** darknet box_intersection(). */
export function boxIntersection(a: Box, b: Box): number {
  const w = overlap(f(a.x), f(a.w), f(b.x), f(b.w));
  const h = overlap(f(a.y), f(a.h), f(b.y), f(b.h));
  if (w < 0 || h < 0) return 0;
  return f(w * h);
}

/** darknet box_union(). */
export function boxUnion(a: Box, b: Box): number {
  const i = boxIntersection(a, b);
  return f(f(f(f(a.w) * f(a.h)) + f(f(b.w) * f(b.h))) - i);
}

/** darknet box_iou() (AlexeyAB: returns 0 when the intersection or the union is 0). */
export function boxIou(a: Box, b: Box): number {
  const i = boxIntersection(a, b);
  const u = f(f(f(f(a.w) * f(a.h)) + f(f(b.w) * f(b.h))) - i);
  if (i === 0 || u === 0) return 0;
  return f(i / u);
}

/**
 * darknet do_nms_sort(): greedy per-class NMS. Mutates `dets` in place exactly as darknet does:
 *  1. detections with objectness == 0 are swapped to the end and ignored;
 *  2. for each class k in turn the remaining array is sorted by prob[k] descending (glibc's qsort is
 *     a stable merge sort, so ties keep their current order; this is reproduced), then every
 *     detection whose prob[k] is still non-zero zeroes prob[k] of every later detection with
 *     IoU > nmsThresh (strict). Boxes are never removed; only probabilities are zeroed, and a
 *     detection already zeroed for class k does not suppress others in class k.
 * The final array order (sorted by the last class's prob) matters to darknet's mAP TP/FP-at-thresh
 * counting, which is why the array is reordered rather than copied.
 */
export function doNmsSort(dets: Detection[], classes: number, nmsThresh = 0.45): void {
  nmsSortCore(dets, classes, f(nmsThresh), boxIou);
}

/**
 * darknet's `nms_kind` of the last [yolo] layer: default → do_nms_sort (IoU); the others go
 * through diounms_sort(): greedynms suppresses on box_diou() > thresh (IoU minus
 * (centre distance² / enclosing diagonal²)^0.6), diounms on box_diounms() with beta_nms as the
 * exponent, cornersnms on plain IoU.
 */
export type NmsKind = 'default' | 'greedy' | 'diou' | 'corners';

/** darknet diounms_sort() (and do_nms_sort for kind 'default'): same mechanics as doNmsSort. */
export function diouNmsSort(dets: Detection[], classes: number, nmsThresh: number, kind: NmsKind, betaNms = 0.6): void {
  const t = f(nmsThresh);
  if (kind === 'default' || kind === 'corners') nmsSortCore(dets, classes, t, boxIou);
  else if (kind === 'greedy') nmsSortCore(dets, classes, t, boxDiou);
  else {
    const beta = f(betaNms);
    nmsSortCore(dets, classes, t, (a, b) => boxDiouNms(a, b, beta));
  }
}

/** darknet box_diou(): IoU - pow(d/c, 0.6), d = squared centre distance, c = enclosing diagonal². */
export function boxDiou(a: Box, b: Box): number {
  return diouWith(a, b, 0.6);
}

/** darknet box_diounms(): IoU - pow(d/c, beta). */
export function boxDiouNms(a: Box, b: Box, beta: number): number {
  return diouWith(a, b, f(beta));
}

function diouWith(a: Box, b: Box, exponent: number): number {
  const ax = f(a.x);
  const ay = f(a.y);
  const aw = f(a.w);
  const ah = f(a.h);
  const bx = f(b.x);
  const by = f(b.y);
  const bw = f(b.w);
  const bh = f(b.h);
  // box_c(): the smallest box enclosing both (fmin/fmax return one of the float operands)
  const top = Math.min(f(ay - f(ah / 2)), f(by - f(bh / 2)));
  const bot = Math.max(f(ay + f(ah / 2)), f(by + f(bh / 2)));
  const left = Math.min(f(ax - f(aw / 2)), f(bx - f(bw / 2)));
  const right = Math.max(f(ax + f(aw / 2)), f(bx + f(bw / 2)));
  const w = f(right - left);
  const h = f(bot - top);
  const c = f(f(w * w) + f(h * h));
  const iou = boxIou(a, b);
  if (c === 0) return iou;
  const dx = f(ax - bx);
  const dy = f(ay - by);
  const d = f(f(dx * dx) + f(dy * dy));
  const u = f(Math.pow(f(d / c), exponent));
  return f(iou - u);
}

function nmsSortCore(dets: Detection[], classes: number, thresh: number, overlapOf: (a: Box, b: Box) => number): void {
  let k = dets.length - 1;
  for (let i = 0; i <= k; ++i) {
    if (dets[i].objectness === 0) {
      const swap = dets[i];
      dets[i] = dets[k];
      dets[k] = swap;
      --k;
      --i;
    }
  }
  const total = k + 1;
  if (total <= 0) return;
  // Scratch buffers reused for every class (no per-detection allocation).
  const positive: Detection[] = new Array(total);
  const rest: Detection[] = new Array(total);
  for (let c = 0; c < classes; ++c) {
    // Stable sort by prob[c] desc. Fast path: all probs >= 0 → stable partition (positives first,
    // zeros keep their order) and stable-sort only the positives.
    let np = 0;
    let nr = 0;
    let exotic = false;
    for (let i = 0; i < total; ++i) {
      const d = dets[i];
      const p = d.prob[c];
      if (p > 0) positive[np++] = d;
      else if (p === 0) rest[nr++] = d;
      else {
        exotic = true; // negative or NaN: fall back to the general comparator
        break;
      }
    }
    let active: number;
    if (!exotic) {
      if (np === 0) continue; // nothing to sort or suppress for this class; order unchanged
      const pos = positive.slice(0, np);
      pos.sort((a, b) => cmpDesc(a.prob[c], b.prob[c]));
      for (let i = 0; i < np; ++i) dets[i] = pos[i];
      for (let i = 0; i < nr; ++i) dets[np + i] = rest[i];
      active = np;
    } else {
      const all = dets.slice(0, total);
      all.sort((a, b) => cmpDesc(a.prob[c], b.prob[c]));
      for (let i = 0; i < total; ++i) dets[i] = all[i];
      active = total;
    }
    for (let i = 0; i < active; ++i) {
      const di = dets[i];
      if (di.prob[c] === 0) continue;
      const a = di.box;
      // Later detections beyond `active` already have prob 0 (zeroing them again is a no-op).
      for (let j = i + 1; j < active; ++j) {
        const dj = dets[j];
        if (overlapOf(a, dj.box) > thresh) dj.prob[c] = 0;
      }
    }
  }
}

/** darknet nms_comparator_v3 for descending order: NaN differences compare equal. */
function cmpDesc(a: number, b: number): number {
  const diff = f(a - b);
  if (diff < 0) return 1;
  if (diff > 0) return -1;
  return 0;
}

/**
 * Detections from decoded rows `[x, y, w, h, objectness, cls_0 .. cls_{C-1}]` (stride 5 + classes),
 * box relative to the network input (0..1), as darknet get_yolo_detections() builds them: a row is
 * kept only when objectness > thresh, and prob[j] = objectness*cls_j when that product > thresh,
 * else 0. Rows are visited in order, so the output order follows the exporter's row order.
 */
export function detectionsFromDecoded(
  rows: Float32Array,
  count: number,
  classes: number,
  thresh: number,
): Detection[] {
  const stride = 5 + classes;
  if (rows.length < count * stride) {
    throw new RangeError(
      `detectionsFromDecoded: ${count} rows of ${stride} values need ${count * stride} floats, got ${rows.length}`,
    );
  }
  const t = f(thresh);
  const out: Detection[] = [];
  for (let r = 0; r < count; ++r) {
    const o = r * stride;
    const objectness = rows[o + 4];
    if (!(objectness > t)) continue; // NaN objectness is rejected, as in darknet
    const prob = new Float32Array(classes);
    for (let j = 0; j < classes; ++j) {
      const p = f(objectness * rows[o + 5 + j]);
      prob[j] = p > t ? p : 0;
    }
    out.push({
      box: { x: rows[o], y: rows[o + 1], w: rows[o + 2], h: rows[o + 3] },
      objectness,
      prob,
      classes,
    });
  }
  return out;
}

/**
 * darknet correct_yolo_boxes() with relative = 1: maps boxes relative to the network input to
 * boxes relative to the original image. Without letterbox this is the identity (the image was
 * stretched onto the whole input). With letterbox it undoes the centred padding of
 * letterbox_image(). Mutates and returns `dets`.
 */
export function correctBoxes(
  dets: Detection[],
  imageW: number,
  imageH: number,
  netW: number,
  netH: number,
  letterBox: boolean,
): Detection[] {
  const { newW, newH } = letterBox ? letterboxSize(imageW, imageH, netW, netH) : { newW: netW, newH: netH };
  const deltaw = f(netW - newW);
  const deltah = f(netH - newH);
  const ratiow = f(newW / netW);
  const ratioh = f(newH / netH);
  const invw = f(1 / ratiow);
  const invh = f(1 / ratioh);
  for (const d of dets) {
    const b = d.box;
    // darknet: b.x = (b.x - deltaw / 2. / netw) / ratiow  — evaluated in double, stored as float
    b.x = f((f(b.x) - deltaw / 2 / netW) / ratiow);
    b.y = f((f(b.y) - deltah / 2 / netH) / ratioh);
    b.w = f(f(b.w) * invw);
    b.h = f(f(b.h) * invh);
  }
  return dets;
}

/**
 * The resized size darknet's letterbox_image() / correct_yolo_boxes() use: keep the aspect ratio,
 * fit inside net w x h (integer division truncates).
 */
export function letterboxSize(
  imageW: number,
  imageH: number,
  netW: number,
  netH: number,
): { newW: number; newH: number } {
  if (f(netW / imageW) < f(netH / imageH)) {
    return { newW: netW, newH: Math.trunc((imageH * netW) / imageW) };
  }
  return { newW: Math.trunc((imageW * netH) / imageH), newH: netH };
}
