// Pruning config files (*.prune.yaml): parsing with positions, validation, hover and completion as
// pure functions for the language server, and resolution into PruneOptions for the CLI.
//
// Language-server API (positions and ranges are 0-based line/character, as in LSP):
//   validatePruneConfig(text, ctx)            → ConfigDiagnostic[]
//   pruneConfigHover(text, position, ctx)     → { contents (markdown), range } | undefined
//   pruneConfigCompletions(text, position, ctx) → ConfigCompletionItem[]
// `ctx` gives the config's folder and, optionally, file access: `fileExists`, `listFiles` and
// `loadModel` (use createModelLoader() for a cached loader that re-reads files only when their
// mtime or size changes). Without `loadModel` the model-dependent checks are skipped.
// The JSON schema in schemas/prune.schema.json describes the same keys; descriptions come from it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument, isMap, isScalar, isSeq, type Node as YamlNode, type Pair } from 'yaml';
import schemaJson from '../../schemas/prune.schema.json';
import { didYouMean } from '../darknet/schema';
import { analyzeCfg } from '../darknet/graph';
import { readWeights, type WeightsCheck } from '../darknet/weights';
import type { ModelGraph, ModelWeights, Position, Range, Severity } from '../darknet/types';
import { buildChannelGroups, isDepthwise, type ChannelGroups } from './groups';
import { findResidualBlocks } from './layers';
import { percentLimit, STRATEGIES, type PruneStrategy } from './policy';
import type { PruneOptions, PruneOutputPaths } from './prune';

// ---------------------------------------------------------------------------------------------
// Keys

type KeyKind = 'path' | 'enum' | 'number' | 'int' | 'bool' | 'layers' | 'thresholds' | 'outputs';

interface KeySpec {
  kind: KeyKind;
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  values?: readonly string[];
  required?: boolean;
}

export const CONFIG_KEYS: Readonly<Record<string, KeySpec>> = {
  model: { kind: 'path', required: true },
  weights: { kind: 'path', required: true },
  strategy: { kind: 'enum', values: STRATEGIES },
  percent: { kind: 'number', min: 0, max: 1 },
  layer_keep: { kind: 'number', min: 0, exclusiveMin: true, max: 1 },
  per_layer: { kind: 'bool' },
  thresholds: { kind: 'thresholds' },
  shortcuts: { kind: 'int', min: 0 },
  round_to: { kind: 'int', min: 1 },
  exclude: { kind: 'layers' },
  compensate: { kind: 'bool' },
  outputs: { kind: 'outputs' },
};
export const OUTPUT_KEYS: readonly string[] = ['dir', 'cfg', 'weights', 'report'];

interface SchemaProp { description?: string; default?: unknown; enum?: string[]; enumDescriptions?: string[]; examples?: unknown[]; properties?: Record<string, SchemaProp> }
const SCHEMA = schemaJson as unknown as { properties: Record<string, SchemaProp> };

export function keyDescription(key: string, parent?: string): string {
  if (parent === 'outputs') return outputsProp(key);
  return SCHEMA.properties[key]?.description ?? '';
}

function outputsProp(key: string): string {
  const one = (SCHEMA.properties.outputs as unknown as { oneOf: SchemaProp[] }).oneOf;
  return one.find((o) => o.properties)?.properties?.[key]?.description ?? '';
}

export function strategyDescription(s: string): string {
  const p = SCHEMA.properties.strategy;
  const i = p.enum?.indexOf(s) ?? -1;
  return i >= 0 ? p.enumDescriptions?.[i] ?? '' : '';
}

// ---------------------------------------------------------------------------------------------
// Parsing with positions

export type ConfigDiagnosticCode =
  | 'yaml-syntax' | 'not-a-mapping' | 'unknown-key' | 'missing-key' | 'bad-type' | 'value-range' | 'bad-value'
  | 'file-not-found' | 'model-error' | 'weights-mismatch' | 'unknown-layer' | 'not-prunable' | 'percent-limit'
  | 'no-blocks' | 'overwrites-input' | 'nothing-to-do';

export interface ConfigDiagnostic {
  severity: Severity;
  message: string;
  range: Range;
  code: ConfigDiagnosticCode;
  data?: Record<string, unknown>;
}

export interface PruneConfigValues {
  model?: string;
  weights?: string;
  strategy?: PruneStrategy;
  percent?: number;
  layer_keep?: number;
  per_layer?: boolean;
  thresholds?: Record<number, number>;
  shortcuts?: number;
  round_to?: number;
  exclude?: number[];
  compensate?: boolean;
  outputs?: { dir?: string; cfg?: string; weights?: string; report?: string };
}

export interface ConfigEntry {
  /** ['percent'] or ['outputs', 'dir'] */
  path: string[];
  keyRange: Range;
  /** Range of the value node (undefined for `key:` with no value). */
  valueRange?: Range;
}

export interface LayerRef {
  layer: number;
  range: Range;
  key: 'exclude' | 'thresholds';
}

export interface ParsedPruneConfig {
  values: PruneConfigValues;
  entries: ConfigEntry[];
  layerRefs: LayerRef[];
  diagnostics: ConfigDiagnostic[];
  /** Range used for file-level diagnostics (the first line). */
  top: Range;
}

function lineStarts(text: string): number[] {
  const s = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) s.push(i + 1);
  return s;
}

function posAt(starts: number[], offset: number): Position {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (starts[mid] <= offset) lo = mid; else hi = mid - 1; }
  return { line: lo, character: offset - starts[lo] };
}

function contains(r: Range, p: Position): boolean {
  const after = p.line > r.start.line || (p.line === r.start.line && p.character >= r.start.character);
  const before = p.line < r.end.line || (p.line === r.end.line && p.character <= r.end.character);
  return after && before;
}

export function parsePruneConfig(text: string): ParsedPruneConfig {
  const starts = lineStarts(text);
  const rng = (a: number, b: number): Range => ({ start: posAt(starts, a), end: posAt(starts, Math.max(a, b)) });
  const nodeRange = (n: YamlNode | null | undefined): Range | undefined => (n?.range ? rng(n.range[0], n.range[1]) : undefined);
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  const top: Range = { start: { line: 0, character: 0 }, end: { line: 0, character: firstLine.length } };
  const diagnostics: ConfigDiagnostic[] = [];
  const values: PruneConfigValues = {};
  const entries: ConfigEntry[] = [];
  const layerRefs: LayerRef[] = [];
  const diag = (severity: Severity, code: ConfigDiagnosticCode, message: string, range: Range, data?: Record<string, unknown>) =>
    diagnostics.push({ severity, code, message, range, data });

  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  for (const e of [...doc.errors, ...doc.warnings]) {
    const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    diag(doc.errors.includes(e) ? 'error' : 'warning', 'yaml-syntax', msg, rng(e.pos[0], e.pos[1]));
  }
  const root = doc.contents;
  if (root && !isMap(root)) {
    diag('error', 'not-a-mapping', 'A pruning config is a mapping of keys (model: …, weights: …, percent: …).', nodeRange(root as YamlNode) ?? top);
    return { values, entries, layerRefs, diagnostics, top };
  }
  const pairs = (root && isMap(root) ? root.items : []) as Pair<YamlNode, YamlNode | null>[];

  const typeName = (n: YamlNode | null) => {
    if (n === null || n === undefined) return 'nothing';
    if (isMap(n)) return 'a mapping';
    if (isSeq(n)) return 'a list';
    if (isScalar(n)) return n.value === null ? 'nothing' : typeof n.value === 'string' ? `"${n.value}"` : String(n.value);
    return 'an unknown value';
  };
  const num = (n: YamlNode | null): number | undefined => (n && isScalar(n) && typeof n.value === 'number' ? n.value : undefined);

  const checkRange = (key: string, spec: KeySpec, v: number, r: Range): boolean => {
    const lo = spec.min;
    const hi = spec.max;
    const below = lo !== undefined && (spec.exclusiveMin ? v <= lo : v < lo);
    const above = hi !== undefined && v > hi;
    if (below || above) {
      const range = spec.exclusiveMin ? `greater than ${lo}${hi !== undefined ? ` and at most ${hi}` : ''}` : hi !== undefined ? `between ${lo} and ${hi}` : `at least ${lo}`;
      const hint = key === 'percent' && v > 1 && v <= 100 ? ` (a fraction: write ${v / 100} for ${v}%)` : '';
      diag('error', 'value-range', `${key} must be ${range}; got ${v}${hint}.`, r);
      return false;
    }
    return true;
  };

  const seen = new Set<string>();
  for (const pair of pairs) {
    const keyNode = pair.key as YamlNode | null;
    const key = keyNode && isScalar(keyNode) ? String(keyNode.value) : '';
    const kr = nodeRange(keyNode) ?? top;
    const vNode = pair.value as YamlNode | null;
    const vr = nodeRange(vNode);
    const at = vr ?? kr;
    entries.push({ path: [key], keyRange: kr, valueRange: vr });
    const spec = CONFIG_KEYS[key];
    if (!spec) {
      const guess = didYouMean(key, Object.keys(CONFIG_KEYS));
      diag('error', 'unknown-key', `Unknown key "${key}"${guess ? `: did you mean "${guess}"?` : `. Keys: ${Object.keys(CONFIG_KEYS).join(', ')}.`}`, kr, guess ? { replacement: guess } : undefined);
      continue;
    }
    seen.add(key);
    const bad = (expect: string) => diag('error', 'bad-type', `${key} expects ${expect}; got ${typeName(vNode)}.`, at);
    switch (spec.kind) {
      case 'path': {
        if (vNode && isScalar(vNode) && typeof vNode.value === 'string' && vNode.value.trim() !== '') {
          (values as Record<string, unknown>)[key] = vNode.value;
        } else bad('a file path');
        break;
      }
      case 'enum': {
        const s = vNode && isScalar(vNode) ? String(vNode.value ?? '') : undefined;
        if (s !== undefined && spec.values!.includes(s)) values.strategy = s as PruneStrategy;
        else {
          const guess = s ? didYouMean(s, spec.values!) : undefined;
          diag('error', 'bad-value', `${key} must be one of ${spec.values!.join(', ')}; got ${typeName(vNode)}${guess ? `: did you mean "${guess}"?` : '.'}`, at, guess ? { replacement: guess } : undefined);
        }
        break;
      }
      case 'number':
      case 'int': {
        const v = num(vNode);
        if (v === undefined) { bad(spec.kind === 'int' ? 'a whole number' : 'a number'); break; }
        if (spec.kind === 'int' && !Number.isInteger(v)) { bad('a whole number'); break; }
        if (checkRange(key, spec, v, at)) (values as Record<string, unknown>)[key] = v;
        break;
      }
      case 'bool': {
        if (vNode && isScalar(vNode) && typeof vNode.value === 'boolean') (values as Record<string, unknown>)[key] = vNode.value;
        else bad('true or false');
        break;
      }
      case 'layers': {
        const items: YamlNode[] = vNode && isSeq(vNode) ? (vNode.items as YamlNode[]) : vNode && isScalar(vNode) && typeof vNode.value === 'number' ? [vNode] : [];
        if (!vNode || !(isSeq(vNode) || (isScalar(vNode) && typeof vNode.value === 'number'))) { bad('a list of layer indices, e.g. [12, 36]'); break; }
        const list: number[] = [];
        for (const it of items) {
          const v = num(it);
          const r = nodeRange(it) ?? at;
          if (v === undefined || !Number.isInteger(v) || v < 0) { diag('error', 'bad-type', `exclude items are layer indices (whole numbers ≥ 0); got ${typeName(it)}.`, r); continue; }
          if (list.includes(v)) diag('warning', 'bad-value', `layer ${v} is listed twice.`, r);
          list.push(v);
          layerRefs.push({ layer: v, range: r, key: 'exclude' });
        }
        values.exclude = list;
        break;
      }
      case 'thresholds': {
        if (!vNode || !isMap(vNode)) { bad('a mapping of layer index → |γ| threshold, e.g. {12: 0.05}'); break; }
        const t: Record<number, number> = {};
        for (const p of vNode.items as Pair<YamlNode, YamlNode | null>[]) {
          const k = p.key as YamlNode | null;
          const kv = k && isScalar(k) ? Number(k.value) : NaN;
          const krr = nodeRange(k) ?? at;
          const v = num(p.value as YamlNode | null);
          entries.push({ path: ['thresholds', String(k && isScalar(k) ? k.value : '')], keyRange: krr, valueRange: nodeRange(p.value as YamlNode | null) });
          if (!Number.isInteger(kv) || kv < 0) { diag('error', 'bad-type', `thresholds keys are layer indices; got ${typeName(k)}.`, krr); continue; }
          if (v === undefined || v < 0) { diag('error', 'bad-type', `the threshold of layer ${kv} must be a number ≥ 0; got ${typeName(p.value as YamlNode | null)}.`, nodeRange(p.value as YamlNode | null) ?? krr); continue; }
          t[kv] = v;
          layerRefs.push({ layer: kv, range: krr, key: 'thresholds' });
        }
        values.thresholds = t;
        break;
      }
      case 'outputs': {
        if (vNode && isScalar(vNode) && typeof vNode.value === 'string') { values.outputs = { dir: vNode.value }; break; }
        if (!vNode || !isMap(vNode)) { bad('a folder, or a mapping with dir, cfg, weights, report'); break; }
        const o: Record<string, string> = {};
        for (const p of vNode.items as Pair<YamlNode, YamlNode | null>[]) {
          const k = p.key as YamlNode | null;
          const ks = k && isScalar(k) ? String(k.value) : '';
          const krr = nodeRange(k) ?? at;
          const pv = p.value as YamlNode | null;
          entries.push({ path: ['outputs', ks], keyRange: krr, valueRange: nodeRange(pv) });
          if (!OUTPUT_KEYS.includes(ks)) {
            const guess = didYouMean(ks, OUTPUT_KEYS);
            diag('error', 'unknown-key', `Unknown key "${ks}" in outputs${guess ? `: did you mean "${guess}"?` : `; use ${OUTPUT_KEYS.join(', ')}.`}`, krr, guess ? { replacement: guess } : undefined);
            continue;
          }
          if (pv && isScalar(pv) && typeof pv.value === 'string' && pv.value !== '') o[ks] = pv.value;
          else diag('error', 'bad-type', `outputs.${ks} expects a path; got ${typeName(pv)}.`, nodeRange(pv) ?? krr);
        }
        values.outputs = o;
        break;
      }
    }
  }
  if (doc.errors.length === 0) {
    for (const [k, spec] of Object.entries(CONFIG_KEYS)) {
      if (spec.required && !seen.has(k)) diag('error', 'missing-key', `Missing "${k}:" (${k === 'model' ? 'the .cfg to prune' : 'the .weights that go with it'}).`, top);
    }
    if (!seen.has('percent') && !seen.has('shortcuts') && pairs.length > 0) {
      diag('warning', 'nothing-to-do', 'Neither percent (channel pruning) nor shortcuts (layer pruning) is set: nothing would be pruned.', top);
    }
  }
  return { values, entries, layerRefs, diagnostics, top };
}

// ---------------------------------------------------------------------------------------------
// Context: files and models

export interface LoadedModel {
  graph: ModelGraph;
  groups?: ChannelGroups;
  weights?: ModelWeights;
  weightsCheck?: WeightsCheck;
  /** Why the model or its weights could not be read. */
  error?: string;
}

export interface PruneConfigContext {
  /** Folder of the config file: relative paths resolve against it. */
  baseDir: string;
  fileExists?(path: string): boolean;
  /** Names of the files in a folder (for path completion). */
  listFiles?(dir: string): string[];
  /** Loads a cfg (and its weights when given). Omit to skip model-dependent checks. */
  loadModel?(cfgPath: string, weightsPath: string | undefined): LoadedModel | undefined;
}

function defaultExists(p: string): boolean {
  try { return statSync(p).isFile(); } catch { return false; }
}

export function resolveConfigPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/**
 * A loader that keeps the last models it read and re-reads a file only when its size or mtime
 * changes (typing in a .prune.yaml must not re-read a 250 MB weights file on every keystroke).
 */
export function createModelLoader(maxEntries = 4): (cfgPath: string, weightsPath: string | undefined) => LoadedModel | undefined {
  const cache = new Map<string, LoadedModel>();
  const stamp = (p: string) => { try { const s = statSync(p); return `${s.size}:${s.mtimeMs}`; } catch { return 'missing'; } };
  return (cfgPath, weightsPath) => {
    const key = `${cfgPath}|${stamp(cfgPath)}|${weightsPath ?? ''}|${weightsPath ? stamp(weightsPath) : ''}`;
    const hit = cache.get(key);
    if (hit) return hit;
    let model: LoadedModel;
    try {
      const graph = analyzeCfg(readFileSync(cfgPath, 'utf8'));
      model = { graph };
      if (!graph.diagnostics.some((d) => d.severity === 'error')) {
        try { model.groups = buildChannelGroups(graph); } catch (e) { model.error = (e as Error).message; }
        if (weightsPath) {
          try {
            const r = readWeights(readFileSync(weightsPath), graph);
            model.weights = r.weights;
            model.weightsCheck = r.check;
          } catch (e) { model.error = (e as Error).message; }
        }
      }
    } catch (e) {
      return undefined;
    }
    cache.set(key, model);
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
    return model;
  };
}

function loadFor(parsed: ParsedPruneConfig, ctx: PruneConfigContext): { model?: LoadedModel; cfg?: string; weights?: string } {
  const exists = ctx.fileExists ?? defaultExists;
  const cfg = parsed.values.model ? resolveConfigPath(ctx.baseDir, parsed.values.model) : undefined;
  const weights = parsed.values.weights ? resolveConfigPath(ctx.baseDir, parsed.values.weights) : undefined;
  if (!cfg || !exists(cfg) || !ctx.loadModel) return { cfg, weights };
  return { model: ctx.loadModel(cfg, weights && exists(weights) ? weights : undefined), cfg, weights };
}

function layerSummary(model: LoadedModel, i: number): string {
  const l = model.graph.layers[i];
  if (!l) return `layer ${i} does not exist (the model has layers 0–${model.graph.layers.length - 1})`;
  const shape = `${l.output[0]}×${l.output[1]}×${l.output[2]}`;
  if (l.type !== 'convolutional') return `layer ${i}: [${l.section.name}] → ${shape}`;
  const c = l.conv!;
  let s = `layer ${i}: conv ${c.size}×${c.size}/${c.strideX}${c.groups > 1 ? ` groups=${c.groups}${isDepthwise(l) ? ' (depthwise)' : ''}` : ''}, ${c.filters} filters, ${c.activation} → ${shape}`;
  const g = model.groups;
  if (g) {
    const why = g.notPrunable.get(i);
    if (why) s += `\n\nnot prunable: ${why}`;
    else {
      const ch = g.layerChannels[i];
      const coupled = new Set<number>();
      let shortcut = false;
      for (let k = 0; k < ch.length; k++) {
        const grp = g.groups[ch[k]];
        if (grp.coupling.shortcut) shortcut = true;
        for (const m of grp.members) if (m.layer !== i) coupled.add(m.layer);
      }
      s += `\n\nprunable${coupled.size ? `; channels coupled with layer${coupled.size > 1 ? 's' : ''} ${[...coupled].sort((a, b) => a - b).join(', ')}${shortcut ? ' (through shortcuts)' : ''}` : ''}`;
    }
  }
  const gamma = model.weights?.layers.get(i)?.scales;
  if (gamma && gamma.length) {
    let mx = 0, sum = 0, small = 0;
    for (let k = 0; k < gamma.length; k++) { const a = Math.abs(gamma[k]); mx = Math.max(mx, a); sum += a; if (a < 0.01) small++; }
    s += `\n\n|γ|: mean ${(sum / gamma.length).toPrecision(3)}, max ${mx.toPrecision(3)}, ${small} of ${gamma.length} below 0.01`;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Validation

export function validatePruneConfig(text: string, ctx: PruneConfigContext): ConfigDiagnostic[] {
  const parsed = parsePruneConfig(text);
  const out = [...parsed.diagnostics];
  const exists = ctx.fileExists ?? defaultExists;
  const entry = (k: string) => parsed.entries.find((e) => e.path.length === 1 && e.path[0] === k);
  const at = (k: string) => { const e = entry(k); return e?.valueRange ?? e?.keyRange ?? parsed.top; };
  const v = parsed.values;
  for (const k of ['model', 'weights'] as const) {
    const p = v[k];
    if (p && !exists(resolveConfigPath(ctx.baseDir, p))) {
      out.push({ severity: 'error', code: 'file-not-found', message: `${k}: file not found: ${resolveConfigPath(ctx.baseDir, p)}`, range: at(k) });
    }
  }
  // outputs must not overwrite inputs
  const outs = resolveOutputs(v, ctx.baseDir);
  const inputs = [v.model, v.weights].filter((p): p is string => !!p).map((p) => resolveConfigPath(ctx.baseDir, p));
  if (outs) {
    for (const [k, p] of Object.entries(outs)) {
      if (inputs.includes(p)) {
        const e = parsed.entries.find((x) => x.path[0] === 'outputs' && x.path[1] === k) ?? parsed.entries.find((x) => x.path.length === 1 && x.path[0] === 'outputs');
        out.push({ severity: 'error', code: 'overwrites-input', message: `outputs.${k} (${p}) would overwrite an input.`, range: e?.valueRange ?? e?.keyRange ?? parsed.top });
      }
    }
  }
  const { model } = loadFor(parsed, ctx);
  if (!model) return out;
  const graphErrors = model.graph.diagnostics.filter((d) => d.severity === 'error');
  if (graphErrors.length) {
    const d = graphErrors[0];
    out.push({ severity: 'error', code: 'model-error', message: `the cfg has ${graphErrors.length} error${graphErrors.length > 1 ? 's' : ''}; first, line ${d.range.start.line + 1}: ${d.message}`, range: at('model') });
    return out;
  }
  if (model.weightsCheck && (!model.weightsCheck.ok || model.weightsCheck.partial)) {
    out.push({ severity: 'error', code: 'weights-mismatch',
      message: model.weightsCheck.partial ? `${model.weightsCheck.message} Partial weights cannot be pruned.` : model.weightsCheck.message, range: at('weights') });
  }
  if (model.error) out.push({ severity: 'error', code: 'model-error', message: model.error, range: at('model') });
  const n = model.graph.layers.length;
  for (const ref of parsed.layerRefs) {
    const l = model.graph.layers[ref.layer];
    if (!l) {
      out.push({ severity: 'error', code: 'unknown-layer', message: `layer ${ref.layer} does not exist: the model has layers 0–${n - 1}.`, range: ref.range });
    } else if (l.type !== 'convolutional') {
      out.push({ severity: 'warning', code: 'not-prunable', message: `layer ${ref.layer} is a [${l.section.name}] layer; ${ref.key} applies to conv layers.`, range: ref.range });
    } else if (model.groups?.notPrunable.has(ref.layer)) {
      out.push({ severity: 'warning', code: 'not-prunable', message: `layer ${ref.layer} is not prunable: ${model.groups.notPrunable.get(ref.layer)}.`, range: ref.range });
    }
  }
  if (v.shortcuts && v.shortcuts > 0) {
    const blocks = findResidualBlocks(model.graph).blocks.length;
    if (blocks === 0) out.push({ severity: 'error', code: 'no-blocks', message: 'this model has no residual blocks (a [shortcut] and the convs it wraps): layer pruning (shortcuts) does not apply to it.', range: at('shortcuts') });
    else if (v.shortcuts > blocks) out.push({ severity: 'error', code: 'no-blocks', message: `shortcuts=${v.shortcuts}, but the model has ${blocks} removable residual blocks.`, range: at('shortcuts'), data: { available: blocks } });
  }
  const okWeights = model.weights && model.weightsCheck?.ok && !model.weightsCheck.partial && model.groups;
  if (okWeights && v.percent !== undefined && v.percent > 0 && v.layer_keep === undefined && !v.per_layer) {
    const valid = (v.exclude ?? []).filter((i) => i < n);
    const lim = percentLimit(model.groups!, model.weights!, v.strategy ?? 'slim', valid);
    if (v.percent > lim.percentLimit + 1e-12) {
      out.push({ severity: 'error', code: 'percent-limit', range: at('percent'),
        message: `percent ${v.percent} is above this model's percent_limit ${lim.percentLimit.toFixed(4)} (${v.strategy ?? 'slim'} strategy): conv layer ${lim.layer} would lose every channel (the largest |γ| deciding it is ${lim.highestThreshold.toPrecision(4)}). Lower percent or set layer_keep.`,
        data: { percentLimit: lim.percentLimit, layer: lim.layer } });
    }
  }
  return out;
}

/** Output paths the config asks for, resolved (only the keys it sets; dir fills in the defaults elsewhere). */
function resolveOutputs(v: PruneConfigValues, baseDir: string): Partial<PruneOutputPaths> | undefined {
  if (!v.outputs) return undefined;
  const r: Partial<PruneOutputPaths> = {};
  if (v.outputs.cfg) r.cfg = resolveConfigPath(baseDir, v.outputs.cfg);
  if (v.outputs.weights) r.weights = resolveConfigPath(baseDir, v.outputs.weights);
  if (v.outputs.report) r.report = resolveConfigPath(baseDir, v.outputs.report);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Hover

export interface ConfigHover {
  /** Markdown. */
  contents: string;
  range: Range;
}

export function pruneConfigHover(text: string, position: Position, ctx?: PruneConfigContext): ConfigHover | undefined {
  const parsed = parsePruneConfig(text);
  const ref = parsed.layerRefs.find((r) => contains(r.range, position));
  if (ref) {
    const model = ctx ? loadFor(parsed, ctx).model : undefined;
    return { contents: model ? layerSummary(model, ref.layer) : `layer ${ref.layer}`, range: ref.range };
  }
  for (const e of parsed.entries) {
    const onKey = contains(e.keyRange, position);
    const onValue = e.valueRange && contains(e.valueRange, position);
    if (!onKey && !onValue) continue;
    const [k, sub] = e.path;
    if (k === 'thresholds' && sub !== undefined) continue;
    const key = sub ?? k;
    const parent = sub !== undefined ? k : undefined;
    if (onValue && k === 'strategy' && !sub) {
      const s = parsed.values.strategy;
      if (s) return { contents: `**strategy: ${s}**\n\n${strategyDescription(s)}`, range: e.valueRange! };
    }
    if (onValue && (k === 'model' || k === 'weights') && !sub && ctx) {
      const p = parsed.values[k];
      if (p) {
        const abs = resolveConfigPath(ctx.baseDir, p);
        const { model } = loadFor(parsed, ctx);
        let s = `\`${abs}\``;
        if (model && k === 'model') s += `\n\n${model.graph.layers.length} layers, ${model.graph.totals.params} params, ${model.graph.totals.bflops.toFixed(3)} BFLOPs; ${model.groups?.prunableLayers.length ?? 0} prunable conv layers`;
        if (model?.weightsCheck && k === 'weights') s += `\n\n${model.weightsCheck.message}`;
        return { contents: s, range: e.valueRange! };
      }
    }
    const spec = parent ? undefined : CONFIG_KEYS[key];
    if (!parent && !spec) return undefined;
    let s = `**${parent ? `${parent}.` : ''}${key}**\n\n${keyDescription(key, parent)}`;
    if (spec) s += `\n\n${describeSpec(spec)}`;
    if (key === 'percent' && !parent && ctx) {
      const { model } = loadFor(parsed, ctx);
      if (model?.groups && model.weights && model.weightsCheck?.ok) {
        const lims = STRATEGIES.map((st) => `${st} ${percentLimit(model.groups!, model.weights!, st, (parsed.values.exclude ?? []).filter((i) => i < model.graph.layers.length)).percentLimit.toFixed(4)}`);
        s += `\n\npercent_limit of this model: ${lims.join(', ')}`;
      }
    }
    return { contents: s, range: onKey ? e.keyRange : e.valueRange! };
  }
  return undefined;
}

function describeSpec(spec: KeySpec): string {
  switch (spec.kind) {
    case 'path': return 'A path, relative to this file.';
    case 'enum': return `One of: ${spec.values!.join(', ')}.`;
    case 'number': return `A number ${spec.exclusiveMin ? `> ${spec.min}` : `≥ ${spec.min}`}${spec.max !== undefined ? ` and ≤ ${spec.max}` : ''}.`;
    case 'int': return `A whole number ≥ ${spec.min}.`;
    case 'bool': return 'true or false.';
    case 'layers': return 'A list of layer indices, e.g. [12, 36].';
    case 'thresholds': return 'A mapping layer index → |γ| threshold.';
    case 'outputs': return 'A folder, or dir / cfg / weights / report.';
  }
}

// ---------------------------------------------------------------------------------------------
// Completion

export interface ConfigCompletionItem {
  label: string;
  kind: 'key' | 'value' | 'layer' | 'file';
  detail?: string;
  documentation?: string;
  /** Text to insert (defaults to label). */
  insertText?: string;
  /** Sort key (layer indices sort numerically). */
  sortText?: string;
}

function parentKeyAt(lines: string[], line: number, indent: number): string | undefined {
  for (let i = line - 1; i >= 0; i--) {
    const t = lines[i];
    if (t.trim() === '' || t.trim().startsWith('#')) continue;
    const m = /^(\s*)(?:-\s*)?([A-Za-z_][\w]*)\s*:/.exec(t);
    const ind = t.length - t.trimStart().length;
    if (ind < indent && m) return m[2];
    if (ind < indent) return undefined;
  }
  return undefined;
}

/** The key that owns a block-list item at this indentation (`key:` above it, at the same or a lower indentation). */
function parentOfItem(lines: string[], line: number, itemIndent: number): string | undefined {
  for (let i = line - 1; i >= 0; i--) {
    const t = lines[i];
    const tt = t.trim();
    if (tt === '' || tt.startsWith('#') || tt.startsWith('-')) continue;
    const ind = t.length - t.trimStart().length;
    const m = /^\s*([A-Za-z_][\w]*)\s*:/.exec(t);
    if (ind <= itemIndent) return m ? m[1] : undefined;
  }
  return undefined;
}

function layerItems(model: LoadedModel | undefined, skip: Set<number>, insert: (i: number) => string): ConfigCompletionItem[] {
  if (!model?.groups) return [];
  return model.groups.prunableLayers.filter((i) => !skip.has(i)).map((i) => {
    const l = model.graph.layers[i];
    const c = l.conv!;
    return {
      label: String(i), kind: 'layer' as const, insertText: insert(i), sortText: String(i).padStart(6, '0'),
      detail: `conv ${c.size}×${c.size}/${c.strideX}, ${c.filters} filters${isDepthwise(l) ? ' (depthwise)' : ''}`,
      documentation: layerSummary(model, i),
    };
  });
}

export function pruneConfigCompletions(text: string, position: Position, ctx?: PruneConfigContext): ConfigCompletionItem[] {
  const lines = text.split(/\r?\n/);
  const line = lines[position.line] ?? '';
  const before = line.slice(0, position.character);
  const parsed = parsePruneConfig(text);
  const model = () => (ctx ? loadFor(parsed, ctx).model : undefined);

  // a key at the start of a line
  const keyM = /^(\s*)([A-Za-z_]*)$/.exec(before);
  if (keyM) {
    const indent = keyM[1].length;
    if (indent === 0) {
      const present = new Set(parsed.entries.filter((e) => e.path.length === 1 && e.keyRange.start.line !== position.line).map((e) => e.path[0]));
      return Object.keys(CONFIG_KEYS).filter((k) => !present.has(k)).map((k) => ({
        label: k, kind: 'key' as const, insertText: `${k}: `, detail: describeSpec(CONFIG_KEYS[k]), documentation: keyDescription(k),
      }));
    }
    const parent = parentKeyAt(lines, position.line, indent);
    if (parent === 'outputs') {
      return OUTPUT_KEYS.map((k) => ({ label: k, kind: 'key' as const, insertText: `${k}: `, documentation: keyDescription(k, 'outputs') }));
    }
    if (parent === 'thresholds') {
      return layerItems(model(), new Set(Object.keys(parsed.values.thresholds ?? {}).map(Number)), (i) => `${i}: `);
    }
    return [];
  }
  // a block list item
  const itemM = /^(\s*)-\s*\d*$/.exec(before);
  if (itemM) {
    const parent = parentOfItem(lines, position.line, itemM[1].length);
    if (parent === 'exclude') return layerItems(model(), new Set(parsed.values.exclude ?? []), (i) => String(i));
    return [];
  }
  // a value after "key:"
  const valM = /^(\s*)([A-Za-z_]\w*)\s*:\s*(.*)$/.exec(before);
  if (!valM) return [];
  const key = valM[2];
  const indent = valM[1].length;
  const sofar = valM[3];
  if (indent > 0) {
    const parent = parentKeyAt(lines, position.line, indent);
    if (parent === 'outputs' && ctx?.listFiles) return [];
    return [];
  }
  switch (key) {
    case 'strategy':
      return STRATEGIES.map((s) => ({ label: s, kind: 'value' as const, documentation: strategyDescription(s), detail: s === 'slim' ? 'default' : undefined }));
    case 'per_layer':
    case 'compensate':
      return ['true', 'false'].map((b) => ({ label: b, kind: 'value' as const }));
    case 'round_to':
      return [8, 16, 32, 4].map((n) => ({ label: String(n), kind: 'value' as const, detail: n === 8 ? 'multiples of 8 suit most GPUs and int8 kernels' : undefined }));
    case 'layer_keep':
      return [0.01, 0.05, 0.1].map((n) => ({ label: String(n), kind: 'value' as const }));
    case 'percent': {
      const m = model();
      const items: ConfigCompletionItem[] = [];
      if (m?.groups && m.weights && m.weightsCheck?.ok) {
        const st = parsed.values.strategy ?? 'slim';
        const lim = percentLimit(m.groups, m.weights, st, (parsed.values.exclude ?? []).filter((i) => i < m.graph.layers.length));
        const floor = Math.floor(lim.percentLimit * 10000) / 10000;
        items.push({ label: String(floor), kind: 'value', detail: `percent_limit (${st}): layer ${lim.layer} is emptied above it` });
      }
      for (const p of [0.5, 0.7, 0.8, 0.9]) items.push({ label: String(p), kind: 'value' });
      return items;
    }
    case 'exclude': {
      const skip = new Set(parsed.values.exclude ?? []);
      const inFlow = /\[[^\]]*$/.test(sofar);
      if (inFlow) for (const m of sofar.slice(sofar.lastIndexOf('[')).matchAll(/\d+/g)) skip.add(Number(m[0]));
      const needsComma = inFlow && /\d\s*$/.test(sofar);
      return layerItems(model(), skip, (i) => (inFlow ? `${needsComma ? ', ' : ''}${i}` : `[${i}]`));
    }
    case 'model':
    case 'weights': {
      if (!ctx?.listFiles) return [];
      const dirPart = sofar.includes('/') ? sofar.slice(0, sofar.lastIndexOf('/') + 1) : '';
      let names: string[];
      try { names = ctx.listFiles(resolveConfigPath(ctx.baseDir, dirPart || '.')); } catch { return []; }
      const want = key === 'model' ? /\.cfg$/i : /\.weights$|\.\d+$/i;
      return names.filter((n) => want.test(n)).sort().map((n) => ({ label: dirPart + n, kind: 'file' as const }));
    }
  }
  return [];
}

/** A listFiles for PruneConfigContext backed by the file system. */
export function listFilesFs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
}

// ---------------------------------------------------------------------------------------------
// Resolution for the CLI

export interface ResolvedPruneConfig {
  cfgPath: string;
  weightsPath: string;
  options: PruneOptions;
  /** Output paths the config sets (others take the defaults), and the output folder. */
  outputs: Partial<PruneOutputPaths> & { dir?: string };
  diagnostics: ConfigDiagnostic[];
}

export function formatConfigDiagnostic(file: string, d: ConfigDiagnostic): string {
  return `${file}:${d.range.start.line + 1}:${d.range.start.character + 1}: ${d.severity}: ${d.message}`;
}

/** Reads a .prune.yaml, validates it (without the model checks that pruning repeats) and resolves it. */
export function loadPruneConfigFile(file: string): ResolvedPruneConfig {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    throw new Error(`cannot read pruning config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const baseDir = dirname(resolve(file));
  const diagnostics = validatePruneConfig(text, { baseDir });
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`invalid pruning config:\n${errors.map((d) => formatConfigDiagnostic(file, d)).join('\n')}`);
  const v = parsePruneConfig(text).values;
  const outputs: ResolvedPruneConfig['outputs'] = { ...resolveOutputs(v, baseDir) };
  if (v.outputs?.dir) outputs.dir = resolveConfigPath(baseDir, v.outputs.dir);
  return {
    cfgPath: resolveConfigPath(baseDir, v.model!),
    weightsPath: resolveConfigPath(baseDir, v.weights!),
    options: {
      strategy: v.strategy ?? 'slim', percent: v.percent ?? 0, layerKeep: v.layer_keep, perLayer: v.per_layer,
      thresholds: v.thresholds, roundTo: v.round_to, exclude: v.exclude, shortcuts: v.shortcuts, compensate: v.compensate,
    },
    outputs,
    diagnostics,
  };
}

