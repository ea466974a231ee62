// The compression report's table from a report.json: a stage list (baseline, pruned, fine-tuned,
// int8 ...: params, size, BFLOPs, latency, mAP), or a prune report (before → after). Pure.

export interface ReportStage {
  name: string;
  params?: number;
  sizeBytes?: number;
  bflops?: number;
  latencyMs?: number;
  /** mAP@0.5 as a fraction 0–1. */
  map?: number;
}

export type ColumnKey = 'params' | 'sizeBytes' | 'bflops' | 'latencyMs' | 'map';

export interface ReportColumn {
  key: ColumnKey;
  label: string;
  /** Which direction is better (bars and changes are coloured by it). */
  better: 'lower' | 'higher';
}

export interface LayerChange {
  index: number;
  type: string;
  before: number;
  after: number;
  removed: boolean;
}

export interface ReportModel {
  title: string;
  stages: ReportStage[];
  columns: ReportColumn[];
  notes: string[];
  /** Files the report names (model, weights). */
  files: { label: string; path: string }[];
  layers?: LayerChange[];
}

export const COLUMNS: ReportColumn[] = [
  { key: 'params', label: 'params', better: 'lower' },
  { key: 'sizeBytes', label: 'size', better: 'lower' },
  { key: 'bflops', label: 'BFLOPs', better: 'lower' },
  { key: 'latencyMs', label: 'latency', better: 'lower' },
  { key: 'map', label: 'mAP@0.5', better: 'higher' },
];

function num(o: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return undefined;
}

function str(o: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const k of keys) if (typeof o[k] === 'string' && o[k]) return o[k] as string;
  return undefined;
}

/** A mAP given in percent (e.g. 77.2) becomes a fraction. */
function mapFraction(v: number | undefined): number | undefined {
  return v === undefined ? undefined : v > 1 ? v / 100 : v;
}

export function stageFrom(o: Record<string, unknown>, fallbackName: string): ReportStage {
  const s: ReportStage = { name: str(o, 'name', 'stage', 'label', 'model') ?? fallbackName };
  const params = num(o, 'params', 'parameters');
  const size = num(o, 'sizeBytes', 'size_bytes', 'bytes', 'weightsBytes', 'size');
  const bflops = num(o, 'bflops', 'BFLOPs', 'BFLOPS', 'flops_g');
  const latency = num(o, 'latencyMs', 'latency_ms', 'median_ms', 'latency', 'forward_ms');
  const map = mapFraction(num(o, 'map', 'mAP', 'map50', 'mAP50', 'map_50'));
  if (params !== undefined) s.params = params;
  if (size !== undefined) s.sizeBytes = size;
  if (bflops !== undefined) s.bflops = bflops;
  if (latency !== undefined) s.latencyMs = latency;
  if (map !== undefined) s.map = map;
  return s;
}

function basename(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

export function reportModel(json: unknown, path = 'report.json'): ReportModel {
  const notes: string[] = [];
  const files: { label: string; path: string }[] = [];
  if (Array.isArray(json)) {
    const stages = json.filter((x) => x && typeof x === 'object').map((x, i) => stageFrom(x as Record<string, unknown>, `stage ${i + 1}`));
    return finish({ title: basename(path), stages, notes, files });
  }
  if (!json || typeof json !== 'object') throw new Error(`${basename(path)} is not a report: expected a JSON object`);
  const o = json as Record<string, unknown>;
  if (Array.isArray(o.stages)) {
    const stages = o.stages.filter((x) => x && typeof x === 'object').map((x, i) => stageFrom(x as Record<string, unknown>, `stage ${i + 1}`));
    const model = str(o, 'model', 'cfg');
    if (model) files.push({ label: 'model', path: model });
    return finish({ title: str(o, 'title', 'name') ?? (model ? basename(model) : basename(path)), stages, notes, files });
  }
  // a prune report (core/prune PruneReport)
  if (o.before && o.after && typeof o.before === 'object' && typeof o.after === 'object') {
    const b = o.before as Record<string, unknown>;
    const a = o.after as Record<string, unknown>;
    const policy = (o.policy ?? {}) as Record<string, unknown>;
    const inputs = (o.inputs ?? {}) as Record<string, unknown>;
    const pct = typeof policy.percent === 'number' ? ` ${Math.round(policy.percent * 1000) / 10}%` : '';
    const stages = [
      stageFrom({ name: 'baseline', ...b }, 'baseline'),
      stageFrom({ name: `pruned (${policy.strategy ?? 'prune'}${pct}${policy.shortcuts ? `, ${policy.shortcuts} blocks` : ''})`, ...a }, 'pruned'),
    ];
    if (typeof o.percentLimit === 'number') notes.push(`percent_limit ${(o.percentLimit * 100).toFixed(2)}%${typeof o.limitLayer === 'number' && o.limitLayer >= 0 ? ` (layer ${o.limitLayer})` : ''}`);
    if (typeof o.removedChannels === 'number') notes.push(`${o.removedChannels.toLocaleString('en-US')} channels removed`);
    if (Array.isArray(o.removedBlocks) && o.removedBlocks.length) notes.push(`${o.removedBlocks.length} residual blocks removed`);
    if (typeof o.threshold === 'number') notes.push(`|γ| threshold ${o.threshold.toPrecision(4)}`);
    for (const w of Array.isArray(o.warnings) ? o.warnings : []) if (typeof w === 'string') notes.push(`warning: ${w}`);
    if (typeof inputs.cfg === 'string') files.push({ label: 'original cfg', path: inputs.cfg });
    if (typeof inputs.weights === 'string') files.push({ label: 'original weights', path: inputs.weights });
    const layers = Array.isArray(o.layers) ? (o.layers as Record<string, unknown>[])
      .filter((r) => r.type === 'convolutional' && (r.before !== r.after || r.newIndex === null))
      .map((r) => ({ index: Number(r.index), type: String(r.type), before: Number(r.before), after: Number(r.after), removed: r.newIndex === null })) : undefined;
    return finish({ title: typeof inputs.cfg === 'string' ? `Pruning ${basename(inputs.cfg)}` : basename(path), stages, notes, files, layers });
  }
  throw new Error(`${basename(path)} is not a report Darkslim knows: expected "stages" or a prune report (before/after)`);
}

function finish(m: Omit<ReportModel, 'columns'>): ReportModel {
  if (!m.stages.length) throw new Error('the report has no stages');
  const columns = COLUMNS.filter((c) => m.stages.some((s) => s[c.key] !== undefined));
  return { ...m, columns };
}

/** A cell's bar length (0–1 of the column's largest value). */
export function barFraction(model: ReportModel, stage: ReportStage, key: ColumnKey): number {
  const v = stage[key];
  if (v === undefined) return 0;
  let max = 0;
  for (const s of model.stages) max = Math.max(max, s[key] ?? 0);
  return max > 0 ? v / max : 0;
}

/** Change against the first stage that has the value: "−82.3%", or undefined. */
export function changeText(model: ReportModel, stage: ReportStage, key: ColumnKey): string | undefined {
  const base = model.stages.find((s) => s[key] !== undefined);
  const v = stage[key];
  if (!base || base === stage || v === undefined || base[key] === undefined) return undefined;
  const b = base[key]!;
  if (key === 'map') {
    const d = (v - b) * 100;
    return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(2)} pt`;
  }
  if (!b) return undefined;
  const d = (v / b - 1) * 100;
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}%`;
}

export function formatCell(key: ColumnKey, v: number | undefined): string {
  if (v === undefined) return '—';
  switch (key) {
    case 'params': return v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} K` : String(v);
    case 'sizeBytes': return v >= 1e6 ? `${(v / 1e6).toFixed(1)} MB` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} KB` : `${v} B`;
    case 'bflops': return v.toFixed(3);
    case 'latencyMs': return `${v.toFixed(v < 10 ? 2 : 1)} ms`;
    case 'map': return v.toFixed(4);
  }
}
