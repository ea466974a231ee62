// Pruning policies over channel groups (METHOD.md §2). A policy turns the BN scales |γ| of the
// prunable groups into one keep/remove decision per group:
//   normal   — groups coupled by a shortcut (or scale_channels) are kept whole; others by threshold.
//   shortcut — a shortcut-coupled group follows its first member (lowest layer index).
//   slim     — a group is kept when any member's |γ| reaches the threshold (OR of the masks).
// The threshold is global (a percentile of all ranked |γ|), per layer (`perLayer`), or given per
// layer (`thresholds`). `layerKeep` keeps each layer's best channels up to a minimum fraction,
// `roundTo` rounds every layer's kept count up to a multiple of N, `exclude` keeps layers whole.
// Depthwise channels ("carried") follow their input's decision; their own γ is not ranked.
import type { ModelGraph, ModelWeights } from '../darknet/types';
import type { ChannelGroup, ChannelGroups } from './groups';

export type PruneStrategy = 'normal' | 'shortcut' | 'slim';
export const STRATEGIES: readonly PruneStrategy[] = ['normal', 'shortcut', 'slim'];

export interface PrunePolicy {
  strategy: PruneStrategy;
  /** Fraction (0–1) of the ranked |γ| below the global threshold. */
  percent: number;
  /** Minimum fraction (0–1] of each layer's channels to keep; lifts the percent_limit guard. */
  layerKeep?: number;
  /** Apply `percent` within each layer instead of over the whole model. */
  perLayer?: boolean;
  /** Explicit |γ| thresholds for some layers (layer index → threshold). */
  thresholds?: Record<number, number>;
  /** Kept channels of every pruned layer rounded up to a multiple of this (e.g. 8). */
  roundTo?: number;
  /** Conv layers to keep whole. */
  exclude?: number[];
}

export type PruneErrorCode = 'percent-limit' | 'empty-layer' | 'bad-option' | 'no-weights' | 'no-blocks' | 'bad-model';

export class PruneError extends Error {
  constructor(readonly code: PruneErrorCode, message: string, readonly data: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PruneError';
  }
}

export interface PercentLimit {
  /** rank(highestThreshold) / count: the largest percent that leaves every ranked layer a channel. */
  percentLimit: number;
  /** min over ranked layers of their largest |γ| */
  highestThreshold: number;
  /** The layer whose largest |γ| is highestThreshold: the first to be emptied. */
  layer: number;
  /** Number of ranked |γ| values. */
  count: number;
}

export interface PrunePlan {
  policy: PrunePolicy;
  groups: ChannelGroups;
  /** 1 = keep, per group id. */
  keepGroup: Uint8Array;
  /** Kept output channels (ascending) of every conv layer, by layer index. */
  kept: Map<number, Int32Array>;
  /** The global |γ| threshold (NaN in per-layer mode; -Infinity when nothing is pruned). */
  threshold: number;
  limit: PercentLimit;
  /** Channels removed over all conv layers. */
  removedChannels: number;
  /** Groups removed. */
  removedGroups: number;
  warnings: string[];
}

export function checkPolicy(policy: PrunePolicy, graph?: ModelGraph): void {
  const bad = (m: string) => { throw new PruneError('bad-option', m); };
  if (!STRATEGIES.includes(policy.strategy)) bad(`unknown strategy "${policy.strategy}": use normal, shortcut or slim`);
  if (!(policy.percent >= 0 && policy.percent <= 1)) bad(`percent must be between 0 and 1 (got ${policy.percent})`);
  if (policy.layerKeep !== undefined && !(policy.layerKeep > 0 && policy.layerKeep <= 1)) bad(`layer_keep must be in (0, 1] (got ${policy.layerKeep})`);
  if (policy.roundTo !== undefined && !(Number.isInteger(policy.roundTo) && policy.roundTo >= 1)) bad(`round_to must be a positive integer (got ${policy.roundTo})`);
  if (graph) {
    for (const i of policy.exclude ?? []) {
      if (!Number.isInteger(i) || i < 0 || i >= graph.layers.length) bad(`exclude: layer ${i} does not exist (the model has layers 0–${graph.layers.length - 1})`);
    }
    for (const k of Object.keys(policy.thresholds ?? {})) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= graph.layers.length) bad(`thresholds: layer ${k} does not exist`);
    }
  }
}

function gammaOf(weights: ModelWeights, layer: number): Float32Array {
  const s = weights.layers.get(layer)?.scales;
  if (!s) throw new PruneError('no-weights', `no batch-norm scales (γ) for layer ${layer}: the weights do not cover it`);
  return s;
}

/** Groups whose decider |γ| are ranked under a strategy (excluded layers keep their groups). */
function eligibleGroups(groups: ChannelGroups, strategy: PruneStrategy, exclude: ReadonlySet<number>): Uint8Array {
  const el = new Uint8Array(groups.groups.length);
  for (const g of groups.groups) {
    if (!g.prunable) continue;
    if (strategy === 'normal' && (g.coupling.shortcut || g.coupling.scale)) continue;
    if (exclude.size && g.members.some((m) => exclude.has(m.layer))) continue;
    el[g.id] = 1;
  }
  return el;
}

/** The |γ| that a strategy ranks: every decider member of every eligible group, by layer. */
function rankedGamma(groups: ChannelGroups, weights: ModelWeights, eligible: Uint8Array): Map<number, number[]> {
  const perLayer = new Map<number, number[]>();
  for (const g of groups.groups) {
    if (!eligible[g.id]) continue;
    for (const m of g.members) {
      if (m.role !== 'decider') continue;
      let list = perLayer.get(m.layer);
      if (!list) { list = []; perLayer.set(m.layer, list); }
      list.push(Math.abs(gammaOf(weights, m.layer)[m.channel]));
    }
  }
  return perLayer;
}

function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

/**
 * The value that decides a group under one global threshold (kept iff value >= threshold):
 * the first decider's |γ| for shortcut-coupled groups under the shortcut strategy, else the
 * largest decider |γ| (OR of the members' masks). +Infinity for groups that are always kept.
 */
function groupValues(groups: ChannelGroups, weights: ModelWeights, strategy: PruneStrategy, eligible: Uint8Array): Float64Array {
  const val = new Float64Array(groups.groups.length).fill(Infinity);
  for (const g of groups.groups) {
    if (!eligible[g.id]) continue;
    const firstOnly = strategy === 'shortcut' && (g.coupling.shortcut || g.coupling.scale);
    let v = -Infinity;
    for (const m of g.members) {
      if (m.role !== 'decider') continue;
      const x = Math.abs(gammaOf(weights, m.layer)[m.channel]);
      if (firstOnly) { v = x; break; }
      if (x > v) v = x;
    }
    val[g.id] = v;
  }
  return val;
}

/**
 * percent_limit, generalised from the study (min over layers of max |γ|) to coupled groups: a
 * layer is emptied when every one of its channel groups falls below the threshold, so its
 * "highest" is the largest deciding value over its groups.
 */
function limitOf(groups: ChannelGroups, gval: Float64Array, sorted: Float64Array): PercentLimit {
  let highest = Infinity;
  let layer = -1;
  for (const l of groups.prunableLayers) {
    const ch = groups.layerChannels[l];
    let mx = -Infinity;
    for (let c = 0; c < ch.length; c++) if (gval[ch[c]] > mx) mx = gval[ch[c]];
    if (mx < highest) { highest = mx; layer = l; }
  }
  if (!Number.isFinite(highest) || sorted.length === 0) return { percentLimit: 1, highestThreshold: Infinity, layer: -1, count: sorted.length };
  return { percentLimit: lowerBound(sorted, highest) / sorted.length, highestThreshold: highest, layer, count: sorted.length };
}

function sortedValues(perLayer: Map<number, number[]>): Float64Array {
  let n = 0;
  for (const v of perLayer.values()) n += v.length;
  const all = new Float64Array(n);
  let k = 0;
  for (const v of perLayer.values()) for (const x of v) all[k++] = x;
  return all.sort();
}

/** The percent_limit of a model under a strategy: above it a global threshold empties a layer. */
export function percentLimit(groups: ChannelGroups, weights: ModelWeights, strategy: PruneStrategy = 'slim', exclude: number[] = []): PercentLimit {
  const eligible = eligibleGroups(groups, strategy, new Set(exclude));
  const perLayer = rankedGamma(groups, weights, eligible);
  return limitOf(groups, groupValues(groups, weights, strategy, eligible), sortedValues(perLayer));
}

export function formatPercent(p: number): string {
  return `${(p * 100).toFixed(2)}%`;
}

export function planPrune(groups: ChannelGroups, weights: ModelWeights, policy: PrunePolicy): PrunePlan {
  const graph = groups.graph;
  checkPolicy(policy, graph);
  const warnings: string[] = [];
  const exclude = new Set(policy.exclude ?? []);
  for (const i of exclude) {
    const l = graph.layers[i];
    if (l.type !== 'convolutional') warnings.push(`exclude: layer ${i} is a [${l.section.name}] layer, not a conv; nothing to exclude`);
    else if (groups.notPrunable.has(i)) warnings.push(`exclude: conv layer ${i} is not prunable anyway (${groups.notPrunable.get(i)})`);
  }
  const eligible = eligibleGroups(groups, policy.strategy, exclude);
  const perLayer = rankedGamma(groups, weights, eligible);
  const sorted = sortedValues(perLayer);
  const limit = limitOf(groups, groupValues(groups, weights, policy.strategy, eligible), sorted);
  const thresholds = new Map<number, number>();
  for (const [k, v] of Object.entries(policy.thresholds ?? {})) thresholds.set(Number(k), v);

  let threshold = -Infinity;
  const layerThreshold = new Map<number, number>();
  if (policy.perLayer) {
    threshold = NaN;
    for (const [l, vals] of perLayer) {
      const s = Float64Array.from(vals).sort();
      const idx = Math.floor(s.length * policy.percent);
      layerThreshold.set(l, policy.percent <= 0 ? -Infinity : idx >= s.length ? Infinity : s[idx]);
    }
  } else if (policy.percent > 0 && sorted.length > 0) {
    const idx = Math.floor(sorted.length * policy.percent);
    threshold = idx >= sorted.length ? Infinity : sorted[idx];
    if (policy.layerKeep === undefined && policy.percent > limit.percentLimit + 1e-12) {
      throw new PruneError('percent-limit',
        `percent ${policy.percent} (${formatPercent(policy.percent)}) is above this model's percent_limit ${limit.percentLimit.toFixed(4)} (${formatPercent(limit.percentLimit)}) for the ${policy.strategy} strategy: `
        + `the threshold would remove every channel of conv layer ${limit.layer} (the largest |γ| deciding its channels is ${limit.highestThreshold.toPrecision(4)}). `
        + `Use a percent up to ${limit.percentLimit.toFixed(4)}, or set layer_keep to keep a minimum fraction of each layer.`,
        { percent: policy.percent, percentLimit: limit.percentLimit, layer: limit.layer, highestThreshold: limit.highestThreshold });
    }
  }
  const thrFor = (layer: number) => thresholds.get(layer) ?? (policy.perLayer ? layerThreshold.get(layer) ?? -Infinity : threshold);

  // Decisions.
  const keepGroup = new Uint8Array(groups.groups.length).fill(1);
  /** Score of a group: its largest decider |γ| (used to restore channels for layer_keep / round_to). */
  const score = new Float64Array(groups.groups.length);
  const gammaCache = new Map<number, Float32Array>();
  const gamma = (l: number) => { let g = gammaCache.get(l); if (!g) { g = gammaOf(weights, l); gammaCache.set(l, g); } return g; };
  for (const g of groups.groups) {
    if (!eligible[g.id]) continue;
    let keep = false;
    let first = true;
    let best = 0;
    for (const m of g.members) {
      if (m.role !== 'decider') continue;
      const v = Math.abs(gamma(m.layer)[m.channel]);
      if (v > best) best = v;
      const memberKeeps = v >= thrFor(m.layer);
      if (policy.strategy === 'shortcut' && (g.coupling.shortcut || g.coupling.scale)) {
        if (first) keep = memberKeeps;
      } else if (memberKeeps) keep = true;
      first = false;
    }
    score[g.id] = best;
    keepGroup[g.id] = keep ? 1 : 0;
  }

  const convLayers = graph.layers.filter((l) => l.type === 'convolutional').map((l) => l.index);
  const keptCount = (l: number) => {
    const ch = groups.layerChannels[l];
    let k = 0;
    for (let c = 0; c < ch.length; c++) k += keepGroup[ch[c]];
    return k;
  };
  /** Restores the best removed groups of a layer until it keeps `target` channels. */
  const restore = (l: number, target: number): boolean => {
    const ch = groups.layerChannels[l];
    let k = keptCount(l);
    if (k >= target) return false;
    const cands: number[] = [];
    for (let c = 0; c < ch.length; c++) if (!keepGroup[ch[c]] && eligible[ch[c]]) cands.push(c);
    const own = groups.depthwise.has(l) ? undefined : gamma(l);
    const s = (c: number) => (own ? Math.abs(own[c]) : score[ch[c]]);
    cands.sort((a, b) => s(b) - s(a) || a - b);
    let changed = false;
    for (const c of cands) {
      if (k >= target) break;
      if (keepGroup[ch[c]]) continue;
      keepGroup[ch[c]] = 1;
      changed = true;
      k = keptCount(l);
    }
    return changed;
  };

  if (policy.layerKeep !== undefined) {
    for (const l of groups.prunableLayers) {
      const n = groups.layerChannels[l].length;
      restore(l, Math.max(1, Math.ceil(policy.layerKeep * n - 1e-9)));
    }
  }
  if (policy.roundTo && policy.roundTo > 1) {
    const N = policy.roundTo;
    for (let pass = 0; pass < 8; pass++) {
      let changed = false;
      for (const l of groups.prunableLayers) {
        const n = groups.layerChannels[l].length;
        const k = keptCount(l);
        if (k === n) continue;
        const target = Math.min(n, Math.ceil(k / N) * N);
        if (k !== target && restore(l, target)) changed = true;
      }
      if (!changed) break;
    }
    for (const l of groups.prunableLayers) {
      const n = groups.layerChannels[l].length;
      const k = keptCount(l);
      if (k !== n && k % N !== 0) warnings.push(`round_to ${N}: layer ${l} keeps ${k} of ${n} channels (its coupled layers prevent a multiple of ${N})`);
    }
  }

  const kept = new Map<number, Int32Array>();
  let removedChannels = 0;
  for (const l of convLayers) {
    const ch = groups.layerChannels[l];
    const k = keptCount(l);
    const idx = new Int32Array(k);
    let j = 0;
    for (let c = 0; c < ch.length; c++) if (keepGroup[ch[c]]) idx[j++] = c;
    kept.set(l, idx);
    removedChannels += ch.length - k;
    if (k === 0 && ch.length > 0) {
      throw new PruneError('empty-layer',
        `the plan would remove every channel of conv layer ${l}. This model's percent_limit for the ${policy.strategy} strategy is ${limit.percentLimit.toFixed(4)} (${formatPercent(limit.percentLimit)}); lower the percent or the layer's threshold, or set layer_keep.`,
        { layer: l, percentLimit: limit.percentLimit });
    }
  }
  let removedGroups = 0;
  for (const g of groups.groups) if (!keepGroup[g.id]) removedGroups++;
  return { policy, groups, keepGroup, kept, threshold, limit, removedChannels, removedGroups, warnings };
}

/** Members of a group, as text, for reports and hovers: "L12:c3, L15:c3". */
export function describeGroup(g: ChannelGroup): string {
  return g.members.map((m) => `L${m.layer}:c${m.channel}${m.role === 'carried' ? '(dw)' : ''}`).join(', ');
}
