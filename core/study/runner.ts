// Runs a study (schema.ts): the stages in order, each in its own folder under `work`, then the
// report (report.ts) in the `report` folder.
//
// Resuming: a stage is finished when `<work>/<stage>/stage.done.json` exists (written last,
// atomically) and its key matches: the key hashes the stage's settings, the data, the seed and the
// run ids of the stages it reads, so a stage whose input was rebuilt runs again. A stage folder whose
// `stage.key` belongs to other settings is emptied first; otherwise a half-done training stage
// continues from its checkpoint (the trainer's `resume`: <stem>_state.json + _last.weights), and a
// half-done prune search from its finished candidates (each has its own done-marker).
import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir } from 'node:os';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { applyEdits, setIntEdit } from '../darknet/edits';
import { loadCfg, loadWeightsFile, writeFileAtomic } from '../darknet/files';
import { analyzeCfg } from '../darknet/graph';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { writeWeights } from '../darknet/weights';
import { loadCsvSplit, loadDataset, namesFrom, type Dataset, type DatasetItem } from '../data/dataset';
import { prunableGammaMasks } from '../engine/sparsity';
import type { TrainOptions, TrainResult } from '../engine/trainer';
import { emitterFor, eventToJsonLine, type EventSink, type TaskEvent } from '../pipeline/events';
import { exportOnnx } from '../onnx/export';
import { interleavedLatency } from '../onnx/quantize/report';
import { measureModel, type StudyRow } from './measure';
import { writeStudyReport, type StudyReport } from './report';
import {
  missingInputs, type DistillStage, type EvaluateStage, type ModelStage, type PruneCandidate, type PruneStage, type QuantizeStage,
  type SplitSpec, type StageSpec, type StudySpec, type TrainSettings, type TrainStage,
} from './schema';
import { changeClassesText, transferWeights } from './transfer';

export interface RunStudyOptions {
  /** Reports (and, under it, models) go here instead of the yaml's `report` / `work`. */
  outDir?: string;
  smoke?: boolean;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /**
   * Train nothing: measure the latency of every finished stage's models again and rewrite the
   * report (mAP, sizes and times are kept). For a quiet machine after a run that shared it; every
   * stage must have finished with the current settings.
   */
  remeasure?: boolean;
}

/** A model a stage produced. */
export interface StageModel {
  cfg: string;
  weights?: string;
  /** int8 stages: the ONNX model. */
  onnx?: string;
}

export interface GammaHist { edges: number[]; counts: number[]; sparsity: number; count: number }

export interface CandidateRecord {
  percent: number;
  layerKeep: number | null;
  error?: string;
  removedChannels?: number;
  percentLimit?: number;
  pruned?: StudyRow;
  finetuned?: StudyRow;
  holds?: boolean;
  models?: { pruned: StageModel; finetuned?: StageModel };
  /** mAP during the fine-tune (its `eval_every`). */
  mapTrail?: MapPoint[];
  seconds: number;
}

/** mAP on the evaluation split after `epoch` epochs of a training stage. */
export interface MapPoint { epoch: number; map: number }

/**
 * The candidate that kept the most mAP (after fine-tuning when it was fine-tuned); on a tie the
 * larger percent, the smaller model. Failed candidates do not count; undefined when all failed.
 */
export function bestCandidate(results: Map<number, Pick<CandidateRecord, 'percent' | 'error' | 'pruned' | 'finetuned'>>): number | undefined {
  const score = (c: Pick<CandidateRecord, 'pruned' | 'finetuned'>) => (c.finetuned ?? c.pruned)?.map ?? -1;
  const ok = [...results.entries()].filter(([, c]) => !c.error);
  ok.sort((a, b) => score(b[1]) - score(a[1]) || b[1].percent - a[1].percent);
  return ok[0]?.[0];
}

/** The done-marker of a stage (and what the report is built from). */
export interface StageRecord {
  version: 1;
  name: string;
  type: string;
  key: string;
  runId: string;
  finishedAt: string;
  /** Work seconds (training, pruning, quantizing) and measuring seconds. */
  seconds: number;
  measureSeconds: number;
  outputs: Record<string, StageModel>;
  /** Rows for the table: the stage's own first, then extra ones (sweep candidates). */
  rows: StudyRow[];
  info: Record<string, unknown>;
  /** When `--remeasure` last measured this stage's latencies again. */
  remeasuredAt?: string;
}

interface Ctx {
  spec: StudySpec;
  smoke: boolean;
  work: string;
  records: Map<string, StageRecord>;
  train: Dataset;
  evalSet: Dataset;
  calibList: string;
  names: string[] | undefined;
  signal?: AbortSignal;
  sink?: EventSink;
  emit: ReturnType<typeof emitterFor>;
}

export const DONE_MARKER = 'stage.done.json';

function cancelled(ctx: Ctx): void {
  if (ctx.signal?.aborted) throw new Error('cancelled');
}

function mustLoad(path: string, graph: ModelGraph): ModelWeights {
  const r = loadWeightsFile(path, graph);
  if (!r.check.ok) throw new Error(`${path}: ${r.check.message}`);
  return r.weights;
}

async function loadSplit(s: SplitSpec, which: 'train' | 'valid', names: string[] | undefined, what: string): Promise<Dataset> {
  const ds = s.kind === 'csv' ? loadCsvSplit(s.csv, s.images, { names }) : await loadDataset(s.path, { split: which, names });
  const missing = ds.items.filter((i) => i.missingImage);
  if (missing.length) throw new Error(`${what}: ${missing.length} listed image(s) do not exist, e.g. ${missing[0].image}`);
  if (!ds.items.length) throw new Error(`${what}: no image in ${s.kind === 'csv' ? s.csv : s.path}`);
  return ds;
}

function subset(ds: Dataset, n: number): Dataset {
  return { ...ds, items: ds.items.slice(0, n) };
}

function hash(v: unknown): string {
  return createHash('sha1').update(JSON.stringify(v)).digest('hex').slice(0, 16);
}

/** Names of the stages (and `stage.finetuned` outputs) a stage reads. */
export function stageInputs(s: StageSpec): string[] {
  switch (s.type) {
    case 'model': return [];
    case 'prune': return [s.from, ...(s.search ? [s.search.reference] : [])];
    case 'distill': return [s.from, s.teacher];
    case 'quantize': return s.from;
    default: return [s.from];
  }
}

function stageKey(ctx: Ctx, s: StageSpec): string {
  const upstream = stageInputs(s).map((ref) => ctx.records.get(ref.split('.')[0])?.runId ?? '?');
  return hash({ stage: s.raw, upstream, data: ctx.spec.data, seed: ctx.spec.seed, smoke: ctx.smoke ? ctx.spec.smoke : false });
}

function modelOf(ctx: Ctx, ref: string): StageModel {
  const [name, sub] = ref.split('.');
  const rec = ctx.records.get(name);
  if (!rec) throw new Error(`stage "${name}" has not run`);
  const m = rec.outputs[sub ?? 'model'];
  if (!m) throw new Error(`stage "${name}" has no output "${sub ?? 'model'}"`);
  return m;
}

/** The measured row of a model output (for `reference:` and best-mAP choices). */
function rowOf(ctx: Ctx, ref: string): StudyRow | undefined {
  const [name, sub] = ref.split('.');
  const rec = ctx.records.get(name);
  if (!rec) return undefined;
  const info = rec.info as { outputRows?: Record<string, StudyRow> };
  return info.outputRows?.[sub ?? 'model'] ?? (sub ? undefined : rec.rows[0]);
}

export function gammaHistogramOf(graph: ModelGraph, weights: ModelWeights): GammaHist {
  const edges = [0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3];
  const counts = new Array<number>(edges.length).fill(0);
  let n = 0, small = 0;
  for (const [i, mask] of prunableGammaMasks(graph)) {
    const g = weights.layers.get(i)?.scales;
    if (!g) continue;
    for (let c = 0; c < mask.length; c++) {
      if (!mask[c]) continue;
      const a = Math.abs(g[c]);
      n++;
      if (a < 0.01) small++;
      let b = edges.length - 1;
      while (b > 0 && a < edges[b]) b--;
      counts[b]++;
    }
  }
  return { edges, counts, sparsity: n ? small / n : 0, count: n };
}

/** Runs the study; returns the report (also written as report.json / report.md / *.svg). */
export async function runStudy(spec: StudySpec, opts: RunStudyOptions = {}): Promise<StudyReport> {
  const t0 = Date.now();
  const smoke = !!opts.smoke;
  const emit = emitterFor('study', opts.onEvent);
  const missing = missingInputs(spec);
  if (missing.length) {
    const corpus = missing.some((m) => m.includes(`${sep}shared${sep}corpus${sep}`))
      ? ` (the corpus is expected at ${resolve(spec.root, '..', 'shared', 'corpus')}: the shipped studies read their models and datasets from it)` : '';
    throw new Error(`${spec.file}: the study's inputs are missing${corpus}:\n  ${missing.join('\n  ')}`);
  }
  // a smoke run never writes beside the real study's reports and models
  const outDir = opts.outDir ? resolve(opts.outDir) : smoke ? join(tmpdir(), `darkslim-study-${spec.name}-smoke`) : undefined;
  const reportDir = outDir ?? spec.report;
  const work = outDir ? join(outDir, 'models') : spec.work;
  mkdirSync(work, { recursive: true });
  mkdirSync(reportDir, { recursive: true });
  const loadStart = loadavg();

  // data
  const names = Array.isArray(spec.data.names) ? spec.data.names : typeof spec.data.names === 'string' ? namesFrom(spec.data.names) : undefined;
  let train = await loadSplit(spec.data.train, 'train', names, 'data.train');
  let evalSet = await loadSplit(spec.data.eval, 'valid', names ?? train.names, 'data.eval');
  let calib = spec.data.calib ? await loadSplit(spec.data.calib, 'train', names ?? train.names, 'data.calib') : train;
  if (smoke) {
    train = subset(train, spec.smoke.images);
    evalSet = subset(evalSet, spec.smoke.images);
    calib = subset(calib, spec.smoke.calib);
  }
  const calibList = join(work, 'calibration.txt');
  const calibText = calib.items.map((i) => i.image).join('\n') + '\n';
  if (!existsSync(calibList) || readFileSync(calibList, 'utf8') !== calibText) writeFileAtomic(calibList, calibText);

  const ctx: Ctx = {
    spec, smoke, work, records: new Map(), train, evalSet, calibList, names: names ?? train.names,
    signal: opts.signal, sink: opts.onEvent, emit,
  };
  const total = spec.stages.length;
  emit({ type: 'start', total, info: { study: spec.name, smoke, work, report: reportDir, train: train.items.length, eval: evalSet.items.length, stages: spec.stages.map((s) => s.name).join(', ') } });

  const ran: string[] = [], skipped: string[] = [];
  for (let i = 0; i < spec.stages.length; i++) {
    const s = spec.stages[i];
    cancelled(ctx);
    const dir = join(work, s.name);
    const key = stageKey(ctx, s);
    const markerPath = join(dir, DONE_MARKER);
    if (existsSync(markerPath)) {
      const rec = JSON.parse(readFileSync(markerPath, 'utf8')) as StageRecord;
      if (rec.key === key) {
        ctx.records.set(s.name, rec);
        skipped.push(s.name);
        emit({ type: 'progress', done: i + 1, total, message: `${s.name}: finished earlier, skipped` });
        emit({ type: 'log', level: 'info', message: `stage ${s.name} (${s.type}): finished earlier (${DONE_MARKER}), skipped` });
        continue;
      }
    }
    if (opts.remeasure) {
      throw new Error(`stage "${s.name}" (line ${s.line}) has not finished with these settings: run the study without --remeasure first`);
    }
    const keyPath = join(dir, 'stage.key');
    if (existsSync(keyPath) && readFileSync(keyPath, 'utf8').trim() !== key) {
      emit({ type: 'log', level: 'info', message: `stage ${s.name}: its settings or inputs changed: starting it over` });
      rmSync(dir, { recursive: true, force: true });
    }
    mkdirSync(dir, { recursive: true });
    if (!existsSync(keyPath)) writeFileAtomic(keyPath, key + '\n');
    emit({ type: 'progress', done: i, total, message: `${s.name} (${s.type})` });
    emit({ type: 'log', level: 'info', message: `stage ${i + 1}/${total}: ${s.name} (${s.type})` });
    const log = join(dir, 'events.jsonl');
    const stageSink: EventSink = (e: TaskEvent) => {
      appendFileSync(log, eventToJsonLine(e));
      opts.onEvent?.(e);
    };
    const rec = await runStage(ctx, s, dir, stageSink);
    rec.key = key;
    rec.runId = randomUUID();
    rec.finishedAt = new Date().toISOString();
    writeFileAtomic(markerPath, JSON.stringify(rec, null, 2) + '\n');
    ctx.records.set(s.name, rec);
    ran.push(s.name);
    const row = rec.rows[0];
    emit({ type: 'log', level: 'info', message: `stage ${s.name} done in ${(rec.seconds + rec.measureSeconds).toFixed(0)} s${row ? `: mAP@0.5 ${row.map ?? '–'}, ${row.bflops} BFLOPs, ${row.latencyMs ?? '–'} ms` : ''}` });
  }
  if (opts.remeasure) await remeasureLatency(ctx);
  emit({ type: 'progress', done: total, total, message: 'report' });
  // wall time since the first stage started (its stage.key is written once, at its first start):
  // interrupted attempts count here, and only here
  const firstStart = Math.min(...spec.stages.map((s) => join(work, s.name, 'stage.key')).filter(existsSync).map((f) => statSync(f).mtimeMs));

  const report = writeStudyReport(spec, ctx.records, {
    reportDir, smoke, ran, skipped, runSeconds: (Date.now() - t0) / 1000,
    elapsedSeconds: Number.isFinite(firstStart) ? (Date.now() - firstStart) / 1000 : (Date.now() - t0) / 1000,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, os: `${platform()} ${release()}`, node: process.version,
      loadStart: loadStart.map((x) => Math.round(x * 100) / 100), loadEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    data: {
      train: { source: rel(spec, train.source), images: train.items.length, boxes: train.items.reduce((a, b) => a + b.truths.length, 0) },
      eval: { source: rel(spec, evalSet.source), images: evalSet.items.length, boxes: evalSet.items.reduce((a, b) => a + b.truths.length, 0) },
      calib: { images: calib.items.length },
      names: ctx.names ?? [],
    },
  });
  emit({ type: 'done', cancelled: false, seconds: (Date.now() - t0) / 1000, outputs: { report: join(reportDir, 'report.json'), markdown: join(reportDir, 'report.md') }, summary: { ran: ran.length, skipped: skipped.length, totalSeconds: report.totalSeconds } });
  return report;
}

export function rel(spec: StudySpec, p: string): string {
  const r = relative(spec.root, p);
  return r.startsWith('..') && r.split(/[\\/]/).filter((x) => x === '..').length > 2 ? p : r || '.';
}

/**
 * Every table row's latency (and load) measured again, each model once and all of them
 * interleaved (a drifting or busy machine then slows every row alike); the done-markers are
 * rewritten with them. A row's model is found by its file among the models the stages recorded.
 */
async function remeasureLatency(ctx: Ctx): Promise<void> {
  const models = new Map<string, StageModel>();
  const collect = (v: unknown): void => {
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach(collect);
    const o = v as Record<string, unknown>;
    const file = typeof o.onnx === 'string' ? o.onnx : typeof o.weights === 'string' ? o.weights : undefined;
    if (typeof o.cfg === 'string' && file) models.set(rel(ctx.spec, file), { cfg: o.cfg, ...(o.onnx ? { onnx: file } : { weights: file }) });
    for (const x of Object.values(o)) collect(x);
  };
  for (const rec of ctx.records.values()) {
    collect(rec.outputs);
    collect(rec.info);
  }
  const rowsOf = (rec: StageRecord): StudyRow[] => {
    const info = rec.info as { outputRows?: Record<string, StudyRow>; candidates?: CandidateRecord[] };
    return [
      ...rec.rows, ...Object.values(info.outputRows ?? {}),
      ...(info.candidates ?? []).flatMap((c) => [c.pruned, c.finetuned].filter((r): r is StudyRow => !!r)),
    ];
  };
  // each distinct model file, its ONNX bytes grouped by input shape
  const groups = new Map<string, { dims: number[]; files: string[]; onnx: Uint8Array[] }>();
  const seen = new Set<string>();
  for (const [name, rec] of ctx.records) {
    for (const row of rowsOf(rec)) {
      if (seen.has(row.file)) continue;
      seen.add(row.file);
      const model = models.get(row.file);
      if (!model) throw new Error(`stage "${name}": no recorded model has the file ${row.file} of the row "${row.name}"`);
      const graph = loadCfg(model.cfg);
      const dims = [1, graph.net.channels, graph.net.height, graph.net.width];
      const group = groups.get(dims.join()) ?? { dims, files: [], onnx: [] };
      group.files.push(row.file);
      group.onnx.push(model.onnx ? readFileSync(model.onnx) : exportOnnx(graph, mustLoad(model.weights!, graph)).bytes);
      groups.set(dims.join(), group);
    }
  }
  cancelled(ctx);
  const load = Math.round(loadavg()[0] * 100) / 100;
  const runs = ctx.smoke ? ctx.spec.smoke.latencyRuns : ctx.spec.latencyRuns;
  const measured = new Map<string, Pick<StudyRow, 'latencyMs' | 'load'>>();
  for (const g of groups.values()) {
    const stats = await interleavedLatency(g.onnx, g.dims, { threads: ctx.spec.threads, runs, warmup: Math.min(10, runs) });
    g.files.forEach((file, i) => {
      measured.set(file, { latencyMs: stats[i].median_ms, load });
      ctx.emit({ type: 'log', level: 'info', message: `${file}: ${stats[i].median_ms} ms (load ${load})` });
    });
  }
  const at = new Date().toISOString();
  for (const [name, rec] of ctx.records) {
    for (const row of rowsOf(rec)) Object.assign(row, measured.get(row.file));
    rec.remeasuredAt = at;
    writeFileAtomic(join(ctx.work, name, DONE_MARKER), JSON.stringify(rec, null, 2) + '\n');
  }
}

function newRecord(s: StageSpec): StageRecord {
  return { version: 1, name: s.name, type: s.type, key: '', runId: '', finishedAt: '', seconds: 0, measureSeconds: 0, outputs: {}, rows: [], info: {} };
}

async function runStage(ctx: Ctx, s: StageSpec, dir: string, sink: EventSink): Promise<StageRecord> {
  switch (s.type) {
    case 'model': return runModelStage(ctx, s, dir);
    case 'train': case 'finetune': case 'sparsity': return runTrainStage(ctx, s, dir, sink);
    case 'prune': return runPruneStage(ctx, s, dir, sink);
    case 'distill': return runDistillStage(ctx, s, dir, sink);
    case 'quantize': return runQuantizeStage(ctx, s, dir, sink);
    case 'evaluate': return runEvaluateStage(ctx, s);
  }
}

async function measureRow(ctx: Ctx, s: StageSpec, model: StageModel, seconds: number, label = s.label ?? s.name, note = s.note): Promise<StudyRow> {
  const graph = loadCfg(model.cfg);
  const m = model.onnx
    ? await measureModel({ graph, onnx: readFileSync(model.onnx) }, model.onnx, ctx.evalSet, { threads: ctx.spec.threads, latencyRuns: ctx.smoke ? ctx.spec.smoke.latencyRuns : ctx.spec.latencyRuns })
    : await measureModel({ graph, weights: mustLoad(model.weights!, graph) }, model.weights!, ctx.evalSet, { threads: ctx.spec.threads, latencyRuns: ctx.smoke ? ctx.spec.smoke.latencyRuns : ctx.spec.latencyRuns });
  return { stage: s.name, name: label, type: s.type, ...m, file: rel(ctx.spec, m.file), seconds: Math.round(seconds * 10) / 10, ...(note ? { note } : {}) };
}

// ---- model ----

async function runModelStage(ctx: Ctx, s: ModelStage, dir: string): Promise<StageRecord> {
  const rec = newRecord(s);
  const t = Date.now();
  const text = readFileSync(s.cfg, 'utf8');
  const src = analyzeCfg(text);
  const err = src.diagnostics.find((d) => d.severity === 'error');
  if (err) throw new Error(`${s.cfg}:${err.range.start.line + 1}: ${err.message}`);
  const srcWeights = mustLoad(s.weights, src);
  let model: StageModel = { cfg: s.cfg, weights: s.weights };
  const classesNow = src.layers.find((l) => l.yolo)?.yolo?.classes;
  if (s.classes !== undefined && s.classes !== classesNow) {
    const changed = changeClassesText(text, s.classes);
    const stem = `${basename(s.cfg, extname(s.cfg))}-${s.classes}class`;
    const dst = analyzeCfg(changed.text);
    const tr = transferWeights(src, srcWeights, dst, { head: s.head, seed: ctx.spec.seed });
    model = { cfg: join(dir, `${stem}.cfg`), weights: join(dir, `${stem}.weights`) };
    writeFileAtomic(model.cfg, changed.text);
    writeFileAtomic(model.weights!, writeWeights(dst, tr.weights));
    rec.info.classes = { from: classesNow, to: s.classes, edits: changed.edits, copiedLayers: tr.copied.length, headConvs: tr.heads, head: s.head };
  }
  const size = ctx.smoke ? ctx.spec.smoke.size : undefined;
  if (size !== undefined) {
    // smoke runs may shrink the input (a pipeline check, 4x less compute at half the size)
    const g = loadCfg(model.cfg);
    const net = g.doc.sections.find((x) => x.type === 'net');
    if (!net) throw new Error(`${model.cfg}: no [net] section`);
    const text2 = applyEdits(g.doc.text, [setIntEdit(g.doc, net, 'width', size), setIntEdit(g.doc, net, 'height', size)]);
    const cfg = join(dir, `${basename(model.cfg, extname(model.cfg))}-${size}.cfg`);
    writeFileAtomic(cfg, text2);
    model = { ...model, cfg };
  }
  const names = ctx.names;
  const classes = loadCfg(model.cfg).layers.find((l) => l.yolo)?.yolo?.classes;
  if (names && classes !== undefined && names.length !== classes) {
    throw new Error(`stage "${s.name}" (line ${s.line}): the model has ${classes} classes but data.names lists ${names.length}: set \`classes: ${names.length}\``);
  }
  rec.seconds = (Date.now() - t) / 1000;
  rec.outputs.model = model;
  const tm = Date.now();
  const note = s.note ?? (rec.info.classes ? `classes ${classesNow} → ${s.classes} (quick fix), head convs ${s.head === 'boxes' ? 'fresh class rows, box/objectness rows kept' : 'fresh'}` : undefined);
  rec.rows.push(await measureRow(ctx, s, model, rec.seconds, s.label, note));
  rec.measureSeconds = (Date.now() - tm) / 1000;
  rec.info.gamma = gammaHistogramOf(loadCfg(model.cfg), mustLoad(model.weights!, loadCfg(model.cfg)));
  return rec;
}

// ---- training ----

function trainOptions(ctx: Ctx, t: TrainSettings, input: StageModel, outDir: string, sink: EventSink): TrainOptions {
  if (!input.weights) throw new Error(`cannot train from an ONNX model (${input.onnx})`);
  const smoke = ctx.smoke ? ctx.spec.smoke : undefined;
  return {
    cfg: input.cfg, weights: input.weights, outDir, trainItems: ctx.train.items as DatasetItem[], names: ctx.names,
    validItems: t.evalEvery ? ctx.evalSet.items as DatasetItem[] : [], evalEvery: t.evalEvery ?? 0, resume: true, seed: ctx.spec.seed, backend: ctx.spec.backend, signal: ctx.signal, onEvent: sink,
    ...(smoke ? { maxBatches: smoke.iterations, batch: smoke.batch, subdivisions: 1 } : {
      epochs: t.iterations === undefined ? t.epochs : undefined, maxBatches: t.iterations, batch: t.batch, subdivisions: t.subdivisions,
    }),
    learningRate: t.lr, burnIn: t.burnIn, augment: t.augment,
  };
}

/** Passes events on, keeping each evaluation's mAP (a stage's `eval_every`) for the report. */
function recordingMaps(sink: EventSink, trail: MapPoint[]): EventSink {
  return (e) => {
    if (e.type === 'eval' && e.map !== undefined) trail.push({ epoch: Math.round((e.epoch ?? 0) * 100) / 100, map: Math.round(e.map * 1e4) / 1e4 });
    sink(e);
  };
}

function checkTrained(r: TrainResult, what: string): string {
  if (r.cancelled) throw new Error('cancelled');
  const w = r.outputs.final;
  if (!w) throw new Error(`${what}: training wrote no final weights`);
  return w;
}

async function runTrainStage(ctx: Ctx, s: TrainStage, dir: string, sink: EventSink): Promise<StageRecord> {
  const rec = newRecord(s);
  const input = modelOf(ctx, s.from);
  const { train } = await import('../engine/trainer');
  const gammaTrail: { epoch: number; sparsity: number }[] = [];
  const mapTrail: MapPoint[] = [];
  const t = Date.now();
  const opts = trainOptions(ctx, s, input, dir, recordingMaps((e) => {
    if (e.type === 'gamma') gammaTrail.push({ epoch: Math.round((e.epoch ?? 0) * 100) / 100, sparsity: Math.round(e.sparsity * 1e4) / 1e4 });
    sink(e);
  }, mapTrail));
  const r = await train({
    ...opts, task: s.type === 'sparsity' ? 'sparsity' : s.type === 'finetune' ? 'finetune' : 'train',
    sparsity: s.type === 'sparsity' ? { lambda: s.lambda!, schedule: s.schedule ?? 'constant', topk: s.topk, switchAt: s.switchAt, layerKeep: s.layerKeep } : undefined,
  });
  const weights = checkTrained(r, s.name);
  rec.seconds = (Date.now() - t) / 1000;
  rec.outputs.model = { cfg: r.outputs.cfg, weights };
  rec.info.training = { iterations: r.iterations, epochs: Math.round(r.epochs * 100) / 100, imagesPerSecond: Math.round(r.imagesPerSecond * 100) / 100, backend: r.backend.name, lastLoss: r.lastLoss?.total, ...(mapTrail.length ? { mapTrail } : {}) };
  if (s.type === 'sparsity') {
    const g = loadCfg(r.outputs.cfg);
    rec.info.gamma = { before: gammaHistogramOf(g, mustLoad(input.weights!, g)), after: gammaHistogramOf(g, mustLoad(weights, g)), trail: gammaTrail, lambda: s.lambda, schedule: s.schedule };
  }
  const tm = Date.now();
  const note = s.note ?? (s.type === 'sparsity' ? `λ ${s.lambda} (${s.schedule}): ${(((rec.info.gamma as { after: GammaHist }).after.sparsity) * 100).toFixed(1)}% of prunable |γ| < 0.01` : undefined);
  rec.rows.push(await measureRow(ctx, s, rec.outputs.model, rec.seconds, s.label, note));
  rec.measureSeconds = (Date.now() - tm) / 1000;
  return rec;
}

// ---- prune ----

async function runPruneStage(ctx: Ctx, s: PruneStage, dir: string, sink: EventSink): Promise<StageRecord> {
  const rec = newRecord(s);
  const input = modelOf(ctx, s.from);
  if (!input.weights) throw new Error(`stage "${s.name}": cannot prune an ONNX model`);
  const graph = loadCfg(input.cfg);
  const weights = mustLoad(input.weights, graph);
  const stem = basename(input.cfg, extname(input.cfg)).replace(/_final$/, '');
  let cands: PruneCandidate[] = s.search
    ? s.search.percents.map((percent) => ({ percent, layerKeep: s.layerKeep }))
    : s.sweep ? s.sweep.map((c) => ({ percent: c.percent, layerKeep: c.layerKeep ?? s.layerKeep }))
      : [{ percent: s.percent!, layerKeep: s.layerKeep }];
  if (ctx.smoke) cands = cands.slice(0, ctx.spec.smoke.candidates);
  const results = new Map<number, CandidateRecord>();
  let work = 0, measure = 0;

  const runCandidate = async (k: number): Promise<CandidateRecord> => {
    const done = results.get(k);
    if (done) return done;
    cancelled(ctx);
    const c = cands[k];
    const tag = `p${Math.round(c.percent * 1000) / 10}${c.layerKeep !== undefined ? `-lk${Math.round(c.layerKeep * 1000) / 10}` : ''}`;
    const cdir = join(dir, tag);
    const marker = join(cdir, 'candidate.done.json');
    if (existsSync(marker)) {
      const r = JSON.parse(readFileSync(marker, 'utf8')) as CandidateRecord;
      results.set(k, r);
      work += (r.pruned?.seconds ?? 0) + (r.finetuned?.seconds ?? 0); // the stage's work, whichever run did it
      ctx.emit({ type: 'log', level: 'info', message: `${s.name}: candidate ${tag} finished earlier` });
      return r;
    }
    mkdirSync(cdir, { recursive: true });
    // layer_keep in the label only when the candidate has its own (the stage's is in the details)
    const label = `${s.label ?? s.name} ${Math.round(c.percent * 100)}%${c.layerKeep !== undefined && c.layerKeep !== s.layerKeep ? ` (layer_keep ${c.layerKeep})` : ''}`;
    ctx.emit({ type: 'log', level: 'info', message: `${s.name}: pruning ${label}` });
    const cr: CandidateRecord = { percent: c.percent, layerKeep: c.layerKeep ?? null, seconds: 0 };
    const t = Date.now();
    const { pruneModel, prunedWeightsBytes } = await import('../prune');
    let run;
    try {
      run = pruneModel(graph, weights, { strategy: s.strategy, percent: c.percent, layerKeep: c.layerKeep, roundTo: s.roundTo }, { cfgPath: input.cfg, weightsPath: input.weights });
    } catch (e) {
      cr.error = (e as Error).message;
      cr.holds = false;
      ctx.emit({ type: 'log', level: 'warning', message: `${s.name}: ${tag}: ${cr.error}` });
      writeFileAtomic(marker, JSON.stringify(cr, null, 2) + '\n');
      results.set(k, cr);
      return cr;
    }
    const pruned: StageModel = { cfg: join(cdir, `${stem}-${tag}.cfg`), weights: join(cdir, `${stem}-${tag}.weights`) };
    writeFileAtomic(pruned.cfg, run.result.text);
    writeFileAtomic(pruned.weights!, prunedWeightsBytes(run));
    writeFileAtomic(join(cdir, 'prune-report.json'), JSON.stringify(run.report, null, 2) + '\n');
    cr.removedChannels = run.report.removedChannels;
    cr.percentLimit = run.report.percentLimit;
    const pruneSeconds = (Date.now() - t) / 1000;
    work += pruneSeconds;
    let tm = Date.now();
    cr.pruned = await measureRow(ctx, s, pruned, pruneSeconds, label, `${run.report.removedChannels} channels removed (percent_limit ${(run.report.percentLimit * 100).toFixed(1)}%)`);
    measure += (Date.now() - tm) / 1000;
    cr.models = { pruned };
    if (s.finetune) {
      const tf = Date.now();
      const { train } = await import('../engine/trainer');
      const mapTrail: MapPoint[] = [];
      const r = await train({ ...trainOptions(ctx, s.finetune, pruned, join(cdir, 'finetune'), recordingMaps(sink, mapTrail)), task: 'finetune' });
      if (mapTrail.length) cr.mapTrail = mapTrail;
      const w = checkTrained(r, `${s.name} ${tag}`);
      const ftSeconds = (Date.now() - tf) / 1000;
      work += ftSeconds;
      cr.models.finetuned = { cfg: r.outputs.cfg, weights: w };
      tm = Date.now();
      cr.finetuned = await measureRow(ctx, s, cr.models.finetuned, ftSeconds, `${label} + fine-tuned`, `${Math.round(r.epochs * 100) / 100} epochs`);
      measure += (Date.now() - tm) / 1000;
    }
    cr.seconds = (Date.now() - t) / 1000;
    writeFileAtomic(marker, JSON.stringify(cr, null, 2) + '\n');
    results.set(k, cr);
    return cr;
  };

  let chosen: number;
  let reference: { stage: string; map: number } | undefined;
  if (s.search) {
    const refRow = rowOf(ctx, s.search.reference);
    if (!refRow || refRow.map === null) throw new Error(`stage "${s.name}" (line ${s.line}): the reference stage "${s.search.reference}" has no mAP`);
    reference = { stage: s.search.reference, map: refRow.map };
    const tol = s.search.tolerance;
    const holds = (c: CandidateRecord) => !c.error && c.finetuned?.map !== null && c.finetuned?.map !== undefined && c.finetuned.map >= refRow.map! - tol - 1e-9;
    // bisection over the percents (descending): mAP after fine-tuning falls as the percent grows
    let lo = 0, hi = cands.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = await runCandidate(mid);
      c.holds = holds(c);
      ctx.emit({ type: 'log', level: 'info', message: `${s.name}: ${Math.round(c.percent * 100)}% → mAP after fine-tuning ${c.finetuned?.map ?? '–'} (reference ${refRow.map}, tolerance ${tol}): ${c.holds ? 'holds' : 'does not hold'}` });
      if (c.holds) { found = mid; hi = mid - 1; } else lo = mid + 1;
    }
    if (found < 0) {
      // none holds: the percent no longer trades mAP for size as asked, so keep the candidate that
      // kept the most (on a tie the larger percent, the smaller model)
      const best = bestCandidate(results);
      if (best === undefined) throw new Error(`stage "${s.name}" (line ${s.line}): every candidate failed: ${results.get(0)?.error}`);
      chosen = best;
      ctx.emit({ type: 'log', level: 'warning', message: `${s.name}: no percent held mAP within ${tol} of ${s.search.reference}: using the best after fine-tuning, ${cands[chosen].percent}` });
    } else chosen = found;
    rec.info.search = { reference, tolerance: tol, percents: cands.map((c) => c.percent), held: found >= 0 };
  } else {
    for (let k = 0; k < cands.length; k++) await runCandidate(k);
    const best = bestCandidate(results);
    if (best === undefined) throw new Error(`stage "${s.name}" (line ${s.line}): every candidate failed: ${results.get(0)?.error}`);
    chosen = best;
  }
  const best = results.get(chosen)!;
  if (best.error || !best.models) throw new Error(`stage "${s.name}" (line ${s.line}): the chosen candidate failed: ${best.error}`);
  rec.seconds = work;
  rec.measureSeconds = measure;
  rec.outputs.model = best.models.pruned;
  if (best.models.finetuned) rec.outputs.finetuned = best.models.finetuned;
  rec.info.outputRows = { model: best.pruned, ...(best.finetuned ? { finetuned: best.finetuned } : {}) };
  rec.info.candidates = [...results.values()].sort((a, b) => b.percent - a.percent);
  rec.info.chosen = { percent: best.percent, layerKeep: best.layerKeep };
  rec.info.strategy = s.strategy;
  const pct = `${Math.round(best.percent * 100)}%${best.layerKeep !== null ? `, layer_keep ${best.layerKeep}` : ''}`;
  if (s.sweep) {
    // every candidate's rows in sweep order, so the table shows the whole sweep
    for (const k of [...results.keys()].sort((a, b) => a - b)) {
      const c = results.get(k)!;
      const mark = c === best ? ' (best)' : '';
      if (c.pruned) rec.rows.push({ ...c.pruned, note: `${c.pruned.note ?? ''}${mark}`.trim() });
      if (c.finetuned) rec.rows.push({ ...c.finetuned, note: `${c.finetuned.note ?? ''}${mark}`.trim() });
    }
  } else {
    const tried = s.search ? `; search: ${results.size} candidate(s) pruned and fine-tuned in ${Math.round(work / 6) / 10} min` : '';
    rec.rows.push({ ...best.pruned!, name: `${s.label ?? s.name} (${s.strategy} ${pct})`, note: `${s.note ? s.note + '; ' : ''}${best.pruned!.note ?? ''}${tried}` });
  }
  return rec;
}

// ---- distill ----

async function runDistillStage(ctx: Ctx, s: DistillStage, dir: string, sink: EventSink): Promise<StageRecord> {
  const rec = newRecord(s);
  const student = modelOf(ctx, s.from);
  const teacher = modelOf(ctx, s.teacher);
  if (!teacher.weights) throw new Error(`stage "${s.name}": the teacher must be a darknet model`);
  const { distill } = await import('../engine/trainer');
  const t = Date.now();
  const mapTrail: MapPoint[] = [];
  const base = trainOptions(ctx, s, student, dir, recordingMaps(sink, mapTrail));
  const r = await distill({
    ...base, weights: student.weights!, task: 'distill', teacher: { cfg: teacher.cfg, weights: teacher.weights },
    method: s.method,
    // only what the yaml sets: the trainer's defaults stay in force otherwise
    ...(s.T !== undefined ? { T: s.T } : {}), ...(s.alpha !== undefined ? { alpha: s.alpha } : {}), ...(s.lambda !== undefined ? { lambda: s.lambda } : {}),
    ...(s.gtFirst !== undefined ? { gtFirst: s.gtFirst } : {}),
  });
  const weights = checkTrained(r, s.name);
  rec.seconds = (Date.now() - t) / 1000;
  rec.outputs.model = { cfg: r.outputs.cfg, weights };
  rec.info.training = { iterations: r.iterations, epochs: Math.round(r.epochs * 100) / 100, imagesPerSecond: Math.round(r.imagesPerSecond * 100) / 100, backend: r.backend.name, method: s.method, teacher: s.teacher, ...(mapTrail.length ? { mapTrail } : {}) };
  const tm = Date.now();
  rec.rows.push(await measureRow(ctx, s, rec.outputs.model, rec.seconds, s.label, s.note ?? `${s.method} distillation from ${s.teacher}${s.gtFirst ? ' (labels first on their cells)' : ''}, ${Math.round(r.epochs * 100) / 100} epochs`));
  rec.measureSeconds = (Date.now() - tm) / 1000;
  return rec;
}

// ---- quantize ----

async function runQuantizeStage(ctx: Ctx, s: QuantizeStage, dir: string, sink: EventSink): Promise<StageRecord> {
  const rec = newRecord(s);
  // the input with the best mAP among `from`
  const scored = s.from.map((f) => ({ ref: f, map: rowOf(ctx, f)?.map ?? -1 }));
  scored.sort((a, b) => b.map - a.map);
  const from = scored[0].ref;
  const input = modelOf(ctx, from);
  if (!input.weights) throw new Error(`stage "${s.name}": cannot quantize an ONNX model again`);
  const graph = loadCfg(input.cfg);
  const weights = mustLoad(input.weights, graph);
  const emit = emitterFor('quantize', sink);
  const images = ctx.smoke ? Math.min(s.images, ctx.spec.smoke.calib) : s.images;
  emit({ type: 'start', total: images, info: { model: basename(input.cfg), from, calibration: images, method: s.method } });
  const t = Date.now();
  const { quantizeDarknet } = await import('../onnx/quantize');
  const q = await quantizeDarknet(graph, weights, {
    calib: ctx.calibList, images, method: s.method, threads: ctx.spec.threads, names: ctx.names,
    onProgress: (done, total) => emit({ type: 'progress', done, total, message: 'calibrating' }),
  });
  const stem = basename(input.cfg, extname(input.cfg));
  const onnx = join(dir, `${stem}-int8.onnx`);
  const floatOnnx = join(dir, `${stem}-float.onnx`);
  writeFileAtomic(onnx, q.bytes);
  writeFileAtomic(floatOnnx, q.floatBytes);
  rec.seconds = (Date.now() - t) / 1000;
  emit({ type: 'done', cancelled: false, seconds: rec.seconds, outputs: { onnx }, summary: { int8Bytes: q.bytes.length, floatBytes: q.floatBytes.length } });
  rec.outputs.model = { cfg: input.cfg, onnx };
  const int8Kernels = Object.entries(q.int8Ops).map(([k, v]) => `${k}×${v}`).join(', ');
  const inputRow = rowOf(ctx, from);
  rec.info.quantize = {
    from, candidates: scored, method: q.method, images: q.images, int8Bytes: q.bytes.length, floatOnnxBytes: q.floatBytes.length,
    floatWeightsBytes: inputRow?.sizeBytes ?? null, int8Kernels, keepFloat: q.keepFloat, weightBits: q.weightBits,
  };
  const tm = Date.now();
  const note = s.note ?? `from ${from}; ${q.method} calibration on ${q.images} images; ${(100 * q.bytes.length / q.floatBytes.length).toFixed(1)}% of the float ONNX (${(q.floatBytes.length / 1e3).toFixed(0)} kB); int8 kernels: ${int8Kernels || 'none'}`;
  rec.rows.push(await measureRow(ctx, s, rec.outputs.model, rec.seconds, s.label, note));
  rec.measureSeconds = (Date.now() - tm) / 1000;
  return rec;
}

// ---- evaluate ----

async function runEvaluateStage(ctx: Ctx, s: EvaluateStage): Promise<StageRecord> {
  const rec = newRecord(s);
  const model = modelOf(ctx, s.from);
  rec.outputs.model = model;
  const tm = Date.now();
  const [name, sub] = s.from.split('.');
  // the work that made the model belongs to the stage that made it; show its time here too
  const made = sub ? (ctx.records.get(name)?.info.outputRows as Record<string, StudyRow> | undefined)?.[sub]?.seconds ?? 0 : 0;
  rec.rows.push(await measureRow(ctx, s, model, made, s.label, s.note));
  rec.measureSeconds = (Date.now() - tm) / 1000;
  return rec;
}
