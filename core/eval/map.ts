// mAP exactly as AlexeyAB `darknet detector map` computes it (src/detector.c, validate_detector_map).
//
// Per image (in the order images are added):
//   * NMS: do_nms_sort(dets, classes, 0.45), or diounms_sort for a model whose nms_kind is not the
//     default (skipped with nms: 0, e.g. when already applied).
//   * Every (detection, class) pair with prob > 0 becomes a ranked entry, in darknet's order:
//     detection array order after NMS, then class id.
//   * The entry is matched to the same-class truth of this image with the highest IoU among those
//     with IoU > iouThresh (strict; on equal IoU the first truth wins).
//   * Entries not matched to a truth but matching a "difficult" truth (IoU > iouThresh, same class)
//     are dropped from the ranking (darknet's `difficult=` list).
//   * Statistics at conf thresh (thresh_calc_avg_iou, 0.25 for `detector map`): an entry with
//     prob > thresh is a TP when it matched a truth that no earlier entry of the same image
//     (any prob, array order) matched; otherwise an FP. Its IoU is added to the IoU sum when TP.
// Then all entries of all images are sorted by prob descending (stable, like glibc's merge-sort
// qsort), walked once: an entry matched to a not-yet-claimed truth is a TP, else an FP. Per class,
// precision = TP/(TP+FP) and recall = TP/(truths of the class) after every entry give the PR curve,
// and AP is its area (points = 0) or the mean of interpolated precision at 11 / 101 recall points.
// mAP = mean of AP over ALL classes (classes without truths count, with AP 0).
//
// Memory: per ranked entry only (prob, class, matched truth); images are not kept, so
// MapAccumulator can stream arbitrarily large datasets. Time: O(N log N) in ranked entries.

import { boxIou, type Box, type Detection } from './boxes';
import { diounmsSort, type NmsKind } from './nms';

const f = Math.fround;

export interface MapTruth {
  classId: number;
  box: Box;
}

export interface MapImage {
  /** Boxes relative to the image (after correctBoxes). prob[] below the detection threshold = 0. */
  detections: Detection[];
  truths: MapTruth[];
  /**
   * Optional "difficult" objects (darknet's `difficult=` label list, which holds all objects
   * including the difficult ones): a detection matching none of `truths` but one of these is
   * ignored instead of being counted as a false positive in the ranking.
   */
  difficult?: MapTruth[];
}

export type MapPoints = 0 | 11 | 101;

export interface MapOptions {
  /** 0 = area under the PR curve (darknet default), 11 = VOC2007, 101 = COCO. */
  points?: MapPoints;
  /** IoU needed to match a truth (strict >). Default 0.5. */
  iouThresh?: number;
  /** thresh_calc_avg_iou: confidence for the TP/FP/precision/recall/F1/avg-IoU figures. Default 0.25. */
  thresh?: number;
  /** NMS threshold applied per image with do_nms_sort; 0 disables. Default 0.45. */
  nms?: number;
  /**
   * The model's `nms_kind` (last [yolo] layer): 'default' → do_nms_sort; 'greedynms' / 'diounms' /
   * 'cornersnms' → diounms_sort, as validate_detector_map does. Default 'default'.
   */
  nmsKind?: NmsKind;
  /** `beta_nms` of the [yolo] layer, used by nmsKind 'diounms'. Default 0.6. */
  betaNms?: number;
  names?: string[];
}

export interface ClassAp {
  id: number;
  name: string;
  /** Average precision, 0..1. */
  ap: number;
  /** TP / FP among this class's detections with prob > thresh (what darknet prints per class). */
  tp: number;
  fp: number;
  /** Number of ground-truth objects of this class. */
  truths: number;
  /** Ranked (prob > 0) entries of this class. */
  detections: number;
}

export interface MapResult {
  /** Mean AP over all `classes` (0..1). */
  mAP: number;
  points: MapPoints;
  /** IoU threshold used for matching. */
  iou: number;
  /** Confidence threshold of precision / recall / f1 / averageIoU / tp / fp / fn. */
  thresh: number;
  images: number;
  classes: ClassAp[];
  precision: number;
  recall: number;
  f1: number;
  /** darknet's "average IoU": sum of TP IoUs / (TP + FP), at `thresh`. */
  averageIoU: number;
  tp: number;
  fp: number;
  fn: number;
  /** detections_count and unique_truth_count as darknet prints them. */
  detections: number;
  truths: number;
}

/** Growable typed columns of ranked entries. */
class EntryColumns {
  prob = new Float32Array(1024);
  cls = new Int32Array(1024);
  truth = new Int32Array(1024); // global unique truth index, -1 when unmatched
  length = 0;

  push(p: number, c: number, t: number): void {
    if (this.length === this.prob.length) this.grow();
    this.prob[this.length] = p;
    this.cls[this.length] = c;
    this.truth[this.length] = t;
    this.length++;
  }

  private grow(): void {
    const n = this.prob.length * 2;
    const p = new Float32Array(n);
    p.set(this.prob);
    const c = new Int32Array(n);
    c.set(this.cls);
    const t = new Int32Array(n);
    t.set(this.truth);
    this.prob = p;
    this.cls = c;
    this.truth = t;
  }
}

/** Streaming mAP: add() images one at a time, then result(). */
export class MapAccumulator {
  readonly classes: number;
  private readonly points: MapPoints;
  private readonly iouThresh: number; // float32, as darknet compares
  private readonly thresh: number; // float32
  private readonly iouOption: number;
  private readonly threshOption: number;
  private readonly nms: number;
  private readonly nmsKind: NmsKind;
  private readonly betaNms: number;
  private readonly names: string[] | undefined;

  private readonly entries = new EntryColumns();
  private readonly truthCount: Int32Array;
  private readonly tpPerClass: Int32Array;
  private readonly fpPerClass: Int32Array;
  private uniqueTruths = 0;
  private tpThresh = 0;
  private fpThresh = 0;
  private iouSum = 0; // float accumulator, as darknet's `float avg_iou`
  private imageCount = 0;

  constructor(classes: number, opts: MapOptions = {}) {
    if (!Number.isInteger(classes) || classes <= 0) throw new RangeError(`classes must be a positive integer, got ${classes}`);
    const points = opts.points ?? 0;
    if (points !== 0 && points !== 11 && points !== 101) throw new RangeError(`points must be 0, 11 or 101, got ${points}`);
    this.classes = classes;
    this.points = points;
    this.iouOption = opts.iouThresh ?? 0.5;
    this.threshOption = opts.thresh ?? 0.25;
    this.iouThresh = f(this.iouOption);
    this.thresh = f(this.threshOption);
    this.nms = opts.nms ?? 0.45;
    this.nmsKind = opts.nmsKind ?? 'default';
    this.betaNms = opts.betaNms ?? 0.6;
    this.names = opts.names;
    this.truthCount = new Int32Array(classes);
    this.tpPerClass = new Int32Array(classes);
    this.fpPerClass = new Int32Array(classes);
  }

  get images(): number {
    return this.imageCount;
  }

  add(image: MapImage): void {
    const classes = this.classes;
    const truths = image.truths;
    for (const t of truths) {
      if (!Number.isInteger(t.classId) || t.classId < 0 || t.classId >= classes) {
        throw new RangeError(`truth class id ${t.classId} out of range 0..${classes - 1} (image ${this.imageCount})`);
      }
    }
    for (const t of truths) this.truthCount[t.classId]++;

    let dets = image.detections;
    if (this.nms > 0 && dets.length > 1) {
      // darknet mutates its own detections; work on copies so the caller's stay intact.
      dets = dets.map((d) => ({ box: d.box, objectness: d.objectness, prob: d.prob.slice(), classes: d.classes }));
      diounmsSort(dets, classes, this.nms, this.nmsKind, this.betaNms);
    }

    const difficult = image.difficult ?? [];
    const base = this.uniqueTruths;
    const claimedHere = new Uint8Array(truths.length); // "found" among earlier entries of this image
    const iouThresh = this.iouThresh;
    const thresh = this.thresh;

    for (const d of dets) {
      const nc = Math.min(classes, d.prob.length);
      for (let c = 0; c < nc; ++c) {
        const p = d.prob[c];
        if (!(p > 0)) continue;
        let truthIndex = -1;
        let maxIou = 0;
        for (let j = 0; j < truths.length; ++j) {
          const t = truths[j];
          if (t.classId !== c) continue;
          const iou = boxIou(d.box, t.box);
          if (iou > iouThresh && iou > maxIou) {
            maxIou = iou;
            truthIndex = j;
          }
        }
        let dropped = false;
        if (truthIndex < 0) {
          for (const t of difficult) {
            if (t.classId === c && boxIou(d.box, t.box) > iouThresh) {
              dropped = true;
              break;
            }
          }
        }
        if (!dropped) this.entries.push(p, c, truthIndex < 0 ? -1 : base + truthIndex);

        if (p > thresh) {
          // darknet counts a dropped (difficult) entry as an FP here too: its truth_index is -1.
          if (truthIndex >= 0 && !claimedHere[truthIndex]) {
            this.iouSum = f(this.iouSum + maxIou);
            this.tpThresh++;
            this.tpPerClass[c]++;
          } else {
            this.fpThresh++;
            this.fpPerClass[c]++;
          }
        }
        if (truthIndex >= 0 && !dropped) claimedHere[truthIndex] = 1;
      }
    }
    this.uniqueTruths += truths.length;
    this.imageCount++;
  }

  result(): MapResult {
    const classes = this.classes;
    const n = this.entries.length;
    const prob = this.entries.prob;
    const cls = this.entries.cls;
    const truth = this.entries.truth;

    // Global ranking: prob desc, ties in insertion order (stable).
    const order = new Uint32Array(n);
    for (let i = 0; i < n; ++i) order[i] = i;
    order.sort((a, b) => {
      const d = f(prob[b] - prob[a]);
      return d > 0 ? 1 : d < 0 ? -1 : a - b;
    });

    // Bucket the ranked entries by class, keeping rank order inside each class.
    const perClass = new Int32Array(classes + 1);
    for (let i = 0; i < n; ++i) perClass[cls[i] + 1]++;
    for (let c = 0; c < classes; ++c) perClass[c + 1] += perClass[c];
    const fill = perClass.slice(0, classes);
    const precision = new Float64Array(n);
    const recall = new Float64Array(n);
    const claimed = new Uint8Array(this.uniqueTruths);
    const tp = new Int32Array(classes);
    const fp = new Int32Array(classes);
    for (let r = 0; r < n; ++r) {
      const e = order[r];
      const c = cls[e];
      const t = truth[e];
      if (t >= 0 && !claimed[t]) {
        claimed[t] = 1;
        tp[c]++;
      } else {
        fp[c]++;
      }
      const k = fill[c]++;
      const objects = this.truthCount[c];
      const tpc = tp[c];
      const fpc = fp[c];
      precision[k] = tpc + fpc > 0 ? tpc / (tpc + fpc) : 0;
      // fn = objects - tp, so tp + fn = objects
      recall[k] = objects > 0 ? tpc / objects : 0;
    }

    const classResults: ClassAp[] = [];
    let sumAp = 0;
    for (let c = 0; c < classes; ++c) {
      const start = perClass[c];
      const end = perClass[c + 1];
      const ap = averagePrecision(precision, recall, start, end, this.points);
      sumAp += ap;
      classResults.push({
        id: c,
        name: this.names?.[c] ?? String(c),
        ap,
        tp: this.tpPerClass[c],
        fp: this.fpPerClass[c],
        truths: this.truthCount[c],
        detections: end - start,
      });
    }

    const tpT = this.tpThresh;
    const fpT = this.fpThresh;
    const fnT = this.uniqueTruths - tpT;
    const avgIou = tpT + fpT > 0 ? f(this.iouSum / (tpT + fpT)) : this.iouSum;
    const p = f(tpT / f(tpT + fpT));
    const rc = f(tpT / f(tpT + fnT));
    const f1 = f(f(f(2 * p) * rc) / f(p + rc));

    return {
      mAP: sumAp / classes,
      points: this.points,
      iou: this.iouOption,
      thresh: this.threshOption,
      images: this.imageCount,
      classes: classResults,
      precision: nanToZero(p),
      recall: nanToZero(rc),
      f1: nanToZero(f1),
      averageIoU: avgIou,
      tp: tpT,
      fp: fpT,
      fn: fnT,
      detections: n,
      truths: this.uniqueTruths,
    };
  }
}

/**
 * AP of one class from its own PR points [start, end) in rank order. Ranks of other classes leave
 * the class's point unchanged, so walking only its own points adds the same terms, in the same
 * order, as darknet's walk over all ranks (the extra terms are exact zeros).
 */
function averagePrecision(
  precision: Float64Array,
  recall: Float64Array,
  start: number,
  end: number,
  points: MapPoints,
): number {
  if (end <= start) return 0;
  let ap = 0;
  if (points === 0) {
    let lastRecall = recall[end - 1];
    let lastPrecision = precision[end - 1];
    for (let k = end - 2; k >= start; --k) {
      const delta = lastRecall - recall[k];
      lastRecall = recall[k];
      if (precision[k] > lastPrecision) lastPrecision = precision[k];
      ap += delta * lastPrecision;
    }
    // remaining area between recall 0 and the first point
    ap += (lastRecall - 0) * lastPrecision;
    return ap;
  }
  // Interpolated precision at `points` recall levels: max precision over points with
  // recall >= level. Recall is non-decreasing along the ranking, so use a suffix maximum.
  const m = end - start;
  const suffixMax = new Float64Array(m + 1);
  for (let k = m - 1; k >= 0; --k) {
    const pk = precision[start + k];
    suffixMax[k] = pk > suffixMax[k + 1] ? pk : suffixMax[k + 1];
  }
  let k = 0;
  for (let point = 0; point < points; ++point) {
    const level = (point * 1.0) / (points - 1);
    while (k < m && !(recall[start + k] >= level)) ++k;
    ap += suffixMax[k];
  }
  return ap / points;
}

function nanToZero(x: number): number {
  return Number.isNaN(x) ? 0 : x;
}

/** One-shot mAP over in-memory images; see MapAccumulator for the streaming form. */
export function computeMap(images: Iterable<MapImage>, classes: number, opts: MapOptions = {}): MapResult {
  const acc = new MapAccumulator(classes, opts);
  for (const image of images) acc.add(image);
  return acc.result();
}

/** darknet's summary lines, for logs and tests. */
export function formatMapReport(r: MapResult): string {
  const lines: string[] = [];
  for (const c of r.classes) {
    lines.push(`class_id = ${c.id}, name = ${c.name}, ap = ${(c.ap * 100).toFixed(2)}%   \t (TP = ${c.tp}, FP = ${c.fp}) `);
  }
  lines.push('');
  lines.push(
    ` for conf_thresh = ${r.thresh.toFixed(2)}, precision = ${r.precision.toFixed(2)}, recall = ${r.recall.toFixed(2)}, F1-score = ${r.f1.toFixed(2)} `,
  );
  lines.push(
    ` for conf_thresh = ${r.thresh.toFixed(2)}, TP = ${r.tp}, FP = ${r.fp}, FN = ${r.fn}, average IoU = ${(r.averageIoU * 100).toFixed(2)} % `,
  );
  lines.push('');
  lines.push(
    ` IoU threshold = ${(r.iou * 100).toFixed(0)} %, ${r.points ? `used ${r.points} Recall-points` : 'used Area-Under-Curve for each unique Recall'} `,
  );
  lines.push(
    ` mean average precision (mAP@${r.iou.toFixed(2)}) = ${r.mAP.toFixed(6)}, or ${(r.mAP * 100).toFixed(2)} % `,
  );
  return lines.join('\n');
}
