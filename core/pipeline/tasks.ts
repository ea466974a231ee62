// The tasks the worker process runs (core/pipeline/worker.ts reads one request and calls runTask):
// each is a thin shell around core functions that reports through the task events of events.ts.
// No vscode import; heavy modules (onnxruntime, sharp, tfjs) load only for the tasks that need them.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { loadCfg, loadWeightsFile, weightsBeside, writeFileAtomic } from '../darknet/files';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { emitterFor, type EventPayload, type EventSink, type TaskEvent, type TaskKind } from './events';

export type WorkerTaskKind = 'prune' | 'export' | 'quantize' | 'map' | 'bench' | 'detect' | 'train' | 'finetune' | 'distill' | 'redundancy';
export const WORKER_TASK_KINDS: readonly WorkerTaskKind[] = ['prune', 'export', 'quantize', 'map', 'bench', 'detect', 'train', 'finetune', 'distill', 'redundancy'];

interface ModelArgs {
  /** The darknet cfg. */
  cfg: string;
  /** Its weights (default: `<cfg name>.weights` beside it). */
  weights?: string;
  /** Output folder (default: the cfg's folder). */
  outDir?: string;
}

export interface PruneArgs extends ModelArgs {
  /** A .prune.yaml; its model/weights/options apply, the fields below override them. */
  config?: string;
  strategy?: 'normal' | 'shortcut' | 'slim';
  percent?: number;
  layerKeep?: number;
  roundTo?: number;
  shortcuts?: number;
  exclude?: number[];
}
export interface ExportArgs extends ModelArgs { out?: string; concat?: boolean }
export interface QuantizeArgs extends ModelArgs {
  /** Calibration images: a .data file, an image list or a folder. */
  calib: string;
  images?: number;
  method?: 'kl' | 'minmax' | 'percentile';
  out?: string;
  threads?: number;
  /** Latency runs of the float and int8 models for the report (0 skips). Default 20. */
  latencyRuns?: number;
}
export interface MapArgs extends ModelArgs { data: string; threads?: number; limit?: number; points?: 0 | 11 | 101 }
export interface BenchArgs extends ModelArgs { threads?: number; runs?: number; warmup?: number }
export interface DetectArgs extends ModelArgs { image: string; out?: string; thresh?: number; threads?: number }
export interface TrainArgs extends ModelArgs {
  data: string;
  epochs?: number;
  batch?: number;
  /** Sparsity training: λ of the L1 penalty on the BN scales (0 or absent: plain training). */
  lambda?: number;
  schedule?: 'constant' | 'decay' | 'topk';
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  evalEvery?: number;
  resume?: boolean;
  /** Data-parallel worker threads (default 1: in the task's thread). */
  workers?: number;
}
/** Distillation: `cfg`/`weights` are the student (the pruned model), the teacher is frozen. */
export interface DistillArgs extends ModelArgs {
  teacherCfg: string;
  /** The teacher's weights (default: `<teacher cfg name>.weights` beside it). */
  teacherWeights?: string;
  data: string;
  method?: 'objectness' | 'hinton';
  /** objectness: the labels' cells get no teacher objectness term. */
  gtFirst?: boolean;
  lambda?: number;
  T?: number;
  alpha?: number;
  epochs?: number;
  batch?: number;
  backend?: TrainArgs['backend'];
  evalEvery?: number;
  resume?: boolean;
}
export interface RedundancyArgs extends ModelArgs { out: string }

export interface TaskArgsByKind {
  prune: PruneArgs;
  export: ExportArgs;
  quantize: QuantizeArgs;
  map: MapArgs;
  bench: BenchArgs;
  detect: DetectArgs;
  train: TrainArgs;
  finetune: TrainArgs;
  distill: DistillArgs;
  redundancy: RedundancyArgs;
}

export type TaskRequest = { [K in WorkerTaskKind]: { kind: K; args: TaskArgsByKind[K] } }[WorkerTaskKind];

/** A task failure whose message is for the user as it is. */
export class TaskError extends Error {}

/** The task name events carry: sparsity training is `sparsity`. */
export function taskLabel(req: TaskRequest): TaskKind {
  return req.kind === 'train' && (req.args as TrainArgs).lambda ? 'sparsity' : req.kind;
}

/** Validates a request read from the wire. */
export function parseTaskRequest(value: unknown): TaskRequest {
  if (!value || typeof value !== 'object') throw new TaskError('the task request is not an object');
  const { kind, args } = value as { kind?: unknown; args?: unknown };
  if (typeof kind !== 'string' || !WORKER_TASK_KINDS.includes(kind as WorkerTaskKind)) {
    throw new TaskError(`unknown task kind ${JSON.stringify(kind)} (one of ${WORKER_TASK_KINDS.join(', ')})`);
  }
  if (!args || typeof args !== 'object') throw new TaskError(`task ${kind}: args must be an object`);
  const a = args as Record<string, unknown>;
  if (typeof a.cfg !== 'string' && !(kind === 'prune' && typeof a.config === 'string')) throw new TaskError(`task ${kind}: args.cfg (the model's .cfg) is missing`);
  const need = (key: string) => { if (typeof a[key] !== 'string' || !a[key]) throw new TaskError(`task ${kind}: args.${key} is missing`); };
  if (kind === 'quantize') need('calib');
  if (kind === 'map' || kind === 'train' || kind === 'finetune' || kind === 'distill') need('data');
  if (kind === 'distill') need('teacherCfg');
  if (kind === 'detect') need('image');
  if (kind === 'redundancy') need('out');
  return { kind, args } as TaskRequest;
}

export interface TaskContext {
  sink: EventSink;
  signal: AbortSignal;
}

type Emit = (e: EventPayload) => void;

/** Runs one task; every outcome is an event (done, or error with the core's message). Returns the exit code. */
export async function runTask(req: TaskRequest, ctx: TaskContext): Promise<number> {
  const task: TaskKind = taskLabel(req);
  let errored = false;
  const raw = emitterFor(task, ctx.sink);
  const emit: Emit = (e) => {
    if (e.type === 'error') errored = true;
    raw(e);
  };
  const t0 = Date.now();
  try {
    const r = await RUNNERS[req.kind](req.args as never, emit, ctx.signal);
    if (r) emit({ type: 'done', cancelled: r.cancelled ?? false, seconds: (Date.now() - t0) / 1000, outputs: r.outputs ?? {}, summary: r.summary ?? {} });
    return r?.cancelled ? 130 : 0;
  } catch (e) {
    if (!errored) emit({ type: 'error', message: errorMessage(e) });
    return 1;
  }
}

/** The core's message, never a stack trace. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

interface RunResult {
  cancelled?: boolean;
  outputs?: Record<string, string>;
  summary?: Record<string, number | string | boolean>;
}

type Runner<A> = (args: A, emit: Emit, signal: AbortSignal) => Promise<RunResult | undefined>;

const RUNNERS: { [K in WorkerTaskKind]: Runner<TaskArgsByKind[K]> } = {
  prune: runPrune,
  export: runExport,
  quantize: runQuantize,
  map: runMap,
  bench: runBench,
  detect: runDetect,
  train: (a, e, s) => runTrain(a, e, s, false),
  finetune: (a, e, s) => runTrain(a, e, s, true),
  distill: runDistill,
  redundancy: runRedundancy,
};

// ---------------------------------------------------------------------------------------------

function weightsFor(args: ModelArgs): string {
  const w = args.weights ?? weightsBeside(args.cfg);
  if (!w) throw new TaskError(`no weights for ${basename(args.cfg)}: there is no ${basename(args.cfg, extname(args.cfg))}.weights beside it; choose a weights file`);
  return w;
}

function outDirFor(args: ModelArgs): string {
  const dir = resolve(args.outDir ?? dirname(args.cfg));
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  else if (!statSync(dir).isDirectory()) throw new TaskError(`output folder ${dir} is a file`);
  return dir;
}

function loadModel(cfg: string, weightsPath: string, emit: Emit): { graph: ModelGraph; weights: ModelWeights } {
  const graph = loadCfg(cfg);
  const err = graph.diagnostics.find((d) => d.severity === 'error');
  if (err) throw new TaskError(`${basename(cfg)} has errors; fix them first: line ${err.range.start.line + 1}: ${err.message}`);
  const loaded = loadWeightsFile(weightsPath, graph);
  if (!loaded.check.ok || loaded.check.partial) {
    throw new TaskError(`${basename(weightsPath)}: ${loaded.check.message}${loaded.check.partial ? ' Partial weights cannot be used here.' : ''}`);
  }
  emit({ type: 'log', level: 'info', message: `loaded ${basename(cfg)} (${graph.layers.length} layers) and ${basename(weightsPath)}` });
  return { graph, weights: loaded.weights };
}

const step = (emit: Emit, done: number, total: number, message: string) => emit({ type: 'progress', done, total, message });

async function runPrune(args: PruneArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const { loadPruneConfigFile } = await import('../prune/config');
  const { defaultOutputPaths, formatPlan, pruneModel, prunedWeightsBytes, writePruneOutputs } = await import('../prune/prune');
  let cfg = args.cfg;
  let weightsPath = args.weights;
  let options: import('../prune/prune').PruneOptions = { strategy: 'slim', percent: 0 };
  let configOut: { dir?: string; cfg?: string; weights?: string; report?: string } = {};
  if (args.config) {
    const c = loadPruneConfigFile(args.config);
    cfg = c.cfgPath; weightsPath = c.weightsPath; options = c.options; configOut = c.outputs;
  }
  if (args.strategy !== undefined) options.strategy = args.strategy;
  if (args.percent !== undefined) options.percent = args.percent;
  if (args.layerKeep !== undefined) options.layerKeep = args.layerKeep;
  if (args.roundTo !== undefined) options.roundTo = args.roundTo;
  if (args.shortcuts !== undefined) options.shortcuts = args.shortcuts;
  if (args.exclude !== undefined) options.exclude = args.exclude;
  if (!options.percent && !options.shortcuts && !options.thresholds) throw new TaskError('nothing to prune: give a percent (channel pruning) or a number of shortcuts (layer pruning)');
  const w = weightsPath ?? weightsFor({ cfg });
  emit({ type: 'start', total: 4, info: { model: basename(cfg), weights: basename(w), strategy: options.strategy, percent: options.percent } });
  step(emit, 0, 4, 'loading the model');
  const { graph, weights } = loadModel(cfg, w, emit);
  if (signal.aborted) return { cancelled: true };
  step(emit, 1, 4, 'planning and pruning');
  const run = pruneModel(graph, weights, options, { cfgPath: cfg, weightsPath: w });
  if (signal.aborted) return { cancelled: true };
  step(emit, 2, 4, 'serialising the pruned weights');
  const bytes = prunedWeightsBytes(run);
  const defaults = defaultOutputPaths(cfg, options, args.outDir ? outDirFor({ cfg, outDir: args.outDir }) : configOut.dir);
  const outputs = args.outDir ? defaults : { cfg: configOut.cfg ?? defaults.cfg, weights: configOut.weights ?? defaults.weights, report: configOut.report ?? defaults.report };
  if (signal.aborted) return { cancelled: true };
  step(emit, 3, 4, 'writing the pruned cfg, weights and report');
  writePruneOutputs(outputs, { cfg: run.result.text, weights: bytes, report: run.report }, [cfg, w, ...(args.config ? [args.config] : [])]);
  for (const warning of run.report.warnings) emit({ type: 'log', level: 'warning', message: warning });
  emit({ type: 'log', level: 'info', message: formatPlan(run.report) });
  step(emit, 4, 4, 'done');
  const r = run.report;
  return {
    outputs: { cfg: outputs.cfg, weights: outputs.weights, report: outputs.report, original: cfg },
    summary: {
      paramsBefore: r.before.params, paramsAfter: r.after.params, bflopsBefore: r.before.bflops, bflopsAfter: r.after.bflops,
      bytesBefore: r.before.weightsBytes, bytesAfter: r.after.weightsBytes, removedChannels: r.removedChannels,
      percentLimit: r.percentLimit, strategy: r.policy.strategy, percent: r.policy.percent,
    },
  };
}

async function runExport(args: ExportArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const w = weightsFor(args);
  emit({ type: 'start', total: 2, info: { model: basename(args.cfg) } });
  const { loadDarknet, resolveNames } = await import('../onnx/model');
  const { exportOnnx } = await import('../onnx/export');
  step(emit, 0, 2, 'loading the model');
  const { graph, weights } = loadDarknet(args.cfg, w);
  if (signal.aborted) return { cancelled: true };
  const classes = graph.layers.find((l) => l.type === 'yolo')?.yolo?.classes;
  const names = classes !== undefined ? resolveNames(classes, undefined, [args.cfg, w]) : undefined;
  step(emit, 1, 2, 'exporting');
  const result = exportOnnx(graph, weights, { concat: args.concat, names });
  const out = resolve(args.out ?? join(outDirFor(args), `${basename(args.cfg, extname(args.cfg))}.onnx`));
  if ([args.cfg, w].some((p) => resolve(p) === out)) throw new TaskError(`${out} is one of the inputs: choose another file`);
  writeFileAtomic(out, result.bytes);
  step(emit, 2, 2, 'done');
  return { outputs: { onnx: out }, summary: { bytes: result.bytes.length, nodes: result.nodes, outputs: result.outputs.join(', ') } };
}

async function runQuantize(args: QuantizeArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const w = weightsFor(args);
  const { quantizeDarknet } = await import('../onnx/quantize/index');
  const { graph, weights } = loadModel(args.cfg, w, emit);
  const images = args.images ?? 100;
  emit({ type: 'start', total: images, info: { model: basename(args.cfg), calibration: args.calib, method: args.method ?? 'kl' } });
  const result = await quantizeDarknet(graph, weights, {
    calib: args.calib, images, method: args.method, threads: args.threads,
    onProgress: (done, total) => emit({ type: 'progress', done, total, message: 'calibrating' }),
  });
  if (signal.aborted) return { cancelled: true };
  const stem = basename(args.cfg, extname(args.cfg));
  const dir = outDirFor(args);
  const out = resolve(args.out ?? join(dir, `${stem}-int8.onnx`));
  writeFileAtomic(out, result.bytes);
  const int8 = Object.entries(result.int8Ops).map(([k, v]) => `${k}×${v}`).join(', ');
  emit({ type: 'log', level: 'info', message: `int8 kernels onnxruntime runs: ${int8}` });
  // the compression report: float vs int8, same run
  const stages: ReportStage[] = [
    { name: 'float (ONNX)', params: graph.totals.params, sizeBytes: result.floatBytes.length, bflops: graph.totals.bflops },
    { name: `int8 (${result.method})`, params: graph.totals.params, sizeBytes: result.bytes.length, bflops: graph.totals.bflops },
  ];
  const runs = args.latencyRuns ?? 20;
  if (runs > 0 && !signal.aborted) {
    try {
      const { interleavedLatency } = await import('../onnx/quantize/report');
      const dims = [1, graph.net.channels, graph.net.height, graph.net.width];
      const lat = await interleavedLatency([result.floatBytes, result.bytes], dims, { runs, warmup: 3, threads: args.threads });
      stages[0].latencyMs = lat[0].median_ms;
      stages[1].latencyMs = lat[1].median_ms;
    } catch (e) {
      emit({ type: 'log', level: 'warning', message: `latency not measured: ${errorMessage(e)}` });
    }
  }
  const report = join(dir, `${stem}-int8.report.json`);
  writeFileAtomic(report, JSON.stringify({ kind: 'darkslim-report', model: args.cfg, stages }, null, 2) + '\n');
  return {
    outputs: { onnx: out, report },
    summary: { floatBytes: result.floatBytes.length, int8Bytes: result.bytes.length, images: result.images, method: result.method, int8Kernels: int8 },
  };
}

export interface ReportStage {
  name: string;
  params?: number;
  sizeBytes?: number;
  bflops?: number;
  latencyMs?: number;
  map?: number;
}

async function runMap(args: MapArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const model = args.weights ?? weightsFor(args);
  const { Detector } = await import('../onnx/detect');
  const { evaluate } = await import('../onnx/evaluate');
  const { detectorSource, resolveNames } = await import('../onnx/model');
  const { loadDataset } = await import('../data/dataset');
  const detector = await Detector.create(detectorSource(args.cfg, model), { threads: args.threads });
  try {
    const dataset = await loadDataset(args.data, {});
    const names = dataset.names ?? resolveNames(detector.classes, undefined, [args.cfg, model]) ?? detector.meta.names;
    for (const w of dataset.warnings.slice(0, 5)) emit({ type: 'log', level: 'warning', message: w });
    const total = args.limit !== undefined ? Math.min(args.limit, dataset.items.length) : dataset.items.length;
    emit({ type: 'start', total, info: { model: basename(args.cfg), weights: basename(model), data: args.data, images: total } });
    let last = 0;
    const result = await evaluate(detector, dataset, {
      points: args.points ?? 0, limit: args.limit, names,
      onProgress: (done, all) => {
        const now = Date.now();
        if (now - last > 200 || done === all) { last = now; emit({ type: 'progress', done, total: all, message: 'evaluating' }); }
      },
    });
    if (signal.aborted) return { cancelled: true };
    const { map, timing } = result;
    const { formatMapReport } = await import('../eval/map');
    emit({ type: 'log', level: 'info', message: formatMapReport(map) });
    emit({ type: 'eval', step: 0, map: map.mAP, values: { map50: map.mAP, precision: map.precision, recall: map.recall, f1: map.f1 } });
    return {
      outputs: {},
      summary: {
        mAP: map.mAP, precision: map.precision, recall: map.recall, f1: map.f1, averageIoU: map.averageIoU,
        images: map.images, imagesPerSecond: Math.round(timing.imagesPerSecond * 100) / 100,
      },
    };
  } finally {
    await detector.dispose();
  }
}

async function runBench(args: BenchArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const model = args.weights ?? weightsFor(args);
  const { isOnnxPath, loadDarknet } = await import('../onnx/model');
  const { exportOnnx } = await import('../onnx/export');
  const { OnnxSession } = await import('../onnx/runtime');
  const { benchSession } = await import('../onnx/bench');
  const runs = args.runs ?? 50;
  emit({ type: 'start', total: runs, info: { model: basename(args.cfg), weights: basename(model) } });
  let bytes: Uint8Array | string;
  let dims: number[] | undefined;
  if (isOnnxPath(model)) {
    bytes = model;
  } else {
    const { graph, weights } = loadDarknet(args.cfg, model);
    bytes = exportOnnx(graph, weights, { batch: 1 }).bytes;
    dims = [1, graph.net.channels, graph.net.height, graph.net.width];
  }
  if (signal.aborted) return { cancelled: true };
  const session = await OnnxSession.create(bytes, { threads: args.threads });
  try {
    if (!dims) {
      const m = session.metadata;
      if (!m) throw new TaskError('cannot tell the input size of this ONNX model (no darkslim metadata)');
      dims = [1, m.channels, m.netH, m.netW];
    }
    step(emit, 0, runs, `timing ${runs} runs`);
    const r = await benchSession(session, dims, { runs, warmup: args.warmup ?? 5 });
    step(emit, runs, runs, 'done');
    return { outputs: {}, summary: { engine: r.engine, threads: r.threads, runs: r.runs, median_ms: r.median_ms, p90_ms: r.p90_ms, min_ms: r.min_ms, input: r.input.join('x') } };
  } finally {
    await session.dispose();
  }
}

async function runDetect(args: DetectArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const model = args.weights ?? weightsFor(args);
  const thresh = args.thresh ?? 0.25;
  emit({ type: 'start', total: 1, info: { model: basename(args.cfg), image: basename(args.image) } });
  const { default: sharp } = await import('sharp');
  const { Detector, detectionRecords, detectionsSvg, formatRecord } = await import('../onnx/detect');
  const { detectorSource, resolveNames } = await import('../onnx/model');
  const { ImagePrefetcher } = await import('../onnx/prefetch');
  const detector = await Detector.create(detectorSource(args.cfg, model), { threads: args.threads });
  const names = resolveNames(detector.classes, undefined, [args.cfg, model]) ?? detector.meta.names;
  const prefetcher = new ImagePrefetcher([args.image], { netW: detector.meta.netW, netH: detector.meta.netH, letterBox: detector.letterBox });
  const out = resolve(args.out ?? join(outDirFor(args), `${basename(args.image, extname(args.image))}-${basename(args.cfg, extname(args.cfg))}.png`));
  if (resolve(out) === resolve(args.image)) throw new TaskError(`${out} is the input image: choose another name`);
  let count = 0;
  try {
    for await (const img of prefetcher) {
      if (signal.aborted) return { cancelled: true };
      const t = performance.now();
      const outputs = await detector.infer(img.tensor);
      const ms = performance.now() - t;
      const dets = detector.postprocess(outputs, img.width, img.height, { thresh });
      const records = detectionRecords(dets, img.width, img.height, thresh, names);
      count = records.length;
      emit({ type: 'log', level: 'info', message: [`${img.path}: Predicted in ${ms.toFixed(3)} milli-seconds.`, ...records.map((r) => formatRecord(r))].join('\n') });
      const svg = detectionsSvg(dets, img.width, img.height, thresh, names);
      const bytes = await sharp(img.path, { autoOrient: true }).composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).png().toBuffer();
      writeFileAtomic(out, bytes);
      step(emit, 1, 1, 'done');
    }
  } finally {
    await prefetcher.close();
    await detector.dispose();
  }
  return { outputs: { image: out }, summary: { detections: count, thresh } };
}

async function runTrain(args: TrainArgs, emit: Emit, signal: AbortSignal, finetune: boolean): Promise<RunResult | undefined> {
  const { train } = await import('../engine/trainer');
  const lambda = args.lambda ?? 0;
  const outDir = outDirFor(args);
  // the trainer emits start, progress, metrics, gamma, eval, checkpoint and done itself
  await train({
    cfg: args.cfg, data: args.data, weights: args.weights, outDir,
    epochs: args.epochs, batch: args.batch, evalEvery: args.evalEvery, resume: args.resume,
    sparsity: lambda > 0 ? { lambda, schedule: args.schedule ?? 'constant' } : undefined,
    backend: args.backend, workers: args.workers, task: finetune ? 'finetune' : undefined, signal,
    onEvent: trainerEvents(emit),
  });
  return undefined;
}

/** The trainer's events passed on as payloads (runTask's emitter stamps its own task and time). */
function trainerEvents(emit: Emit): (e: TaskEvent) => void {
  return (e) => {
    const { task: _t, time: _time, ...payload } = e;
    emit(payload as EventPayload);
  };
}

async function runDistill(args: DistillArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const { distill } = await import('../engine/trainer');
  const teacherWeights = args.teacherWeights ?? weightsBeside(args.teacherCfg);
  if (!teacherWeights) throw new TaskError(`no weights for the teacher ${basename(args.teacherCfg)}: there is no ${basename(args.teacherCfg, extname(args.teacherCfg))}.weights beside it; choose a weights file`);
  // the trainer emits start, progress, metrics (with the distillation parts), eval, checkpoint and done
  await distill({
    cfg: args.cfg, weights: weightsFor(args), teacher: { cfg: args.teacherCfg, weights: teacherWeights },
    method: args.method, gtFirst: args.gtFirst, lambda: args.lambda, T: args.T, alpha: args.alpha,
    data: args.data, outDir: outDirFor(args), epochs: args.epochs, batch: args.batch, evalEvery: args.evalEvery, resume: args.resume,
    backend: args.backend, signal,
    onEvent: trainerEvents(emit),
  });
  return undefined;
}

async function runRedundancy(args: RedundancyArgs, emit: Emit, signal: AbortSignal): Promise<RunResult | undefined> {
  const { buildRedundancy } = await import('./redundancy');
  const w = weightsFor(args);
  emit({ type: 'start', total: 2, info: { model: basename(args.cfg), weights: basename(w) } });
  step(emit, 0, 2, 'loading the model');
  const { graph, weights } = loadModel(args.cfg, w, emit);
  if (signal.aborted) return { cancelled: true };
  step(emit, 1, 2, 'channel groups and |γ|');
  const data = buildRedundancy(graph, weights, { cfg: resolve(args.cfg), weights: resolve(w) });
  const out = resolve(args.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileAtomic(out, JSON.stringify(data));
  step(emit, 2, 2, 'done');
  let channels = 0;
  for (const l of data.layers) if (l.gamma) channels += l.gamma.length;
  return { outputs: { data: out }, summary: { layers: data.layers.length, channels, percentLimitSlim: data.limits.slim.percentLimit } };
}
