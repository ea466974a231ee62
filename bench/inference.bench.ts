// Inference benchmarks: latency at batch 1 (median of 50 runs, 1 and 2 threads) of the corpus
// models at their native sizes, and `darkslim map` over coco128 end to end against the pure
// inference rate of the same session (1 thread: with the native JPEG decoder and with sharp
// alone). Prints a table, writes bench/results/inference.json.
//   npm run bench:inference [-- --runs 50 --repeats 3 --quick]
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../core/darknet/files';
import { loadDataset } from '../core/data/dataset';
import { benchModel, type BenchResult } from '../core/onnx/bench';
import { Detector, outputRecord } from '../core/onnx/detect';
import { evaluate } from '../core/onnx/evaluate';
import { exportOnnx } from '../core/onnx/export';
import { loadDarknet } from '../core/onnx/model';
import { inputFromInterleaved } from '../core/onnx/fastprep';
import { decodeImageBytes } from '../core/data/image';
import { postprocessOutputs } from '../core/onnx/prefetch';
import { ENGINE } from '../core/onnx/runtime';
import { nativeJpegLibrary } from '../core/data/native-jpeg';
import sharp from 'sharp';

const CORPUS = resolve(__dirname, '..', '..', 'shared', 'corpus');
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 50;
const QUICK = args.includes('--quick');
const REPEATS = Number(args[args.indexOf('--repeats') + 1]) || (QUICK ? 1 : 3);

const MODELS = [
  { name: 'yolo-fastest-1.1', dir: 'yolo-fastest-1.1_coco', file: 'yolo-fastest-1.1', coco: true },
  { name: 'yolo-fastest-1.1-xl', dir: 'yolo-fastest-1.1_coco', file: 'yolo-fastest-1.1-xl', coco: true },
  { name: 'MobileNetV2-YOLOv3-Nano', dir: 'MobileNetV2-YOLOv3-Nano-VOC', file: 'MobileNetV2-YOLOv3-Nano-voc', coco: false },
  { name: 'yoloface-500k-v2', dir: 'yoloface-500k-v2', file: 'yoloface-500k-v2', coco: false },
];

interface LatencyRow extends BenchResult { model: string; size: string }
/** CPU time per image of each stage, alone (insensitive to other load on the machine). */
interface CpuRow {
  model: string; images: number; inferenceMs: number; decodeMs: number; jpegMs: number; resizeMs: number; postMs: number;
  /** JPEG decoding by sharp alone (the reference of the native decoder, same run). */
  sharpJpegMs: number; jpegDecoder: string;
}
interface MapRow {
  model: string;
  /** JPEG decoder of the pass: 'native' (libjpeg-turbo addon) or 'sharp'. */
  jpeg: string;
  /** Ratio of every pass, ascending; the row's figures are the median pass's. */
  ratios: number[];
  /** 1-minute load average after the passes. */
  loadAverage: number;
  images: number;
  mAP: number;
  threads: number;
  decodeWorkers: number;
  seconds: number;
  imagesPerSecond: number;
  inferenceImagesPerSecond: number;
  inferenceMs: number;
  ratio: number;
  decodeMs: number;
  waitMs: number;
  inferMs: number;
  postMs: number;
  postOnMain: number;
}

function pad(s: string | number, n: number): string {
  return String(s).padEnd(n);
}

async function main(): Promise<void> {
  if (!existsSync(join(CORPUS, 'README.md'))) {
    console.log(`corpus not found at ${CORPUS}: nothing to benchmark`);
    return;
  }
  const loadStart = loadavg();
  const latency: LatencyRow[] = [];
  for (const m of MODELS) {
    const { graph, weights } = loadDarknet(join(CORPUS, 'weights', m.dir, `${m.file}.cfg`), join(CORPUS, 'weights', m.dir, `${m.file}.weights`));
    const { bytes } = exportOnnx(graph, weights, { batch: 1 });
    const dims = [1, graph.net.channels, graph.net.height, graph.net.width];
    for (const threads of [1, 2]) {
      const r = await benchModel(bytes, dims, { threads, runs: RUNS, warmup: 10 });
      latency.push({ model: m.name, size: `${graph.net.width}x${graph.net.height}`, ...r });
    }
  }
  console.log(`\nLatency at batch 1, ${ENGINE}, median of ${RUNS} runs`);
  console.log(`${pad('model', 26)}${pad('size', 9)}${pad('threads', 9)}${pad('median ms', 11)}${pad('p90 ms', 9)}min ms`);
  for (const r of latency) {
    console.log(`${pad(r.model, 26)}${pad(r.size, 9)}${pad(r.threads, 9)}${pad(r.median_ms.toFixed(2), 11)}${pad(r.p90_ms.toFixed(2), 9)}${r.min_ms.toFixed(2)}`);
  }

  const dataset = await loadDataset(join(CORPUS, 'datasets', 'coco128', 'train.txt'));
  // CPU cost of each stage alone, 1 onnxruntime thread, libvips on 1 thread (as in the helper).
  const cpu: CpuRow[] = [];
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  for (const m of MODELS.filter((x) => x.coco)) {
    const source = loadDarknet(join(CORPUS, 'weights', m.dir, `${m.file}.cfg`), join(CORPUS, 'weights', m.dir, `${m.file}.weights`));
    const detector = await Detector.create(source, { threads: 1 });
    const paths = dataset.items.map((it) => it.image).slice(0, QUICK ? 32 : undefined);
    const concurrency = sharp.concurrency();
    sharp.concurrency(1);
    const { netW, netH } = detector.meta;
    for (const p of paths.slice(0, 8)) { const d = await decodeImageBytes(p); inputFromInterleaved(d.data, d.width, d.height, netW, netH, detector.letterBox); } // warm-up
    // decoding (native libjpeg-turbo where built, else sharp/libvips) and darknet's resize
    // separately; decodeMs is their sum. sharp alone is measured beside it.
    process.env.DARKSLIM_NATIVE_JPEG = '0';
    let c0 = process.cpuUsage();
    for (const p of paths) await decodeImageBytes(p);
    const sharpJpegMs = cpuMs(process.cpuUsage(c0)) / paths.length;
    delete process.env.DARKSLIM_NATIVE_JPEG;
    c0 = process.cpuUsage();
    const raws: Awaited<ReturnType<typeof decodeImageBytes>>[] = [];
    for (const p of paths) raws.push(await decodeImageBytes(p));
    const jpegMs = cpuMs(process.cpuUsage(c0)) / paths.length;
    sharp.concurrency(concurrency);
    c0 = process.cpuUsage();
    const inputs = raws.map((d) => ({ tensor: inputFromInterleaved(d.data, d.width, d.height, netW, netH, detector.letterBox), width: d.width, height: d.height }));
    const resizeMs = cpuMs(process.cpuUsage(c0)) / paths.length;
    const decodeMs = jpegMs + resizeMs;
    const outputs: Record<string, Float32Array>[] = [];
    for (const x of inputs.slice(0, 3)) await detector.infer(x.tensor);
    c0 = process.cpuUsage();
    for (const x of inputs) outputs.push(outputRecord(await detector.infer(x.tensor)));
    const inferenceMs = cpuMs(process.cpuUsage(c0)) / paths.length;
    const config = detector.postConfig({ thresh: 0.005 });
    outputs.slice(0, 8).forEach((o, i) => postprocessOutputs(config, o, inputs[i].width, inputs[i].height)); // warm-up
    c0 = process.cpuUsage();
    outputs.forEach((o, i) => postprocessOutputs(config, o, inputs[i].width, inputs[i].height));
    const postMs = cpuMs(process.cpuUsage(c0)) / paths.length;
    cpu.push({ model: m.name, images: paths.length, inferenceMs, decodeMs, jpegMs, resizeMs, postMs, sharpJpegMs, jpegDecoder: nativeJpegLibrary() ?? 'sharp' });
    await detector.dispose();
  }
  console.log('\nCPU ms per image of each stage run alone (1 inference thread). On 2 cores, map can reach the pure inference rate');
  console.log('only if decode + post <= inference (post is shared between the threads); the best ratio is about 2*inference / (inference + decode + post)');
  console.log(`JPEG decoder: ${cpu[0]?.jpegDecoder ?? '-'} (sharp alone beside it)`);
  console.log(`${pad('model', 22)}${pad('inference', 11)}${pad('decode', 9)}${pad('(jpeg', 8)}${pad('resize)', 9)}${pad('post', 7)}jpeg by sharp`);
  for (const r of cpu) console.log(`${pad(r.model, 22)}${pad(r.inferenceMs.toFixed(2), 11)}${pad(r.decodeMs.toFixed(2), 9)}${pad(r.jpegMs.toFixed(2), 8)}${pad(r.resizeMs.toFixed(2), 9)}${pad(r.postMs.toFixed(2), 7)}${r.sharpJpegMs.toFixed(2)}`);

  const maps: MapRow[] = [];
  const limit = QUICK ? 32 : undefined;
  // jpeg 'sharp': the same pass with the native decoder switched off (the reference for it)
  const hasNative = nativeJpegLibrary() !== null;
  const configs = [
    { threads: Math.max(1, availableParallelism() - 1), workers: 1, jpeg: 'native' },
    ...(hasNative ? [{ threads: Math.max(1, availableParallelism() - 1), workers: 1, jpeg: 'sharp' }] : []),
    { threads: availableParallelism(), workers: 1, jpeg: 'native' },
  ].map((c) => ({ ...c, jpeg: hasNative ? c.jpeg : 'sharp' }));
  for (const m of MODELS.filter((x) => x.coco)) {
    const source = loadDarknet(join(CORPUS, 'weights', m.dir, `${m.file}.cfg`), join(CORPUS, 'weights', m.dir, `${m.file}.weights`));
    for (const c of configs) {
      if (c.jpeg === 'sharp') process.env.DARKSLIM_NATIVE_JPEG = '0';
      else delete process.env.DARKSLIM_NATIVE_JPEG;
      const detector = await Detector.create(source, { threads: c.threads, spinning: false });
      // warm-up: a few images so first-call costs (JIT, worker start) do not count
      await evaluate(detector, dataset, { limit: 4, workers: c.workers, pureRuns: 0 });
      // The machine may be shared: each pass measures its own pure-inference rate around it,
      // and the pass with the median ratio of REPEATS is reported (all ratios are kept).
      const passes: Awaited<ReturnType<typeof evaluate>>[] = [];
      for (let i = 0; i < REPEATS; i++) passes.push(await evaluate(detector, dataset, { limit, workers: c.workers, pureRuns: 50 }));
      await detector.dispose();
      passes.sort((a, b) => a.timing.ratio - b.timing.ratio);
      const r = passes[Math.floor(passes.length / 2)];
      maps.push({
        ratios: passes.map((p) => Number(p.timing.ratio.toFixed(3))), loadAverage: loadavg()[0],
        model: m.name, jpeg: c.jpeg, images: r.timing.images, mAP: r.map.mAP, threads: r.timing.threads, decodeWorkers: r.timing.decodeWorkers,
        seconds: r.timing.seconds, imagesPerSecond: r.timing.imagesPerSecond, inferenceImagesPerSecond: r.timing.inferenceImagesPerSecond,
        inferenceMs: r.timing.inferenceMs, ratio: r.timing.ratio, decodeMs: r.timing.decodeMs, waitMs: r.timing.waitMs,
        inferMs: r.timing.inferMs, postMs: r.timing.postMs, postOnMain: r.timing.postOnMain,
      });
    }
  }
  console.log(`\ndarkslim map over coco128 (${maps[0]?.images ?? 0} images): end to end vs pure inference (same session)`);
  console.log(`${pad('model', 22)}${pad('jpeg', 8)}${pad('mAP@.5', 9)}${pad('threads', 9)}${pad('decoders', 10)}${pad('e2e img/s', 11)}${pad('infer img/s', 13)}${pad('ratio', 8)}${pad('post here', 11)}${pad('load', 7)}per image: decode/wait/infer/post ms   (all ratios)`);
  for (const r of maps) {
    console.log(`${pad(r.model, 22)}${pad(r.jpeg, 8)}${pad(r.mAP.toFixed(4), 9)}${pad(r.threads, 9)}${pad(r.decodeWorkers, 10)}${pad(r.imagesPerSecond.toFixed(1), 11)}`
      + `${pad(r.inferenceImagesPerSecond.toFixed(1), 13)}${pad(`${(r.ratio * 100).toFixed(0)}%`, 8)}${pad(`${(r.postOnMain * 100).toFixed(0)}%`, 11)}${pad(r.loadAverage.toFixed(1), 7)}`
      + `${r.decodeMs.toFixed(1)}/${r.waitMs.toFixed(1)}/${r.inferMs.toFixed(1)}/${r.postMs.toFixed(1)}`.padEnd(38)
      + `(${r.ratios.map((x) => `${(x * 100).toFixed(0)}%`).join(' ')})`);
  }

  const result = {
    date: new Date().toISOString(),
    engine: ENGINE,
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    loadAverage: { start: loadStart, end: loadavg() },
    runs: RUNS,
    jpegDecoder: nativeJpegLibrary() ?? 'sharp',
    latency,
    cpu,
    map: maps,
  };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'inference.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`\nwrote ${join(dir, 'inference.json')} (load average ${loadStart.map((v) => v.toFixed(2)).join(' ')} → ${loadavg().map((v) => v.toFixed(2)).join(' ')})`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
