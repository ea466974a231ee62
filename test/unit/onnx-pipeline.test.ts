import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { loadDataset } from '../../core/data/dataset';
import { loadImage, prepareInput, rgbFromInterleaved } from '../../core/data/image';
import { Detector } from '../../core/onnx/detect';
import { evaluate } from '../../core/onnx/evaluate';
import { decodeForNetwork, inputFromInterleaved } from '../../core/onnx/fastprep';
import { loadDarknet } from '../../core/onnx/model';
import { type HelperReply, HelperJobs, ImagePrefetcher } from '../../core/onnx/prefetch';
import { createProgress } from '../../core/onnx/progress';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';
import { runCli } from '../helpers/onnx';

const COCO128 = () => corpusPath('datasets', 'coco128', 'train.txt');
const cocoImages = () => {
  const dir = corpusPath('datasets', 'coco128', 'images', 'train2017');
  return readdirSync(dir).sort().map((f) => `${dir}/${f}`);
};
const YF = (f: string) => corpusPath('weights', 'yolo-fastest-1.1_coco', f);

test('the prefetcher\'s decoding equals core/data loadImage + prepareInput, bit for bit', { skip: NO_CORPUS }, async () => {
  const files = [...cocoImages().slice(0, 4), corpusPath('images', 'dog.jpg'), corpusPath('images', 'person.jpg')];
  for (const file of files) {
    const img = await loadImage(file);
    for (const [w, h, lb] of [[320, 320, false], [352, 288, false], [320, 320, true], [352, 288, true], [img.width, img.height, false]] as const) {
      const want = prepareInput(img, w, h, lb).tensor;
      const got = await decodeForNetwork(file, w, h, lb);
      assert.equal(got.width, img.width);
      assert.equal(got.height, img.height);
      assert.equal(got.tensor.length, want.length);
      let diff = -1;
      for (let i = 0; i < want.length; i++) if (got.tensor[i] !== want[i]) { diff = i; break; }
      assert.equal(diff, -1, `${file} ${w}x${h} letterbox=${lb}: first difference at ${diff}`);
    }
  }
});

test('inputFromInterleaved equals core/data rgbFromInterleaved + prepareInput on synthetic images of every shape', () => {
  // seeded bytes; sizes cover down- and upscaling, 1-pixel rows/columns, same size, tall and wide
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  const shapes: [number, number][] = [[640, 480], [427, 640], [37, 23], [1, 9], [9, 1], [1, 1], [64, 64], [2, 2], [300, 17]];
  const targets: [number, number][] = [[320, 320], [352, 288], [5, 7], [1, 1], [1, 6], [6, 1], [150, 100]];
  for (const [iw, ih] of shapes) {
    const bytes = new Uint8Array(iw * ih * 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rnd();
    const img = rgbFromInterleaved(bytes, iw, ih);
    for (const [w, h] of [...targets, [iw, ih] as [number, number]]) {
      for (const lb of [false, true]) {
        const want = prepareInput(img, w, h, lb).tensor;
        const got = inputFromInterleaved(bytes, iw, ih, w, h, lb);
        assert.equal(got.length, want.length);
        let diff = -1;
        for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) { diff = i; break; }
        assert.equal(diff, -1, `${iw}x${ih} -> ${w}x${h} letterbox=${lb}: first difference at ${diff}`);
      }
    }
  }
});

test('the prefetcher yields every image once, in order, with worker threads or inline; a bad image names itself', { skip: NO_CORPUS }, async () => {
  const files = cocoImages().slice(0, 6);
  for (const workers of [0, 1, 2]) {
    const seen: number[] = [];
    const p = new ImagePrefetcher(files, { netW: 64, netH: 48, letterBox: false, workers, prefetch: 3 });
    if (workers > 0) assert.equal(p.workers, workers, 'decode worker threads started');
    for await (const img of p) {
      seen.push(img.index);
      assert.equal(img.path, files[img.index]);
      assert.equal(img.tensor.length, 3 * 64 * 48);
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
    assert.equal(p.workers, workers, 'the helper threads ran (none fell back to inline)');
    await p.close();
  }
  const bad = new ImagePrefetcher([files[0], '/nonexistent/x.jpg', files[1]], { netW: 32, netH: 32, letterBox: false, workers: 1 });
  await assert.rejects(async () => { for await (const _ of bad) void _; }, /\/nonexistent\/x\.jpg/);
  await bad.close();
});

test('the helper\'s jobs reply in arrival order, decodes overlapping, with errors in place', { skip: NO_CORPUS }, async () => {
  const files = cocoImages().slice(0, 3);
  const replies: [number, HelperReply][] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const jobs = new HelperJobs((reply, job) => {
    replies.push([job, reply]);
    if (replies.length === 5) done();
  });
  const config = { heads: [{ output: 'o', rows: 1, classes: 1 }], classes: 1, netW: 32, netH: 32, letterBox: false, thresh: 0.5, nmsThresh: 0.45, nms: { kind: 'default' as const, beta: 0.6 } };
  jobs.push({ kind: 'decode', id: 0, path: files[0], netW: 32, netH: 24, letterBox: false }, 10);
  jobs.push({ kind: 'decode', id: 1, path: '/nonexistent/y.jpg', netW: 32, netH: 24, letterBox: false }, 11);
  jobs.push({ kind: 'post', id: 0, config, width: 10, height: 10, outputs: { o: Float32Array.from([0.5, 0.5, 0.2, 0.2, 0.9, 0.8]) } }, 12);
  jobs.push({ kind: 'decode', id: 2, path: files[1], netW: 32, netH: 24, letterBox: true }, 13);
  jobs.push({ kind: 'decode', id: 3, path: files[2], netW: 8, netH: 8, letterBox: false }, 14);
  await finished;
  assert.deepEqual(replies.map(([job]) => job), [10, 11, 12, 13, 14]);
  const [a, bad, post, b, c] = replies.map(([, r]) => r);
  assert.ok(a.ok && a.kind === 'decode' && a.tensor.length === 3 * 32 * 24);
  if (a.ok && a.kind === 'decode') {
    const want = await decodeForNetwork(files[0], 32, 24, false);
    assert.deepEqual(a.tensor, want.tensor);
    assert.ok(a.ms > 0);
  }
  assert.ok(!bad.ok && /\/nonexistent\/y\.jpg/.test(bad.error));
  assert.ok(post.ok && post.kind === 'post' && post.count === 1);
  assert.ok(b.ok && b.kind === 'decode' && b.tensor.length === 3 * 32 * 24);
  assert.ok(c.ok && c.kind === 'decode' && c.tensor.length === 3 * 8 * 8);
});

test('evaluate: same mAP with decoding inline or in a worker, and timing figures', { skip: NO_CORPUS }, async () => {
  const { graph, weights } = loadDarknet(YF('yolo-fastest-1.1.cfg'), YF('yolo-fastest-1.1.weights'));
  const detector = await Detector.create({ graph, weights }, { threads: 1 });
  try {
    const dataset = await loadDataset(COCO128());
    const a = await evaluate(detector, dataset, { limit: 12, workers: 0, pureRuns: 3 });
    const b = await evaluate(detector, dataset, { limit: 12, workers: 1, pureRuns: 3 });
    assert.equal(a.map.images, 12);
    assert.equal(a.timing.postOnMain, 1, 'without a helper thread everything runs inline');
    // boxes + NMS on the helper, on the inference thread, or shared: the same result
    for (const r of [b, await evaluate(detector, dataset, { limit: 12, workers: 1, post: 'helper', pureRuns: 0 }),
      await evaluate(detector, dataset, { limit: 12, workers: 1, post: 'main', pureRuns: 0 })]) {
      assert.equal(r.map.mAP, a.map.mAP);
      assert.deepEqual(r.map.classes.map((c) => [c.tp, c.fp]), a.map.classes.map((c) => [c.tp, c.fp]));
      assert.deepEqual([r.map.precision, r.map.recall, r.map.averageIoU], [a.map.precision, a.map.recall, a.map.averageIoU]);
    }
    assert.ok(a.map.mAP > 0.05 && a.map.mAP < 1, `mAP ${a.map.mAP}`);
    assert.equal(b.timing.decodeWorkers, 1);
    assert.ok(b.timing.imagesPerSecond > 0 && b.timing.inferenceImagesPerSecond > 0 && b.timing.ratio > 0);
  } finally {
    await detector.dispose();
  }
});

test('darkslim map runs end to end on coco128 with each corpus COCO model (subset)', { skip: NO_CORPUS }, async () => {
  for (const cfg of ['yolo-fastest-1.1', 'yolo-fastest-1.1-xl']) {
    const { code, stdout, stderr } = await runCli(['map', YF(`${cfg}.cfg`), YF(`${cfg}.weights`), '--data', COCO128(), '--limit', '8', '--json']);
    assert.equal(code, 0, stderr);
    const r = JSON.parse(stdout) as Record<string, unknown> & { classes: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(r), ['mAP', 'points', 'iou', 'images', 'classes', 'precision', 'recall', 'f1', 'averageIoU', 'timing']);
    assert.equal(r.images, 8);
    assert.equal(r.points, 0);
    assert.equal(r.iou, 0.5);
    assert.equal(r.classes.length, 80);
    assert.deepEqual(Object.keys(r.classes[0]), ['id', 'name', 'ap', 'tp', 'fp']);
    assert.equal(r.classes[0].name, 'person');
    assert.ok((r.mAP as number) > 0.03 && (r.mAP as number) < 1, `${cfg}: mAP ${r.mAP}`); // 8 images: most of the 80 classes have no truth (AP 0)
    // not a TTY: plain progress lines, no bar
    assert.doesNotMatch(stderr, /\r/);
  }
  const text = await runCli(['map', YF('yolo-fastest-1.1.cfg'), YF('yolo-fastest-1.1.weights'), '--data', COCO128(), '--limit', '4', '--points', '11', '--iou', '0.75']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /used 11 Recall-points/);
  assert.match(text.stdout, /mean average precision \(mAP@0\.75\) = /);
  assert.match(text.stdout, /images\/s end to end/);
});

test('darkslim bench --json', { skip: NO_CORPUS }, async () => {
  const { code, stdout, stderr } = await runCli(['bench', YF('yolo-fastest-1.1.cfg'), YF('yolo-fastest-1.1.weights'), '--runs', '3', '--threads', '1', '--json']);
  assert.equal(code, 0, stderr);
  const r = JSON.parse(stdout) as Record<string, unknown>;
  for (const k of ['engine', 'threads', 'runs', 'median_ms', 'p90_ms']) assert.ok(k in r, k);
  assert.equal(r.threads, 1);
  assert.equal(r.runs, 3);
  assert.match(String(r.engine), /onnxruntime/);
  assert.ok((r.median_ms as number) > 0 && (r.p90_ms as number) >= (r.median_ms as number));
});

test('progress: plain lines when not a TTY, a redrawn bar on a TTY', () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }) as unknown as NodeJS.WriteStream;
  const p = createProgress(100, 'map', { stream: sink, tty: false });
  for (let i = 1; i <= 100; i++) p.tick(i);
  p.done();
  assert.ok(lines.length >= 2 && lines.length <= 12, `${lines.length} lines`);
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.includes('\r')));
  assert.match(lines[lines.length - 1], /100\/100/);
  const bar: string[] = [];
  const tty = new Writable({ write(chunk, _enc, cb) { bar.push(String(chunk)); cb(); } }) as unknown as NodeJS.WriteStream;
  const q = createProgress(10, 'map', { stream: tty, tty: true });
  q.tick(10);
  q.done();
  assert.match(bar[0], /^\rmap \[#+\] 10\/10/);
});
