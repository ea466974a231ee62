// One pruning run: optional layer pruning (residual blocks), then a channel plan over dependency
// groups and the surgery, then the report. `writePruneOutputs` puts the three files in place
// atomically (temporary names, then renames) and refuses to overwrite an input.
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { writeWeights } from '../darknet/weights';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { buildChannelGroups, type ChannelGroups } from './groups';
import { findResidualBlocks, removeBlocks, selectBlocks, type ResidualBlock } from './layers';
import { checkPolicy, planPrune, PruneError, type PrunePlan, type PrunePolicy } from './policy';
import { applyPlan, type SurgeryResult } from './surgery';

export interface PruneOptions extends PrunePolicy {
  /** Residual blocks to remove before channel pruning (layer pruning). */
  shortcuts?: number;
  /** β compensation (default true). */
  compensate?: boolean;
}

export interface PruneLayerRow {
  /** Layer index in the original model. */
  index: number;
  /** Index in the pruned model; null when layer pruning removed it. */
  newIndex: number | null;
  type: string;
  /** Output channels before and after. */
  before: number;
  after: number;
  paramsBefore: number;
  paramsAfter: number;
  bflopsBefore: number;
  bflopsAfter: number;
}

export interface PruneReport {
  inputs: { cfg?: string; weights?: string };
  policy: {
    strategy: string; percent: number; layerKeep: number | null; perLayer: boolean; thresholds: Record<string, number> | null;
    roundTo: number | null; exclude: number[]; shortcuts: number; compensate: boolean;
  };
  /** percent_limit of the channel plan (over the model after layer pruning). */
  percentLimit: number;
  highestThreshold: number | null;
  limitLayer: number;
  /** Global |γ| threshold used (null in per-layer mode or when nothing is ranked). */
  threshold: number | null;
  before: { params: number; bflops: number; weightsBytes: number; layers: number };
  after: { params: number; bflops: number; weightsBytes: number; layers: number };
  removedChannels: number;
  removedBlocks: { shortcut: number; from: number; layers: number[]; meanGamma: number | null }[];
  compensatedChannels: number;
  layers: PruneLayerRow[];
  warnings: string[];
}

export interface PruneRun {
  before: ModelGraph;
  /** The model after layer pruning (equal to `before` without it). */
  intermediate: ModelGraph;
  blocks: ResidualBlock[];
  /** Original index → index after layer pruning (-1 removed). */
  indexMap: Int32Array;
  groups: ChannelGroups;
  plan: PrunePlan;
  result: SurgeryResult;
  report: PruneReport;
}

function round(x: number, d = 6): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export function checkPrunable(graph: ModelGraph, weights: ModelWeights | undefined): void {
  const err = graph.diagnostics.find((d) => d.severity === 'error');
  if (err) throw new PruneError('bad-model', `the cfg has errors; fix them before pruning: line ${err.range.start.line + 1}: ${err.message}`);
  if (weights && weights.loadedLayers < graph.layers.length) {
    throw new PruneError('no-weights', `the weights cover only layers 0–${weights.loadedLayers - 1} of ${graph.layers.length} (partial or mismatched weights cannot be pruned)`);
  }
}

/**
 * Plans and applies a pruning. With `dryRun` (or without weights for the surgery) the weights are
 * not rebuilt: the plan, the pruned cfg, its graph and the report are still computed.
 */
export function pruneModel(graph: ModelGraph, weights: ModelWeights, options: PruneOptions,
  run: { dryRun?: boolean; cfgPath?: string; weightsPath?: string; modelName?: string } = {}): PruneRun {
  checkPrunable(graph, weights);
  checkPolicy(options, graph);
  const shortcuts = options.shortcuts ?? 0;
  if (!(Number.isInteger(shortcuts) && shortcuts >= 0)) throw new PruneError('bad-option', `shortcuts must be a non-negative integer (got ${shortcuts})`);
  const warnings: string[] = [];

  // 1. layer pruning
  let intermediate = graph;
  let iw: ModelWeights = weights;
  let blocks: ResidualBlock[] = [];
  let indexMap: Int32Array = Int32Array.from(graph.layers, (_, i) => i);
  if (shortcuts > 0) {
    blocks = selectBlocks(findResidualBlocks(graph, weights), shortcuts, run.modelName ?? (run.cfgPath ? basename(run.cfgPath) : undefined));
    const r = removeBlocks(graph, weights, blocks);
    intermediate = r.graph;
    iw = r.weights!;
    indexMap = r.indexMap;
  }

  // 2. channel plan, with layer indices mapped into the intermediate model
  const mapIdx = (i: number, what: string): number | undefined => {
    const m = indexMap[i];
    if (m < 0) { warnings.push(`${what}: layer ${i} was removed by layer pruning`); return undefined; }
    return m;
  };
  const exclude = (options.exclude ?? []).map((i) => mapIdx(i, 'exclude')).filter((i): i is number => i !== undefined);
  let thresholds: Record<number, number> | undefined;
  if (options.thresholds) {
    thresholds = {};
    for (const [k, v] of Object.entries(options.thresholds)) {
      const m = mapIdx(Number(k), 'thresholds');
      if (m !== undefined) thresholds[m] = v;
    }
  }
  const groups = buildChannelGroups(intermediate);
  const policy: PrunePolicy = { ...options, exclude, thresholds };
  const plan = planPrune(groups, iw, policy);
  warnings.push(...plan.warnings);

  // 3. surgery
  const result = applyPlan(intermediate, iw, plan, { compensate: options.compensate ?? true, weights: !run.dryRun });

  // 4. report
  const after = result.graph;
  const rows: PruneLayerRow[] = graph.layers.map((l) => {
    const ni = indexMap[l.index];
    const a = ni >= 0 ? after.layers[ni] : undefined;
    return {
      index: l.index, newIndex: ni >= 0 ? ni : null, type: l.type,
      before: l.output[2], after: a ? a.output[2] : 0,
      paramsBefore: l.params, paramsAfter: a ? a.params : 0,
      bflopsBefore: round(l.bflops), bflopsAfter: a ? round(a.bflops) : 0,
    };
  });
  const hb = weights.header.headerBytes;
  const report: PruneReport = {
    inputs: { cfg: run.cfgPath, weights: run.weightsPath },
    policy: {
      strategy: options.strategy, percent: options.percent, layerKeep: options.layerKeep ?? null, perLayer: !!options.perLayer,
      thresholds: options.thresholds ? Object.fromEntries(Object.entries(options.thresholds).map(([k, v]) => [k, v])) : null,
      roundTo: options.roundTo ?? null, exclude: options.exclude ?? [], shortcuts, compensate: options.compensate ?? true,
    },
    percentLimit: round(plan.limit.percentLimit, 6),
    highestThreshold: Number.isFinite(plan.limit.highestThreshold) ? plan.limit.highestThreshold : null,
    limitLayer: plan.limit.layer >= 0 ? originalIndex(indexMap, plan.limit.layer) : -1,
    threshold: Number.isFinite(plan.threshold) ? plan.threshold : null,
    before: { params: graph.totals.params, bflops: round(graph.totals.bflops), weightsBytes: hb + graph.totals.weightFloats * 4, layers: graph.layers.length },
    after: { params: after.totals.params, bflops: round(after.totals.bflops), weightsBytes: hb + after.totals.weightFloats * 4, layers: after.layers.length },
    removedChannels: plan.removedChannels,
    removedBlocks: blocks.map((b) => ({ shortcut: b.shortcut, from: b.from, layers: b.layers, meanGamma: Number.isFinite(b.meanGamma) ? b.meanGamma : null })),
    compensatedChannels: result.compensatedChannels,
    layers: rows,
    warnings,
  };
  return { before: graph, intermediate, blocks, indexMap, groups, plan, result, report };
}

function originalIndex(indexMap: Int32Array, ni: number): number {
  for (let i = 0; i < indexMap.length; i++) if (indexMap[i] === ni) return i;
  return -1;
}

export interface PruneOutputPaths {
  cfg: string;
  weights: string;
  report: string;
}

function fmtPercent(p: number): string {
  return String(Math.round(p * 10000) / 10000);
}

/** `dir/yolov3.cfg` → `dir/yolov3-pruned-0.8.cfg`, `.weights`, `.report.json` (or in outDir). */
export function defaultOutputPaths(cfgPath: string, options: { percent: number; shortcuts?: number }, outDir?: string): PruneOutputPaths {
  const base = basename(cfgPath, extname(cfgPath));
  let tag = `${base}-pruned-${fmtPercent(options.percent)}`;
  if (options.shortcuts) tag += `-s${options.shortcuts}`;
  const dir = outDir ?? dirname(cfgPath);
  return { cfg: join(dir, `${tag}.cfg`), weights: join(dir, `${tag}.weights`), report: join(dir, `${tag}.report.json`) };
}

/**
 * Writes the pruned cfg, weights and report: each to a temporary name in its folder, then all are
 * renamed into place. Refuses any output path that is one of `inputs`. Nothing half-written is
 * left on failure.
 */
export function writePruneOutputs(paths: PruneOutputPaths, data: { cfg: string; weights: Uint8Array; report: PruneReport | string }, inputs: string[]): void {
  const ins = new Set(inputs.map((p) => resolve(p)));
  const outs = [paths.cfg, paths.weights, paths.report];
  for (const p of outs) {
    if (ins.has(resolve(p))) throw new PruneError('bad-option', `refusing to overwrite the input ${p}: choose another output name or folder`);
  }
  if (new Set(outs.map((p) => resolve(p))).size !== outs.length) throw new PruneError('bad-option', 'the cfg, weights and report outputs must be three different files');
  for (const p of outs) {
    if (!existsSync(dirname(p))) throw new PruneError('bad-option', `output folder ${dirname(p)} does not exist`);
    if (existsSync(p) && statSync(p).isDirectory()) throw new PruneError('bad-option', `output ${p} is a folder`);
  }
  const stamp = `${process.pid}.${Date.now()}`;
  const tmp = outs.map((p) => join(dirname(p), `.${basename(p)}.${stamp}.tmp`));
  const bak = outs.map((p) => join(dirname(p), `.${basename(p)}.${stamp}.bak`));
  const contents: (string | Uint8Array)[] = [data.cfg, data.weights, typeof data.report === 'string' ? data.report : JSON.stringify(data.report, null, 2) + '\n'];
  const backedUp: number[] = [];
  const placed: number[] = [];
  try {
    for (let i = 0; i < outs.length; i++) writeFileSync(tmp[i], contents[i]);
    // move older files aside, put the new ones in place, then drop the old ones: on any failure
    // the previous files come back and no new file is left half in place
    for (let i = 0; i < outs.length; i++) if (existsSync(outs[i])) { renameSync(outs[i], bak[i]); backedUp.push(i); }
    for (let i = 0; i < outs.length; i++) { renameSync(tmp[i], outs[i]); placed.push(i); }
  } catch (e) {
    for (const i of placed) rmSync(outs[i], { force: true });
    for (const i of backedUp) { try { renameSync(bak[i], outs[i]); } catch { /* keep the backup */ } }
    for (const t of tmp) rmSync(t, { force: true });
    throw e;
  }
  for (const i of backedUp) rmSync(bak[i], { force: true });
}

/** Serialises a run's pruned weights (darknet format, the input's header). */
export function prunedWeightsBytes(run: PruneRun): Uint8Array {
  if (!run.result.weights) throw new PruneError('no-weights', 'the run was a dry run: no pruned weights');
  return writeWeights(run.result.graph, run.result.weights);
}

/** A plain-text plan: per conv layer kept channels, params and BFLOPs, and the totals. */
export function formatPlan(report: PruneReport, opts: { all?: boolean } = {}): string {
  const lines: string[] = [];
  const p = report.policy;
  lines.push(`strategy ${p.strategy}, percent ${p.percent}${p.layerKeep !== null ? `, layer_keep ${p.layerKeep}` : ''}${p.roundTo ? `, round_to ${p.roundTo}` : ''}${p.shortcuts ? `, shortcuts ${p.shortcuts}` : ''}${p.exclude.length ? `, exclude ${p.exclude.join(',')}` : ''}${p.compensate ? '' : ', no compensation'}`);
  lines.push(`percent_limit ${report.percentLimit.toFixed(4)}${report.highestThreshold !== null ? ` (layer ${report.limitLayer}, max |γ| ${report.highestThreshold.toPrecision(4)})` : ''}${report.threshold !== null ? `, threshold |γ| < ${report.threshold.toPrecision(4)}` : ''}`);
  if (report.removedBlocks.length) {
    lines.push(`removed residual blocks: ${report.removedBlocks.map((b) => `${b.layers[0]}–${b.shortcut}${b.meanGamma !== null ? ` (mean |γ| ${b.meanGamma.toPrecision(3)})` : ''}`).join(', ')}`);
  }
  lines.push('');
  lines.push(`${'layer'.padStart(5)} ${'new'.padStart(5)}  ${'type'.padEnd(6)} ${'channels'.padStart(13)} ${'params'.padStart(21)} ${'BFLOPs'.padStart(17)}`);
  for (const r of report.layers) {
    const changed = r.before !== r.after || r.newIndex === null || r.paramsBefore !== r.paramsAfter;
    if (!opts.all && (r.type !== 'convolutional' || !changed) && r.newIndex !== null) continue;
    const type = r.type === 'convolutional' ? 'conv' : r.type.slice(0, 6);
    const ch = r.newIndex === null ? `${r.before} → removed` : `${r.before} → ${r.after}`;
    lines.push(`${String(r.index).padStart(5)} ${(r.newIndex === null ? '-' : String(r.newIndex)).padStart(5)}  ${type.padEnd(6)} ${ch.padStart(13)} ${`${r.paramsBefore} → ${r.paramsAfter}`.padStart(21)} ${`${r.bflopsBefore.toFixed(3)} → ${r.bflopsAfter.toFixed(3)}`.padStart(17)}`);
  }
  lines.push('');
  const pct = (a: number, b: number) => (b ? `${((1 - a / b) * 100).toFixed(1)}% fewer` : '');
  lines.push(`params  ${report.before.params} → ${report.after.params} (${pct(report.after.params, report.before.params)})`);
  lines.push(`BFLOPs  ${report.before.bflops.toFixed(3)} → ${report.after.bflops.toFixed(3)} (${pct(report.after.bflops, report.before.bflops)})`);
  lines.push(`weights ${report.before.weightsBytes} → ${report.after.weightsBytes} bytes`);
  lines.push(`layers  ${report.before.layers} → ${report.after.layers}; channels removed: ${report.removedChannels}`);
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
