import { basename, extname, resolve } from 'node:path';
import { writeFileAtomic } from '../../core/darknet/files';
import { exportOnnx, OPSET } from '../../core/onnx/export';
import { loadDarknet, resolveNames } from '../../core/onnx/model';
import { flagNumber, flagString, parseArgs, parseSize, UsageError } from '../args';
import type { Command } from '../command';

export const exportCommand: Command = {
  name: 'export',
  summary: 'Export a cfg + weights to ONNX (decoded [yolo] outputs ready for NMS)',
  usage: 'Usage: darkslim export <cfg> <weights> [--out model.onnx] [--size WxH] [--concat] [--names F] [--batch N] [--json]\n\n'
    + `Writes an ONNX model (opset ${OPSET}) computing what darknet computes: BN folded into the convs,\n`
    + 'darknet\'s activations, maxpool padding, routes, shortcuts, upsample, SE blocks, and each [yolo]\n'
    + 'layer decoded into an output yolo_<layer> of shape [N, H*W*anchors, 5+classes]: x, y, w, h\n'
    + '(relative to the network input), objectness, class scores. --concat adds `detections`, all heads\n'
    + 'concatenated. Input `input`: [N, 3, H, W] RGB in [0,1]. Default --out: <cfg name>.onnx in the\n'
    + 'current folder. An unsupported layer is an error naming it.',
  async run(argv) {
    const args = parseArgs(argv, { booleans: ['concat', 'json'], values: ['out', 'size', 'names', 'batch'] });
    const [cfgPath, weightsPath, ...extra] = args.positional;
    if (!cfgPath) throw new UsageError('missing <cfg>');
    if (!weightsPath) throw new UsageError('missing <weights>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const size = flagString(args, 'size');
    const [width, height] = size ? parseSize(size) : [undefined, undefined];
    const batchFlag = flagString(args, 'batch');
    const batch = batchFlag === undefined ? undefined : flagNumber(args, 'batch', 1);
    if (batch !== undefined && (!Number.isInteger(batch) || batch < 1)) throw new UsageError('--batch expects a positive integer');
    const out = resolve(flagString(args, 'out') ?? `${basename(cfgPath, extname(cfgPath))}.onnx`);
    if ([cfgPath, weightsPath].some((p) => resolve(p) === out)) throw new UsageError(`--out ${out} is one of the inputs: choose another file`);

    const { graph, weights } = loadDarknet(cfgPath, weightsPath, { width, height });
    const classes = graph.layers.find((l) => l.type === 'yolo')?.yolo?.classes;
    const namesFile = flagString(args, 'names');
    const names = classes !== undefined ? resolveNames(classes, namesFile, [cfgPath, weightsPath]) : undefined;
    const result = exportOnnx(graph, weights, { concat: args.flags.has('concat'), names, batch });
    writeFileAtomic(out, result.bytes);

    const m = result.metadata;
    if (args.flags.has('json')) {
      process.stdout.write(JSON.stringify({
        out, bytes: result.bytes.length, opset: OPSET, nodes: result.nodes,
        input: { name: 'input', shape: [batch ?? 'N', m.channels, m.netH, m.netW] },
        outputs: result.outputs, metadata: m,
      }, null, 2) + '\n');
      return 0;
    }
    const lines = [
      `wrote ${out} (${(result.bytes.length / 1e6).toFixed(2)} MB, opset ${OPSET}, ${result.nodes} nodes)`,
      `  input   input [${batch ?? 'N'}, ${m.channels}, ${m.netH}, ${m.netW}] RGB 0..1${m.letterBox ? ', letterboxed' : ''}`,
      ...m.heads.map((h) => `  output  ${h.output} [${batch ?? 'N'}, ${h.rows}, ${5 + h.classes}]  (${h.w}x${h.h} cells x ${h.anchors} anchors)`),
      ...result.outputs.filter((o) => o === 'detections').map(() => `  output  detections [${batch ?? 'N'}, ${m.heads.reduce((n, h) => n + h.rows, 0)}, ${5 + m.classes}]`),
      `  nms     ${m.nms.kind}${m.nms.kind === 'default' ? '' : ` (beta ${m.nms.beta})`} at 0.45, as darknet applies it${names ? `; ${names.length} class names embedded` : ''}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
