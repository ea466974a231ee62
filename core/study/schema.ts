// The study file (bench/studies/*.yaml): a declared sequence of stages, each naming its input by the
// name of an earlier stage. Parsed with the `yaml` package so that every error names its line.
//
//   study: raccoon                       # name; title: / description: for the report
//   root: ../..                          # relative paths start here (relative to this file; default: its folder)
//   work: .darkslim-studies/raccoon      # models, checkpoints, per-stage logs (gitignored)
//   report: bench/results/studies/raccoon  # report.json, report.md, *.svg
//   backend: auto | wasm | cpu | tensorflow;  threads: 2 (onnxruntime);  latency_runs: 50;  seed: 1
//   data: { names: [a, b] | file.names, train: SPLIT, eval: SPLIT, calib: SPLIT (default: train), note: text }
//       SPLIT = a .data file (its train= / valid= list), an image list, a folder, or { csv: FILE, images: DIR }
//   smoke: { images: 4, iterations: 1, batch: 2, calib: 4, latency_runs: 3, candidates: 2, size: 160 }   (--smoke overrides;
//          size: the model stages' input size, for a faster pipeline check)
//   checks: [ { stage, metric: bflops|size|params|latency|map, vs: STAGE|from, max_ratio | min_ratio | min_diff | max_diff } ]
//   stages:
//     - { name, type: model, cfg, weights, classes?, head?: boxes|fresh }
//     - { name, type: train|finetune|sparsity, from, epochs, batch?, subdivisions?, lr?, burn_in?, augment?,
//         eval_every? (mAP on the eval split every N epochs, in the report), lambda?,
//         schedule?: constant|decay|topk, topk?, switch_at?, layer_keep? }
//     - { name, type: prune, from, strategy?: slim|normal|shortcut, percent? | search: {...} | sweep: [...],
//         layer_keep?, round_to?, finetune?: {train options} }
//         search: { percents: [..], reference: STAGE, tolerance: 0.01, finetune: {epochs, ...} }
//           → the largest percent whose mAP after fine-tuning is within `tolerance` of the reference
//         sweep: [0.5, 0.7, {percent: 0.9, layer_keep: 0.05}], finetune: {...}, select: best-map
//       Outputs: `NAME` (the chosen pruned model) and `NAME.finetuned` (its fine-tuned candidate).
//     - { name, type: distill, from: STUDENT, teacher: STAGE, epochs, method?: objectness|hinton, T?, alpha?, lambda?, gt_first? }
//     - { name, type: quantize, from: STAGE | [STAGE, ...] (the one with the best mAP), images?, method?: kl|minmax|percentile }
//     - { name, type: evaluate, from }
//   Every stage may have `label:` (its row in the report) and `note:`.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, LineCounter, parseDocument, type Document } from 'yaml';

export type StageType = 'model' | 'train' | 'finetune' | 'sparsity' | 'prune' | 'distill' | 'quantize' | 'evaluate';
export const STAGE_TYPES: readonly StageType[] = ['model', 'train', 'finetune', 'sparsity', 'prune', 'distill', 'quantize', 'evaluate'];

export type SplitSpec = { kind: 'path'; path: string } | { kind: 'csv'; csv: string; images: string };

export interface TrainSettings {
  epochs?: number;
  /** Iterations instead of epochs (max_batches). */
  iterations?: number;
  batch?: number;
  subdivisions?: number;
  lr?: number;
  burnIn?: number;
  augment?: boolean;
  /** mAP on the evaluation split every N epochs of the stage (0 or absent: never; costs an evaluation pass each time). */
  evalEvery?: number;
}

export interface StageBase {
  name: string;
  type: StageType;
  label?: string;
  note?: string;
  /** 1-based line of the stage in the yaml. */
  line: number;
  /** The stage's own settings as written (for the resume key). */
  raw: unknown;
}

export interface ModelStage extends StageBase { type: 'model'; cfg: string; weights: string; classes?: number; head: 'boxes' | 'fresh' }
export interface TrainStage extends StageBase, TrainSettings {
  type: 'train' | 'finetune' | 'sparsity';
  from: string;
  lambda?: number;
  schedule?: 'constant' | 'decay' | 'topk';
  topk?: number;
  /** decay/topk: fraction of training after which the late phase starts (0: topk's local sparsity from the start). */
  switchAt?: number;
  /** topk: each layer's top share of |γ| is protected too (as pruning's layer_keep). */
  layerKeep?: number;
}
export interface PruneCandidate { percent: number; layerKeep?: number }
export interface PruneStage extends StageBase {
  type: 'prune';
  from: string;
  strategy: 'slim' | 'normal' | 'shortcut';
  layerKeep?: number;
  roundTo?: number;
  percent?: number;
  search?: { percents: number[]; reference: string; tolerance: number };
  sweep?: PruneCandidate[];
  select: 'best-map';
  finetune?: TrainSettings;
}
export interface DistillStage extends StageBase, TrainSettings {
  type: 'distill';
  from: string;
  teacher: string;
  method: 'objectness' | 'hinton';
  T?: number;
  alpha?: number;
  lambda?: number;
  /** objectness: leave the ground truth's positive cells' objectness to it (DistillOptions.gtFirst). */
  gtFirst?: boolean;
}
export interface QuantizeStage extends StageBase { type: 'quantize'; from: string[]; images: number; method: 'kl' | 'minmax' | 'percentile' }
export interface EvaluateStage extends StageBase { type: 'evaluate'; from: string }

export type StageSpec = ModelStage | TrainStage | PruneStage | DistillStage | QuantizeStage | EvaluateStage;

export interface CheckSpec {
  stage: string;
  metric: 'bflops' | 'size' | 'params' | 'latency' | 'map';
  vs: string;
  maxRatio?: number;
  minRatio?: number;
  minDiff?: number;
  maxDiff?: number;
  line: number;
}

export interface SmokeSettings { images: number; iterations: number; batch: number; calib: number; latencyRuns: number; candidates: number; /** Network input size for the smoke run (the model stages' cfg [net] width/height). */ size?: number }

export interface StudySpec {
  file: string;
  name: string;
  title: string;
  description?: string;
  root: string;
  work: string;
  report: string;
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow';
  threads: number;
  latencyRuns: number;
  seed: number;
  data: { names?: string[] | string; train: SplitSpec; eval: SplitSpec; calib?: SplitSpec; note?: string };
  smoke: SmokeSettings;
  checks: CheckSpec[];
  stages: StageSpec[];
}

/** A problem in the study file: the message starts with `file:line:`. */
export class StudyError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'StudyError';
  }
}

type Path = (string | number)[];

class Reader {
  readonly lc = new LineCounter();
  readonly doc: Document.Parsed;
  constructor(readonly file: string, text: string) {
    this.doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false, uniqueKeys: true });
    const err = this.doc.errors[0];
    if (err) throw new StudyError(file, err.linePos?.[0].line ?? this.lc.linePos(err.pos[0]).line, `invalid YAML: ${err.message.split('\n')[0]}`);
  }
  /** 1-based line of the node at `path` (the nearest existing ancestor when absent). */
  line(path: Path): number {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && node.range) return this.lc.linePos(node.range[0]).line;
      if (n === 0 && isMap(this.doc.contents) && this.doc.contents.range) return this.lc.linePos(this.doc.contents.range[0]).line;
    }
    return 1;
  }
  /** Line of the key itself (for "unknown key" errors). */
  keyLine(path: Path): number {
    const parent = this.doc.getIn(path.slice(0, -1), true);
    const key = path[path.length - 1];
    if (isMap(parent)) {
      for (const p of parent.items) {
        const k = p.key as { value?: unknown; range?: [number, number, number] } | null;
        if (k && k.value === key && k.range) return this.lc.linePos(k.range[0]).line;
      }
    }
    return this.line(path);
  }
  fail(path: Path, message: string): never {
    throw new StudyError(this.file, this.line(path), message);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

const TRAIN_KEYS = ['epochs', 'iterations', 'batch', 'subdivisions', 'lr', 'burn_in', 'augment', 'eval_every'];

export function parseStudy(text: string, file = 'study.yaml'): StudySpec {
  const r: Reader = new Reader(file, text);
  const js = r.doc.toJS() as unknown;
  if (!isObj(js)) throw new StudyError(file, 1, 'a study file is a mapping with `study:`, `data:` and `stages:`');
  const base = dirname(resolve(file));

  const allowed = (obj: Record<string, unknown>, path: Path, keys: string[], what: string) => {
    for (const k of Object.keys(obj)) {
      if (!keys.includes(k)) throw new StudyError(file, r.keyLine([...path, k]), `unknown key "${k}" in ${what} (expected one of: ${keys.join(', ')})`);
    }
  };
  const str = (obj: Record<string, unknown>, path: Path, key: string, required = false): string | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) { if (required) r.fail(path, `missing \`${key}:\``); return undefined; }
    if (typeof v !== 'string' && typeof v !== 'number') r.fail([...path, key], `\`${key}\` must be a string`);
    return String(v);
  };
  const num = (obj: Record<string, unknown>, path: Path, key: string, opts: { min?: number; max?: number; int?: boolean; required?: boolean; exclusiveMin?: boolean } = {}): number | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) { if (opts.required) r.fail(path, `missing \`${key}:\``); return undefined; }
    if (typeof v !== 'number' || !Number.isFinite(v)) r.fail([...path, key], `\`${key}\` must be a number (got ${JSON.stringify(v)})`);
    if (opts.int && !Number.isInteger(v)) r.fail([...path, key], `\`${key}\` must be an integer (got ${v})`);
    if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) r.fail([...path, key], `\`${key}\` must be ${opts.exclusiveMin ? '>' : '≥'} ${opts.min} (got ${v})`);
    if (opts.max !== undefined && v > opts.max) r.fail([...path, key], `\`${key}\` must be ≤ ${opts.max} (got ${v})`);
    return v;
  };
  const oneOf = <T extends string>(obj: Record<string, unknown>, path: Path, key: string, values: readonly T[], dflt?: T): T => {
    const v = obj[key];
    if (v === undefined || v === null) { if (dflt === undefined) r.fail(path, `missing \`${key}:\``); return dflt as T; }
    if (typeof v !== 'string' || !values.includes(v as T)) r.fail([...path, key], `\`${key}\` must be one of ${values.join(', ')} (got ${JSON.stringify(v)})`);
    return v as T;
  };
  const bool = (obj: Record<string, unknown>, path: Path, key: string): boolean | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') r.fail([...path, key], `\`${key}\` must be true or false`);
    return v;
  };

  allowed(js, [], ['study', 'title', 'description', 'root', 'work', 'report', 'backend', 'threads', 'latency_runs', 'seed', 'data', 'smoke', 'checks', 'stages'], 'the study');
  const name = str(js, [], 'study', true)!;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) r.fail(['study'], `\`study\` must be a plain name (letters, digits, . _ -): got "${name}"`);
  const root = resolve(base, str(js, [], 'root') ?? '.');
  const p = (v: string) => (isAbsolute(v) ? v : resolve(root, v));

  // data
  if (!isObj(js.data)) r.fail(['data'], 'missing `data:` (train:, eval: and names:)');
  const data = js.data;
  allowed(data, ['data'], ['names', 'train', 'eval', 'calib', 'note'], '`data`');
  const split = (key: string, required: boolean): SplitSpec | undefined => {
    const v = data[key];
    const path: Path = ['data', key];
    if (v === undefined || v === null) { if (required) r.fail(['data'], `missing \`data.${key}:\``); return undefined; }
    if (typeof v === 'string') return { kind: 'path', path: p(v) };
    if (isObj(v)) {
      allowed(v, path, ['csv', 'images'], `\`data.${key}\``);
      const csv = str(v, path, 'csv', true)!, images = str(v, path, 'images', true)!;
      return { kind: 'csv', csv: p(csv), images: p(images) };
    }
    return r.fail(path, `\`data.${key}\` must be a path (.data file, image list or folder) or { csv:, images: }`);
  };
  let names: string[] | string | undefined;
  if (Array.isArray(data.names)) {
    if (!data.names.every((n) => typeof n === 'string')) r.fail(['data', 'names'], '`data.names` must be a list of class names or a .names file');
    names = data.names as string[];
  } else if (typeof data.names === 'string') names = p(data.names);
  else if (data.names !== undefined) r.fail(['data', 'names'], '`data.names` must be a list of class names or a .names file');

  // smoke
  const smokeIn = js.smoke === undefined ? {} : js.smoke;
  if (!isObj(smokeIn)) r.fail(['smoke'], '`smoke` must be a mapping');
  allowed(smokeIn, ['smoke'], ['images', 'iterations', 'batch', 'calib', 'latency_runs', 'candidates', 'size'], '`smoke`');
  const smoke: SmokeSettings = {
    images: num(smokeIn, ['smoke'], 'images', { min: 1, int: true }) ?? 4,
    iterations: num(smokeIn, ['smoke'], 'iterations', { min: 1, int: true }) ?? 1,
    batch: num(smokeIn, ['smoke'], 'batch', { min: 1, int: true }) ?? 2,
    calib: num(smokeIn, ['smoke'], 'calib', { min: 1, int: true }) ?? 4,
    latencyRuns: num(smokeIn, ['smoke'], 'latency_runs', { min: 1, int: true }) ?? 3,
    candidates: num(smokeIn, ['smoke'], 'candidates', { min: 1, int: true }) ?? 2,
    size: num(smokeIn, ['smoke'], 'size', { min: 32, int: true }),
  };
  if (smoke.size !== undefined && smoke.size % 32) r.fail(['smoke', 'size'], `\`smoke.size\` must be a multiple of 32 (got ${smoke.size})`);

  // stages
  if (!Array.isArray(js.stages) || js.stages.length === 0) r.fail(['stages'], 'missing `stages:` (a list of stages)');
  const names0 = new Map<string, number>();
  const outputs = new Set<string>();
  const stages: StageSpec[] = [];
  const ref = (path: Path, v: unknown, what: string): string => {
    if (typeof v !== 'string' || !v) r.fail(path, `${what} must name an earlier stage`);
    if (!outputs.has(v)) {
      const known = [...outputs].join(', ') || '(none yet)';
      r.fail(path, names0.has(v.split('.')[0]) || names0.has(v)
        ? `${what} "${v}" is not an output of an earlier stage (known: ${known})`
        : `${what} "${v}" names no earlier stage (known: ${known})`);
    }
    return v;
  };
  const trainSettings = (obj: Record<string, unknown>, path: Path): TrainSettings => {
    const t: TrainSettings = {
      epochs: num(obj, path, 'epochs', { min: 0, exclusiveMin: true }),
      iterations: num(obj, path, 'iterations', { min: 1, int: true }),
      batch: num(obj, path, 'batch', { min: 1, int: true }),
      subdivisions: num(obj, path, 'subdivisions', { min: 1, int: true }),
      lr: num(obj, path, 'lr', { min: 0, exclusiveMin: true }),
      burnIn: num(obj, path, 'burn_in', { min: 0, int: true }),
      augment: bool(obj, path, 'augment'),
      evalEvery: num(obj, path, 'eval_every', { min: 0, int: true }),
    };
    if (t.epochs === undefined && t.iterations === undefined) r.fail(path, 'a training stage needs `epochs:` (or `iterations:`)');
    return t;
  };
  const frac = (obj: Record<string, unknown>, path: Path, key: string) => num(obj, path, key, { min: 0, max: 1, exclusiveMin: true });

  js.stages.forEach((s, i) => {
    const path: Path = ['stages', i];
    if (!isObj(s)) r.fail(path, 'each stage is a mapping with `name:` and `type:`');
    const sname = str(s, path, 'name', true)!;
    if (!/^[A-Za-z0-9_-]+$/.test(sname)) r.fail([...path, 'name'], `stage names are letters, digits, _ and - (got "${sname}")`);
    if (names0.has(sname)) r.fail([...path, 'name'], `stage "${sname}" is already defined at line ${names0.get(sname)}`);
    const type = oneOf(s, path, 'type', STAGE_TYPES);
    const line = r.line(path);
    const common = { name: sname, type, label: str(s, path, 'label'), note: str(s, path, 'note'), line, raw: s };
    const common_keys = ['name', 'type', 'label', 'note'];
    let stage: StageSpec;
    switch (type) {
      case 'model': {
        allowed(s, path, [...common_keys, 'cfg', 'weights', 'classes', 'head'], `stage "${sname}" (model)`);
        stage = {
          ...common, type, cfg: p(str(s, path, 'cfg', true)!), weights: p(str(s, path, 'weights', true)!),
          classes: num(s, path, 'classes', { min: 1, int: true }), head: oneOf(s, path, 'head', ['boxes', 'fresh'] as const, 'boxes'),
        };
        break;
      }
      case 'train': case 'finetune': case 'sparsity': {
        allowed(s, path, [...common_keys, 'from', ...TRAIN_KEYS, 'lambda', 'schedule', 'topk', 'switch_at', 'layer_keep'], `stage "${sname}" (${type})`);
        const t: TrainStage = {
          ...common, type, from: ref([...path, 'from'], s.from, '`from`'), ...trainSettings(s, path),
          lambda: num(s, path, 'lambda', { min: 0, exclusiveMin: true, required: type === 'sparsity' }),
          schedule: oneOf(s, path, 'schedule', ['constant', 'decay', 'topk'] as const, 'constant'),
          topk: frac(s, path, 'topk'),
          switchAt: num(s, path, 'switch_at', { min: 0, max: 1 }),
          layerKeep: num(s, path, 'layer_keep', { min: 0, max: 1 }),
        };
        if (type !== 'sparsity' && t.lambda !== undefined) r.fail([...path, 'lambda'], '`lambda` (sparsity) belongs to a `type: sparsity` stage');
        if (type !== 'sparsity' && t.layerKeep !== undefined) r.fail([...path, 'layer_keep'], '`layer_keep` (sparsity) belongs to a `type: sparsity` stage');
        stage = t;
        break;
      }
      case 'prune': {
        allowed(s, path, [...common_keys, 'from', 'strategy', 'percent', 'layer_keep', 'round_to', 'search', 'sweep', 'finetune', 'select'], `stage "${sname}" (prune)`);
        const ps: PruneStage = {
          ...common, type, from: ref([...path, 'from'], s.from, '`from`'),
          strategy: oneOf(s, path, 'strategy', ['slim', 'normal', 'shortcut'] as const, 'slim'),
          layerKeep: frac(s, path, 'layer_keep'), roundTo: num(s, path, 'round_to', { min: 1, int: true }),
          percent: num(s, path, 'percent', { min: 0, max: 1 }),
          select: oneOf(s, path, 'select', ['best-map'] as const, 'best-map'),
        };
        const modes = ['percent', 'search', 'sweep'].filter((k) => s[k] !== undefined);
        if (modes.length !== 1) r.fail(path, `a prune stage needs exactly one of \`percent:\`, \`search:\` or \`sweep:\`${modes.length ? ` (got ${modes.join(' and ')})` : ''}`);
        if (s.finetune !== undefined) {
          if (!isObj(s.finetune)) r.fail([...path, 'finetune'], '`finetune` must be a mapping of training settings (epochs:, lr:, ...)');
          allowed(s.finetune, [...path, 'finetune'], TRAIN_KEYS, '`finetune`');
          ps.finetune = trainSettings(s.finetune, [...path, 'finetune']);
        }
        if (s.search !== undefined) {
          const sp: Path = [...path, 'search'];
          if (!isObj(s.search)) r.fail(sp, '`search` must be a mapping with percents:, reference: and tolerance:');
          allowed(s.search, sp, ['percents', 'reference', 'tolerance'], '`search`');
          const pc = s.search.percents;
          if (!Array.isArray(pc) || !pc.length || !pc.every((x) => typeof x === 'number' && x > 0 && x < 1)) r.fail([...sp, 'percents'], '`search.percents` must be a list of fractions between 0 and 1');
          ps.search = {
            percents: [...new Set(pc as number[])].sort((a, b) => b - a),
            reference: ref([...sp, 'reference'], s.search.reference, '`search.reference`'),
            tolerance: num(s.search, sp, 'tolerance', { min: 0, max: 1 }) ?? 0.01,
          };
          if (!ps.finetune) r.fail(path, '`search` picks by mAP after fine-tuning: add `finetune: { epochs: N }`');
        }
        if (s.sweep !== undefined) {
          const sp: Path = [...path, 'sweep'];
          if (!Array.isArray(s.sweep) || !s.sweep.length) r.fail(sp, '`sweep` must be a list of percents or { percent:, layer_keep: }');
          ps.sweep = s.sweep.map((c, k) => {
            if (typeof c === 'number') {
              if (!(c > 0 && c < 1)) r.fail([...sp, k], `sweep percent must be between 0 and 1 (got ${c})`);
              return { percent: c };
            }
            if (!isObj(c)) return r.fail([...sp, k], 'a sweep entry is a percent or { percent:, layer_keep: }');
            allowed(c, [...sp, k], ['percent', 'layer_keep'], 'a sweep entry');
            return { percent: num(c, [...sp, k], 'percent', { min: 0, max: 1, exclusiveMin: true, required: true })!, layerKeep: frac(c, [...sp, k], 'layer_keep') };
          });
        }
        stage = ps;
        break;
      }
      case 'distill': {
        allowed(s, path, [...common_keys, 'from', 'teacher', ...TRAIN_KEYS, 'method', 'T', 'alpha', 'lambda', 'gt_first'], `stage "${sname}" (distill)`);
        stage = {
          ...common, type, from: ref([...path, 'from'], s.from, '`from`'), teacher: ref([...path, 'teacher'], s.teacher, '`teacher`'),
          ...trainSettings(s, path), method: oneOf(s, path, 'method', ['objectness', 'hinton'] as const, 'objectness'),
          T: num(s, path, 'T', { min: 0, exclusiveMin: true }), alpha: num(s, path, 'alpha', { min: 0, max: 1 }), lambda: num(s, path, 'lambda', { min: 0 }),
          gtFirst: bool(s, path, 'gt_first'),
        };
        break;
      }
      case 'quantize': {
        allowed(s, path, [...common_keys, 'from', 'images', 'method'], `stage "${sname}" (quantize)`);
        const from = Array.isArray(s.from) ? s.from.map((f, k) => ref([...path, 'from', k], f, '`from`')) : [ref([...path, 'from'], s.from, '`from`')];
        if (!from.length) r.fail([...path, 'from'], '`from` must name at least one stage');
        stage = { ...common, type, from, images: num(s, path, 'images', { min: 1, int: true }) ?? 100, method: oneOf(s, path, 'method', ['kl', 'minmax', 'percentile'] as const, 'kl') };
        break;
      }
      case 'evaluate': {
        allowed(s, path, [...common_keys, 'from'], `stage "${sname}" (evaluate)`);
        stage = { ...common, type, from: ref([...path, 'from'], s.from, '`from`') };
        break;
      }
    }
    names0.set(sname, line);
    outputs.add(sname);
    if (stage.type === 'prune' && (stage.search || stage.sweep || stage.finetune)) outputs.add(`${sname}.finetuned`);
    stages.push(stage);
  });

  // checks
  const checks: CheckSpec[] = [];
  if (js.checks !== undefined) {
    if (!Array.isArray(js.checks)) r.fail(['checks'], '`checks` must be a list');
    js.checks.forEach((c, i) => {
      const path: Path = ['checks', i];
      if (!isObj(c)) r.fail(path, 'a check is a mapping: { stage:, metric:, vs:, max_ratio: }');
      allowed(c, path, ['stage', 'metric', 'vs', 'max_ratio', 'min_ratio', 'min_diff', 'max_diff'], 'a check');
      const stage = ref([...path, 'stage'], c.stage, '`stage`');
      const vs = c.vs === 'from' ? 'from' : ref([...path, 'vs'], c.vs, '`vs`');
      const ck: CheckSpec = {
        stage, vs, metric: oneOf(c, path, 'metric', ['bflops', 'size', 'params', 'latency', 'map'] as const), line: r.line(path),
        maxRatio: num(c, path, 'max_ratio'), minRatio: num(c, path, 'min_ratio'), minDiff: num(c, path, 'min_diff'), maxDiff: num(c, path, 'max_diff'),
      };
      if ([ck.maxRatio, ck.minRatio, ck.minDiff, ck.maxDiff].every((x) => x === undefined)) r.fail(path, 'a check needs max_ratio, min_ratio, min_diff or max_diff');
      checks.push(ck);
    });
  }

  return {
    file: resolve(file), name, title: str(js, [], 'title') ?? name, description: str(js, [], 'description'),
    root, work: p(str(js, [], 'work') ?? `.darkslim-studies/${name}`), report: p(str(js, [], 'report') ?? `study-${name}`),
    backend: oneOf(js, [], 'backend', ['auto', 'wasm', 'cpu', 'tensorflow'] as const, 'auto'),
    threads: num(js, [], 'threads', { min: 1, int: true }) ?? 2,
    latencyRuns: num(js, [], 'latency_runs', { min: 1, int: true }) ?? 50,
    seed: num(js, [], 'seed', { int: true }) ?? 1,
    data: { names, train: split('train', true)!, eval: split('eval', true)!, calib: split('calib', false), note: str(data, ['data'], 'note') },
    smoke, checks, stages,
  };
}

export function loadStudy(file: string): StudySpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read study ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseStudy(text, file);
}

/** Inputs the study reads from disk that do not exist (corpus paths), each with the yaml line naming it. */
export function missingInputs(spec: StudySpec): string[] {
  const out: string[] = [];
  const check = (path: string, what: string) => { if (!existsSync(path)) out.push(`${what}: ${path}`); };
  const split = (s: SplitSpec | undefined, what: string) => {
    if (!s) return;
    if (s.kind === 'path') check(s.path, what);
    else { check(s.csv, `${what} csv`); check(s.images, `${what} images`); }
  };
  split(spec.data.train, 'data.train');
  split(spec.data.eval, 'data.eval');
  split(spec.data.calib, 'data.calib');
  if (typeof spec.data.names === 'string') check(spec.data.names, 'data.names');
  for (const s of spec.stages) if (s.type === 'model') { check(s.cfg, `stage "${s.name}" (line ${s.line}) cfg`); check(s.weights, `stage "${s.name}" (line ${s.line}) weights`); }
  return out;
}

