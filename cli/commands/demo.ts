// darkslim demo: the whole method on a synthetic dataset made on the spot (core/pipeline/demo.ts):
// dataset → train → sparsity-train → prune → fine-tune → int8, then the METHOD.md-style table.
import { parseBackendChoice } from '../../core/engine/backend';
import { eventToJsonLine, type TaskEvent } from '../../core/pipeline/events';
import { demoTable, runDemo } from '../../core/pipeline/demo';
import { flagNumber, flagString, parseArgs, UsageError } from '../args';
import type { Command } from '../command';
import { humanReporter } from './train';

const USAGE = `Usage: darkslim demo [options]

Runs Darkslim's whole pipeline on a synthetic shapes dataset it makes first: train the default
model (darkslim-tiny), sparsity-train it, prune it (network slimming), fine-tune it, quantize it to
int8, and print a table (params, file size, BFLOPs, onnxruntime latency, mAP@0.5 per stage) with the
method's acceptance targets. Writes report.json and report.md (and every model) in the output folder.
About 10 minutes on a 2-core laptop; --quick runs the same stages in about a minute (tiny dataset,
few iterations: checks the pipeline, not accuracy).

Options:
  --out DIR          output folder (default demo-output)
  --quick            tiny dataset and few iterations
  --train N          synthetic training images (default 800)
  --valid N          synthetic validation images (default 200)
  --epochs N         baseline training epochs
  --sparsity-epochs N, --finetune-epochs N
  --lambda L         sparsity λ (default 0.01)
  --percent P        fixed pruning percent (0-100) instead of the search
  --backend B        auto (default) | tensorflow | wasm | cpu
  --threads N        onnxruntime threads for latency and mAP (default 2)
  --seed N           random seed (default 1)
  --json             stream JSON-lines events on stdout (the table goes to stderr)`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the whole pipeline on a synthetic dataset and print the table',
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv, {
      booleans: ['json', 'quick'],
      values: ['out', 'train', 'valid', 'epochs', 'sparsity-epochs', 'finetune-epochs', 'lambda', 'percent', 'backend', 'threads', 'seed'],
    });
    if (args.positional.length) throw new UsageError(`unexpected argument "${args.positional[0]}"`);
    let backend;
    try { backend = parseBackendChoice(flagString(args, 'backend')); } catch (e) { throw new UsageError((e as Error).message); }
    const num = (name: string) => (flagString(args, name) !== undefined ? flagNumber(args, name, 0) : undefined);
    const percent = num('percent');
    if (percent !== undefined && !(percent > 0 && percent < 100)) throw new UsageError('--percent must be between 0 and 100');
    const json = args.flags.has('json');
    const controller = new AbortController();
    const onSignal = () => controller.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const human = humanReporter();
    const onEvent = json ? (e: TaskEvent) => process.stdout.write(eventToJsonLine(e)) : (e: TaskEvent) => {
      if (e.task === 'demo') {
        if (e.type === 'log') process.stderr.write(`\n== ${e.message}\n`);
        return;
      }
      if (e.type === 'gamma' && e.lambda === undefined) return;
      human(e);
    };
    try {
      const report = await runDemo({
        outDir: flagString(args, 'out') ?? 'demo-output', quick: args.flags.has('quick'), backend,
        trainImages: num('train'), validImages: num('valid'), trainEpochs: num('epochs'), sparsityEpochs: num('sparsity-epochs'),
        finetuneEpochs: num('finetune-epochs'), lambda: num('lambda'), prunePercent: percent !== undefined ? percent / 100 : undefined,
        threads: num('threads'), seed: num('seed'), signal: controller.signal, onEvent,
      });
      const out = json ? process.stderr : process.stdout;
      out.write('\n' + demoTable(report) + '\n\n');
      for (const t of report.targets) out.write(`${t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.value} (target ${t.target})\n`);
      out.write(`\ntotal ${report.totalSeconds.toFixed(0)} s; report: ${report.outDir}/report.md\n`);
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
