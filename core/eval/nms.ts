// The NMS darknet applies after `[yolo]` layers (AlexeyAB box.c), the one implementation used by
// `detect`, `map` and the evaluator. The last [yolo] layer's `nms_kind` chooses: `default` →
// do_nms_sort (IoU); `greedynms` / `diounms` / `cornersnms` → diounms_sort, which suppresses with
// box_diou (IoU − ((d²/c²)^0.6)), box_diounms (exponent beta_nms) or box_iou respectively. Every
// corpus model uses greedynms: plain IoU NMS would drop boxes darknet keeps (two overlapping cars
// in dog.jpg, IoU 0.54, DIoU 0.43). All arithmetic is rounded to float32 in darknet's order.
import { boxIou, type Box, type Detection } from './boxes';

const f = Math.fround;

/** darknet's `nms_kind` values (anything else in a cfg means `default`). */
export type NmsKind = 'default' | 'greedynms' | 'diounms' | 'cornersnms';

/** darknet box_diou() (exponent 0.6) and box_diounms() (exponent beta). */
export function boxDiou(a: Box, b: Box, exponent = 0.6): number {
  const ax = f(a.x);
  const ay = f(a.y);
  const aw = f(a.w);
  const ah = f(a.h);
  const bx = f(b.x);
  const by = f(b.y);
  const bw = f(b.w);
  const bh = f(b.h);
  // box_c(): the smallest box enclosing a and b (fmin/fmax return one of the float operands)
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

/**
 * darknet do_nms_sort() (kind 'default') and diounms_sort() (the others), in place: boxes with
 * objectness 0 are swapped to the end and ignored; for each class the rest is stably sorted by that
 * class's probability (glibc's qsort is a merge sort) and each box zeroes that probability of
 * every later box it overlaps beyond `thresh`. The array order left behind is darknet's (mAP's
 * TP/FP-at-threshold counting depends on it). Works on typed copies of the probabilities; writes
 * them back at the end.
 */
export function diounmsSort(dets: Detection[], classes: number, thresh: number, kind: NmsKind = 'default', beta = 0.6): void {
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
  const t = f(thresh);
  const useDiou = kind === 'greedynms' || kind === 'diounms';
  const exponent = kind === 'diounms' ? f(beta) : 0.6;
  // Each box's edges, centre and area as box_intersection / box_union / box_diou compute them, so
  // the pair loop below computes box_iou and box_diou from arrays, with darknet's float32 steps.
  const X = new Float64Array(total);
  const Y = new Float64Array(total);
  const L = new Float64Array(total);
  const R = new Float64Array(total);
  const T = new Float64Array(total);
  const B = new Float64Array(total);
  const area = new Float64Array(total);
  for (let id = 0; id < total; ++id) {
    const b = dets[id].box;
    const x = f(b.x);
    const y = f(b.y);
    const w = f(b.w);
    const h = f(b.h);
    X[id] = x;
    Y[id] = y;
    L[id] = f(x - f(w / 2));
    R[id] = f(x + f(w / 2));
    T[id] = f(y - f(h / 2));
    B[id] = f(y + f(h / 2));
    area[id] = f(w * h);
  }
  // Whether box b is suppressed by box a, given their overlaps along x and y: box_iou(a, b) > t
  // (plain IoU), or also box_diou(a, b) > t.
  const suppresses = (a: number, b: number, iw: number, ih: number): boolean => {
    // box_intersection is 0 unless both overlaps are positive (0 or negative: IoU 0)
    const inter = iw > 0 && ih > 0 ? f(iw * ih) : 0;
    const union = f(f(area[a] + area[b]) - inter);
    const iou = inter === 0 || union === 0 ? 0 : f(inter / union);
    // DIoU = IoU - (a non-negative term): a pair with IoU <= thresh never passes, skip the pow.
    if (!(iou > t) || !useDiou) return iou > t;
    const cw = f(Math.max(R[a], R[b]) - Math.min(L[a], L[b]));
    const ch = f(Math.max(B[a], B[b]) - Math.min(T[a], T[b]));
    const c = f(f(cw * cw) + f(ch * ch));
    if (c === 0) return iou > t;
    const dx = f(X[a] - X[b]);
    const dy = f(Y[a] - Y[b]);
    const d = f(f(dx * dx) + f(dy * dy));
    return f(iou - f(Math.pow(f(d / c), exponent))) > t;
  };
  const disjointNeverSuppress = t >= 0;
  // pt[c * total + id]: probability of class c of the detection at (post-swap) position id
  const pt = new Float32Array(classes * total);
  for (let id = 0; id < total; ++id) {
    const p = dets[id].prob;
    for (let c = 0; c < classes; ++c) pt[c * total + id] = p[c];
  }
  const ord = new Int32Array(total);
  for (let i = 0; i < total; ++i) ord[i] = i;
  const pos = new Int32Array(total);
  const rest = new Int32Array(total);
  for (let c = 0; c < classes; ++c) {
    const base = c * total;
    const byProb = (x: number, y: number): number => {
      const diff = f(pt[base + x] - pt[base + y]);
      return diff < 0 ? 1 : diff > 0 ? -1 : 0;
    };
    let np = 0;
    let nr = 0;
    let exotic = false;
    for (let i = 0; i < total; ++i) {
      const id = ord[i];
      const p = pt[base + id];
      if (p > 0) pos[np++] = id;
      else if (p === 0) rest[nr++] = id;
      else { exotic = true; break; }
    }
    let active: number;
    if (exotic) {
      // negative or NaN probabilities: the general stable sort
      ord.set(Array.from(ord).sort(byProb));
      active = total;
    } else {
      if (np === 0) continue; // all keys equal: the stable sort changes nothing
      // positives stably sorted, then the zeros in their order. Most classes have a few positives:
      // insertion sort (for positive floats f(x - y) > 0 exactly when x > y: darknet's comparator).
      if (np > 32) pos.set(Array.from(pos.subarray(0, np)).sort(byProb));
      else for (let i = 1; i < np; ++i) {
        const id = pos[i];
        const p = pt[base + id];
        let j = i - 1;
        while (j >= 0 && pt[base + pos[j]] < p) {
          pos[j + 1] = pos[j];
          --j;
        }
        pos[j + 1] = id;
      }
      for (let i = 0; i < np; ++i) ord[i] = pos[i];
      for (let i = 0; i < nr; ++i) ord[np + i] = rest[i];
      active = np; // the zeros after them cannot suppress or be suppressed
    }
    for (let i = 0; i < active; ++i) {
      const a = ord[i];
      if (pt[base + a] === 0) continue;
      const la = L[a];
      const ra = R[a];
      const ta = T[a];
      const ba = B[a];
      for (let j = i + 1; j < active; ++j) {
        const b = ord[j];
        if (pt[base + b] === 0) continue; // zeroing again changes nothing
        // Most pairs do not intersect: IoU 0 and DIoU <= 0 never pass a threshold >= 0.
        const iw = f(Math.min(ra, R[b]) - Math.max(la, L[b]));
        if (!(iw > 0) && disjointNeverSuppress) continue;
        const ih = f(Math.min(ba, B[b]) - Math.max(ta, T[b]));
        if (!(ih > 0) && disjointNeverSuppress) continue;
        if (suppresses(a, b, iw, ih)) pt[base + b] = 0;
      }
    }
  }
  const head = Array.from(ord, (id) => dets[id]);
  for (let i = 0; i < total; ++i) {
    const d = head[i];
    const id = ord[i];
    for (let c = 0; c < classes; ++c) d.prob[c] = pt[c * total + id];
    dets[i] = d;
  }
}

/** darknet do_nms_sort(): greedy per-class NMS on IoU (diounmsSort with kind 'default'). */
export function doNmsSort(dets: Detection[], classes: number, thresh = 0.45): void {
  diounmsSort(dets, classes, thresh, 'default');
}

/** The NMS darknet's `detector test` / `map` apply for this model. */
export function applyNms(dets: Detection[], classes: number, nms: { kind: NmsKind; beta: number }, thresh = 0.45): void {
  if (!(thresh > 0) || dets.length === 0) return;
  diounmsSort(dets, classes, thresh, nms.kind, nms.beta);
}
