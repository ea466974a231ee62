// darkslim distill: knowledge distillation from a teacher (the unpruned model) into a student (the
// pruned one) with the tfjs engine (core/engine/distill.ts, trainer.ts). --json streams the task
// events as JSON lines; SIGINT stops between iterations like training.
import { parseBackendChoice } from '../../core/engine/backend';
import { distillOptions, type DistillMethod } from '../../core/engine/distill';
import { distill } from '../../core/engine/trainer';
import { eventToJsonLine, type TaskEvent } from '../../core/pipeline/events';
import { flagNumber, flagString, parseArgs, UsageError } from '../args';
import { stopOnSignals, type Command } from '../command';
import { humanReporter } from './train';

const USAGE = `Usage: darkslim distill --teacher <cfg> <weights> --student <cfg> <weights> --data <.data> [options]

Distils the teacher (the unpruned model, frozen) into the student (the pruned model): the student
trains on the dataset with the ground truth plus the teacher's outputs on the same augmented images.
Teacher and student must take the same input size and have the same [yolo] heads.

Methods:
  objectness  Mehta & Ozturk 2018 (default): feature-map NMS on the teacher's outputs (3x3 cells,
              same class, across anchors), then class and box terms scaled by the teacher's
              objectness, and the teacher's objectness as a target, each weighted by --lambda
  hinton      Hinton et al. 2015: alpha*T^2*KL(sigmoid(z_t/T) || sigmoid(z_s/T)) on the class
              scores, plus (1-alpha) times the ground-truth loss

Options:
  --teacher CFG WEIGHTS  the teacher's cfg and weights
  --student CFG WEIGHTS  the student's cfg and weights (the outputs are named after its cfg)
  --data FILE            darknet .data file (train=, valid=, names=)
  --method M             objectness (default) | hinton
  --T X                  Hinton temperature (default 3)
  --alpha X              Hinton weight of the soft targets, 0..1 (default 0.5)
  --lambda X             weight of the objectness-scaled teacher terms (default 1)
  --gt-first             objectness: no teacher objectness term on the cells the ground truth
                         assigns a box to (there the teacher's lower score fights the label)
  --imitate L,...        feature imitation (off by default): these layers' student outputs learn the
                         teacher's through a 1x1 adapter, by mean squared error (same layer indices)
  --imitate-weight X     weight of the feature imitation term (default 1)
  --epochs N             train N epochs (overrides max_batches; steps are rescaled)
  --batch N, --subdivisions N, --lr X   as for darkslim train
  --eval-every N         mAP@0.5 on the validation list every N epochs (0: at the end only; default 1)
  --resume               continue from <out>/<name>_state.json and <name>_last.weights
  --no-augment           no jitter/flip/HSV augmentation
  --backend B            auto (default) | tensorflow | wasm | cpu
  --seed N               random seed (default 1)
  --out DIR              output folder (default ./distill-out)
  --json                 stream JSON-lines events on stdout`;

/** Takes `--name A B` (two values) out of argv. */
function takePair(argv: string[], name: string): { pair?: [string, string]; rest: string[] } {
  const rest: string[] = [];
  let pair: [string, string] | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) {
      const a = argv[i + 1], b = argv[i + 2];
      if (a === undefined || b === undefined || a.startsWith('--') || b.startsWith('--')) throw new UsageError(`--${name} needs two values: <cfg> <weights>`);
      if (pair) throw new UsageError(`--${name} given twice`);
      pair = [a, b];
      i += 2;
    } else {
      rest.push(argv[i]);
    }
  }
  return { pair, rest };
}

export const distillCommand: Command = {
  name: 'distill',
  summary: 'Distil a teacher (unpruned) into a student (pruned) model (tfjs engine)',
  usage: USAGE,
  async run(argv) {
    const t = takePair(argv, 'teacher');
    const s = takePair(t.rest, 'student');
    const args = parseArgs(s.rest, {
      booleans: ['json', 'resume', 'no-augment', 'gt-first'],
      values: ['data', 'method', 'T', 'alpha', 'lambda', 'imitate', 'imitate-weight', 'epochs', 'batch', 'subdivisions', 'lr', 'eval-every', 'backend', 'seed', 'out'],
    });
    if (args.positional.length) throw new UsageError(`unexpected argument "${args.positional[0]}"`);
    if (!t.pair) throw new UsageError('missing --teacher <cfg> <weights>');
    if (!s.pair) throw new UsageError('missing --student <cfg> <weights>');
    const data = flagString(args, 'data');
    if (!data) throw new UsageError('missing --data <.data>');
    const num = (name: string) => (flagString(args, name) !== undefined ? flagNumber(args, name, 0) : undefined);
    const method = (flagString(args, 'method') ?? 'objectness') as DistillMethod;
    const T = num('T'), alpha = num('alpha'), lambda = num('lambda');
    const imitate = flagString(args, 'imitate');
    const featureLayers = imitate !== undefined ? imitate.split(',').map((v) => Number(v.trim())) : undefined;
    const featureWeight = num('imitate-weight');
    try { distillOptions({ method, T, alpha, lambda, featureLayers, featureWeight }); } catch (e) { throw new UsageError((e as Error).message); }
    let backend;
    try { backend = parseBackendChoice(flagString(args, 'backend')); } catch (e) { throw new UsageError((e as Error).message); }
    const json = args.flags.has('json');
    const stop = stopOnSignals('darkslim distill: stopping after this iteration (files written so far are complete)');
    try {
      const r = await distill({
        cfg: s.pair[0], weights: s.pair[1], teacher: { cfg: t.pair[0], weights: t.pair[1] }, method, T, alpha, lambda,
        gtFirst: args.flags.has('gt-first') || undefined,
        data, outDir: flagString(args, 'out') ?? 'distill-out',
        epochs: num('epochs'), batch: num('batch'), subdivisions: num('subdivisions'), learningRate: num('lr'),
        evalEvery: num('eval-every'), resume: args.flags.has('resume'), augment: !args.flags.has('no-augment'),
        backend, seed: num('seed'), signal: stop.signal,
        ...(featureLayers ? { distill: { teacherCfg: t.pair[0], teacherWeights: t.pair[1], options: { featureLayers, featureWeight } } } : {}),
        onEvent: json ? (e) => process.stdout.write(eventToJsonLine(e)) : reporter(),
      });
      return r.cancelled ? 130 : 0;
    } finally {
      stop.release();
    }
  },
};

/** train's progress bar, plus the teacher and the distillation loss parts. */
function reporter(): (e: TaskEvent) => void {
  const human = humanReporter();
  let last: Record<string, number> | undefined;
  return (e) => {
    if (e.type === 'metrics') last = e.values;
    human(e);
    if (e.type === 'start') {
      const i = e.info;
      const params = i.distillMethod === 'hinton' ? `T ${i.T}, alpha ${i.alpha}` : `lambda ${i.lambda}, FM-NMS radius ${i.fmNmsRadius}${i.gtFirst ? ', ground truth first' : ''}`;
      process.stderr.write(`teacher ${i.teacherCfg} + ${i.teacherWeights}; method ${i.distillMethod} (${params})\n`);
    }
    if (e.type === 'eval' && last) {
      process.stderr.write(`  loss ${last.loss.toFixed(3)} = ground truth ${last.gtLoss.toFixed(3)} (scaled) + distillation ${last.distill.toFixed(3)} (cls ${last.distillCls.toFixed(3)}, box ${last.distillBox.toFixed(3)}, obj ${last.distillObj.toFixed(3)})\n`);
    }
  };
}
