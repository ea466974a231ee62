import { benchSession } from '../../core/onnx/bench';
import { exportOnnx } from '../../core/onnx/export';
import { isOnnxPath, loadDarknet } from '../../core/onnx/model';
import { OnnxSession } from '../../core/onnx/runtime';
import { flagNumber, flagString, parseArgs, parseSize, UsageError } from '../args';
import type { Command } from '../command';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Inference latency at batch 1 on onnxruntime (median and p90)',
  usage: 'Usage: darkslim bench <cfg> <weights|model.onnx> [--size WxH] [--runs 50] [--warmup 5] [--threads N] [--json]\n\n'
    + 'Times forward passes of the model (exported in memory from cfg + weights, or the given .onnx)\n'
    + 'on a fixed input, after a warm-up. --json prints {"engine","threads","runs","median_ms","p90_ms"}.',
  async run(argv) {
    const args = parseArgs(argv, { booleans: ['json'], values: ['size', 'runs', 'threads', 'warmup'] });
    const [cfgPath, modelPath, ...extra] = args.positional;
    if (!cfgPath) throw new UsageError('missing <cfg>');
    if (!modelPath) throw new UsageError('missing <weights>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const runs = flagNumber(args, 'runs', 50);
    if (!Number.isInteger(runs) || runs < 1) throw new UsageError('--runs expects a positive integer');
    const warmup = flagNumber(args, 'warmup', 5);
    if (!Number.isInteger(warmup) || warmup < 0) throw new UsageError('--warmup expects an integer >= 0');
    const threadsFlag = flagString(args, 'threads');
    const threads = threadsFlag === undefined ? undefined : flagNumber(args, 'threads', 1);
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new UsageError('--threads expects a positive integer');
    const size = flagString(args, 'size');
    const [width, height] = size ? parseSize(size) : [undefined, undefined];

    let model: Uint8Array | string;
    let dims: number[];
    if (isOnnxPath(modelPath)) {
      if (size) throw new UsageError('--size cannot change an exported .onnx model: export it again with --size');
      model = modelPath;
      dims = [];
    } else {
      const { graph, weights } = loadDarknet(cfgPath, modelPath, { width, height });
      model = exportOnnx(graph, weights, { batch: 1 }).bytes;
      dims = [1, graph.net.channels, graph.net.height, graph.net.width];
    }
    const session = await OnnxSession.create(model, { threads });
    try {
      if (dims.length === 0) {
        const m = session.metadata;
        if (m) dims = [1, m.channels, m.netH, m.netW];
        else {
          const meta = session.session.inputMetadata[0];
          const shape = meta && 'shape' in meta ? meta.shape : undefined;
          if (!shape || shape.slice(1).some((d) => typeof d !== 'number')) throw new Error('cannot tell the input size of this ONNX model');
          dims = shape.map((d) => (typeof d === 'number' ? d : 1));
        }
      }
      const r = await benchSession(session, dims, { runs, warmup });
      if (args.flags.has('json')) {
        process.stdout.write(JSON.stringify({ engine: r.engine, threads: r.threads, runs: r.runs, median_ms: r.median_ms, p90_ms: r.p90_ms, input: r.input }, null, 2) + '\n');
      } else {
        process.stdout.write(`${r.engine}, ${r.threads} thread${r.threads > 1 ? 's' : ''}, input [${r.input.join(', ')}], ${r.runs} runs: `
          + `median ${r.median_ms.toFixed(3)} ms, p90 ${r.p90_ms.toFixed(3)} ms, min ${r.min_ms.toFixed(3)} ms\n`);
      }
      return 0;
    } finally {
      await session.dispose();
    }
  },
};
