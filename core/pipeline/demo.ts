// The whole Darkslim method on a dataset made on the spot, end to end (`darkslim demo`):
//   synthesise → train the default model → sparsity-train → prune (slim) → fine-tune → int8
// then one table in the shape of METHOD.md's (stage, params, file size, BFLOPs, ORT latency, mAP@0.5),
// written as report.json + report.md in the output folder, with the acceptance targets checked.
// Every stage is a plain core function; this file only wires them and emits task events
// (core/pipeline/events.ts; task = the stage's kind). `quick` runs the same stages on a tiny dataset
// with a few iterations (seconds each): a smoke test of the pipeline, not of its accuracy.
// Full run: 26 baseline epochs (mAP 0.839), 12 sparsity epochs, 10 fine-tuning epochs of the pruned
// model, on 800 images at ~90 full-model / ~200 pruned-model images/s when the 2 cores are free:
// about 6–7 minutes with the distillation row. The report gives each training stage's wall and CPU
// seconds and the load average, since wall times on a shared machine say little.
// A distillation stage is not part of the demo yet: `DemoOptions.distill` is its slot (the row is
// added after fine-tuning when given).
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { loadCfg, loadWeightsFile, writeFileAtomic } from '../darknet/files';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { loadDataset } from '../data/dataset';
import { generateSyntheticDataset } from '../data/synthetic';
import type { BackendChoice } from '../engine/backend';
import { DEFAULT_MODEL_CFG } from '../engine/default-model';
import { prunableGammaMasks } from '../engine/sparsity';
import { train, type TrainResult } from '../engine/trainer';
import { benchModel } from '../onnx/bench';
import { Detector } from '../onnx/detect';
import { evaluate } from '../onnx/evaluate';
import { exportOnnx } from '../onnx/export';
import { buildChannelGroups, percentLimit, pruneModel, prunedWeightsBytes } from '../prune';
import { emitterFor, type EventSink } from './events';

/** The demo's model: Darkslim's default detector (core/engine/models/darkslim-tiny.cfg). */
export const DEMO_MODEL_CFG = DEFAULT_MODEL_CFG;

/** What the demo measures and the targets it checks (the acceptance numbers of the method). */
export const DEMO_TARGETS = {
  baselineMap: 0.8,
  /** After sparsity training: at least this fraction of prunable |γ| below 0.01 ... */
  sparsity: 0.5,
  /** ... with mAP within this of the baseline. */
  sparsityMapDrop: 0.05,
  /** Pruning removes at least this fraction of the prunable channels ... */
  prunedChannels: 0.5,
  /** ... and after fine-tuning mAP is within this of the baseline. */
  finetuneMapDrop: 0.02,
} as const;

export interface DemoStageRow {
  stage: string;
  /** Darknet layer parameters (int8: the same count, stored in 8 bits). */
  params: number;
  /** Size of the stage's model file (`file`): .weights for darknet stages, .onnx for int8. */
  bytes: number;
  file: string;
  bflops: number;
  /** onnxruntime latency, batch 1, median (ms). */
  latencyMs: number;
  /** mAP@0.5 on the validation split (onnxruntime, darknet's map procedure). */
  map: number;
  /** Seconds the stage took (training/pruning/quantizing, not the measurements). */
  seconds: number;
  note?: string;
}

export interface DemoTarget {
  name: string;
  value: number;
  target: string;
  met: boolean;
}

/** Everything a distillation stage gets (the slot the demo leaves for it). */
export interface DemoDistillContext {
  outDir: string;
  dataFile: string;
  teacher: { cfg: string; weights: string };
  student: { cfg: string; weights: string };
  epochs: number;
  backend: BackendChoice;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

/** A distillation stage: returns the distilled student's files (measured like the other rows). */
export type DemoDistillStage = (ctx: DemoDistillContext) => Promise<{ cfg: string; weights: string; seconds: number; note?: string }>;

export interface DemoOptions {
  outDir: string;
  quick?: boolean;
  seed?: number;
  backend?: BackendChoice;
  /** Synthetic dataset size (default 800 / 200; quick 48 / 24). */
  trainImages?: number;
  validImages?: number;
  /** Epochs of each training stage (defaults below). */
  trainEpochs?: number;
  sparsityEpochs?: number;
  finetuneEpochs?: number;
  /**
   * Sparsity λ (default 0.3). Schedule topk from the first iteration (switchAt 0): λ on the 60%
   * smallest prunable |γ| (ranked again each epoch), λ·0.01 on the rest; learning rate 0.01 with the
   * cfg's steps (×0.1 at 80% and 90%). With momentum 0.9 the sign step moves a pushed γ by about
   * lr·λ/(1-momentum) = 0.03 per iteration: the pushed channels are below 0.01 after ~2 epochs and
   * the kept ones, never shrunk, have the rest of the stage to take over (12 epochs by default).
   * Measured from the same baseline (mAP 0.839): 7 epochs → 59% below 0.01, mAP 0.747; 10 → 60%,
   * 0.795; 12 → 60%, 0.816. λ 0.15 for 6 epochs: 56% only at the end, mAP 0.723. The earlier default
   * (λ 0.15 on every γ for half the stage, lr 0.005) shrank the kept channels too: mAP 0.27.
   */
  lambda?: number;
  /** Fixed channel-pruning percent instead of the search (0–1). */
  prunePercent?: number;
  /** onnxruntime threads for latency and evaluation (default 2). */
  threads?: number;
  /** Calibration images for int8 (default 100; quick 8). */
  calibImages?: number;
  /** The distillation stage's slot (filled by the distillation work; absent: no distill row). */
  distill?: DemoDistillStage;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface DemoReport {
  version: 1;
  quick: boolean;
  date: string;
  outDir: string;
  dataset: { dataFile: string; train: number; valid: number; classes: string[] };
  config: Record<string, number | string | boolean>;
  rows: DemoStageRow[];
  /** The distillation row (null until a distill stage is plugged in). */
  distill: DemoStageRow | null;
  sparsity: { fraction: number; prunable: number };
  prune: { percent: number; percentLimit: number; removedChannels: number; prunableChannels: number; channelFraction: number; tried: { percent: number; map: number }[] };
  /** cpuSeconds: this process's CPU time (all threads) during the stage; images / cpuSeconds is the
   *  rate the stage would reach alone on the machine (wall times depend on the machine's load). */
  training: { stage: string; seconds: number; imagesPerSecond: number; epochs: number; backend: string; cpuSeconds?: number; imagesPerCpuSecond?: number }[];
  targets: DemoTarget[];
  totalSeconds: number;
  /** CPU time of the whole run (this process, all threads) and the 1-minute load average at its start and end. */
  cpuSeconds?: number;
  loadAverage?: { start: number; end: number };
  files: Record<string, string>;
}

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

async function measure(
  stage: string, source: { graph: ModelGraph; weights: ModelWeights } | { onnx: Uint8Array; graph: ModelGraph },
  file: string, validData: Awaited<ReturnType<typeof loadDataset>>, threads: number, runs: number, seconds: number, note?: string,
): Promise<DemoStageRow> {
  const graph = source.graph;
  const onnx = 'onnx' in source ? source.onnx : exportOnnx(source.graph, source.weights).bytes;
  const det = await Detector.create({ onnx }, { threads });
  let map = 0;
  try {
    const r = await evaluate(det, validData, { pureRuns: 0, workers: 0 });
    map = r.map.mAP;
  } finally {
    await (det as unknown as { session: { release?: () => Promise<void> } }).session.release?.();
  }
  const b = await benchModel(onnx, [1, 3, graph.net.height, graph.net.width], { threads, runs, warmup: Math.min(10, runs) });
  return {
    stage, params: graph.totals.params, bytes: statSync(file).size, file, bflops: r4(graph.totals.bflops),
    latencyMs: b.median_ms, map: r4(map), seconds: Math.round(seconds * 10) / 10, ...(note ? { note } : {}),
  };
}

/** CPU seconds of this process since `from` (process.cpuUsage()). */
function cpuSince(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

function trainSummary(stage: string, r: TrainResult, cpuSeconds: number, images: number): DemoReport['training'][number] {
  return {
    stage, seconds: Math.round(r.seconds * 10) / 10, imagesPerSecond: Math.round(r.imagesPerSecond * 10) / 10, epochs: Math.round(r.epochs * 100) / 100, backend: r.backend.name,
    cpuSeconds: Math.round(cpuSeconds * 10) / 10, imagesPerCpuSecond: Math.round((images * r.epochs / Math.max(1e-3, cpuSeconds)) * 10) / 10,
  };
}

/** Runs the demo; returns the report (also written to <outDir>/report.json and report.md). */
export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const load0 = loadavg()[0];
  const quick = !!opts.quick;
  const outDir = resolve(opts.outDir);
  const seed = opts.seed ?? 1;
  const backend = opts.backend ?? 'auto';
  const threads = opts.threads ?? 2;
  const runs = quick ? 5 : 50;
  const emit = emitterFor('demo', opts.onEvent);
  const log = (message: string) => emit({ type: 'log', level: 'info', message });
  const cfg = {
    train: opts.trainImages ?? (quick ? 48 : 800),
    valid: opts.validImages ?? (quick ? 24 : 200),
    trainEpochs: opts.trainEpochs ?? (quick ? 1 : 26),
    sparsityEpochs: opts.sparsityEpochs ?? (quick ? 1 : 12),
    finetuneEpochs: opts.finetuneEpochs ?? (quick ? 1 : 10),
    lambda: opts.lambda ?? 0.3,
    sparsityLr: 0.01,
    topk: 0.4,
    switchAt: 0,
    calib: opts.calibImages ?? (quick ? 8 : 100),
  };
  const stages = 6 + (opts.distill ? 1 : 0);
  emit({ type: 'start', total: stages, info: { outDir, quick, backend, ...cfg } });
  mkdirSync(outDir, { recursive: true });
  let done = 0;
  const step = (message: string) => { emit({ type: 'progress', done: done++, total: stages, message }); log(message); };
  const check = () => { if (opts.signal?.aborted) throw new Error('cancelled'); };
  const common = { backend, signal: opts.signal, onEvent: opts.onEvent, seed, checkpoints: false, evalEvery: 0, evalLimit: 0 } as const;
  // (the trainer's own mAP is skipped: every stage is measured below, the same way, on onnxruntime)

  // 1. dataset, made at the model's input size (no resizing, decoded once)
  step('synthesising the dataset');
  const net = loadCfg(DEMO_MODEL_CFG).net;
  const ds = await generateSyntheticDataset({
    outDir: join(outDir, 'dataset'), seed, train: cfg.train, valid: cfg.valid, width: net.width, height: net.height, overwrite: true, signal: opts.signal,
  });
  const validData = await loadDataset(ds.dataFile, { split: 'valid' });
  check();

  // 2. baseline
  step('training the baseline');
  let cpu = process.cpuUsage();
  const baseR = await train({ ...common, cfg: DEMO_MODEL_CFG, data: ds.dataFile, outDir: join(outDir, 'baseline'), epochs: cfg.trainEpochs, task: 'train' });
  if (baseR.cancelled) throw new Error('cancelled');
  const baseCpu = cpuSince(cpu);
  const baseCfg = baseR.outputs.cfg, baseW = baseR.outputs.final;
  const baseGraph = loadCfg(baseCfg);
  const baseWeights = mustLoad(baseW, baseGraph);
  const rows: DemoStageRow[] = [];
  rows.push(await measure('baseline', { graph: baseGraph, weights: baseWeights }, baseW, validData, threads, runs, baseR.seconds));
  check();

  // 3. sparsity training (from the baseline)
  step('sparsity training');
  cpu = process.cpuUsage();
  const spR = await train({
    ...common, cfg: baseCfg, weights: baseW, data: ds.dataFile, outDir: join(outDir, 'sparsity'), epochs: cfg.sparsityEpochs, task: 'sparsity',
    sparsity: { lambda: cfg.lambda, schedule: 'topk', topk: cfg.topk, switchAt: cfg.switchAt }, burnIn: 0, learningRate: cfg.sparsityLr,
  });
  if (spR.cancelled) throw new Error('cancelled');
  const spCpu = cpuSince(cpu);
  const spW = spR.outputs.final;
  const spWeights = mustLoad(spW, baseGraph);
  rows.push(await measure('sparsity-trained', { graph: baseGraph, weights: spWeights }, spW, validData, threads, runs, spR.seconds,
    `${((spR.sparsity ?? 0) * 100).toFixed(1)}% of prunable |γ| < 0.01`));
  check();

  // 4. prune: slim; the largest percent (of the candidates) whose mAP holds, or the fixed one
  step('pruning');
  const tp = Date.now();
  const groups = buildChannelGroups(baseGraph);
  const limit = percentLimit(groups, spWeights, 'slim');
  const prunable = [...prunableGammaMasks(baseGraph).values()].reduce((s, m) => s + m.reduce((a, b) => a + b, 0), 0);
  const candidates = opts.prunePercent !== undefined ? [opts.prunePercent] : quick ? [0.6] : [0.8, 0.7, 0.6];
  const tried: { percent: number; map: number }[] = [];
  const spMap = rows[1].map;
  let chosen: { percent: number; run: ReturnType<typeof pruneModel>; map: number } | undefined;
  for (const percent of candidates) {
    const run = pruneModel(baseGraph, spWeights, { strategy: 'slim', percent, layerKeep: 0.1 }, { cfgPath: baseCfg });
    const g = run.result.graph, w = run.result.weights!;
    let map = -1;
    if (candidates.length > 1) {
      const det = await Detector.create({ graph: g, weights: w }, { threads });
      map = (await evaluate(det, validData, { pureRuns: 0, workers: 0 })).map.mAP;
    }
    tried.push({ percent, map: r4(map) });
    chosen = { percent, run, map };
    if (candidates.length === 1 || map >= spMap - DEMO_TARGETS.sparsityMapDrop) break;
  }
  const pr = chosen!.run;
  const prunedDir = join(outDir, 'pruned');
  mkdirSync(prunedDir, { recursive: true });
  const prunedCfg = join(prunedDir, 'darkslim-tiny-pruned.cfg');
  const prunedWPath = join(prunedDir, 'darkslim-tiny-pruned.weights');
  writeFileAtomic(prunedCfg, pr.result.text);
  writeFileAtomic(prunedWPath, prunedWeightsBytes(pr));
  writeFileSync(join(prunedDir, 'prune-report.json'), JSON.stringify(pr.report, null, 2) + '\n');
  const prunedGraph = loadCfg(prunedCfg);
  const prunedWeights = mustLoad(prunedWPath, prunedGraph);
  const pruneSeconds = (Date.now() - tp) / 1000;
  const channelFraction = prunable ? pr.report.removedChannels / prunable : 0;
  rows.push(await measure('pruned', { graph: prunedGraph, weights: prunedWeights }, prunedWPath, validData, threads, runs, pruneSeconds,
    `slim ${(chosen!.percent * 100).toFixed(0)}%: ${pr.report.removedChannels}/${prunable} prunable channels removed`));
  check();

  // 5. fine-tune the pruned model
  step('fine-tuning the pruned model');
  cpu = process.cpuUsage();
  const ftR = await train({ ...common, cfg: prunedCfg, weights: prunedWPath, data: ds.dataFile, outDir: join(outDir, 'finetune'), epochs: cfg.finetuneEpochs, task: 'finetune', burnIn: 0 });
  if (ftR.cancelled) throw new Error('cancelled');
  const ftCpu = cpuSince(cpu);
  const ftCfg = ftR.outputs.cfg, ftW = ftR.outputs.final;
  const ftGraph = loadCfg(ftCfg);
  const ftWeights = mustLoad(ftW, ftGraph);
  rows.push(await measure('pruned + fine-tuned', { graph: ftGraph, weights: ftWeights }, ftW, validData, threads, runs, ftR.seconds));
  check();

  // 5b. distillation (slot)
  let distillRow: DemoStageRow | null = null;
  if (opts.distill) {
    step('distillation');
    const d = await opts.distill({
      outDir: join(outDir, 'distill'), dataFile: ds.dataFile, teacher: { cfg: baseCfg, weights: baseW }, student: { cfg: prunedCfg, weights: prunedWPath },
      epochs: cfg.finetuneEpochs, backend, signal: opts.signal, onEvent: opts.onEvent,
    });
    const g = loadCfg(d.cfg);
    distillRow = await measure('pruned, distilled', { graph: g, weights: mustLoad(d.weights, g) }, d.weights, validData, threads, runs, d.seconds, d.note);
    rows.push(distillRow);
    check();
  }

  // 6. int8 (QDQ ONNX, onnxruntime int8 kernels) of the fine-tuned model
  step('int8 quantization');
  const tq = Date.now();
  let int8Row: DemoStageRow;
  try {
    const { quantizeDarknet } = await import('../onnx/quantize');
    const q = await quantizeDarknet(ftGraph, ftWeights, { calib: ds.dataFile, images: cfg.calib, threads, names: ds.names });
    const qPath = join(outDir, 'int8', 'darkslim-tiny-pruned-int8.onnx');
    mkdirSync(join(outDir, 'int8'), { recursive: true });
    writeFileAtomic(qPath, q.bytes);
    writeFileAtomic(join(outDir, 'int8', 'darkslim-tiny-pruned-float.onnx'), q.floatBytes);
    const int8Kernels = Object.entries(q.int8Ops).map(([k, v]) => `${k}×${v}`).join(', ');
    int8Row = await measure('int8 (pruned + fine-tuned)', { onnx: q.bytes, graph: ftGraph }, qPath, validData, threads, runs, (Date.now() - tq) / 1000,
      `${q.method} calibration on ${q.images} images; int8 kernels: ${int8Kernels || 'none'}`);
  } catch (e) {
    int8Row = { stage: 'int8 (pruned + fine-tuned)', params: ftGraph.totals.params, bytes: 0, file: '', bflops: r4(ftGraph.totals.bflops), latencyMs: NaN, map: NaN, seconds: (Date.now() - tq) / 1000, note: `quantization failed: ${(e as Error).message.split('\n')[0]}` };
    emit({ type: 'log', level: 'warning', message: int8Row.note! });
  }
  rows.push(int8Row);

  // targets
  const base = rows[0].map;
  const ft = rows.find((r) => r.stage === 'pruned + fine-tuned')!.map;
  const targets: DemoTarget[] = [
    { name: 'baseline mAP@0.5', value: base, target: `≥ ${DEMO_TARGETS.baselineMap}`, met: base >= DEMO_TARGETS.baselineMap },
    { name: 'prunable |γ| < 0.01 after sparsity training', value: r4(spR.sparsity ?? 0), target: `≥ ${DEMO_TARGETS.sparsity}`, met: (spR.sparsity ?? 0) >= DEMO_TARGETS.sparsity },
    { name: 'mAP drop after sparsity training', value: r4(base - spMap), target: `≤ ${DEMO_TARGETS.sparsityMapDrop}`, met: base - spMap <= DEMO_TARGETS.sparsityMapDrop },
    { name: 'prunable channels removed', value: r4(channelFraction), target: `≥ ${DEMO_TARGETS.prunedChannels}`, met: channelFraction >= DEMO_TARGETS.prunedChannels },
    { name: 'mAP drop after pruning + fine-tuning', value: r4(base - ft), target: `≤ ${DEMO_TARGETS.finetuneMapDrop}`, met: base - ft <= DEMO_TARGETS.finetuneMapDrop },
  ];
  if (Number.isFinite(int8Row.map)) targets.push({ name: 'int8 mAP drop vs its float model', value: r4(ft - int8Row.map), target: '(reported)', met: true });
  done = stages;
  const report: DemoReport = {
    version: 1, quick, date: new Date().toISOString(), outDir,
    dataset: { dataFile: ds.dataFile, train: cfg.train, valid: cfg.valid, classes: ds.names },
    config: { ...cfg, seed, backend, threads, prunePercent: chosen!.percent },
    rows, distill: distillRow,
    sparsity: { fraction: r4(spR.sparsity ?? 0), prunable },
    prune: { percent: chosen!.percent, percentLimit: r4(limit.percentLimit), removedChannels: pr.report.removedChannels, prunableChannels: prunable, channelFraction: r4(channelFraction), tried },
    training: [trainSummary('baseline', baseR, baseCpu, cfg.train), trainSummary('sparsity', spR, spCpu, cfg.train), trainSummary('finetune', ftR, ftCpu, cfg.train)],
    targets,
    totalSeconds: Math.round((Date.now() - t0) / 100) / 10,
    cpuSeconds: Math.round(cpuSince(cpu0) * 10) / 10,
    loadAverage: { start: Math.round(load0 * 100) / 100, end: Math.round(loadavg()[0] * 100) / 100 },
    files: { dataset: ds.dataFile, baseline: baseW, sparsity: spW, prunedCfg, pruned: prunedWPath, finetuned: ftW, int8: int8Row.file },
  };
  writeFileAtomic(join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(join(outDir, 'report.md'), demoMarkdown(report));
  emit({ type: 'done', cancelled: false, seconds: report.totalSeconds, outputs: { report: join(outDir, 'report.json'), markdown: join(outDir, 'report.md') }, summary: { baselineMap: base, finetunedMap: ft, targetsMet: targets.filter((t) => t.met).length, targets: targets.length } });
  return report;
}

function mustLoad(path: string, graph: ModelGraph): ModelWeights {
  const r = loadWeightsFile(path, graph);
  if (!r.check.ok) throw new Error(`${path}: ${r.check.message}`);
  return r.weights;
}

function fmtBytes(n: number): string {
  if (!n) return '–';
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}

function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
}

/** The table as text columns (what the CLI prints). */
export function demoTable(report: DemoReport): string {
  const head = ['stage', 'params', 'size', 'BFLOPs', 'latency (ORT, 2 thr)', 'mAP@0.5', 'time'];
  const body = report.rows.map((r) => [
    r.stage, fmtParams(r.params), fmtBytes(r.bytes), r.bflops.toFixed(4), Number.isFinite(r.latencyMs) ? `${r.latencyMs.toFixed(2)} ms` : '–',
    Number.isFinite(r.map) ? r.map.toFixed(4) : '–', `${r.seconds.toFixed(0)} s`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function demoMarkdown(report: DemoReport): string {
  const out: string[] = [];
  const esc = (t: string) => t.replace(/\|/g, '\\|');
  out.push(`# Darkslim demo${report.quick ? ' (quick: pipeline check only, accuracy not meaningful)' : ''}`, '');
  out.push(`Synthetic shapes dataset: ${report.dataset.train} training / ${report.dataset.valid} validation images, classes ${report.dataset.classes.join(', ')}. Total time ${report.totalSeconds.toFixed(0)} s${report.cpuSeconds !== undefined ? ` (CPU ${report.cpuSeconds.toFixed(0)} s; load average ${report.loadAverage?.start} at the start, ${report.loadAverage?.end} at the end)` : ''}.`, '');
  out.push('| stage | params | size | BFLOPs | latency (ORT, 2 threads) | mAP@0.5 | time | note |', '|---|---|---|---|---|---|---|---|');
  for (const r of report.rows) {
    out.push(`| ${r.stage} | ${fmtParams(r.params)} | ${fmtBytes(r.bytes)} | ${r.bflops.toFixed(4)} | ${Number.isFinite(r.latencyMs) ? r.latencyMs.toFixed(2) + ' ms' : '–'} | ${Number.isFinite(r.map) ? r.map.toFixed(4) : '–'} | ${r.seconds.toFixed(0)} s | ${esc(r.note ?? '')} |`);
  }
  out.push('', '## Targets', '', '| target | value | wanted | |', '|---|---|---|---|');
  for (const t of report.targets) out.push(`| ${esc(t.name)} | ${t.value} | ${t.target} | ${t.met ? 'met' : '**missed**'} |`);
  const missed = report.targets.filter((t) => !t.met);
  out.push('', missed.length ? `Missed: ${missed.map((t) => t.name).join('; ')}.` : 'All targets met.');
  out.push('', '## Training', '', '| stage | epochs | seconds | images/s | CPU seconds | images per CPU second | backend |', '|---|---|---|---|---|---|---|');
  for (const t of report.training) out.push(`| ${t.stage} | ${t.epochs} | ${t.seconds} | ${t.imagesPerSecond} | ${t.cpuSeconds ?? '–'} | ${t.imagesPerCpuSecond ?? '–'} | ${t.backend} |`);
  out.push('', `Pruning: slim ${(report.prune.percent * 100).toFixed(0)}% (percent_limit ${(report.prune.percentLimit * 100).toFixed(1)}%), ${report.prune.removedChannels} of ${report.prune.prunableChannels} prunable channels removed; tried ${report.prune.tried.map((t) => `${(t.percent * 100).toFixed(0)}% → mAP ${t.map}`).join(', ')}.`);
  out.push(`Distillation: ${report.distill ? `mAP ${report.distill.map}` : 'not run (slot `distill` in DemoOptions)'}.`, '');
  return out.join('\n');
}

/** Reads a report written by runDemo. */
export function readDemoReport(outDir: string): DemoReport | undefined {
  const p = join(outDir, 'report.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as DemoReport) : undefined;
}


