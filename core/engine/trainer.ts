// Training, sparsity training and fine-tuning of a darknet model with the tfjs engine.
//
//   train({ cfg, data, weights?, outDir, epochs?, sparsity?, signal?, onEvent? })
//
// One iteration = one darknet batch ([net] batch, split into `subdivisions` mini-batches whose
// gradients are accumulated; batch norm sees each mini-batch). An epoch = ceil(train images / batch)
// iterations over a fresh shuffle. `epochs` overrides max_batches (steps are rescaled with it).
// Training starts at iteration 0 (darknet's -clear) unless resuming from the output folder's state.
// Every epoch: <stem>_last.weights (+ <stem>_state.json with the optimizer's momentum) are written
// to temporary names and renamed; every `evalEvery` epochs mAP@0.5 on the validation list, and
// <stem>_best.weights when it improved. At the end <stem>_final.weights. Cancelling (AbortSignal)
// stops between iterations; files already renamed into place are complete, nothing else is written.
//
// Distillation (`distill`, task `distill`, METHOD.md §3): a frozen teacher (its own cfg + weights,
// batch norm in inference mode, no gradient; on onnxruntime by default, which keeps it cheap beside
// a small student) runs once per mini-batch on the same augmented input;
// the student's head gradient becomes gtScale·(ground-truth gradient) + distillation gradient
// (distill.ts), through yoloLoss's hook. Everything else (checkpoints, resume, cancel) is training.
//
// Data parallel (`workers` > 1, parallel.ts): each mini-batch is split over worker threads (one
// wasm backend and model replica each: tfjs wasm is single-threaded in Node); they return mean
// gradients, the mini-batch's combined BN statistics and loss parts; SGD, sparsity, checkpoints and
// evaluation stay in this thread. Each shard is batch-normalised with its own statistics (as darknet
// subdivisions are). Not with distillation: its teacher and hook run in this thread.
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadCfg, loadWeightsFile, writeFileAtomic } from '../darknet/files';
import { analyzeCfg } from '../darknet/graph';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { readWeights, writeWeights } from '../darknet/weights';
import { loadDataset, type DatasetItem } from '../data/dataset';
import { emitterFor, type EventSink, type TaskKind } from '../pipeline/events';
import { selectBackend, type BackendChoice, type BackendInfo } from './backend';
import { augmentConfig, loadEvalSamples, TrainLoader, type Batch, type EvalSample } from './data';
import { evaluateSamples } from './evaluate';
import { addDistillParts, checkDistillPair, distillHook, distillOptions, emptyDistillParts, gtScaleOf, type DistillMethod, type DistillNetSpec, type DistillOptions, type DistillParts } from './distill';
import { headLossConfigs, yoloLoss, type LossParts } from './loss';
import { DarknetModel } from './model';
import { DataParallel, gradTensors, statTensors } from './parallel';
import { learningRateAt, rescaleSteps, Sgd, solverConfig, type SolverConfig } from './optimizer';
import { gammaHistogram, prunableGammaMasks, SparsityRegularizer, type SparsityOptions } from './sparsity';

export interface TrainOptions {
  /** cfg path (or cfg text with `cfgText`). */
  cfg: string;
  cfgText?: string;
  /** darknet .data file (train=, valid=, names=). Or give the items directly. */
  data?: string;
  trainItems?: DatasetItem[];
  validItems?: DatasetItem[];
  names?: string[];
  /** Initial weights: pretrained, partial (backbone), or a pruned model to fine-tune. */
  weights?: string;
  outDir: string;
  epochs?: number;
  maxBatches?: number;
  batch?: number;
  subdivisions?: number;
  learningRate?: number;
  /** Override burn_in (iterations). */
  burnIn?: number;
  backend?: BackendChoice;
  sparsity?: SparsityOptions;
  /** Evaluate every N epochs (0: only at the end). Default 1. */
  evalEvery?: number;
  /** Use at most this many validation images. */
  evalLimit?: number;
  /** Resume from <outDir>/<stem>_state.json + _last.weights. */
  resume?: boolean;
  seed?: number;
  /** Data augmentation from [net] (default true). */
  augment?: boolean;
  /** Task label for events (train, sparsity, finetune). */
  task?: TaskKind;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** Write checkpoints each epoch (default true). */
  checkpoints?: boolean;
  /**
   * Worker threads computing each mini-batch's gradients in parallel (parallel.ts; default 1: in this
   * thread). Workers use the wasm backend unless `backend` names another. Not with `distill`.
   */
  workers?: number;
  /** The data-parallel worker script (default: parallel-worker.js/.ts beside parallel.ts). */
  workerScript?: string;
  /** Knowledge distillation from a frozen teacher with the same input and heads (task `distill`). */
  distill?: {
    teacherCfg: string; teacherWeights: string; options?: Partial<DistillOptions>;
    /**
     * Where the teacher runs: `onnx` (default: onnxruntime, native and multi-threaded, so the teacher
     * costs a fraction of a student step even when the student is tiny) or `tfjs` (the training
     * engine's own inference forward; bit-identical to the student's forward on a no-BN model).
     */
    runtime?: 'onnx' | 'tfjs';
  };
}

export interface TrainResult {
  cancelled: boolean;
  iterations: number;
  epochs: number;
  seconds: number;
  imagesPerSecond: number;
  backend: BackendInfo;
  /** Ground-truth loss parts (unscaled) of the last and first iteration. */
  lastLoss?: LossParts;
  firstLoss?: LossParts;
  /** Distillation loss parts of the last and first iteration (distill only). */
  lastDistill?: DistillParts;
  firstDistill?: DistillParts;
  map?: number;
  bestMap?: number;
  sparsity?: number;
  outputs: Record<string, string>;
}

interface TrainState {
  version: 1;
  iteration: number;
  epoch: number;
  seen: string;
  bestMap: number;
  cfg: string;
  momentum: Record<string, string>;
}

function f32ToB64(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}
function b64ToF32(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function sameFile(a: string, b: string): boolean {
  try { return realpathSync(a) === realpathSync(b); } catch { return resolve(a) === resolve(b); }
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const emit = emitterFor(opts.task ?? (opts.distill ? 'distill' : opts.sparsity ? 'sparsity' : 'train'), opts.onEvent);
  try {
    return await trainInner(opts, emit);
  } catch (e) {
    emit({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}

/** Fine-tunes a (pruned) model from its weights: train() with task `finetune`. */
export function finetune(opts: TrainOptions & { weights: string }): Promise<TrainResult> {
  return train({ ...opts, task: opts.task ?? 'finetune' });
}

/**
 * Distils a teacher (the unpruned model) into a student (`cfg` + `weights`, the pruned model):
 * train() with task `distill`. Unset method/T/alpha/lambda/gtFirst take DEFAULT_DISTILL's values
 * (objectness, T 3, α 0.5, λ 1, gtFirst off).
 */
export function distill(opts: TrainOptions & { weights: string; teacher: { cfg: string; weights: string }; method?: DistillMethod; T?: number; alpha?: number; lambda?: number; gtFirst?: boolean }): Promise<TrainResult> {
  const { teacher, method, T, alpha, lambda, gtFirst, ...rest } = opts;
  return train({
    ...rest, task: opts.task ?? 'distill',
    distill: { teacherCfg: teacher.cfg, teacherWeights: teacher.weights, runtime: opts.distill?.runtime, options: { ...opts.distill?.options, method, T, alpha, lambda, gtFirst } },
  });
}

/** The shapes checkDistillPair compares, from a built model. */
function distillSpec(m: DarknetModel): DistillNetSpec {
  return { netW: m.spec.netW, netH: m.spec.netH, channels: m.spec.input[0], heads: m.spec.heads.map((h) => ({ index: h.index, classes: h.classes, anchors: h.anchors, in: h.in, newCoords: h.newCoords })) };
}

/**
 * The frozen teacher: raw head outputs ([B,H,W,A·(5+C)] NHWC per head) of a mini-batch, and the
 * outputs of the feature-imitation layers (NHWC, in `features` order).
 */
interface Teacher {
  runtime: 'onnx' | 'tfjs';
  note: string;
  /** Channels of the feature-imitation layers' outputs. */
  featureChannels: number[];
  heads(x: tf.Tensor4D, nhwc: Float32Array, n: number): Promise<{ heads: Float32Array[]; features: Float32Array[] }>;
  dispose(): Promise<void>;
}

function tfjsTeacher(model: DarknetModel, features: number[], note = 'tfjs inference forward'): Teacher {
  return {
    runtime: 'tfjs', note, featureChannels: features.map((i) => model.spec.layers.find((l) => l.index === i)!.out[0]),
    heads: async (x) => {
      const outs = tf.tidy(() => { const r = model.forward(x, { keep: features }); return [...r.heads, ...features.map((i) => r.layers.get(i)!)]; });
      const r = outs.map((t) => t.dataSync() as Float32Array);
      tf.dispose(outs);
      return { heads: r.slice(0, model.spec.heads.length), features: r.slice(model.spec.heads.length) };
    },
    dispose: async () => model.dispose(),
  };
}

/** The teacher exported to ONNX with its heads' raw inputs (and feature layers) as extra outputs, run by onnxruntime. */
async function onnxTeacher(model: DarknetModel, weights: ModelWeights, features: number[]): Promise<Teacher> {
  const { exportOnnx } = await import('../onnx/export');
  const { OnnxSession } = await import('../onnx/runtime');
  const { availableParallelism } = await import('node:os');
  const sources = model.spec.heads.map((h) => model.spec.layers.find((l) => l.index === h.index)!.inputs[0]);
  const bytes = exportOnnx(model.graph, weights, { extraOutputs: [...new Set([...sources, ...features])] }).bytes;
  const threads = Math.max(1, Math.min(4, availableParallelism()));
  // no spinning: idle onnxruntime threads would steal the core the student trains on
  const session = await OnnxSession.create(bytes, { threads, spinning: false });
  const names = sources.map((i) => `layer_${i}`);
  const { netW: W, netH: H } = model.spec;
  return {
    featureChannels: features.map((i) => model.spec.layers.find((l) => l.index === i)!.out[0]),
    runtime: 'onnx', note: `onnxruntime, ${threads} thread${threads > 1 ? 's' : ''}`,
    heads: async (_x, nhwc, n) => {
      const plane = W * H;
      const nchw = new Float32Array(n * 3 * plane);
      for (let b = 0; b < n; b++) for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) nchw[(b * 3 + c) * plane + p] = nhwc[(b * plane + p) * 3 + c];
      // all outputs: with a list of names, onnxruntime-node labels the results with the model's
      // first output names (measured: layer_12 came back as yolo_13)
      const out = await session.run(nchw, [n, 3, H, W]);
      const nhwcOf = (name: string) => {
        const t = out.get(name)!;
        const [, C, h, w] = t.dims;
        const r = new Float32Array(t.data.length);
        for (let b = 0; b < n; b++) for (let c = 0; c < C; c++) for (let p = 0; p < h * w; p++) r[(b * h * w + p) * C + c] = t.data[(b * C + c) * h * w + p];
        return r;
      };
      return { heads: names.map(nhwcOf), features: features.map((i) => nhwcOf(`layer_${i}`)) };
    },
    dispose: async () => { model.dispose(); await session.dispose(); },
  };
}

/** The frozen teacher: built from its own files, checked against the student. */
async function loadTeacher(d: NonNullable<TrainOptions['distill']>, student: DarknetModel, studentCfg: string, warn: (m: string) => void): Promise<Teacher> {
  if (!existsSync(d.teacherCfg)) throw new Error(`teacher cfg ${d.teacherCfg} does not exist`);
  if (!existsSync(d.teacherWeights)) throw new Error(`teacher weights ${d.teacherWeights} do not exist`);
  const graph = loadCfg(d.teacherCfg);
  const errors = graph.diagnostics.filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`${d.teacherCfg}: line ${errors[0].range.start.line + 1}: ${errors[0].message}`);
  const r = loadWeightsFile(d.teacherWeights, graph);
  if (!r.check.ok) throw new Error(`${d.teacherWeights}: ${r.check.message}`);
  if (r.weights.loadedLayers < graph.layers.length) {
    throw new Error(`${d.teacherWeights} holds weights for ${r.weights.loadedLayers} of the ${graph.layers.length} layers of ${d.teacherCfg}: the teacher must be a complete trained model`);
  }
  const teacher = DarknetModel.create(graph, r.weights);
  try {
    if (teacher.spec.heads.length === 0) throw new Error(`the teacher ${d.teacherCfg} has no [yolo] layer`);
    checkDistillPair(distillSpec(teacher), distillSpec(student), { teacher: d.teacherCfg, student: studentCfg });
  } catch (e) {
    teacher.dispose();
    throw e;
  }
  const features = d.options?.featureLayers ?? [];
  for (const i of features) {
    const tl = teacher.spec.layers.find((l) => l.index === i), sl = student.spec.layers.find((l) => l.index === i);
    const bad = !tl || !sl ? 'does not exist in both models' : tl.kind === 'yolo' ? 'is a [yolo] layer'
      : tl.out[1] !== sl.out[1] || tl.out[2] !== sl.out[2] ? `has a ${tl.out[2]}x${tl.out[1]} output in the teacher but ${sl.out[2]}x${sl.out[1]} in the student` : '';
    if (bad) { teacher.dispose(); throw new Error(`distillation: feature imitation layer ${i} ${bad}`); }
  }
  if (d.runtime === 'tfjs') return tfjsTeacher(teacher, features);
  try {
    return await onnxTeacher(teacher, r.weights, features);
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    warn(`the teacher runs on the tfjs engine: onnxruntime could not run it (${why})`);
    return tfjsTeacher(teacher, features, `tfjs inference forward (onnxruntime failed: ${why})`);
  }
}

async function trainInner(opts: TrainOptions, emit: ReturnType<typeof emitterFor>): Promise<TrainResult> {
  const t0 = Date.now();
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a whole number >= 1 (got ${workers})`);
  // checked first: a teacher or worker threads would otherwise be started for nothing
  if (workers > 1 && opts.distill) throw new Error(`distillation runs in one thread: workers ${workers} cannot be combined with a teacher (drop --workers or the teacher)`);
  const backend = await selectBackend(opts.backend ?? 'auto');
  const cfgText = opts.cfgText ?? readFileSync(opts.cfg, 'utf8');
  const graph: ModelGraph = opts.cfgText ? analyzeCfg(cfgText) : loadCfg(opts.cfg);
  const errors = graph.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`${opts.cfg}: line ${errors[0].range.start.line + 1}: ${errors[0].message}`);
  const stem = basename(opts.cfg, extname(opts.cfg));
  mkdirSync(opts.outDir, { recursive: true });
  const out = {
    cfg: join(opts.outDir, `${stem}.cfg`),
    last: join(opts.outDir, `${stem}_last.weights`),
    best: join(opts.outDir, `${stem}_best.weights`),
    final: join(opts.outDir, `${stem}_final.weights`),
    state: join(opts.outDir, `${stem}_state.json`),
  };
  for (const p of Object.values(out)) {
    for (const input of [opts.cfg, opts.weights, opts.data, opts.distill?.teacherCfg, opts.distill?.teacherWeights]) {
      if (input && existsSync(p) && existsSync(input) && sameFile(p, input)) {
        throw new Error(`output ${p} would overwrite the input ${input}: choose another --out folder`);
      }
    }
  }

  // ---- weights ----
  let initial: ModelWeights | undefined;
  let state: TrainState | undefined;
  if (opts.resume && existsSync(out.state) && existsSync(out.last)) {
    state = JSON.parse(readFileSync(out.state, 'utf8')) as TrainState;
    const r = readWeights(readFileSync(out.last), graph);
    if (!r.check.ok) throw new Error(`cannot resume: ${out.last}: ${r.check.message}`);
    initial = r.weights;
  } else if (opts.weights) {
    const r = loadWeightsFile(opts.weights, graph);
    if (!r.check.ok) throw new Error(`${opts.weights}: ${r.check.message}`);
    initial = r.weights;
  }
  const model = DarknetModel.create(graph, initial, opts.seed ?? 1);
  model.checkTrainable();
  if (model.spec.heads.length === 0) throw new Error(`${opts.cfg} has no [yolo] layer to train`);
  let teacher: Teacher | undefined;
  let dOpts: DistillOptions | undefined;
  if (opts.distill) {
    try {
      dOpts = distillOptions(opts.distill.options);
      teacher = await loadTeacher(opts.distill, model, opts.cfg, (message) => emit({ type: 'log', level: 'warning', message }));
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  const gtScale = dOpts ? gtScaleOf(dOpts) : 1;
  // feature imitation: a 1×1 adapter per layer (student channels → teacher channels), trained with
  // the student, not saved; starts as the identity on the shared channels
  const featureLayers = dOpts?.featureLayers ?? [];
  const featureWeight = dOpts?.featureWeight ?? 1;
  const adapters = featureLayers.map((index, k) => {
    const cs = model.spec.layers.find((l) => l.index === index)!.out[0];
    const ct = teacher!.featureChannels[k];
    const eye = new Float32Array(cs * ct);
    for (let c = 0; c < Math.min(cs, ct); c++) eye[c * ct + c] = 1;
    return { index, ct, kernel: tf.variable(tf.tensor4d(eye, [1, 1, cs, ct]), true, `distill_adapter_${index}`) };
  });

  // ---- data ----
  let trainItems = opts.trainItems, validItems = opts.validItems, names = opts.names;
  if (!trainItems) {
    if (!opts.data) throw new Error('no training data: give a .data file');
    const tr = await loadDataset(opts.data, { split: 'train' });
    trainItems = tr.items;
    names = names ?? tr.names;
    if (!validItems) validItems = (await loadDataset(opts.data, { split: 'valid' })).items;
  }
  trainItems = trainItems.filter((i) => !i.missingImage);
  if (trainItems.length === 0) throw new Error('the training list holds no existing image');
  validItems = (validItems ?? []).filter((i) => !i.missingImage).slice(0, opts.evalLimit ?? Infinity);

  // ---- solver ----
  let solver: SolverConfig = solverConfig(graph);
  if (opts.batch) solver.batch = opts.batch;
  if (opts.subdivisions) solver.subdivisions = opts.subdivisions;
  if (opts.learningRate) solver.learningRate = opts.learningRate;
  solver.subdivisions = Math.min(solver.subdivisions, solver.batch);
  const itersPerEpoch = Math.ceil(trainItems.length / solver.batch);
  const maxBatches = opts.maxBatches ?? (opts.epochs ? opts.epochs * itersPerEpoch : solver.maxBatches || 10 * itersPerEpoch);
  solver = rescaleSteps(solver, maxBatches);
  if (opts.burnIn !== undefined) solver.burnIn = opts.burnIn;
  const totalEpochs = maxBatches / itersPerEpoch;
  const mini = Math.ceil(solver.batch / solver.subdivisions);

  const modelVars = model.variables();
  const vars = [...modelVars, ...adapters.map((ad) => ad.kernel)];
  const decayed = new Set([...model.convs.values()].map((p) => p.kernel));
  const sgd = new Sgd(solver.momentum, solver.decay, decayed);
  const masks = prunableGammaMasks(graph);
  const sparsity = opts.sparsity && opts.sparsity.lambda > 0 ? new SparsityRegularizer(model, masks, opts.sparsity) : undefined;
  const lossCfgs = headLossConfigs(graph, model.spec.heads);
  const loader = new TrainLoader(trainItems, graph.net.width, graph.net.height, augmentConfig(graph, opts.augment ?? true), opts.seed ?? 1);
  const evalEvery = opts.evalEvery ?? 1;

  let iteration = 0;
  let seen = 0n;
  let bestMap = -1;
  if (state) {
    iteration = state.iteration;
    seen = BigInt(state.seen);
    bestMap = state.bestMap;
    const mom = new Map(Object.entries(state.momentum).map(([k, v]) => [k, b64ToF32(v)]));
    // velocities are created lazily; seed them now
    sgd.load(vars, mom);
  }

  emit({
    type: 'start', total: maxBatches,
    info: {
      backend: backend.name, backendNote: backend.note, cfg: opts.cfg, weights: opts.weights ?? '(fresh)', trainImages: trainItems.length,
      validImages: validItems.length, batch: solver.batch, subdivisions: solver.subdivisions, maxBatches, itersPerEpoch,
      learningRate: solver.learningRate, resumedAt: iteration, ...(workers > 1 ? { workers } : {}), sparsity: opts.sparsity ? `${opts.sparsity.lambda} ${opts.sparsity.schedule}` : 'off',
      ...(dOpts && opts.distill ? {
        teacherCfg: opts.distill.teacherCfg, teacherWeights: opts.distill.teacherWeights, teacherRuntime: teacher!.note, distillMethod: dOpts.method,
        ...(dOpts.method === 'hinton' ? { T: dOpts.T, alpha: dOpts.alpha } : { lambda: dOpts.lambda, fmNmsRadius: dOpts.radius, gtFirst: dOpts.gtFirst === true }),
        ...(featureLayers.length ? { featureLayers: featureLayers.join(','), featureWeight } : {}),
      } : {}),
    },
  });

  const evalSamples: EvalSample[] = validItems.length ? await loadEvalSamples(validItems, graph.net.width, graph.net.height, graph.net.letterBox) : [];
  if (!existsSync(out.cfg) || readFileSync(out.cfg, 'utf8') !== cfgText) writeFileAtomic(out.cfg, cfgText);

  const outputs: Record<string, string> = { cfg: out.cfg };
  let cancelled = false;
  let firstLoss: LossParts | undefined, lastLoss: LossParts | undefined;
  let firstDistill: DistillParts | undefined, lastDistill: DistillParts | undefined;
  let lastMap: number | undefined;
  let trainedImages = 0;
  let tTrain = Date.now();

  const saveCheckpoint = (epoch: number): void => {
    const w = model.toWeights(seen);
    writeFileAtomic(out.last, writeWeights(graph, w));
    const st: TrainState = {
      version: 1, iteration, epoch, seen: seen.toString(), bestMap, cfg: out.cfg,
      momentum: Object.fromEntries([...sgd.state()].map(([k, v]) => [k, f32ToB64(v)])),
    };
    writeFileAtomic(out.state, JSON.stringify(st));
    outputs.last = out.last;
    emit({ type: 'checkpoint', step: iteration, epoch, kind: 'last', path: out.last });
  };

  const runEval = (epoch: number): number | undefined => {
    if (!evalSamples.length) return undefined;
    const t = Date.now();
    const r = evaluateSamples(model, evalSamples, { names, signal: opts.signal });
    if (opts.signal?.aborted) return undefined;
    const better = r.mAP > bestMap;
    emit({ type: 'eval', step: iteration, epoch, map: r.mAP, values: { map50: r.mAP, precision: r.precision, recall: r.recall, f1: r.f1, averageIoU: r.averageIoU, seconds: (Date.now() - t) / 1000 }, best: better });
    lastMap = r.mAP;
    if (better) {
      bestMap = r.mAP;
      if (opts.checkpoints !== false) {
        writeFileAtomic(out.best, writeWeights(graph, model.toWeights(seen)));
        outputs.best = out.best;
        emit({ type: 'checkpoint', step: iteration, epoch, kind: 'best', path: out.best });
      }
    }
    return r.mAP;
  };

  const emitGamma = (epoch: number): void => {
    if (!masks.size) return;
    const h = gammaHistogram(model, masks);
    emit({ type: 'gamma', step: iteration, epoch, edges: h.edges, counts: h.counts, sparsity: h.sparsity, count: h.count, lambda: sparsity?.lambdaNow });
  };

  // batches: a permutation per epoch; the next batch is prepared while the current one trains
  let order: number[] = [];
  let pos = 0;
  const nextIndices = (): number[] => {
    const idx: number[] = [];
    while (idx.length < solver.batch) {
      if (pos >= order.length) { order = loader.shuffle(); pos = 0; }
      idx.push(order[pos++]);
    }
    return idx;
  };
  // after resuming, skip into the epoch as far as we were
  for (let k = 0; k < (iteration % itersPerEpoch); k++) nextIndices();
  let pending: Promise<Batch> | undefined = iteration < maxBatches ? loader.batch(nextIndices()) : undefined;
  emitGamma(iteration / itersPerEpoch);

  // data-parallel workers, closed in the finally below whatever happens (error, cancel)
  let par: DataParallel | undefined;
  try {
    if (workers > 1 && iteration < maxBatches) {
      const parBackend = opts.backend && opts.backend !== 'auto' ? opts.backend : 'wasm';
      par = await DataParallel.create({ cfgText, workers, backend: parBackend, workerScript: opts.workerScript });
      emit({ type: 'log', level: 'info', message: `data parallel: ${par.size} worker threads, backend ${par.backend}` });
      // images/s counts training, not the workers' start (as it leaves out loading the eval images)
      tTrain = Date.now();
    }

    while (iteration < maxBatches) {
      // let signal handlers and I/O run (an already-resolved batch would not yield to them)
      await new Promise<void>((r) => setImmediate(r));
      if (opts.signal?.aborted) { cancelled = true; break; }
      const epochStart = iteration % itersPerEpoch === 0;
      if (epochStart && sparsity) sparsity.update(iteration / maxBatches);
      const batch = await pending!;
      pending = iteration + 1 < maxBatches ? loader.batch(nextIndices()) : undefined;
      const lr = learningRateAt(solver, iteration);
      const ti = Date.now();

      // forward/backward over the mini-batches, gradients accumulated
      const acc = new Map<tf.Variable, tf.Tensor>();
      const parts: LossParts = { total: 0, box: 0, obj: 0, cls: 0, count: 0, avgIou: 0 };
      const dParts = emptyDistillParts();
      const plane = graph.net.width * graph.net.height * 3;
      const subs = Math.ceil(batch.n / mini);
      for (let s = 0; s < subs; s++) {
        const a = s * mini, b = Math.min(batch.n, a + mini);
        if (par) {
          // the workers compute this mini-batch's mean gradient with the current parameters
          const r = await par.gradients(model, batch.x.subarray(a * plane, b * plane), b - a, batch.truths.slice(a, b));
          model.updateRollingStats(statTensors(r.bnStats));
          const grads = gradTensors(model, r.grads);
          for (const [v, g] of grads) {
            const scaled = subs > 1 ? tf.tidy(() => tf.div(g, subs)) : g;
            if (scaled !== g) g.dispose();
            const prev = acc.get(v);
            if (prev) { acc.set(v, tf.tidy(() => tf.add(prev, scaled))); prev.dispose(); scaled.dispose(); } else acc.set(v, scaled);
          }
          const pp = r.parts;
          parts.total += pp.total / subs; parts.box += pp.box / subs; parts.obj += pp.obj / subs; parts.cls += pp.cls / subs;
          parts.avgIou += pp.avgIou * pp.count; parts.count += pp.count;
          continue;
        }
        let stats: ReturnType<DarknetModel['forward']>['bnStats'] = [];
        let p: LossParts | undefined;
        const x = tf.tensor4d(batch.x.subarray(a * plane, b * plane), [b - a, graph.net.height, graph.net.width, 3]);
        // the teacher sees the same augmented mini-batch, in inference mode, outside the tape
        let hook: ReturnType<typeof distillHook> | undefined;
        const dp = emptyDistillParts();
        let tFeatures: Float32Array[] = [];
        if (teacher) {
          const t = await teacher.heads(x, batch.x.subarray(a * plane, b * plane), b - a);
          hook = distillHook(t.heads, model.spec.heads, dOpts!, dp);
          tFeatures = t.features;
        }
        const { grads, value } = tf.variableGrads(() => {
          const r = model.forward(x, { training: true, keep: featureLayers });
          stats = r.bnStats.map((st) => ({ index: st.index, mean: tf.keep(st.mean), variance: tf.keep(st.variance) }));
          const l = yoloLoss(r.heads, lossCfgs, batch.truths.slice(a, b), hook);
          p = l.parts;
          if (!adapters.length) return l.loss;
          let feat: tf.Scalar = tf.scalar(0);
          adapters.forEach((ad, k) => {
            const fs = r.layers.get(ad.index)!;
            const ft = tf.tensor4d(tFeatures[k], [fs.shape[0], fs.shape[1], fs.shape[2], ad.ct]);
            const mse = tf.mean(tf.squaredDifference(tf.conv2d(fs, ad.kernel as unknown as tf.Tensor4D, 1, 'valid'), ft)) as tf.Scalar;
            feat = tf.add(feat, tf.mul(mse, featureWeight)) as tf.Scalar;
          });
          const fv = feat.dataSync()[0];
          dp.feat = fv;
          dp.total += fv;
          return tf.add(l.loss, feat) as tf.Scalar;
        }, vars);
        x.dispose();
        value.dispose();
        addDistillParts(dParts, dp, 1 / subs);
        model.updateRollingStats(stats);
        for (const v of vars) {
          const g = grads[v.name];
          if (!g) continue;
          const scaled = subs > 1 ? tf.tidy(() => tf.div(g, subs)) : g;
          if (scaled !== g) g.dispose();
          const prev = acc.get(v);
          if (prev) { acc.set(v, tf.tidy(() => tf.add(prev, scaled))); prev.dispose(); scaled.dispose(); } else acc.set(v, scaled);
        }
        for (const k of Object.keys(grads)) if (!vars.some((v) => v.name === k)) grads[k].dispose();
        const pp = p!;
        parts.total += pp.total / subs; parts.box += pp.box / subs; parts.obj += pp.obj / subs; parts.cls += pp.cls / subs;
        parts.avgIou += pp.avgIou * pp.count; parts.count += pp.count;
      }
      parts.avgIou = parts.count ? parts.avgIou / parts.count : 0;
      // the objective the gradient descends: gtScale·L_gt + L_distill (just L_gt without a teacher)
      const objective = teacher ? gtScale * parts.total + dParts.total : parts.total;
      if (!Number.isFinite(objective)) {
        for (const g of acc.values()) g.dispose();
        throw new Error(`the loss became ${objective} at iteration ${iteration}: lower the learning rate (learning_rate=${solver.learningRate}) or check the labels`);
      }
      sparsity?.apply(acc);
      sgd.apply(acc, lr);
      for (const g of acc.values()) g.dispose();

      iteration++;
      seen += BigInt(batch.n);
      trainedImages += batch.n;
      firstLoss ??= parts;
      lastLoss = parts;
      if (teacher) { firstDistill ??= dParts; lastDistill = dParts; }
      const epoch = iteration / itersPerEpoch;
      const elapsed = (Date.now() - tTrain) / 1000;
      const rate = trainedImages / Math.max(1e-3, elapsed);
      emit({
        type: 'metrics', step: iteration, epoch,
        values: {
          loss: objective, box: parts.box, obj: parts.obj, cls: parts.cls, avgIou: parts.avgIou, lr, ms: Date.now() - ti,
          ...(teacher ? { gtLoss: parts.total, distill: dParts.total, distillCls: dParts.cls, distillBox: dParts.box, distillObj: dParts.obj, distillKept: dParts.kept } : {}),
          ...(adapters.length ? { distillFeat: dParts.feat ?? 0 } : {}),
        },
      });
      emit({ type: 'progress', done: iteration, total: maxBatches, epoch, rate, eta: ((maxBatches - iteration) * solver.batch) / rate });

      if (iteration % itersPerEpoch === 0 || iteration === maxBatches) {
        const ep = Math.ceil(epoch);
        emitGamma(epoch);
        if (opts.checkpoints !== false) saveCheckpoint(epoch);
        if (evalEvery > 0 && ep % evalEvery === 0 && iteration !== maxBatches) runEval(epoch);
      }
    }
  } finally {
    await par?.close();
  }

  if (!cancelled) {
    if (!opts.signal?.aborted) runEval(iteration / itersPerEpoch);
    writeFileAtomic(out.final, writeWeights(graph, model.toWeights(seen)));
    outputs.final = out.final;
    emit({ type: 'checkpoint', step: iteration, epoch: iteration / itersPerEpoch, kind: 'final', path: out.final });
  }
  const sparsityNow = masks.size ? gammaHistogram(model, masks).sparsity : undefined;
  const seconds = (Date.now() - t0) / 1000;
  const imagesPerSecond = trainedImages / Math.max(1e-3, (Date.now() - tTrain) / 1000);
  await pending?.catch(() => undefined);
  sgd.dispose();
  model.dispose();
  await teacher?.dispose();
  for (const ad of adapters) ad.kernel.dispose();
  const result: TrainResult = {
    cancelled, iterations: iteration, epochs: iteration / itersPerEpoch, seconds, imagesPerSecond, backend,
    firstLoss, lastLoss, ...(teacher ? { firstDistill, lastDistill } : {}), map: lastMap, bestMap: bestMap >= 0 ? bestMap : undefined, sparsity: sparsityNow, outputs,
  };
  emit({
    type: 'done', cancelled, seconds, outputs,
    summary: {
      iterations: iteration, epochs: Number(result.epochs.toFixed(3)), imagesPerSecond: Number(imagesPerSecond.toFixed(2)), backend: backend.name,
      ...(lastLoss ? { loss: lastLoss.total } : {}), ...(lastDistill ? { distillLoss: lastDistill.total } : {}), ...(lastMap !== undefined ? { map: lastMap } : {}), ...(result.bestMap !== undefined ? { bestMap: result.bestMap } : {}),
      ...(sparsityNow !== undefined ? { sparsity: sparsityNow } : {}),
    },
  });
  return result;
}
