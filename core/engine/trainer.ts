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
import { headLossConfigs, yoloLoss, type LossParts } from './loss';
import { DarknetModel } from './model';
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
}

export interface TrainResult {
  cancelled: boolean;
  iterations: number;
  epochs: number;
  seconds: number;
  imagesPerSecond: number;
  backend: BackendInfo;
  lastLoss?: LossParts;
  firstLoss?: LossParts;
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
  const emit = emitterFor(opts.task ?? (opts.sparsity ? 'sparsity' : 'train'), opts.onEvent);
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

async function trainInner(opts: TrainOptions, emit: ReturnType<typeof emitterFor>): Promise<TrainResult> {
  const t0 = Date.now();
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
    for (const input of [opts.cfg, opts.weights, opts.data]) {
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

  const vars = model.variables();
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
      learningRate: solver.learningRate, resumedAt: iteration, sparsity: opts.sparsity ? `${opts.sparsity.lambda} ${opts.sparsity.schedule}` : 'off',
    },
  });

  const evalSamples: EvalSample[] = validItems.length ? await loadEvalSamples(validItems, graph.net.width, graph.net.height, graph.net.letterBox) : [];
  if (!existsSync(out.cfg) || readFileSync(out.cfg, 'utf8') !== cfgText) writeFileAtomic(out.cfg, cfgText);

  const outputs: Record<string, string> = { cfg: out.cfg };
  let cancelled = false;
  let firstLoss: LossParts | undefined, lastLoss: LossParts | undefined;
  let lastMap: number | undefined;
  let trainedImages = 0;
  const tTrain = Date.now();

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
    const plane = graph.net.width * graph.net.height * 3;
    const subs = Math.ceil(batch.n / mini);
    for (let s = 0; s < subs; s++) {
      const a = s * mini, b = Math.min(batch.n, a + mini);
      let stats: ReturnType<DarknetModel['forward']>['bnStats'] = [];
      let p: LossParts | undefined;
      const { grads, value } = tf.variableGrads(() => {
        const x = tf.tensor4d(batch.x.subarray(a * plane, b * plane), [b - a, graph.net.height, graph.net.width, 3]);
        const r = model.forward(x, { training: true });
        stats = r.bnStats.map((st) => ({ index: st.index, mean: tf.keep(st.mean), variance: tf.keep(st.variance) }));
        const l = yoloLoss(r.heads, lossCfgs, batch.truths.slice(a, b));
        p = l.parts;
        return l.loss;
      }, vars);
      value.dispose();
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
    if (!Number.isFinite(parts.total)) {
      for (const g of acc.values()) g.dispose();
      throw new Error(`the loss became ${parts.total} at iteration ${iteration}: lower the learning rate (learning_rate=${solver.learningRate}) or check the labels`);
    }
    sparsity?.apply(acc);
    sgd.apply(acc, lr);
    for (const g of acc.values()) g.dispose();

    iteration++;
    seen += BigInt(batch.n);
    trainedImages += batch.n;
    firstLoss ??= parts;
    lastLoss = parts;
    const epoch = iteration / itersPerEpoch;
    const elapsed = (Date.now() - tTrain) / 1000;
    const rate = trainedImages / Math.max(1e-3, elapsed);
    emit({ type: 'metrics', step: iteration, epoch, values: { loss: parts.total, box: parts.box, obj: parts.obj, cls: parts.cls, avgIou: parts.avgIou, lr, ms: Date.now() - ti } });
    emit({ type: 'progress', done: iteration, total: maxBatches, epoch, rate, eta: ((maxBatches - iteration) * solver.batch) / rate });

    if (iteration % itersPerEpoch === 0 || iteration === maxBatches) {
      const ep = Math.ceil(epoch);
      emitGamma(epoch);
      if (opts.checkpoints !== false) saveCheckpoint(epoch);
      if (evalEvery > 0 && ep % evalEvery === 0 && iteration !== maxBatches) runEval(epoch);
    }
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
  const result: TrainResult = {
    cancelled, iterations: iteration, epochs: iteration / itersPerEpoch, seconds, imagesPerSecond, backend,
    firstLoss, lastLoss, map: lastMap, bestMap: bestMap >= 0 ? bestMap : undefined, sparsity: sparsityNow, outputs,
  };
  emit({
    type: 'done', cancelled, seconds, outputs,
    summary: {
      iterations: iteration, epochs: Number(result.epochs.toFixed(3)), imagesPerSecond: Number(imagesPerSecond.toFixed(2)), backend: backend.name,
      ...(lastLoss ? { loss: lastLoss.total } : {}), ...(lastMap !== undefined ? { map: lastMap } : {}), ...(result.bestMap !== undefined ? { bestMap: result.bestMap } : {}),
      ...(sparsityNow !== undefined ? { sparsity: sparsityNow } : {}),
    },
  });
  return result;
}
