import { loadDataset } from '../../core/data/dataset';
import { formatMapReport, type MapPoints } from '../../core/eval/map';
import { Detector } from '../../core/onnx/detect';
import { evaluate } from '../../core/onnx/evaluate';
import { detectorSource, resolveNames } from '../../core/onnx/model';
import { defaultDecodeWorkers } from '../../core/onnx/prefetch';
import { createProgress } from '../../core/onnx/progress';
import { defaultThreads } from '../../core/onnx/runtime';
import { flagNumber, flagString, parseArgs, parseSize, UsageError } from '../args';
import type { Command } from '../command';

function positiveInt(args: ReturnType<typeof parseArgs>, name: string, min = 1): number | undefined {
  if (flagString(args, name) === undefined) return undefined;
  const v = flagNumber(args, name, 0);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} expects an integer >= ${min}`);
  return v;
}

export const mapCommand: Command = {
  name: 'map',
  summary: 'Mean average precision over a dataset, as `darknet detector map`',
  usage: 'Usage: darkslim map <cfg> <weights|model.onnx> --data <.data|list.txt|folder> [--points 0|11|101] [--iou 0.5]\n'
    + '                    [--thresh 0.25] [--names F] [--limit N] [--size WxH] [--letterbox] [--threads N]\n'
    + '                    [--workers N] [--json]\n\n'
    + 'Detections at thresh 0.005, the model\'s NMS at 0.45, matching at IoU > --iou, AP as area under the\n'
    + 'PR curve (--points 0, darknet\'s default), or 11 / 101 recall points. --thresh is darknet\'s\n'
    + 'thresh_calc_avg_iou (precision, recall, F1, average IoU, TP/FP). A .data file uses its valid= list\n'
    + '(else train=); labels are found as darknet does (images/ → labels/, .jpg → .txt).\n'
    + 'Images are decoded by --workers threads (default 1) while onnxruntime runs --threads threads\n'
    + '(default: the cores left over); progress goes to stderr. --json prints\n'
    + '{"mAP","points","iou","images","classes":[{"id","name","ap","tp","fp"}],"precision","recall","f1","averageIoU","timing"}.',
  async run(argv) {
    const args = parseArgs(argv, {
      booleans: ['json', 'letterbox'],
      values: ['data', 'points', 'iou', 'thresh', 'names', 'limit', 'size', 'threads', 'workers', 'prefetch'],
    });
    const [cfgPath, modelPath, ...extra] = args.positional;
    if (!cfgPath) throw new UsageError('missing <cfg>');
    if (!modelPath) throw new UsageError('missing <weights>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const data = flagString(args, 'data');
    if (!data) throw new UsageError('missing --data <.data|list.txt>');
    const points = flagNumber(args, 'points', 0);
    if (points !== 0 && points !== 11 && points !== 101) throw new UsageError('--points must be 0, 11 or 101');
    const iou = flagNumber(args, 'iou', 0.5);
    if (!(iou > 0 && iou < 1)) throw new UsageError('--iou must be between 0 and 1');
    const thresh = flagNumber(args, 'thresh', 0.25);
    const limit = positiveInt(args, 'limit');
    const workers = positiveInt(args, 'workers', 0) ?? defaultDecodeWorkers();
    const threads = positiveInt(args, 'threads') ?? Math.max(1, defaultThreads() - workers);
    const prefetch = positiveInt(args, 'prefetch');
    const size = flagString(args, 'size');
    const [width, height] = size ? parseSize(size) : [undefined, undefined];

    const detector = await Detector.create(detectorSource(cfgPath, modelPath, { width, height }), {
      threads, letterBox: args.flags.has('letterbox') ? true : undefined,
      // idle onnxruntime threads must not spin on the cores the decoding thread needs
      spinning: workers === 0,
    });
    try {
      const namesFile = flagString(args, 'names');
      const dataset = await loadDataset(data, namesFile ? { namesFile } : {});
      const names = dataset.names ?? resolveNames(detector.classes, undefined, [cfgPath, modelPath]) ?? detector.meta.names;
      if (names && names.length !== detector.classes) {
        process.stderr.write(`warning: ${names.length} class names but the model has ${detector.classes} classes\n`);
      }
      for (const w of dataset.warnings.slice(0, 5)) process.stderr.write(`warning: ${w}\n`);
      const total = limit !== undefined ? Math.min(limit, dataset.items.length) : dataset.items.length;
      const progress = createProgress(total, 'map');
      const result = await evaluate(detector, dataset, {
        points: points as MapPoints, iou, thresh, limit, workers, prefetch, names,
        onProgress: (done) => progress.tick(done),
      });
      progress.done();
      const { map, timing } = result;
      const t = {
        images: timing.images,
        seconds: round(timing.seconds, 3),
        images_per_second: round(timing.imagesPerSecond, 2),
        inference_ms: round(timing.inferenceMs, 3),
        inference_images_per_second: round(timing.inferenceImagesPerSecond, 2),
        ratio: round(timing.ratio, 3),
        threads: timing.threads,
        decode_workers: timing.decodeWorkers,
      };
      if (args.flags.has('json')) {
        process.stdout.write(JSON.stringify({
          mAP: map.mAP, points: map.points, iou: map.iou, images: map.images,
          classes: map.classes.map((c) => ({ id: c.id, name: c.name, ap: c.ap, tp: c.tp, fp: c.fp })),
          precision: map.precision, recall: map.recall, f1: map.f1, averageIoU: map.averageIoU,
          timing: t,
        }, null, 2) + '\n');
      } else {
        process.stdout.write(`${formatMapReport(map)}\n`);
        process.stdout.write(`\n ${t.images} images in ${t.seconds} s: ${t.images_per_second} images/s end to end, `
          + `${t.inference_images_per_second} images/s pure inference (${t.inference_ms} ms, ${t.threads} thread${t.threads > 1 ? 's' : ''}, `
          + `${t.decode_workers} decoding thread${t.decode_workers === 1 ? '' : 's'})\n`);
      }
      return 0;
    } finally {
      await detector.dispose();
    }
  },
};

function round(x: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}
