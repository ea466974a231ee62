import { basename, extname, resolve } from 'node:path';
import { writeFileAtomic } from '../../core/darknet/files';
import { type Dataset, loadDataset } from '../../core/data/dataset';
import type { MapPoints } from '../../core/eval/map';
import { loadDarknet, resolveNames } from '../../core/onnx/model';
import { createProgress } from '../../core/onnx/progress';
import { defaultThreads } from '../../core/onnx/runtime';
import {
  ACTIVATION_SCHEMES, type ActivationScheme, CALIBRATION_METHODS, type CalibrationMethod, calibrationImages, formatSummary,
  FLOAT_WEIGHTS, type FloatWeights, formatThresholdTable, HEAD_MODES, type HeadMode, hasLabels, interleavedLatency, modelMap, quantizeDarknet, type QuantizeSummary,
} from '../../core/onnx/quantize/index';
import { flagNumber, flagString, parseArgs, parseSize, UsageError } from '../args';
import type { Command } from '../command';

function intFlag(args: ReturnType<typeof parseArgs>, name: string, fallback: number, min: number): number {
  const v = flagNumber(args, name, fallback);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} expects an integer >= ${min}`);
  return v;
}

function choice<T extends string>(args: ReturnType<typeof parseArgs>, name: string, allowed: readonly T[], fallback: T): T {
  const v = flagString(args, name) ?? fallback;
  if (!allowed.includes(v as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/** "105,106" → [105, 106]; "none" or "" → []. */
function layerList(text: string): number[] {
  const t = text.trim();
  if (t === '' || t === 'none') return [];
  return t.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--keep-float expects darknet layer indices (e.g. 0,105,106) or "none", got "${p}"`);
    return n;
  });
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'Int8 quantization (KL / MinMax / Percentile calibration) into a QDQ ONNX model onnxruntime runs in int8',
  usage: 'Usage: darkslim quantize <cfg> <weights> --calib <.data|list.txt|folder> [--images 100] [--method kl|minmax|percentile]\n'
    + '                         [--percentile 99.99] [--keep-float i,j|none] [--eval <.data|list.txt|folder> | --no-eval]\n'
    + '                         [--points 0|11|101] [--out model.int8.onnx] [--heads integer|qlinear|float]\n'
    + '                         [--activations asymmetric|symmetric] [--weight-bits 7|8] [--no-equalize]\n'
    + '                         [--float-weights int8|float16|float] [--flat]\n'
    + '                         [--threads N] [--runs 30] [--size WxH] [--names F] [--table] [--json]\n\n'
    + 'Calibrates the model on --images images of --calib (a .data file\'s train list, a list or a folder;\n'
    + 'prepared exactly as inference prepares them), chooses one threshold per activation tensor (kl: the\n'
    + 'TensorRT/MNN entropy method on a 2048-bin |x| histogram; minmax; percentile of |x|) and writes a\n'
    + 'QDQ ONNX model: int8 weights per output channel, uint8 activations, the [yolo] decode in float.\n'
    + 'onnxruntime loads it and the int8 kernels it fuses (QLinearConv, QLinearAdd, ConvInteger...) are\n'
    + 'listed; none at all is an error. Defaults hold mAP on leaky and ReLU YOLOs: cross-layer equalization,\n'
    + '7-bit weights (x86 without VNNI saturates 8-bit ones: --weight-bits 8 on VNNI or ARM), asymmetric\n'
    + 'activations, head convs in ConvInteger with float outputs. The stem (the leading layers finer than\n'
    + 'stride 8: few channels over large maps, where onnxruntime\'s int8 CPU kernels are slower than its\n'
    + 'float ones) computes in float from int8-stored weights (--keep-float lists darknet layers to keep\n'
    + 'float instead; "none" quantizes every layer; --float-weights float16|float stores them wider).\n'
    + 'Node patterns repeated layer after layer are written once, as ONNX model-local functions that\n'
    + 'onnxruntime inlines at load (the same graph, a smaller file); --flat writes them out, for runtimes\n'
    + 'that do not read ONNX functions.\n'
    + 'Reports sizes, latency float vs int8 (interleaved runs, --threads, default all cores), and mAP of both\n'
    + 'on --eval (default: the calibration set when it has labels). Nothing is written unless everything\n'
    + 'succeeds. --table prints the per-tensor thresholds. --json prints {"output","bytes","floatBytes",\n'
    + '"method","images","latency":{"float_ms","int8_ms"},"mAP":{"float","int8"},...}.',
  async run(argv) {
    const args = parseArgs(argv, {
      booleans: ['json', 'table', 'no-eval', 'no-equalize', 'flat'],
      values: ['calib', 'images', 'method', 'percentile', 'keep-float', 'eval', 'points', 'out', 'heads', 'activations', 'weight-bits', 'float-weights',
        'threads', 'runs', 'size', 'names'],
    });
    const [cfgPath, weightsPath, ...extra] = args.positional;
    if (!cfgPath) throw new UsageError('missing <cfg>');
    if (!weightsPath) throw new UsageError('missing <weights>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const calib = flagString(args, 'calib');
    if (!calib) throw new UsageError('missing --calib <.data|list.txt|folder> (the calibration images)');
    const images = intFlag(args, 'images', 100, 1);
    const method = choice<CalibrationMethod>(args, 'method', CALIBRATION_METHODS, 'kl');
    const percentile = flagNumber(args, 'percentile', 99.99);
    if (!(percentile > 0 && percentile <= 100)) throw new UsageError('--percentile must be in (0, 100]');
    const keepFlag = flagString(args, 'keep-float');
    const keepFloat = keepFlag === undefined ? undefined : layerList(keepFlag);
    const heads = choice<HeadMode>(args, 'heads', HEAD_MODES, 'integer');
    const scheme = choice<ActivationScheme>(args, 'activations', ACTIVATION_SCHEMES, 'asymmetric');
    const floatWeights = choice<FloatWeights>(args, 'float-weights', FLOAT_WEIGHTS, 'int8');
    const weightBits = intFlag(args, 'weight-bits', 7, 7);
    if (weightBits !== 7 && weightBits !== 8) throw new UsageError('--weight-bits must be 7 or 8');
    const points = flagNumber(args, 'points', 0);
    if (points !== 0 && points !== 11 && points !== 101) throw new UsageError('--points must be 0, 11 or 101');
    const threads = intFlag(args, 'threads', defaultThreads(), 1);
    const runs = intFlag(args, 'runs', 30, 1);
    const size = flagString(args, 'size');
    const [width, height] = size ? parseSize(size) : [undefined, undefined];
    const evalSpec = flagString(args, 'eval');
    if (evalSpec && args.flags.has('no-eval')) throw new UsageError('--eval and --no-eval contradict each other');
    const out = resolve(flagString(args, 'out') ?? `${basename(cfgPath, extname(cfgPath))}.int8.onnx`);
    for (const input of [cfgPath, weightsPath, calib, evalSpec]) {
      if (input && resolve(input) === out) throw new UsageError(`--out ${out} is one of the inputs: choose another file`);
    }
    const json = args.flags.has('json');
    const log = (line: string) => { if (!json) process.stderr.write(`${line}\n`); };

    // Everything that can be checked before the long part is checked first.
    const { graph, weights } = loadDarknet(cfgPath, weightsPath, { width, height });
    const classes = graph.layers.find((l) => l.type === 'yolo')?.yolo?.classes;
    const namesFile = flagString(args, 'names');
    const names = classes !== undefined ? resolveNames(classes, namesFile, [cfgPath, weightsPath]) : undefined;
    const source = await calibrationImages(calib, images);
    let evalSet: Dataset | undefined;
    if (!args.flags.has('no-eval')) {
      const candidate = await loadDataset(evalSpec ?? calib, evalSpec ? {} : { split: 'train' });
      const missing = candidate.items.find((it) => it.missingImage);
      if (evalSpec && missing) throw new Error(`--eval: image not found: ${missing.image}`);
      if (hasLabels(candidate) && !missing) evalSet = candidate;
      else if (evalSpec) throw new Error(`--eval ${evalSpec} has no labels: mAP cannot be measured`);
      if (evalSet && classes !== undefined) {
        const bad = evalSet.items.flatMap((it) => it.truths).find((t) => t.classId >= classes);
        if (bad) throw new Error(`${evalSpec ?? calib}: class id ${bad.classId} is outside the model's ${classes} classes`);
      }
    }

    const passes = method === 'minmax' ? 1 : 2;
    const progress = createProgress(source.images.length * passes, 'calibrate', { enabled: !json });
    const result = await quantizeDarknet(graph, weights, {
      calib, images, method, percentile, keepFloat, heads, scheme, weightBits: weightBits as 7 | 8, floatWeights,
      equalize: !args.flags.has('no-equalize'), flat: args.flags.has('flat'), threads, names, onProgress: (done) => progress.tick(done),
    });
    progress.done();

    const m = result.metadata;
    const dims = [1, m.channels, m.netH, m.netW];
    log(`latency: ${runs} interleaved runs of each model, ${threads} thread${threads > 1 ? 's' : ''}...`);
    const [lf, lq] = await interleavedLatency([result.floatBytes, result.bytes], dims, { threads, runs });
    const summary: QuantizeSummary = {
      output: out, bytes: result.bytes.length, floatBytes: result.floatBytes.length, method, images: result.images,
      latency: { float_ms: lf.median_ms, int8_ms: lq.median_ms, threads, runs, float_cpu_ms: lf.cpu_ms, int8_cpu_ms: lq.cpu_ms },
    };
    if (evalSet) {
      const total = evalSet.items.length;
      const pf = createProgress(total, 'map float', { enabled: !json });
      const mf = await modelMap(result.floatBytes, evalSet, { points: points as MapPoints, threads, onProgress: (d) => pf.tick(d) });
      pf.done();
      const pq = createProgress(total, 'map int8', { enabled: !json });
      const mq = await modelMap(result.bytes, evalSet, { points: points as MapPoints, threads, onProgress: (d) => pq.tick(d) });
      pq.done();
      summary.mAP = { float: mf.mAP, int8: mq.mAP, images: mf.images, points };
    }

    writeFileAtomic(out, result.bytes);

    if (json) {
      process.stdout.write(JSON.stringify({
        output: out,
        bytes: result.bytes.length,
        floatBytes: result.floatBytes.length,
        method,
        ...(method === 'percentile' ? { percentile } : {}),
        images: result.images,
        latency: {
          float_ms: lf.median_ms, int8_ms: lq.median_ms, ratio: round(lf.median_ms / lq.median_ms, 3), threads, runs,
          float_cpu_ms: lf.cpu_ms, int8_cpu_ms: lq.cpu_ms,
        },
        mAP: summary.mAP ? { float: summary.mAP.float, int8: summary.mAP.int8, images: summary.mAP.images, points } : null,
        int8Kernels: result.int8Ops,
        optimizedOps: result.optimizedOps,
        settings: {
          activations: result.scheme, weightBits: result.weightBits, heads: result.heads, equalized: result.equalized,
          keepFloat: result.keepFloat, floatLayers: result.floatLayers, floatWeights: result.floatWeights,
        },
        calibration: { seconds: round(result.calibrationSeconds, 3), source: resolve(calib) },
        thresholds: result.tensors.map((t) => ({
          layer: t.layer, op: t.op, min: t.min, max: t.max, threshold: t.threshold, scale: t.scale, zeroPoint: t.zeroPoint,
          ...(t.klBin !== undefined ? { klBin: t.klBin } : {}), ...(t.tiedTo ? { tied: true } : {}),
        })),
      }, null, 2) + '\n');
      return 0;
    }
    if (args.flags.has('table')) process.stdout.write(`${formatThresholdTable(result.tensors)}\n\n`);
    process.stdout.write(`${formatSummary(result, summary)}\n`);
    return 0;
  },
};
