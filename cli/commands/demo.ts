// darkslim demo: the whole method on a synthetic dataset made on the spot (core/pipeline/demo.ts):
// dataset → train → sparsity-train → prune → fine-tune (→ distil) → int8, then the METHOD.md-style table.
import { parseBackendChoice } from '../../core/engine/backend';
import type { DistillMethod } from '../../core/engine/distill';
import { distill } from '../../core/engine/trainer';
import { eventToJsonLine, type TaskEvent } from '../../core/pipeline/events';
import { demoTable, runDemo, type DemoDistillStage } from '../../core/pipeline/demo';
import { flagNumber, flagString, parseArgs, UsageError } from '../args';
import { stopOnSignals, type Command } from '../command';
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
  --lambda L         sparsity λ (default 0.3)
  --percent P        fixed pruning percent (0-100) instead of the search
  --distill-method M objectness (default) | hinton: the "pruned, distilled" row distils the baseline
                     into the pruned model, from the pruned weights like fine-tuning
  --distill-epochs N epochs of that row (default: the fine-tuning epochs, so that the two rows
                     compare; bench/distill.bench.ts compares the methods over 3 seeds)
  --no-distill       no distillation row
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
      booleans: ['json', 'quick', 'no-distill'],
      values: ['out', 'train', 'valid', 'epochs', 'sparsity-epochs', 'finetune-epochs', 'lambda', 'percent', 'backend', 'threads', 'seed', 'distill-method', 'distill-epochs'],
    });
    if (args.positional.length) throw new UsageError(`unexpected argument "${args.positional[0]}"`);
    let backend;
    try { backend = parseBackendChoice(flagString(args, 'backend')); } catch (e) { throw new UsageError((e as Error).message); }
    const num = (name: string) => (flagString(args, name) !== undefined ? flagNumber(args, name, 0) : undefined);
    const percent = num('percent');
    if (percent !== undefined && !(percent > 0 && percent < 100)) throw new UsageError('--percent must be between 0 and 100');
    const method = (flagString(args, 'distill-method') ?? 'objectness') as DistillMethod;
    if (method !== 'objectness' && method !== 'hinton') throw new UsageError(`--distill-method must be objectness or hinton (got "${method}")`);
    const distillEpochs = num('distill-epochs');
    if (distillEpochs !== undefined && !(distillEpochs > 0)) throw new UsageError('--distill-epochs must be positive');
    const json = args.flags.has('json');
    const stop = stopOnSignals();
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
        threads: num('threads'), seed: num('seed'), signal: stop.signal, onEvent,
        distill: args.flags.has('no-distill') ? undefined : distillStage(method, distillEpochs, num('seed')),
      });
      const out = json ? process.stderr : process.stdout;
      out.write('\n' + demoTable(report) + '\n\n');
      for (const t of report.targets) out.write(`${t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.value} (target ${t.target})\n`);
      out.write(`\ntotal ${report.totalSeconds.toFixed(0)} s; report: ${report.outDir}/report.md\n`);
      return 0;
    } finally {
      stop.release();
    }
  },
};

/**
 * The demo's distillation row: the baseline (teacher) distilled into the pruned model, starting from
 * the pruned weights like the fine-tuning row, with the same seed, schedule and (by default) epochs,
 * so that the two rows compare (about 50 s of the demo's ten minutes on the pruned model). Its mAP is
 * measured by the demo on onnxruntime like every row.
 */

function distillStage(method: DistillMethod, epochs: number | undefined, seed: number | undefined): DemoDistillStage {
  return async (ctx) => {
    const r = await distill({
      cfg: ctx.student.cfg, weights: ctx.student.weights, teacher: ctx.teacher, method, data: ctx.dataFile, outDir: ctx.outDir,
      epochs: epochs ?? ctx.epochs, backend: ctx.backend, seed, burnIn: 0, checkpoints: false, evalEvery: 0, evalLimit: 0,
      signal: ctx.signal, onEvent: ctx.onEvent,
    });
    if (r.cancelled) throw new Error('cancelled');
    const how = method === 'objectness' ? 'objectness-scaled (Mehta & Ozturk), λ 1, FM-NMS 3×3' : 'Hinton, T 3, α 0.5';
    return { cfg: r.outputs.cfg, weights: r.outputs.final, seconds: r.seconds, note: `${how}; teacher = baseline; ${Math.round(r.epochs * 100) / 100} epoch${r.epochs === 1 ? '' : 's'} from the pruned weights` };
  };
}
