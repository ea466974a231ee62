import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  boxIou,
  correctBoxes,
  detectionsFromDecoded,
  letterboxSize,
  type Box,
  type Detection,
} from '../../core/eval/boxes';
import { boxDiou, diounmsSort, doNmsSort } from '../../core/eval/nms';
import { computeMap, formatMapReport, MapAccumulator, type MapImage, type MapTruth } from '../../core/eval/map';

const box = (x: number, y: number, w: number, h: number): Box => ({ x, y, w, h });

function det(b: Box, probs: number[], objectness = 1): Detection {
  return { box: { ...b }, objectness, prob: Float32Array.from(probs), classes: probs.length };
}

const truth = (classId: number, b: Box): MapTruth => ({ classId, box: b });

/** Boxes far apart on a 0..1 canvas (IoU 0 with each other). */
const T = [box(0.1, 0.1, 0.1, 0.1), box(0.5, 0.1, 0.1, 0.1), box(0.9, 0.1, 0.1, 0.1), box(0.1, 0.9, 0.1, 0.1)];
const NOWHERE = box(0.5, 0.6, 0.1, 0.1);

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

describe('boxIou (darknet box.c, float32)', () => {
  test('identical, disjoint, touching, contained', () => {
    assert.equal(boxIou(box(0.5, 0.5, 0.25, 0.25), box(0.5, 0.5, 0.25, 0.25)), 1);
    // float32 like darknet: identical non-dyadic boxes can give slightly more than 1
    assert.equal(boxIou(box(0.5, 0.5, 0.2, 0.2), box(0.5, 0.5, 0.2, 0.2)), 1.000000238418579);
    assert.equal(boxIou(box(0.1, 0.1, 0.1, 0.1), box(0.9, 0.9, 0.1, 0.1)), 0);
    assert.equal(boxIou(box(0.25, 0.5, 0.5, 0.5), box(0.75, 0.5, 0.5, 0.5)), 0); // edges touch: I = 0
    assert.equal(boxIou(box(0.5, 0.5, 0.5, 0.5), box(0.5, 0.5, 0.25, 0.5)), 0.5);
    // half overlap: I = 0.25*0.5, U = 2*0.25 - 0.125 → 1/3 in float32
    assert.equal(boxIou(box(0.25, 0.5, 0.5, 0.5), box(0.5, 0.5, 0.5, 0.5)), Math.fround(0.125 / 0.375));
  });

  test('zero-area boxes give 0, not NaN', () => {
    assert.equal(boxIou(box(0.5, 0.5, 0, 0), box(0.5, 0.5, 0, 0)), 0);
  });
});

describe('doNmsSort (darknet do_nms_sort)', () => {
  test('suppresses lower-scored overlapping boxes per class by zeroing their prob', () => {
    const a = det(box(0.5, 0.5, 0.4, 0.4), [0.9, 0]);
    const b = det(box(0.52, 0.5, 0.4, 0.4), [0.8, 0.7]); // IoU with a ≈ 0.9
    const c = det(box(0.1, 0.1, 0.1, 0.1), [0.7, 0]);
    const dets = [c, b, a];
    doNmsSort(dets, 2, 0.45);
    assert.equal(a.prob[0], Math.fround(0.9));
    assert.equal(b.prob[0], 0, 'b suppressed by a in class 0');
    assert.equal(b.prob[1], Math.fround(0.7), 'class 1 untouched: a has no class-1 prob');
    assert.equal(c.prob[0], Math.fround(0.7));
    assert.equal(dets.length, 3, 'boxes are never removed');
  });

  test('a suppressed box does not suppress others (chain A→B→C keeps C)', () => {
    const A = det(box(0.3, 0.5, 0.4, 0.4), [0.9]);
    const B = det(box(0.4, 0.5, 0.4, 0.4), [0.8]); // IoU(A,B) = 0.6
    const C = det(box(0.5, 0.5, 0.4, 0.4), [0.7]); // IoU(B,C) = 0.6, IoU(A,C) = 1/3
    doNmsSort([C, B, A], 1, 0.45);
    assert.equal(B.prob[0], 0);
    assert.equal(C.prob[0], Math.fround(0.7));
  });

  test('IoU exactly at the NMS threshold is kept (strict >)', () => {
    const A = det(box(0.5, 0.5, 0.5, 0.5), [0.9]);
    const B = det(box(0.5, 0.5, 0.25, 0.5), [0.8]); // IoU exactly 0.5
    doNmsSort([A, B], 1, 0.5);
    assert.equal(B.prob[0], Math.fround(0.8));
    doNmsSort([A, B], 1, 0.49);
    assert.equal(B.prob[0], 0);
  });

  test('nms_kind: greedynms / diounms suppress on DIoU (diounms_sort), default on IoU', () => {
    const A = box(0.3, 0.5, 0.4, 0.4);
    const B = box(0.4, 0.5, 0.4, 0.4); // IoU 0.6; enclosing 0.5 x 0.4 → c = 0.41, d = 0.01
    const diou = 0.6 - Math.pow(0.01 / 0.41, 0.6);
    close(boxDiou(A, B), diou, 1e-6);
    close(boxDiou(A, B, 1), 0.6 - 0.01 / 0.41, 1e-6);
    close(boxDiou(A, A), 1, 1e-6); // d = 0: plain IoU (float32)
    const run = (fn: (d: Detection[]) => void) => {
      const d = [det(A, [0.9]), det(B, [0.8])];
      fn(d);
      return d[1].prob[0];
    };
    assert.equal(run((d) => doNmsSort(d, 1, 0.5)), 0);
    assert.equal(run((d) => diounmsSort(d, 1, 0.5, 'default')), 0);
    assert.equal(run((d) => diounmsSort(d, 1, 0.5, 'cornersnms')), 0);
    assert.equal(run((d) => diounmsSort(d, 1, 0.5, 'greedynms')), Math.fround(0.8)); // DIoU ≈ 0.49
    assert.equal(run((d) => diounmsSort(d, 1, 0.45, 'greedynms')), 0);
    assert.equal(run((d) => diounmsSort(d, 1, 0.5, 'diounms', 0.6)), Math.fround(0.8));
    assert.equal(run((d) => diounmsSort(d, 1, 0.5, 'diounms', 1)), 0); // 0.6 - 0.024 > 0.5
    const img: MapImage = { truths: [truth(0, A)], detections: [det(A, [0.9]), det(B, [0.8])] };
    assert.equal(computeMap([img], 1, { nms: 0.5 }).detections, 1);
    assert.equal(computeMap([img], 1, { nms: 0.5, nmsKind: 'greedynms' }).detections, 2);
  });

  test('objectness 0 detections move to the end and are left alone', () => {
    const z = det(box(0.5, 0.5, 0.4, 0.4), [0.5], 0);
    const a = det(box(0.5, 0.5, 0.4, 0.4), [0.9]);
    const dets = [z, a];
    doNmsSort(dets, 1, 0.45);
    assert.equal(dets[1], z);
    assert.equal(z.prob[0], Math.fround(0.5), 'not suppressed: excluded from NMS');
  });

  test('final order: sorted by the last class prob, ties keep their order (stable, as glibc qsort)', () => {
    const p = det(box(0.1, 0.1, 0.05, 0.05), [0.9, 0.2]);
    const q = det(box(0.3, 0.3, 0.05, 0.05), [0.1, 0.6]);
    const r = det(box(0.5, 0.5, 0.05, 0.05), [0.5, 0.2]);
    const s = det(box(0.7, 0.7, 0.05, 0.05), [0.3, 0]);
    const dets = [p, q, r, s];
    doNmsSort(dets, 2, 0.45);
    assert.deepEqual(dets, [q, p, r, s]);
  });
});

describe('detectionsFromDecoded / correctBoxes', () => {
  test('keeps rows with objectness > thresh; prob = obj*cls when > thresh else 0', () => {
    const rows = Float32Array.from([
      0.5, 0.5, 0.2, 0.2, 0.9, 0.5, 0.001, // kept: probs 0.45, 0 (0.0009 <= thresh)
      0.1, 0.1, 0.1, 0.1, 0.005, 1, 1, // objectness == thresh: dropped (strict >)
      0.2, 0.3, 0.1, 0.1, 0.006, 1, 0.5, // kept: 0.006, 0 (0.003)
    ]);
    const d = detectionsFromDecoded(rows, 3, 2, 0.005);
    assert.equal(d.length, 2);
    assert.deepEqual(Array.from(d[0].prob), [Math.fround(Math.fround(0.9) * Math.fround(0.5)), 0]);
    assert.deepEqual(Array.from(d[1].prob), [Math.fround(0.006), 0]);
    assert.equal(d[1].box.y, Math.fround(0.3));
    assert.equal(d[0].classes, 2);
    assert.throws(() => detectionsFromDecoded(rows, 4, 2, 0.005), /need/);
  });

  test('letterbox size and correction undo the padding; no letterbox is the identity', () => {
    assert.deepEqual(letterboxSize(768, 576, 416, 416), { newW: 416, newH: 312 });
    assert.deepEqual(letterboxSize(576, 768, 416, 416), { newW: 312, newH: 416 });
    const d = [det(box(0.5, 0.5, 0.5, 0.375), [1]), det(box(0.25, 0.125, 0.5, 0.1875), [1])];
    correctBoxes(d, 768, 576, 416, 416, true);
    assert.deepEqual(d[0].box, box(0.5, 0.5, 0.5, 0.5));
    // y: (0.125 - 52/416) / 0.75 = 0, h: 0.1875 / 0.75 = 0.25
    assert.deepEqual(d[1].box, box(0.25, 0, 0.5, 0.25));
    const e = [det(box(0.3, 0.4, 0.2, 0.1), [1])];
    correctBoxes(e, 768, 576, 416, 416, false);
    assert.deepEqual(e[0].box, box(Math.fround(0.3), Math.fround(0.4), Math.fround(0.2), Math.fround(0.1)));
  });
});

/** One class, three truths; ranking TP(0.9) FP(0.8) TP(0.7) FP(0.6). */
function fourDetImage(): MapImage {
  return {
    truths: [truth(0, T[0]), truth(0, T[1]), truth(0, T[2])],
    detections: [det(T[0], [0.9]), det(NOWHERE, [0.8]), det(T[1], [0.7]), det(T[3], [0.6])],
  };
}

describe('computeMap (darknet validate_detector_map)', () => {
  test('points = 0: area under the PR curve, hand computed', () => {
    // precision 1, 1/2, 2/3, 1/2; recall 1/3, 1/3, 2/3, 2/3
    // AP = (2/3-1/3)*max(p>=rank1) + (1/3-0)*1 = 1/3*2/3 + 1/3 = 5/9
    const r = computeMap([fourDetImage()], 1, { nms: 0, names: ['thing'] });
    close(r.mAP, 5 / 9);
    close(r.classes[0].ap, 5 / 9);
    assert.equal(r.points, 0);
    assert.equal(r.iou, 0.5);
    assert.equal(r.images, 1);
    assert.equal(r.detections, 4);
    assert.equal(r.truths, 3);
    assert.deepEqual({ tp: r.tp, fp: r.fp, fn: r.fn }, { tp: 2, fp: 2, fn: 1 });
    assert.deepEqual({ tp: r.classes[0].tp, fp: r.classes[0].fp, truths: r.classes[0].truths }, { tp: 2, fp: 2, truths: 3 });
    close(r.precision, 0.5, 1e-7);
    close(r.recall, 2 / 3, 1e-7);
    close(r.f1, (2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3), 1e-6);
    close(r.averageIoU, 0.5, 1e-6); // (1 + 1) / (TP + FP) — darknet divides by TP+FP
  });

  test('points = 11 (VOC2007) and 101 (COCO), hand computed', () => {
    // 11: recall levels 0..0.3 → 1 (4 levels), 0.4..0.6 → 2/3 (3), 0.7..1 → 0: (4 + 2)/11
    close(computeMap([fourDetImage()], 1, { nms: 0, points: 11 }).mAP, 6 / 11);
    // 101: levels 0..0.33 → 1 (34), 0.34..0.66 → 2/3 (33), above → 0: (34 + 22)/101
    close(computeMap([fourDetImage()], 1, { nms: 0, points: 101 }).mAP, 56 / 101);
  });

  test('ties in score keep insertion order (image, detection, class) in the ranking', () => {
    const fpFirst: MapImage = {
      truths: [truth(0, T[0]), truth(0, T[1])],
      detections: [det(NOWHERE, [0.8]), det(T[0], [0.8]), det(T[1], [0.5])],
    };
    // FP, TP, TP → p 0, 1/2, 2/3; r 0, 1/2, 1 → AP = 1/2*2/3 + 1/2*2/3 = 2/3
    close(computeMap([fpFirst], 1, { nms: 0 }).mAP, 2 / 3);
    const tpFirst: MapImage = { truths: fpFirst.truths, detections: [fpFirst.detections[1], fpFirst.detections[0], fpFirst.detections[2]] };
    // TP, FP, TP → p 1, 1/2, 2/3; r 1/2, 1/2, 1 → AP = 1/2*2/3 + 1/2*1 = 5/6
    close(computeMap([tpFirst], 1, { nms: 0 }).mAP, 5 / 6);
    // 11 points on the FP-first order: all levels → max precision with recall >= level = 2/3
    close(computeMap([fpFirst], 1, { nms: 0, points: 11 }).mAP, 2 / 3);
    // across images: the earlier image's entry ranks first
    const a: MapImage = { truths: [], detections: [det(NOWHERE, [0.8])] };
    const b: MapImage = { truths: [truth(0, T[0])], detections: [det(T[0], [0.8])] };
    close(computeMap([a, b], 1, { nms: 0 }).mAP, 0.5); // FP, TP → 1 * 1/2
    close(computeMap([b, a], 1, { nms: 0 }).mAP, 1); // TP, FP
  });

  test('no detections at all: every AP 0, nothing divided by zero', () => {
    const r = computeMap([{ truths: [truth(0, T[0]), truth(1, T[1])], detections: [] }], 2);
    assert.equal(r.mAP, 0);
    assert.deepEqual(r.classes.map((c) => c.ap), [0, 0]);
    assert.deepEqual({ tp: r.tp, fp: r.fp, fn: r.fn, detections: r.detections }, { tp: 0, fp: 0, fn: 2, detections: 0 });
    assert.equal(r.precision, 0); // darknet prints -nan (0/0)
    assert.equal(r.recall, 0);
    assert.equal(r.f1, 0);
    assert.equal(r.averageIoU, 0);
    const empty = computeMap([], 3);
    assert.equal(empty.mAP, 0);
    assert.equal(empty.images, 0);
  });

  test('a class without labels has AP 0 and still counts in the mean (darknet divides by all classes)', () => {
    const withFp: MapImage = { truths: [truth(0, T[0])], detections: [det(T[0], [0.9, 0]), det(T[2], [0, 0.8])] };
    const r = computeMap([withFp], 2, { nms: 0 });
    assert.equal(r.classes[0].ap, 1);
    assert.equal(r.classes[1].ap, 0);
    assert.equal(r.classes[1].truths, 0);
    assert.equal(r.classes[1].fp, 1);
    close(r.mAP, 0.5);
    const noDets: MapImage = { truths: [truth(0, T[0])], detections: [det(T[0], [0.9, 0])] };
    close(computeMap([noDets], 2, { nms: 0 }).mAP, 0.5);
  });

  test('a class with truths but no detections has AP 0', () => {
    const img: MapImage = { truths: [truth(0, T[0]), truth(1, T[1])], detections: [det(T[0], [0.9, 0])] };
    const r = computeMap([img], 2, { nms: 0 });
    assert.deepEqual(r.classes.map((c) => c.ap), [1, 0]);
    assert.equal(r.fn, 1);
  });

  test('duplicate detections on one truth: the second is a false positive', () => {
    const img: MapImage = {
      truths: [truth(0, T[0])],
      detections: [det(T[0], [0.9]), det(box(0.1, 0.1, 0.1, 0.09), [0.8])], // IoU 0.9
    };
    const r = computeMap([img], 1, { nms: 0 });
    assert.equal(r.mAP, 1); // TP then FP: recall reaches 1 at precision 1
    assert.deepEqual({ tp: r.tp, fp: r.fp }, { tp: 1, fp: 1 });
    close(computeMap([img], 1, { nms: 0, points: 11 }).mAP, 1);
    // with the default NMS (0.45) the duplicate is suppressed before matching
    const n = computeMap([img], 1);
    assert.deepEqual({ tp: n.tp, fp: n.fp, detections: n.detections }, { tp: 1, fp: 0, detections: 1 });
  });

  test('a detection matches the same-class truth with the best IoU', () => {
    const near = box(0.5, 0.5, 0.4, 0.4);
    const t1 = box(0.5, 0.5, 0.4, 0.3); // IoU 0.75
    const t2 = box(0.5, 0.5, 0.4, 0.38); // IoU 0.95
    const img: MapImage = { truths: [truth(0, t1), truth(0, t2), truth(1, near)], detections: [det(near, [0.9, 0]), det(t1, [0.8, 0])] };
    const r = computeMap([img], 2, { nms: 0 });
    // det 1 takes t2 (best IoU), det 2 takes t1: both TP; class 1 truth never detected
    assert.equal(r.classes[0].ap, 1);
    assert.equal(r.classes[1].ap, 0);
    assert.equal(r.tp, 2);
  });

  test('IoU exactly at the threshold does not match (strict >)', () => {
    const img: MapImage = { truths: [truth(0, box(0.5, 0.5, 0.5, 0.5))], detections: [det(box(0.5, 0.5, 0.25, 0.5), [0.9])] };
    const at = computeMap([img], 1, { nms: 0, iouThresh: 0.5 });
    assert.equal(at.mAP, 0);
    assert.deepEqual({ tp: at.tp, fp: at.fp }, { tp: 0, fp: 1 });
    assert.equal(computeMap([img], 1, { nms: 0, iouThresh: 0.49 }).mAP, 1);
  });

  test('conf-thresh figures: only prob > thresh counts; a truth claimed earlier in array order makes an FP', () => {
    const img: MapImage = {
      truths: [truth(0, T[0])],
      // a low-scored detection precedes the good one in the detection array
      detections: [det(box(0.1, 0.1, 0.1, 0.09), [0.2]), det(T[0], [0.9])],
    };
    const r = computeMap([img], 1, { nms: 0 });
    assert.equal(r.mAP, 1, 'ranking: 0.9 is the TP');
    // darknet's thresh check looks at all earlier entries of the image, whatever their prob:
    // the 0.2 entry (not counted, below 0.25) already claimed the truth, so 0.9 counts as FP.
    assert.deepEqual({ tp: r.tp, fp: r.fp, fn: r.fn }, { tp: 0, fp: 1, fn: 1 });
    const low = computeMap([img], 1, { nms: 0, thresh: 0.1 });
    assert.deepEqual({ tp: low.tp, fp: low.fp }, { tp: 1, fp: 1 });
    close(low.averageIoU, Math.fround(0.9) / 2, 1e-7);
  });

  test('difficult truths: a detection only on a difficult object leaves the ranking', () => {
    const hard = box(0.5, 0.5, 0.2, 0.2);
    const img: MapImage = {
      truths: [truth(0, T[0])],
      difficult: [truth(0, T[0]), truth(0, hard)],
      detections: [det(T[0], [0.7]), det(hard, [0.9])],
    };
    const r = computeMap([img], 1, { nms: 0 });
    assert.equal(r.detections, 1);
    assert.equal(r.mAP, 1);
    // darknet still counts the dropped entry as an FP at conf thresh (its truth index is -1)
    assert.deepEqual({ tp: r.tp, fp: r.fp }, { tp: 1, fp: 1 });
  });

  test('NMS is applied per image by default and does not mutate the caller\'s detections', () => {
    const a = det(T[0], [0.9]);
    const b = det(box(0.1, 0.1, 0.1, 0.09), [0.8]);
    computeMap([{ truths: [], detections: [b, a] }], 1);
    assert.equal(b.prob[0], Math.fround(0.8));
  });

  test('streaming accumulator equals one-shot computation', () => {
    const images: MapImage[] = [];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < 40; ++i) {
      const truths: MapTruth[] = [];
      const detections: Detection[] = [];
      for (let j = 0; j < 4; ++j) {
        const b = box(0.1 + 0.8 * rnd(), 0.1 + 0.8 * rnd(), 0.05 + 0.2 * rnd(), 0.05 + 0.2 * rnd());
        truths.push(truth(j % 3, b));
        const jitter = box(b.x + 0.02 * (rnd() - 0.5), b.y + 0.02 * (rnd() - 0.5), b.w, b.h);
        const probs = [0, 0, 0];
        probs[rnd() < 0.8 ? j % 3 : (j + 1) % 3] = 0.01 + 0.98 * rnd();
        detections.push(det(jitter, probs));
      }
      images.push({ truths, detections });
    }
    const acc = new MapAccumulator(3, { points: 101 });
    for (const im of images) acc.add(im);
    const streamed = acc.result();
    const once = computeMap(images, 3, { points: 101 });
    assert.deepEqual(streamed, once);
    assert.ok(once.mAP > 0.3 && once.mAP < 1, `plausible mAP ${once.mAP}`);
  });

  test('O(N log N): 200k ranked entries in well under a second', () => {
    const images: MapImage[] = [];
    for (let i = 0; i < 2000; ++i) {
      const detections: Detection[] = [];
      for (let j = 0; j < 100; ++j) detections.push(det(box((j % 10) / 10 + 0.05, Math.floor(j / 10) / 10 + 0.05, 0.05, 0.05), [((i * 31 + j * 17) % 997) / 997 + 0.001]));
      images.push({ truths: [truth(0, box(0.05, 0.05, 0.05, 0.05))], detections });
    }
    const t0 = performance.now();
    const r = computeMap(images, 1, { nms: 0 });
    const ms = performance.now() - t0;
    assert.equal(r.detections, 200000);
    assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
  });

  test('validation and report', () => {
    assert.throws(() => computeMap([{ truths: [truth(2, T[0])], detections: [] }], 2), /class id 2/);
    assert.throws(() => new MapAccumulator(0), /classes/);
    // @ts-expect-error invalid points on purpose
    assert.throws(() => new MapAccumulator(1, { points: 12 }), /points/);
    const text = formatMapReport(computeMap([fourDetImage()], 1, { nms: 0, names: ['thing'] }));
    assert.match(text, /class_id = 0, name = thing, ap = 55\.56%\s+\(TP = 2, FP = 2\)/);
    assert.match(text, /mean average precision \(mAP@0\.50\) = 0\.555556, or 55\.56 %/);
    assert.match(text, /used Area-Under-Curve/);
  });
});
