// How much work on the other core slows onnxruntime on this one: the ceiling of `map`'s
// "decoding hidden behind inference" (issue #4) on a given machine. yolo-fastest-1.1 runs at batch 1
// on 1 onnxruntime thread (map's setting on 2 cores) while a worker thread does nothing, spins on
// integer or floating-point arithmetic (no memory traffic), streams 64 MB copies (memory), or
// decodes coco128's JPEGs and resizes them for the network (map's own helper work). If an idle
// loop of arithmetic slows inference as much as decoding does, the cores share execution
// resources (SMT siblings or a shared boost budget on the host), and no decoder can hide fully.
//   npm run bench:contention [-- --runs 60 --rounds 8]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { decodeJpegNative, nativeJpegLibrary } from '../core/data/native-jpeg';
import { decodeForNetwork } from '../core/onnx/fastprep';
import { printTable, writeResult } from './util';

const CORPUS = resolve(__dirname, '..', '..', 'shared', 'corpus');
const IMAGES = join(CORPUS, 'datasets', 'coco128', 'images', 'train2017');
const MODEL = join(CORPUS, 'weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1');
const LOADS = ['idle', 'int-spin', 'fp-spin', 'memory', 'jpeg', 'jpeg+resize'] as const;
type Load = (typeof LOADS)[number];

/** The worker: runs its load until told to stop, then reports how many units it did. */
async function loadLoop(load: Load): Promise<void> {
  const names = readdirSync(IMAGES).filter((f) => f.endsWith('.jpg'));
  const files = names.map((f) => readFileSync(join(IMAGES, f)));
  const src = new Float64Array(8 << 20);
  const dst = new Float64Array(8 << 20);
  let stop = false;
  parentPort!.on('message', () => { stop = true; });
  let units = 0;
  let acc = 1;
  let bits = 1;
  while (!stop) {
    if (load === 'int-spin') for (let k = 0; k < 4e6; k++) bits = (bits * 1103515245 + 12345) | 0;
    else if (load === 'fp-spin') for (let k = 0; k < 2e6; k++) acc = acc * 1.0000001 + 1e-9;
    else if (load === 'memory') dst.set(src);
    else if (load === 'jpeg') await decodeJpegNative(files[units % files.length]);
    else if (load === 'jpeg+resize') await decodeForNetwork(join(IMAGES, names[units % names.length]), 320, 320, false);
    units++;
    // let the stop message in between units of work
    await new Promise((r) => setImmediate(r));
  }
  parentPort!.postMessage({ units, sink: acc + bits });
}

function startLoad(load: Load): Worker {
  const code = `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register(); require(${JSON.stringify(__filename)});`;
  return new Worker(code, { eval: true, workerData: { load } });
}

async function main(): Promise<void> {
  if (!existsSync(`${MODEL}.weights`) || !existsSync(IMAGES)) {
    console.log(`skipped: the corpus (${CORPUS}) is not here`);
    return;
  }
  const args = process.argv.slice(2);
  const runs = Number(args[args.indexOf('--runs') + 1]) || 60;
  const rounds = Number(args[args.indexOf('--rounds') + 1]) || 8;
  // onnxruntime only in the main thread (the worker loads just the decoders)
  const { loadDarknet } = await import('../core/onnx/model');
  const { exportOnnx } = await import('../core/onnx/export');
  const { OnnxSession, ENGINE } = await import('../core/onnx/runtime');
  const { benchInput, median } = await import('../core/onnx/bench');
  const { graph, weights } = loadDarknet(`${MODEL}.cfg`, `${MODEL}.weights`);
  const session = await OnnxSession.create(exportOnnx(graph, weights, { batch: 1 }).bytes, { threads: 1 });
  const dims = [1, 3, graph.net.height, graph.net.width];
  const input = benchInput(3 * dims[2] * dims[3]);
  for (let i = 0; i < 30; i++) await session.run(input, dims);
  const loadStart = loadavg();

  const samples = new Map<Load, { medians: number[]; p10: number[]; p90: number[]; unitsPerSecond: number[] }>();
  for (let round = 0; round < rounds; round++) {
    // idle first and last in every round: the reference is measured around the loads
    for (const load of [...LOADS, 'idle' as const]) {
      const worker = load === 'idle' ? undefined : startLoad(load);
      if (worker) await new Promise((r) => setTimeout(r, 1500)); // the worker starts and reaches its loop
      const t0 = performance.now();
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const a = performance.now();
        await session.run(input, dims);
        times.push(performance.now() - a);
      }
      const seconds = (performance.now() - t0) / 1000;
      let units = 0;
      if (worker) {
        const done = new Promise<{ units: number }>((r) => worker.once('message', r));
        worker.postMessage('stop');
        units = (await done).units;
        await worker.terminate();
      }
      times.sort((x, y) => x - y);
      const s = samples.get(load) ?? { medians: [], p10: [], p90: [], unitsPerSecond: [] };
      s.medians.push(median(times));
      s.p10.push(times[Math.floor(runs * 0.1)]);
      s.p90.push(times[Math.floor(runs * 0.9)]);
      s.unitsPerSecond.push(units / seconds);
      samples.set(load, s);
      console.log(`round ${round + 1}: ${load.padEnd(11)} median ${median(times).toFixed(2)} ms`);
    }
  }
  const idle = median(samples.get('idle')!.medians);
  const rows = LOADS.map((load) => {
    const s = samples.get(load)!;
    return {
      'other core': load,
      'ORT run ms (median)': median(s.medians),
      p10: median(s.p10),
      p90: median(s.p90),
      'vs idle': median(s.medians) / idle,
      'load units/s': load === 'idle' ? 0 : median(s.unitsPerSecond),
    };
  });
  printTable(`yolo-fastest-1.1 ${dims[3]}x${dims[2]}, 1 onnxruntime thread, ${runs} runs x ${rounds} rounds (medians of the rounds)`, rows);
  writeResult('contention', {
    engine: ENGINE,
    jpegDecoder: nativeJpegLibrary() ?? 'sharp',
    runs,
    rounds,
    loadAverage: { start: loadStart, end: loadavg() },
    rows,
    rounds_detail: Object.fromEntries(samples),
  });
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  loadLoop((workerData as { load: Load }).load).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
