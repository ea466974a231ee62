import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../../core/darknet/files';
import { Detector, detectionRecords, detectionsSvg, formatRecord, type DetectionRecord } from '../../core/onnx/detect';
import { detectorSource, resolveNames } from '../../core/onnx/model';
import { ImagePrefetcher } from '../../core/onnx/prefetch';
import { flagNumber, flagString, parseArgs, parseSize, UsageError } from '../args';
import type { Command } from '../command';

const FORMATS: Record<string, 'png' | 'jpeg' | 'webp' | 'tiff'> = {
  '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.tif': 'tiff', '.tiff': 'tiff',
};

/** One image → the given path; several → <out stem>-<image stem><out ext> beside it. */
function annotatedPath(out: string, image: string, count: number): string {
  if (count === 1) return resolve(out);
  const ext = extname(out) || '.png';
  return resolve(join(dirname(out), `${basename(out, ext)}-${basename(image, extname(image))}${ext}`));
}

export const detectCommand: Command = {
  name: 'detect',
  summary: 'Detect objects in images like `darknet detector test -ext_output`',
  usage: 'Usage: darkslim detect <cfg> <weights|model.onnx> <image…> [--names F] [--thresh 0.25] [--out annotated.png]\n'
    + '                       [--json] [--size WxH] [--letterbox] [--threads N]\n\n'
    + 'Runs the model on onnxruntime with darknet\'s preprocessing (resize_image, or letterbox with\n'
    + 'letter_box=1 / --letterbox), decode, NMS (the model\'s nms_kind, 0.45) and prints darknet\'s\n'
    + '-ext_output lines, sorted by left edge:\n'
    + '  dog: 65%\t(left_x:  122   top_y:  222   width:  244   height:  295)\n'
    + '--json prints [{"image", "detections": [{"class", "name", "prob", "left", "top", "width", "height"}]}]\n'
    + '(boxes in original-image pixels, one entry per printed class). --out draws the boxes (png, jpg, webp);\n'
    + 'with several images each gets <out>-<image name>.<ext>. Names: --names, else the one .names file\n'
    + 'beside the cfg with as many lines as classes.',
  async run(argv) {
    const args = parseArgs(argv, { booleans: ['json', 'letterbox'], values: ['names', 'thresh', 'out', 'size', 'threads'] });
    const [cfgPath, modelPath, ...images] = args.positional;
    if (!cfgPath) throw new UsageError('missing <cfg>');
    if (!modelPath) throw new UsageError('missing <weights>');
    if (images.length === 0) throw new UsageError('missing <image>');
    const thresh = flagNumber(args, 'thresh', 0.25);
    if (!(thresh >= 0 && thresh <= 1)) throw new UsageError('--thresh must be between 0 and 1');
    const size = flagString(args, 'size');
    const [width, height] = size ? parseSize(size) : [undefined, undefined];
    const threadsFlag = flagString(args, 'threads');
    const threads = threadsFlag === undefined ? undefined : flagNumber(args, 'threads', 1);
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new UsageError('--threads expects a positive integer');
    const out = flagString(args, 'out');
    if (out && !FORMATS[extname(out).toLowerCase()]) throw new UsageError(`--out must end in ${Object.keys(FORMATS).join(', ')}`);
    const inputs = new Set([cfgPath, modelPath, ...images].map((p) => resolve(p)));
    if (out) {
      for (const img of images) {
        const target = annotatedPath(out, img, images.length);
        if (inputs.has(target)) throw new UsageError(`--out would overwrite the input ${target}`);
      }
    }

    const detector = await Detector.create(detectorSource(cfgPath, modelPath, { width, height }), {
      threads, letterBox: args.flags.has('letterbox') ? true : undefined,
    });
    const names = resolveNames(detector.classes, flagString(args, 'names'), [cfgPath, modelPath]) ?? detector.meta.names;
    const json: { image: string; detections: DetectionRecord[] }[] = [];
    const prefetcher = new ImagePrefetcher(images, {
      netW: detector.meta.netW, netH: detector.meta.netH, letterBox: detector.letterBox,
    });
    try {
      for await (const img of prefetcher) {
        const t0 = performance.now();
        const outputs = await detector.infer(img.tensor);
        const ms = performance.now() - t0;
        const dets = detector.postprocess(outputs, img.width, img.height, { thresh });
        const records = detectionRecords(dets, img.width, img.height, thresh, names);
        if (args.flags.has('json')) {
          json.push({
            image: img.path,
            detections: records.map((r) => ({ ...r, prob: Math.round(r.prob * 1e6) / 1e6 })),
          });
        } else {
          const lines = [`${img.path}: Predicted in ${ms.toFixed(6)} milli-seconds.`, ...records.map((r) => formatRecord(r))];
          process.stdout.write(lines.join('\n') + '\n');
        }
        if (out) {
          const target = annotatedPath(out, img.path, images.length);
          const svg = detectionsSvg(dets, img.width, img.height, thresh, names);
          const format = FORMATS[extname(target).toLowerCase()];
          const bytes = await sharp(img.path, { autoOrient: true })
            .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
            .toFormat(format)
            .toBuffer();
          writeFileAtomic(target, bytes);
          if (!args.flags.has('json')) process.stderr.write(`wrote ${target}\n`);
        }
      }
    } finally {
      await prefetcher.close();
      await detector.dispose();
    }
    if (args.flags.has('json')) process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    return 0;
  },
};
