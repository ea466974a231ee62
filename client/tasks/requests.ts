// What the commands ask and remember, as pure functions (no vscode): parsing the answers typed
// into input boxes, ordering the weights and datasets offered, the output folder setting, task
// titles and keys, what to say when a task is done, and the per-model memory of answers.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import type { DoneEvent } from '../../core/pipeline/events';
import type { TaskRequest, WorkerTaskKind } from '../../core/pipeline/tasks';

export type Parsed<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

/** "50%", "50" and "0.5" all mean half; 0 and 100% are refused (nothing or everything to prune). */
export function parsePercent(text: string): Parsed<number> {
  const s = text.trim().replace(',', '.');
  if (!s) return { error: 'Enter a percent, e.g. 50% or 0.5' };
  const isPct = s.endsWith('%');
  const n = Number(isPct ? s.slice(0, -1).trim() : s);
  if (!Number.isFinite(n)) return { error: `"${text}" is not a number: enter a percent, e.g. 50% or 0.5` };
  const v = isPct || n > 1 ? n / 100 : n;
  if (!(v > 0 && v < 1)) return { error: 'The percent must be above 0 and below 100%' };
  return { value: Math.round(v * 1e6) / 1e6 };
}

export function parseNumber(text: string, what: string, opts: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {}): Parsed<number> {
  const s = text.trim();
  const n = Number(s);
  if (!s || !Number.isFinite(n)) return { error: `${what}: enter a number` };
  if (opts.integer && !Number.isInteger(n)) return { error: `${what}: enter a whole number` };
  if (opts.min !== undefined && (opts.exclusiveMin ? n <= opts.min : n < opts.min)) return { error: `${what} must be ${opts.exclusiveMin ? 'above' : 'at least'} ${opts.min}` };
  if (opts.max !== undefined && n > opts.max) return { error: `${what} must be at most ${opts.max}` };
  return { value: n };
}

/** λ of sparsity training: typical values 1e-4 … 1e-2. */
export function parseLambda(text: string): Parsed<number> {
  return parseNumber(text, 'λ', { min: 0, max: 1, exclusiveMin: true });
}

/**
 * The `darkslim.outputFolder` setting → the folder outputs go to, or undefined for "beside the
 * cfg". `${workspaceFolder}`, `${cfgDir}` and `${cfgName}` are replaced; a relative path starts at
 * the workspace folder (else the cfg's folder).
 */
export function resolveOutputFolder(setting: string | undefined, cfgPath: string, workspaceFolder?: string): string | undefined {
  const s = (setting ?? '').trim();
  if (!s) return undefined;
  const cfgDir = dirname(cfgPath);
  const replaced = s
    .replace(/\$\{workspaceFolder\}/g, workspaceFolder ?? cfgDir)
    .replace(/\$\{cfgDir\}/g, cfgDir)
    .replace(/\$\{cfgName\}/g, basename(cfgPath, extname(cfgPath)));
  return isAbsolute(replaced) ? resolve(replaced) : resolve(workspaceFolder ?? cfgDir, replaced);
}

/**
 * Weights files to offer for a cfg, best first: the one remembered for this model, the one with
 * the cfg's name beside it, darknet's training outputs for it (_last, _best, _final, in backup/
 * too), then the other .weights found.
 */
export function weightsCandidates(cfgPath: string, found: string[], remembered?: string): string[] {
  const stem = basename(cfgPath, extname(cfgPath));
  const dir = dirname(cfgPath);
  const preferred = [
    join(dir, `${stem}.weights`),
    ...['last', 'best', 'final'].flatMap((k) => [join(dir, `${stem}_${k}.weights`), join(dir, 'backup', `${stem}_${k}.weights`)]),
  ];
  const all = new Set(found.map((f) => resolve(f)));
  const out: string[] = [];
  const add = (p: string | undefined) => { if (p && !out.includes(resolve(p))) out.push(resolve(p)); };
  if (remembered && (all.has(resolve(remembered)) || found.length === 0)) add(remembered);
  for (const p of preferred) if (all.has(resolve(p))) add(p);
  const rest = [...all].filter((p) => !out.includes(p)).sort((a, b) => {
    // the same folder first, then by name
    const da = dirname(a) === dir ? 0 : 1, db = dirname(b) === dir ? 0 : 1;
    return da - db || a.localeCompare(b);
  });
  for (const p of rest) add(p);
  return out;
}

/** Datasets to offer: remembered for the model, the last used, the setting, then those found. */
export function datasetCandidates(found: string[], opts: { remembered?: string; last?: string; setting?: string } = {}): string[] {
  const out: string[] = [];
  const add = (p: string | undefined) => { if (p && !out.includes(resolve(p))) out.push(resolve(p)); };
  add(opts.remembered);
  add(opts.last);
  add(opts.setting);
  for (const f of [...found].sort((a, b) => a.localeCompare(b))) add(f);
  return out;
}

/** A file's folder as a quick pick describes it: relative to the workspace folder, nothing at its root, absolute outside it. */
export function folderDescription(file: string, workspaceFolder?: string): string {
  const dir = dirname(file);
  return workspaceFolder && resolve(dir) === resolve(workspaceFolder) ? '' : displayPath(dir, workspaceFolder);
}

/** A path for a person: relative to the workspace folder when inside it. */
export function displayPath(p: string, workspaceFolder?: string): string {
  if (workspaceFolder) {
    const r = relative(workspaceFolder, p);
    if (r && !r.startsWith('..') && !isAbsolute(r)) return r;
  }
  return p;
}

const KIND_TITLES: Record<WorkerTaskKind, string> = {
  prune: 'Prune', export: 'Export to ONNX', quantize: 'Quantize to int8', map: 'Evaluate mAP', bench: 'Benchmark',
  detect: 'Detect', train: 'Train', finetune: 'Fine-tune', distill: 'Distill', redundancy: 'Layer redundancy',
};

function pctText(p: number): string {
  return `${Math.round(p * 10000) / 100}%`;
}

/** "Prune yolov4.cfg (slim, 50%)" */
export function taskTitle(req: TaskRequest): string {
  const a = req.args as unknown as Record<string, unknown>;
  const model = typeof a.cfg === 'string' ? basename(a.cfg) : typeof a.config === 'string' ? basename(a.config) : '';
  let title = KIND_TITLES[req.kind];
  if (req.kind === 'train' && typeof a.lambda === 'number' && a.lambda > 0) title = 'Sparsity-train';
  const extra: string[] = [];
  if (req.kind === 'prune') {
    if (typeof a.strategy === 'string') extra.push(a.strategy);
    if (typeof a.percent === 'number') extra.push(pctText(a.percent));
  }
  if (req.kind === 'train' && typeof a.lambda === 'number' && a.lambda > 0) extra.push(`λ ${a.lambda}`);
  if (req.kind === 'distill' && typeof a.teacherCfg === 'string') extra.push(`from ${basename(a.teacherCfg)}`);
  if ((req.kind === 'train' || req.kind === 'finetune' || req.kind === 'distill') && typeof a.epochs === 'number') extra.push(`${a.epochs} epoch${a.epochs === 1 ? '' : 's'}`);
  if (req.kind === 'detect' && typeof a.image === 'string') extra.push(basename(a.image));
  if ((req.kind === 'map' || req.kind === 'quantize') && typeof (a.data ?? a.calib) === 'string') extra.push(basename(String(a.data ?? a.calib)));
  return `${title} ${model}${extra.length ? ` (${extra.join(', ')})` : ''}`.trim();
}

/** The same work twice has the same key (to refuse queueing a duplicate). */
export function taskKey(req: TaskRequest): string {
  const a = req.args as unknown as Record<string, unknown>;
  const sorted = Object.keys(a).sort().map((k) => [k, a[k]]);
  return `${req.kind}:${JSON.stringify(sorted)}`;
}

/** Tasks that write files or train need a trusted workspace; the others only read. */
export function needsTrust(kind: WorkerTaskKind): boolean {
  return kind !== 'redundancy' && kind !== 'map' && kind !== 'bench';
}

const fmtMB = (n: unknown) => (typeof n === 'number' ? `${(n / 1e6).toFixed(2)} MB` : '?');
const fmtM = (n: unknown) => (typeof n === 'number' ? (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} K`) : '?');

/** One sentence saying what the task produced and where the files went. */
export function completionMessage(req: TaskRequest, done: DoneEvent, workspaceFolder?: string): string {
  const o = done.outputs;
  const s = done.summary;
  const p = (f: string | undefined) => (f ? displayPath(f, workspaceFolder) : '?');
  switch (req.kind) {
    case 'prune':
      return `Pruned ${basename(String(o.original ?? req.args.cfg ?? ''))}: params ${fmtM(s.paramsBefore)} → ${fmtM(s.paramsAfter)}, BFLOPs ${Number(s.bflopsBefore).toFixed(3)} → ${Number(s.bflopsAfter).toFixed(3)}. Wrote ${p(o.cfg)}, ${basename(o.weights ?? '')} and ${basename(o.report ?? '')}.`;
    case 'export':
      return `Exported ${p(o.onnx)} (${fmtMB(s.bytes)}, ${s.nodes} nodes).`;
    case 'quantize':
      return `Wrote the int8 model ${p(o.onnx)} (${fmtMB(s.int8Bytes)}, float ${fmtMB(s.floatBytes)}; ${s.images} calibration images, ${s.method}).`;
    case 'map':
      return `mAP@0.5 ${(Number(s.mAP) * 100).toFixed(2)}% on ${s.images} images (precision ${Number(s.precision).toFixed(2)}, recall ${Number(s.recall).toFixed(2)}).`;
    case 'bench':
      return `Latency median ${s.median_ms} ms, p90 ${s.p90_ms} ms (${s.runs} runs, ${s.threads} threads, input ${s.input}).`;
    case 'detect':
      return `${s.detections} detection(s) above ${s.thresh}; wrote ${p(o.image)}.`;
    case 'train':
    case 'finetune':
    case 'distill': {
      const w = o.best ?? o.final ?? o.last;
      const parts = [`${done.cancelled ? 'Stopped' : 'Finished'} ${taskTitle(req)} after ${s.iterations} iterations`];
      if (typeof s.map === 'number') parts.push(`mAP@0.5 ${(s.map * 100).toFixed(2)}%`);
      if (typeof s.sparsity === 'number') parts.push(`${(s.sparsity * 100).toFixed(1)}% of |γ| below 0.01`);
      return `${parts.join(', ')}.${w ? ` Weights: ${p(w)}.` : ''}`;
    }
    case 'redundancy':
      return `Layer redundancy of ${basename(req.args.cfg)} computed.`;
  }
}

// ---- Per-model memory of answers ---------------------------------------------------------------

export interface ModelAnswers {
  weights?: string;
  dataset?: string;
  percent?: number;
  strategy?: 'normal' | 'shortcut' | 'slim';
  layerKeep?: number;
  roundTo?: number;
  lambda?: number;
  epochs?: number;
  calibImages?: number;
  method?: 'kl' | 'minmax' | 'percentile';
  image?: string;
  /** Distillation of this model (the student): its teacher and how. */
  teacherCfg?: string;
  distillMethod?: DistillChoice;
}

/** The distillation methods offered: objectness with the labels first (the default), plain, Hinton. */
export type DistillChoice = 'objectness-gt' | 'objectness' | 'hinton';

/** A DistillChoice as the distill task's arguments. */
export function distillMethodArgs(choice: DistillChoice): { method: 'objectness' | 'hinton'; gtFirst?: boolean } {
  if (choice === 'hinton') return { method: 'hinton' };
  return choice === 'objectness-gt' ? { method: 'objectness', gtFirst: true } : { method: 'objectness' };
}

/** The cfg a pruned model was pruned from, as its prune report (`<cfg name>.report.json` beside it) records it. */
export function prunedFrom(studentCfg: string): string | undefined {
  const report = join(dirname(studentCfg), `${basename(studentCfg, extname(studentCfg))}.report.json`);
  try {
    const cfg = (JSON.parse(readFileSync(report, 'utf8')) as { inputs?: { cfg?: unknown } }).inputs?.cfg;
    return typeof cfg === 'string' && existsSync(resolve(dirname(studentCfg), cfg)) ? resolve(dirname(studentCfg), cfg) : undefined;
  } catch {
    return undefined; // no report (not pruned by Darkslim, or moved): the names decide
  }
}

/**
 * Teacher cfgs to offer for a student, best first: the one remembered for it, the one its prune
 * report names, then the cfgs whose
 * name the student's starts with (a pruned model is named after its original: yolo-p50.cfg from
 * yolo.cfg; the longest such name is the nearest ancestor), the same folder, then the rest. The
 * student itself is never offered.
 */
export function teacherCandidates(studentCfg: string, found: string[], remembered?: string, original?: string): string[] {
  const student = resolve(studentCfg);
  const sStem = basename(student, extname(student));
  const dir = dirname(student);
  const all = [...new Set(found.map((f) => resolve(f)))].filter((f) => f !== student);
  const ancestorLength = (f: string) => {
    const stem = basename(f, extname(f));
    return sStem.length > stem.length && sStem.startsWith(stem) && /^[-_.]/.test(sStem.slice(stem.length)) ? stem.length : 0;
  };
  const rank = (f: string) => (ancestorLength(f) > 0 ? 0 : dirname(f) === dir ? 1 : 2);
  const ordered = all.sort((a, b) => rank(a) - rank(b) || ancestorLength(b) - ancestorLength(a) || a.localeCompare(b));
  const first: string[] = [];
  // the remembered teacher only while it is still in the workspace; the report's original even outside it
  if (remembered !== undefined && (all.includes(resolve(remembered)) || found.length === 0)) first.push(resolve(remembered));
  if (original !== undefined && !first.includes(resolve(original))) first.push(resolve(original));
  return [...first.filter((p) => p !== student), ...ordered.filter((f) => !first.includes(f))];
}

/** The part of vscode.Memento the memory needs (a Map in tests). */
export interface KeyValueStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void> | void;
}

const MODEL_PREFIX = 'darkslim.answers:';
const LAST_DATASET = 'darkslim.lastDataset';

export class AnswerMemory {
  constructor(private readonly store: KeyValueStore) {}

  forModel(cfgPath: string): ModelAnswers {
    return { ...(this.store.get<ModelAnswers>(MODEL_PREFIX + resolve(cfgPath)) ?? {}) };
  }

  async remember(cfgPath: string, answers: ModelAnswers): Promise<void> {
    const merged = { ...this.forModel(cfgPath), ...answers };
    for (const k of Object.keys(merged) as (keyof ModelAnswers)[]) if (merged[k] === undefined) delete merged[k];
    await this.store.update(MODEL_PREFIX + resolve(cfgPath), merged);
    if (answers.dataset) await this.store.update(LAST_DATASET, answers.dataset);
  }

  lastDataset(): string | undefined {
    return this.store.get<string>(LAST_DATASET);
  }
}
