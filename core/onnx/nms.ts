// The NMS darknet applies after `[yolo]` layers (AlexeyAB box.c), chosen by the last layer's
// `nms_kind`: `default` → do_nms_sort (IoU); `greedynms` / `diounms` / `cornersnms` →
// diounms_sort, which suppresses with box_diou (IoU − ((d²/c²)^0.6)), box_diounms (exponent
// beta_nms) or box_iou respectively. Every corpus model uses greedynms: plain IoU NMS would drop
// boxes darknet keeps (two overlapping cars in dog.jpg, IoU 0.54, DIoU 0.43).
// All arithmetic is rounded to float32 in darknet's order.
import { boxIou, doNmsSort, type Box, type Detection } from '../eval/boxes';
import type { NmsKind } from './layers';

const f = Math.fround;

/** darknet box_c(): the smallest box enclosing a and b, as top/bot/left/right. */
function enclosing(a: Box, b: Box): { top: number; bot: number; left: number; right: number } {
  return {
    top: Math.min(f(a.y - f(a.h / 2)), f(b.y - f(b.h / 2))),
    bot: Math.max(f(a.y + f(a.h / 2)), f(b.y + f(b.h / 2))),
    left: Math.min(f(a.x - f(a.w / 2)), f(b.x - f(b.w / 2))),
    right: Math.max(f(a.x + f(a.w / 2)), f(b.x + f(b.w / 2))),
  };
}

/** darknet box_diou() (exponent 0.6) and box_diounms() (exponent beta). */
export function boxDiou(a: Box, b: Box, exponent = 0.6): number {
  const ba = enclosing(a, b);
  const w = f(ba.right - ba.left);
  const h = f(ba.bot - ba.top);
  const c = f(f(w * w) + f(h * h));
  const iou = boxIou(a, b);
  if (c === 0) return iou;
  const dx = f(a.x - b.x);
  const dy = f(a.y - b.y);
  const d = f(f(dx * dx) + f(dy * dy));
  const u = f(Math.pow(f(d / c), exponent));
  return f(iou - u);
}

function cmpDesc(a: number, b: number): number {
  const diff = f(a - b);
  return diff < 0 ? 1 : diff > 0 ? -1 : 0;
}

/** darknet diounms_sort(): in place, like do_nms_sort (objectness-0 boxes moved to the end, stable sort per class). */
export function diounmsSort(dets: Detection[], classes: number, thresh: number, kind: Exclude<NmsKind, 'default'>, beta: number): void {
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
  const t = f(thresh);
  const b1 = f(beta);
  const positive: Detection[] = new Array(total);
  const rest: Detection[] = new Array(total);
  for (let c = 0; c < classes; ++c) {
    // Stable sort of the first `total` by prob[c] descending (glibc's qsort is a merge sort). With
    // no negative/NaN probabilities that is: positives stably sorted, then the zeros in order.
    let np = 0;
    let nr = 0;
    let exotic = false;
    for (let i = 0; i < total; ++i) {
      const p = dets[i].prob[c];
      if (p > 0) positive[np++] = dets[i];
      else if (p === 0) rest[nr++] = dets[i];
      else { exotic = true; break; }
    }
    let active = total;
    if (exotic) {
      const head = dets.slice(0, total).sort((a, b) => cmpDesc(a.prob[c], b.prob[c]));
      for (let i = 0; i < total; ++i) dets[i] = head[i];
    } else {
      if (np === 0) continue; // all keys equal: the stable sort changes nothing
      const head = positive.slice(0, np).sort((a, b) => cmpDesc(a.prob[c], b.prob[c]));
      for (let i = 0; i < np; ++i) dets[i] = head[i];
      for (let i = 0; i < nr; ++i) dets[np + i] = rest[i];
      active = np; // the zeros after them cannot suppress or be suppressed
    }
    for (let i = 0; i < active; ++i) {
      if (dets[i].prob[c] === 0) continue;
      const a = dets[i].box;
      for (let j = i + 1; j < active; ++j) {
        const dj = dets[j];
        if (dj.prob[c] === 0) continue; // zeroing again changes nothing
        const b = dj.box;
        let suppress: boolean;
        if (kind === 'cornersnms') suppress = boxIou(a, b) > t;
        else if (kind === 'greedynms') suppress = boxDiou(a, b) > t;
        else suppress = boxDiou(a, b, b1) > t;
        if (suppress) dj.prob[c] = 0;
      }
    }
  }
}

/** The NMS darknet's `detector test` / `map` apply for this model. */
export function applyNms(dets: Detection[], classes: number, nms: { kind: NmsKind; beta: number }, thresh = 0.45): void {
  if (!(thresh > 0) || dets.length === 0) return;
  if (nms.kind === 'default') doNmsSort(dets, classes, thresh);
  else diounmsSort(dets, classes, thresh, nms.kind, nms.beta);
}
