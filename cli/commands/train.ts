// darkslim train: YOLO training, sparsity training (--sparsity) and fine-tuning (--weights of a
// pruned model) with the tfjs engine. --json streams the task events as JSON lines.
import { resolve } from 'node:path';
import { parseBackendChoice } from '../../core/engine/backend';
import { DEFAULT_MODEL_CFG } from '../../core/engine/default-model';
import { train, type TrainOptions } from '../../core/engine/trainer';
import type { SparsitySchedule } from '../../core/engine/sparsity';
import { eventToJsonLine, type TaskEvent } from '../../core/pipeline/events';
import { flagNumber, flagString, parseArgs, UsageError } from '../args';
import { stopOnSignals, type Command } from '../command';

const USAGE = `Usage: darkslim train <cfg> --data <.data> [options]

Trains a darknet model with the TypeScript engine (tfjs). <cfg> may be "default" for Darkslim's
own small detector (core/engine/models/darkslim-tiny.cfg, 64x64, 4 classes).

Options:
  --data FILE            darknet .data file (train=, valid=, names=)
  --weights FILE         initial weights (pretrained, partial backbone, or a pruned model to fine-tune)
  --epochs N             train N epochs (overrides max_batches; steps are rescaled)
  --batch N              images per iteration (overrides [net] batch)
  --subdivisions N       mini-batches per iteration (overrides [net] subdivisions)
  --lr X                 learning rate (overrides [net] learning_rate)
  --sparsity L           sparsity training: add L*sign(gamma) to the BN scales' gradients
  --sparsity-schedule S  constant (default) | decay (x0.01 after half) | topk (protect the top-k%)
  --topk F               fraction protected by --sparsity-schedule topk (default 0.3)
  --switch-at F          decay/topk: fraction of training before the late phase (default 0.5; topk
                         with 0 pushes only the channels below the top-k from the start)
  --eval-every N         mAP@0.5 on the validation list every N epochs (0: at the end only; default 1)
  --finetune             label the task as fine-tuning (events/dashboard)
  --resume               continue from <out>/<name>_state.json and <name>_last.weights
  --no-augment           no jitter/flip/HSV augmentation
  --backend B            auto (default) | tensorflow | wasm | cpu
  --seed N               random seed (default 1)
  --workers N            data parallel: split each mini-batch over N worker threads (wasm backend
                         each; default 1 = in this thread); not with distillation
  --out DIR              output folder (default ./train-out)
  --json                 stream JSON-lines events on stdout`;

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train, sparsity-train or fine-tune a model (tfjs engine)',
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv, {
      booleans: ['json', 'resume', 'no-augment', 'finetune'],
      values: ['data', 'weights', 'epochs', 'batch', 'subdivisions', 'lr', 'sparsity', 'sparsity-schedule', 'topk', 'switch-at', 'eval-every', 'backend', 'seed', 'out', 'workers'],
    });
    const [cfgArg, ...extra] = args.positional;
    if (!cfgArg) throw new UsageError('missing <cfg>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const data = flagString(args, 'data');
    if (!data) throw new UsageError('missing --data <.data>');
    const cfg = cfgArg === 'default' ? DEFAULT_MODEL_CFG : cfgArg;
    const schedule = (flagString(args, 'sparsity-schedule') ?? 'constant') as SparsitySchedule;
    if (!['constant', 'decay', 'topk'].includes(schedule)) throw new UsageError(`--sparsity-schedule must be constant, decay or topk (got "${schedule}")`);
    const lambda = flagNumber(args, 'sparsity', 0);
    const switchAt = flagString(args, 'switch-at') !== undefined ? flagNumber(args, 'switch-at', 0.5) : undefined;
    if (switchAt !== undefined && !(switchAt >= 0 && switchAt <= 1)) throw new UsageError(`--switch-at must be between 0 and 1 (got ${flagString(args, 'switch-at')})`);
    let backend;
    try { backend = parseBackendChoice(flagString(args, 'backend')); } catch (e) { throw new UsageError((e as Error).message); }
    const workers = flagString(args, 'workers') !== undefined ? flagNumber(args, 'workers', 1) : undefined;
    if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) throw new UsageError(`--workers must be a whole number >= 1 (got ${flagString(args, 'workers')})`);
    const json = args.flags.has('json');
    const stop = stopOnSignals('darkslim train: stopping after this iteration (files written so far are complete)');
    const num = (name: string) => (flagString(args, name) !== undefined ? flagNumber(args, name, 0) : undefined);
    const opts: TrainOptions = {
      cfg, data, weights: flagString(args, 'weights'), outDir: flagString(args, 'out') ?? 'train-out',
      epochs: num('epochs'), batch: num('batch'), subdivisions: num('subdivisions'), learningRate: num('lr'),
      sparsity: lambda > 0 ? { lambda, schedule, topk: num('topk'), switchAt } : undefined,
      evalEvery: num('eval-every'), resume: args.flags.has('resume'), augment: !args.flags.has('no-augment'),
      backend, seed: num('seed'), workers, task: args.flags.has('finetune') ? 'finetune' : undefined,
      signal: stop.signal,
      onEvent: json ? (e) => process.stdout.write(eventToJsonLine(e)) : humanReporter(),
    };
    try {
      const r = await train(opts);
      return r.cancelled ? 130 : 0;
    } finally {
      stop.release();
    }
  },
};

/** A one-line progress bar on stderr plus a line per epoch result. */
export function humanReporter(): (e: TaskEvent) => void {
  const tty = process.stderr.isTTY;
  let lastLoss = NaN;
  let lastDraw = 0;
  const line = (s: string) => process.stderr.write((tty ? '\r\x1b[K' : '') + s + '\n');
  return (e) => {
    switch (e.type) {
      case 'start':
        line(`${e.task}: backend ${e.info.backend} (${e.info.backendNote}); ${e.info.trainImages} train / ${e.info.validImages} valid images; batch ${e.info.batch}/${e.info.subdivisions}; ${e.total} iterations (${e.info.itersPerEpoch}/epoch); sparsity ${e.info.sparsity}`);
        break;
      case 'metrics':
        lastLoss = e.values.loss;
        break;
      case 'progress': {
        const now = Date.now();
        if (!tty && now - lastDraw < 10000 && e.done !== e.total) break;
        lastDraw = now;
        const width = 30;
        const fill = Math.round((e.done / e.total) * width);
        const s = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${e.done}/${e.total} epoch ${(e.epoch ?? 0).toFixed(2)} loss ${lastLoss.toFixed(3)} ${(e.rate ?? 0).toFixed(1)} img/s eta ${Math.round(e.eta ?? 0)}s`;
        process.stderr.write(tty ? '\r\x1b[K' + s : s + '\n');
        break;
      }
      case 'eval':
        line(`epoch ${(e.epoch ?? 0).toFixed(2)}: mAP@0.5 ${(100 * (e.map ?? 0)).toFixed(2)}%${e.best ? ' (best)' : ''}`);
        break;
      case 'gamma':
        if (e.lambda !== undefined) line(`epoch ${(e.epoch ?? 0).toFixed(2)}: γ sparsity ${(100 * e.sparsity).toFixed(1)}% of ${e.count} below 0.01 (λ ${e.lambda})`);
        break;
      case 'checkpoint':
        if (e.kind !== 'last') line(`wrote ${e.kind}: ${e.path}`);
        break;
      case 'log':
        line(`${e.level}: ${e.message}`);
        break;
      case 'done':
        line(`${e.cancelled ? 'cancelled' : 'done'} in ${e.seconds.toFixed(1)} s: ${Object.entries(e.summary).map(([k, v]) => `${k} ${typeof v === 'number' ? +v.toFixed(4) : v}`).join(', ')}`);
        break;
      case 'error':
        break;
    }
  };
}
