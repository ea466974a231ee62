// Int8 quantization benchmark: per model, the float model beside its int8 versions by calibration
// method (kl, minmax, percentile; the defaults otherwise), the kl model without the float stem
// (the previous default: only the first conv float) and the kl model as a flat graph (no
// model-local functions), all measured in one run: file size, median
// latency at 1 and 2 threads (every model's runs interleaved, so the machine's load hits all
// alike), median CPU time per inference at 1 thread (steady on a shared machine, where wall time
// counts the waits for a core), and mAP@0.5 (101 points) over the whole labelled set. Then
// ablations (mAP and size only) showing what each default is worth. Acceptance lines at the end
// of each model.
//   yolo-fastest-1.1 on coco128: calibrate on 64 images, evaluate on all 128.
//   MobileNetV2-YOLOv3-Nano (VOC) on the coco128 images holding VOC classes (built in a temp dir).
//   npm run bench:quantize [-- --runs 50 --images 64 --quick --no-ablations]
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { loadDataset, type Dataset } from '../core/data/dataset';
import { loadDarknet } from '../core/onnx/model';
import {
  allActivationTensors, buildQuantized, calibrate, type Calibration, calibrationImages, type CalibrationMethod, defaultKeepFloat,
  interleavedLatency, layerRanges, modelMap, planQdq, prepareFloat, type PreparedModel, type QuantizeSettings,
} from '../core/onnx/quantize/index';
import { ENGINE } from '../core/onnx/runtime';
import { buildVocFromCoco } from '../test/helpers/voc-from-coco';
import { printTable, type Row, writeResult } from './util';

const CORPUS = resolve(__dirname, '..', '..', 'shared', 'corpus');
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const QUICK = args.includes('--quick');
const RUNS = flag('--runs', QUICK ? 10 : 50);
const IMAGES = flag('--images', QUICK ? 8 : 64);
const ABLATIONS = !args.includes('--no-ablations');
const METHODS: CalibrationMethod[] = ['kl', 'minmax', 'percentile'];

interface ModelCase {
  name: string;
  cfg: string;
  weights: string;
  /** Labelled set: calibration images are taken from it, mAP over all of it. */
  dataset: () => { list: string; cleanup?: () => void };
}

const MODELS: ModelCase[] = [
  {
    name: 'yolo-fastest-1.1',
    cfg: join(CORPUS, 'weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1.cfg'),
    weights: join(CORPUS, 'weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1.weights'),
    dataset: () => ({ list: join(CORPUS, 'datasets', 'coco128', 'train.txt') }),
  },
  {
    name: 'MobileNetV2-YOLOv3-Nano',
    cfg: join(CORPUS, 'weights', 'MobileNetV2-YOLOv3-Nano-VOC', 'MobileNetV2-YOLOv3-Nano-voc.cfg'),
    weights: join(CORPUS, 'weights', 'MobileNetV2-YOLOv3-Nano-VOC', 'MobileNetV2-YOLOv3-Nano-voc.weights'),
    dataset: () => {
      const voc = buildVocFromCoco();
      return { list: voc.list, cleanup: voc.cleanup };
    },
  },
];

interface VariantRow {
  model: string;
  variant: string;
  bytes: number;
  sizePct: number;
  mAP: number;
  latency1_ms?: number;
  latency2_ms?: number;
  /** Median CPU time per inference, 1 thread. */
  cpu1_ms?: number;
  int8Kernels?: Record<string, number>;
}

const pct = (a: number, b: number) => Math.round((1000 * a) / b) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

async function runModel(m: ModelCase): Promise<{ rows: VariantRow[]; ablations: VariantRow[]; acceptance: Record<string, unknown>; calibration: Record<string, unknown> }> {
  const data = m.dataset();
  try {
    const dataset: Dataset = await loadDataset(data.list);
    const { graph, weights } = loadDarknet(m.cfg, m.weights);
    const prepared = prepareFloat(graph, weights);
    const dims = [1, prepared.spec.input[0], prepared.spec.netH, prepared.spec.netW];
    const source = await calibrationImages(data.list, IMAGES);
    const tensors = allActivationTensors(prepared);
    const cal = await calibrate(prepared, tensors, source.images, { threads: 2 });
    console.log(`${m.name}: calibrated ${tensors.length} tensors on ${source.images.length} images in ${cal.seconds.toFixed(1)} s`);
    const keep = defaultKeepFloat(prepared.spec);
    const build = async (p: PreparedModel, c: Calibration, s: QuantizeSettings) => {
      const plan = planQdq(p.model, p.spec, p.layerOfNode, { keepFloat: s.keepFloat ?? keep, heads: s.heads });
      return buildQuantized(p, plan, c, { ...s, keepFloat: s.keepFloat ?? keep });
    };

    const models = [{ variant: 'float', bytes: prepared.floatBytes, int8Kernels: undefined as Record<string, number> | undefined }];
    let floatLayers: number[] = [];
    for (const method of METHODS) {
      const r = await build(prepared, cal, { method });
      floatLayers = r.floatLayers;
      models.push({ variant: `int8 ${method}`, bytes: r.bytes, int8Kernels: r.int8Ops });
    }
    const first = await build(prepared, cal, { method: 'kl', keepFloat: [0] });
    models.push({ variant: 'int8 kl, no float stem', bytes: first.bytes, int8Kernels: first.int8Ops });
    // the same model without model-local functions: what they save, and that they cost no time
    const flat = await build(prepared, cal, { method: 'kl', flat: true });
    models.push({ variant: 'int8 kl, flat graph (--flat)', bytes: flat.bytes, int8Kernels: flat.int8Ops });
    const latency: number[][] = [];
    let cpu1: number[] = [];
    for (const threads of [1, 2]) {
      const l = await interleavedLatency(models.map((x) => x.bytes), dims, { threads, runs: RUNS, warmup: 10 });
      latency.push(l.map((x) => x.median_ms));
      if (threads === 1) cpu1 = l.map((x) => x.cpu_ms);
    }
    const rows: VariantRow[] = [];
    for (const [k, x] of models.entries()) {
      const map = await modelMap(x.bytes, dataset, { points: 101, threads: 2 });
      rows.push({
        model: m.name, variant: x.variant, bytes: x.bytes.length, sizePct: pct(x.bytes.length, prepared.floatBytes.length), mAP: map.mAP,
        latency1_ms: latency[0][k], latency2_ms: latency[1][k], cpu1_ms: cpu1[k], ...(x.int8Kernels ? { int8Kernels: x.int8Kernels } : {}),
      });
    }

    const ablations: VariantRow[] = [];
    if (ABLATIONS) {
      const variants: [string, QuantizeSettings][] = [
        ['kl, 8-bit weights', { method: 'kl', weightBits: 8 }],
        ['kl, symmetric activations', { method: 'kl', scheme: 'symmetric' }],
        ['kl, heads requantized (qlinear)', { method: 'kl', heads: 'qlinear' }],
        ['kl, heads float', { method: 'kl', heads: 'float' }],
        ['kl, every layer int8 (no float stem, first conv too)', { method: 'kl', keepFloat: [] }],
        ['kl, float stem weights stored float16', { method: 'kl', floatWeights: 'float16' }],
        ['kl, float stem weights stored float32', { method: 'kl', floatWeights: 'float' }],
      ];
      for (const [name, s] of variants) {
        const r = await build(prepared, cal, s);
        const map = await modelMap(r.bytes, dataset, { points: 101, threads: 2 });
        ablations.push({ model: m.name, variant: name, bytes: r.bytes.length, sizePct: pct(r.bytes.length, prepared.floatBytes.length), mAP: map.mAP });
      }
      // without cross-layer equalization: another model, another calibration
      const plain = prepareFloat(graph, weights, { equalize: false });
      const calPlain = await calibrate(plain, allActivationTensors(plain), source.images, { threads: 2 });
      const r = await build(plain, calPlain, { method: 'kl' });
      const map = await modelMap(r.bytes, dataset, { points: 101, threads: 2 });
      ablations.push({ model: m.name, variant: 'kl, no equalization', bytes: r.bytes.length, sizePct: pct(r.bytes.length, prepared.floatBytes.length), mAP: map.mAP });
    }

    const float = rows[0];
    const kl = rows[1];
    const acceptance = {
      mAPDropKlPoints: r2(100 * (float.mAP - kl.mAP)),
      bestMethod: rows.slice(1).sort((a, b) => b.mAP - a.mAP)[0].variant,
      sizePctKl: kl.sizePct,
      latencyRatioKl1: r2(float.latency1_ms! / kl.latency1_ms!),
      latencyRatioKl2: r2(float.latency2_ms! / kl.latency2_ms!),
      cpuRatioKl1: r2(float.cpu1_ms! / kl.cpu1_ms!),
      floatLayers: floatLayers,
    };
    return {
      rows, ablations, acceptance,
      calibration: { images: source.images.length, evalImages: dataset.items.length, tensors: tensors.length, seconds: r2(cal.seconds) },
    };
  } finally {
    data.cleanup?.();
  }
}

function table(rows: VariantRow[], withLatency: boolean): Row[] {
  return rows.map((r) => ({
    variant: r.variant,
    'size KiB': r2(r.bytes / 1024),
    'size %': r.sizePct,
    ...(withLatency ? { 'ms 1 thr': r.latency1_ms!, 'ms 2 thr': r.latency2_ms!, 'cpu ms 1 thr': r.cpu1_ms! } : {}),
    'mAP@0.5 %': r2(100 * r.mAP),
  }));
}

async function main(): Promise<void> {
  if (!existsSync(join(CORPUS, 'README.md'))) {
    console.log(`corpus not found at ${CORPUS}: nothing to benchmark`);
    return;
  }
  const load = loadavg();
  console.log(`load average at start: ${load.map((x) => x.toFixed(2)).join(' ')}`);
  const results: Record<string, unknown> = {};
  for (const m of MODELS) {
    const r = await runModel(m);
    printTable(`${m.name}: float vs int8 by calibration method (${r.calibration.images} calibration images, mAP over ${r.calibration.evalImages} images, 101 points, latency median of ${RUNS} interleaved runs)`, table(r.rows, true));
    if (r.ablations.length) printTable(`${m.name}: ablations (mAP, size)`, table(r.ablations, false));
    const a = r.acceptance as {
      mAPDropKlPoints: number; sizePctKl: number; latencyRatioKl1: number; latencyRatioKl2: number; cpuRatioKl1: number; bestMethod: string;
      floatLayers: number[];
    };
    console.log(`  kl: mAP ${a.mAPDropKlPoints >= 0 ? '-' : '+'}${Math.abs(a.mAPDropKlPoints)} points (target within 1.5), size ${a.sizePctKl}% (target <= 30%), `
      + `float/int8 latency x${a.latencyRatioKl1} (1 thread), x${a.latencyRatioKl2} (2 threads), CPU time x${a.cpuRatioKl1} (1 thread); best method: ${a.bestMethod}`);
    console.log(`  float layers (the stem, weights stored int8): ${layerRanges(a.floatLayers)}`);
    for (const row of r.rows) if (row.int8Kernels) console.log(`  ${row.variant}: ${Object.entries(row.int8Kernels).map(([k, v]) => `${k} x${v}`).join(', ')}`);
    results[m.name] = r;
  }
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  writeResult('quantize', { engine: ENGINE, runs: RUNS, calibrationImages: IMAGES, loadavgStart: load, loadavgEnd: loadavg(), models: results });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
