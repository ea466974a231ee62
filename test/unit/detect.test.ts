import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Detection } from '../../core/eval/boxes';
import { boxIou } from '../../core/eval/boxes';
import { cRound, detectionRecords, formatRecord, printfRound, selectDetections } from '../../core/onnx/detect';
import { boxDiou, diounmsSort } from '../../core/eval/nms';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';
import { runCli } from '../helpers/onnx';
import { rng } from '../helpers/synthetic';

const YF = (f: string) => corpusPath('weights', 'yolo-fastest-1.1_coco', f);

// `darknet detector test coco.data yolo-fastest-1.1.cfg yolo-fastest-1.1.weights dog.jpg -thresh 0.25 -ext_output`
// (name, percent, left, top, width, height), in darknet's printed order.
const DARKNET_DOG: [string, number, number, number, number, number][] = [
  ['person', 33, 63, 73, 48, 46],
  ['bicycle', 29, 80, 176, 368, 316],
  ['cat', 55, 112, 213, 258, 304],
  ['dog', 65, 122, 222, 244, 295],
  ['bicycle', 55, 245, 187, 342, 233],
  ['car', 37, 452, 78, 151, 86],
  ['car', 88, 454, 78, 230, 102],
  ['car', 44, 690, 116, 39, 38],
];

const LINE = /^(.+): (\d+)%\t\(left_x:\s+(-?\d+)\s+top_y:\s+(-?\d+)\s+width:\s+(-?\d+)\s+height:\s+(-?\d+)\)$/;

test('darkslim detect on dog.jpg gives darknet\'s detections (classes, boxes ±2 px, probabilities ±2 points)', { skip: NO_CORPUS }, async () => {
  const { code, stdout, stderr } = await runCli([
    'detect', YF('yolo-fastest-1.1.cfg'), YF('yolo-fastest-1.1.weights'), corpusPath('images', 'dog.jpg'), '--thresh', '0.25', '--threads', '2',
  ]);
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split('\n');
  assert.match(lines[0], /dog\.jpg: Predicted in [\d.]+ milli-seconds\.$/);
  const got = lines.slice(1).map((l) => {
    const m = LINE.exec(l);
    assert.ok(m, `not darknet's -ext_output format: ${JSON.stringify(l)}`);
    return [m[1], ...m.slice(2).map(Number)] as [string, number, number, number, number, number];
  });
  assert.equal(got.length, DARKNET_DOG.length, `got:\n${lines.slice(1).join('\n')}`);
  got.forEach((g, i) => {
    const want = DARKNET_DOG[i];
    assert.equal(g[0], want[0], `line ${i + 1}: class`);
    assert.ok(Math.abs(g[1] - want[1]) <= 2, `line ${i + 1} (${want[0]}): ${g[1]}% vs darknet ${want[1]}%`);
    const box = g.slice(2) as number[];
    const wantBox = want.slice(2) as number[];
    for (let k = 0; k < 4; k++) assert.ok(Math.abs(box[k] - wantBox[k]) <= 2, `line ${i + 1} (${want[0]}): box ${box} vs darknet ${wantBox}`);
  });
});

test('detect --json, an exported .onnx, and --out drawing', { skip: NO_CORPUS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'darkslim-detect-'));
  try {
    const onnx = join(dir, 'yf.onnx');
    const exp = await runCli(['export', YF('yolo-fastest-1.1.cfg'), YF('yolo-fastest-1.1.weights'), '--out', onnx]);
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stdout, /yolo_121 \[N, 300, 85\]/);
    const out = join(dir, 'annotated.png');
    const { code, stdout, stderr } = await runCli([
      'detect', YF('yolo-fastest-1.1.cfg'), onnx, corpusPath('images', 'dog.jpg'), '--json', '--out', out, '--threads', '1',
    ]);
    assert.equal(code, 0, stderr);
    const json = JSON.parse(stdout) as { image: string; detections: Record<string, unknown>[] }[];
    assert.equal(json.length, 1);
    assert.equal(json[0].image, corpusPath('images', 'dog.jpg'));
    assert.equal(json[0].detections.length, DARKNET_DOG.length);
    for (const d of json[0].detections) assert.deepEqual(Object.keys(d), ['class', 'name', 'prob', 'left', 'top', 'width', 'height']);
    const dog = json[0].detections.find((d) => d.name === 'dog')!;
    assert.equal(dog.class, 16);
    assert.ok(Math.abs((dog.prob as number) - 0.65) < 0.02);
    assert.ok(statSync(out).size > 1000);
    assert.deepEqual([...readFileSync(out).subarray(1, 4)], [0x50, 0x4e, 0x47]); // PNG
    // never overwrite an input
    const clash = await runCli(['detect', YF('yolo-fastest-1.1.cfg'), onnx, corpusPath('images', 'dog.jpg'), '--out', corpusPath('images', 'dog.jpg')]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /would overwrite the input/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('printed numbers follow C: round() half away from zero, %.0f half to even, %4.0f padding', () => {
  assert.equal(cRound(2.5), 3);
  assert.equal(cRound(-2.5), -3);
  assert.ok(Object.is(cRound(-0.3), -0));
  assert.equal(printfRound(64.5), 64);
  assert.equal(printfRound(65.5), 66);
  assert.equal(printfRound(64.4999), 64);
  const r = { class: 16, name: 'dog', prob: 0.6478, left: 122, top: 222, width: 244, height: 295 };
  assert.equal(formatRecord(r), 'dog: 65%\t(left_x:  122   top_y:  222   width:  244   height:  295)');
  assert.equal(formatRecord({ ...r, left: -0 }), 'dog: 65%\t(left_x:   -0   top_y:  222   width:  244   height:  295)');
  assert.equal(formatRecord(r, false), 'dog: 65%');
});

function det(x: number, y: number, w: number, h: number, probs: number[]): Detection {
  return { box: { x, y, w, h }, objectness: Math.max(...probs, 0.01), prob: Float32Array.from(probs), classes: probs.length };
}

test('selection and order: best class above thresh, dont_show skipped, sorted by left edge, other classes after', () => {
  const dets = [
    det(0.6, 0.5, 0.2, 0.2, [0.3, 0.9, 0]),
    det(0.2, 0.5, 0.2, 0.2, [0.5, 0, 0.4]),
    det(0.4, 0.5, 0.2, 0.2, [0.1, 0, 0]),
    det(0.3, 0.5, 0.1, 0.1, [0, 0, 0.8]),
  ];
  const names = ['a', 'b', 'dont_show_c'];
  const sel = selectDetections(dets, 0.25, names);
  assert.deepEqual(sel.map((s) => s.bestClass), [0, 1]);
  const recs = detectionRecords(dets, 100, 100, 0.25, names);
  assert.deepEqual(recs.map((r) => `${r.name}@${r.left}`), ['a@10', 'dont_show_c@10', 'b@50', 'a@50']);
});

test('greedynms suppresses with DIoU (exponent 0.6): darknet keeps both overlapping cars of dog.jpg', () => {
  // The two car boxes darknet prints (pixels of the 768x576 image), relative.
  const a = { x: (454 + 115) / 768, y: (78 + 51) / 576, w: 230 / 768, h: 102 / 576 };
  const b = { x: (452 + 75.5) / 768, y: (78 + 43) / 576, w: 151 / 768, h: 86 / 576 };
  assert.ok(boxIou(a, b) > 0.45, `IoU ${boxIou(a, b)}`);
  assert.ok(boxDiou(a, b) < 0.45, `DIoU ${boxDiou(a, b)}`);
  const dets = [det(b.x, b.y, b.w, b.h, [0, 0, 0.37]), det(a.x, a.y, a.w, a.h, [0, 0, 0.88])];
  diounmsSort(dets, 3, 0.45, 'greedynms', 0.6);
  assert.deepEqual(dets.map((d) => Math.round(d.prob[2] * 100)), [88, 37]);
});

test('NMS equals a literal transcription of darknet\'s diounms_sort / do_nms_sort (order and probabilities)', () => {
  const r = rng(99);
  const literal = (ds: Detection[], classes: number, thresh: number, kind: 'default' | 'greedynms' | 'diounms' | 'cornersnms', beta: number) => {
    let k = ds.length - 1;
    for (let i = 0; i <= k; ++i) if (ds[i].objectness === 0) { const s = ds[i]; ds[i] = ds[k]; ds[k] = s; --k; --i; }
    const total = k + 1;
    for (let c = 0; c < classes; c++) {
      const head = ds.slice(0, total).sort((x, y) => { const d = Math.fround(x.prob[c] - y.prob[c]); return d < 0 ? 1 : d > 0 ? -1 : 0; });
      for (let i = 0; i < total; i++) ds[i] = head[i];
      for (let i = 0; i < total; i++) {
        if (ds[i].prob[c] === 0) continue;
        for (let j = i + 1; j < total; j++) {
          const v = kind === 'cornersnms' || kind === 'default' ? boxIou(ds[i].box, ds[j].box) : boxDiou(ds[i].box, ds[j].box, kind === 'greedynms' ? 0.6 : beta);
          if (v > Math.fround(thresh)) ds[j].prob[c] = 0;
        }
      }
    }
  };
  for (let trial = 0; trial < 30; trial++) {
    const n = 5 + Math.floor(r() * 90); // up to ~50 positives a class: both sorting paths
    const dets: Detection[] = [];
    for (let i = 0; i < n; i++) {
      // odd trials draw from four values: many ties, which must keep their order (a stable sort)
      const probs = [0, 1, 2, 3].map(() => (r() < 0.5 ? 0 : Math.fround(trial % 2 ? Math.ceil(r() * 4) / 4 : r())));
      const d = det(r(), r(), 0.05 + r() * 0.4, 0.05 + r() * 0.4, probs);
      if (r() < 0.1) d.objectness = 0;
      dets.push(d);
    }
    for (const kind of ['default', 'greedynms', 'diounms', 'cornersnms'] as const) {
      const a = dets.map((d) => ({ ...d, prob: d.prob.slice() }));
      const b = dets.map((d) => ({ ...d, prob: d.prob.slice() }));
      diounmsSort(a, 4, 0.45, kind, 0.3);
      literal(b, 4, 0.45, kind, 0.3);
      assert.deepEqual(a.map((d) => [d.box.x, ...d.prob]), b.map((d) => [d.box.x, ...d.prob]), `trial ${trial} ${kind}`);
    }
  }
});
