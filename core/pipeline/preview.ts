// The pruning preview behind the redundancy view's slider: global percent → the channels each
// policy removes, the kept channels per layer, params and BFLOPs after. It reproduces
// core/prune/policy.ts planPrune (global threshold, layer_keep, round_to) and the graph's cost
// formulas over plain data (RedundancyData, computed once by core/pipeline/redundancy.ts), so it
// runs in the webview on every slider move without a round trip.
//
// Browser-safe: no imports at all (the webview bundle includes this file). The unit tests check it
// against planPrune / pruneModel on real models.

export type PreviewStrategy = 'normal' | 'shortcut' | 'slim';
export const PREVIEW_STRATEGIES: readonly PreviewStrategy[] = ['normal', 'shortcut', 'slim'];

/** Bits of RedundancyData.groupFlags. */
export const G_PRUNABLE = 1;
export const G_SHORTCUT = 2;
export const G_SCALE = 4;
export const G_SLICE = 8;
export const G_CARRIED = 16;

/** How a layer's params and BFLOPs follow its channel counts (darknet's formulas, as graph.ts). */
export type LayerCost =
  /** conv: weights (in/groups)·out·k², biases out, BN scales out; BFLOPs 2·weights·ow·oh (/32 xnor). */
  | { kind: 'conv'; k2: number; hw: number; groups: number; depthwise: boolean; bn: boolean; xnor: boolean }
  /** maxpool / local_avgpool: BFLOPs k²·c·ow·oh over the output channels. */
  | { kind: 'pool'; k2: number; hw: number }
  /** shortcut: BFLOPs w·h·c·n over the input channels; params fixed. */
  | { kind: 'shortcut'; hw: number; n: number; params: number }
  | { kind: 'fixed'; params: number; bflops: number };

export interface RedundancyLayer {
  index: number;
  /** darknet layer type (canonical). */
  type: string;
  /** 0-based line of the section header in the cfg. */
  line: number;
  /** Layers it reads (-1: the network input). */
  inputs: number[];
  /** Output shape [w, h, c]. */
  output: [number, number, number];
  /** Channel group id of every output channel. */
  groups: number[];
  cost: LayerCost;
  /** Convs with batch norm: |γ| of every output channel (original order). */
  gamma?: number[];
  /** Depthwise conv whose channels follow their input (its own γ is not ranked). */
  depthwise?: boolean;
  /** Convs: whether any output channel can be removed, else why not. */
  prunable?: boolean;
  reason?: string;
}

export interface StrategyLimit {
  percentLimit: number;
  highestThreshold: number | null;
  layer: number;
  count: number;
}

export interface RedundancyData {
  version: 1;
  /** Display name (the cfg's file name) and the files it came from. */
  name: string;
  cfg: string;
  weights: string;
  input: [number, number, number];
  totals: { params: number; bflops: number };
  /** Per channel group: G_* bits. */
  groupFlags: number[];
  /** Group ids of the network input's channels. */
  inputGroups: number[];
  layers: RedundancyLayer[];
  /** percent_limit per strategy as core/prune computes it (the preview recomputes the same). */
  limits: Record<PreviewStrategy, StrategyLimit>;
}

export interface PreviewSettings {
  strategy: PreviewStrategy;
  /** Fraction 0–1 of the ranked |γ| below the global threshold. */
  percent: number;
  /** Minimum kept fraction of every prunable layer (lifts the percent_limit guard). */
  layerKeep?: number;
  /** Kept channels rounded up to a multiple of this. */
  roundTo?: number;
}

export interface PreviewResult {
  settings: PreviewSettings;
  /** |γ| threshold (kept iff value ≥ threshold); -Infinity when nothing is pruned. */
  threshold: number;
  percentLimit: number;
  /** The layer emptied first above the limit. */
  limitLayer: number;
  /** planPrune would refuse these settings (percent above the limit without layer_keep). */
  refused: boolean;
  /** 1 = kept, per channel group. */
  keepGroup: Uint8Array;
  /** Kept output channels per layer (by layer index). */
  kept: Int32Array;
  params: number;
  bflops: number;
  /** Conv output channels removed. */
  removedChannels: number;
  /** Conv layers left without a channel. */
  emptied: number[];
}

interface StrategyPrep {
  eligible: Uint8Array;
  /** The value that decides each group under one threshold (+Infinity: always kept). */
  value: Float64Array;
  /** Ranked |γ|, ascending. */
  sorted: Float64Array;
  limit: { percentLimit: number; highest: number; layer: number };
}

export interface PreviewModel {
  data: RedundancyData;
  groupCount: number;
  /** Largest decider |γ| per group (score for layer_keep / round_to restores). */
  score: Float64Array;
  /** Conv layers with a prunable channel, ascending (core's prunableLayers). */
  prunableLayers: number[];
  convLayers: number[];
  prep: Record<PreviewStrategy, StrategyPrep>;
  /** Per prunable layer: its channels in the order layer_keep / round_to restore them. */
  restoreOrder: Int32Array[];
  /** Per layer: how many of its channels each group holds, when some group holds more than one. */
  multiplicity: (Map<number, number> | undefined)[];
}

function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

/** A decider channel: a non-depthwise conv's own channel with a γ. */
function isDecider(l: RedundancyLayer): boolean {
  return l.type === 'convolutional' && !l.depthwise && !!l.gamma;
}

export function preparePreview(data: RedundancyData): PreviewModel {
  const G = data.groupFlags.length;
  const maxVal = new Float64Array(G).fill(-Infinity);
  const firstVal = new Float64Array(G).fill(NaN);
  for (const l of data.layers) {
    if (!isDecider(l)) continue;
    const gm = l.gamma!;
    for (let c = 0; c < l.groups.length; c++) {
      const g = l.groups[c];
      const v = gm[c];
      if (v > maxVal[g]) maxVal[g] = v;
      if (Number.isNaN(firstVal[g])) firstVal[g] = v;
    }
  }
  const convLayers = data.layers.filter((l) => l.type === 'convolutional').map((l) => l.index);
  const prunableLayers = data.layers.filter((l) => l.type === 'convolutional' && l.prunable).map((l) => l.index);
  const score = new Float64Array(G);
  const prep = {} as Record<PreviewStrategy, StrategyPrep>;
  for (const s of PREVIEW_STRATEGIES) {
    const eligible = new Uint8Array(G);
    for (let g = 0; g < G; g++) {
      const f = data.groupFlags[g];
      if (!(f & G_PRUNABLE)) continue;
      if (s === 'normal' && f & (G_SHORTCUT | G_SCALE)) continue;
      eligible[g] = 1;
    }
    const value = new Float64Array(G).fill(Infinity);
    for (let g = 0; g < G; g++) {
      if (!eligible[g]) continue;
      const coupled = (data.groupFlags[g] & (G_SHORTCUT | G_SCALE)) !== 0;
      value[g] = s === 'shortcut' && coupled ? (Number.isNaN(firstVal[g]) ? -Infinity : firstVal[g]) : maxVal[g];
      if (maxVal[g] > score[g]) score[g] = maxVal[g];
    }
    let n = 0;
    for (const l of data.layers) if (isDecider(l)) for (let c = 0; c < l.groups.length; c++) if (eligible[l.groups[c]]) n++;
    const sorted = new Float64Array(n);
    let k = 0;
    for (const l of data.layers) if (isDecider(l)) for (let c = 0; c < l.groups.length; c++) if (eligible[l.groups[c]]) sorted[k++] = l.gamma![c];
    sorted.sort();
    // percent_limit: a layer is emptied when all its groups fall below the threshold
    let highest = Infinity;
    let layer = -1;
    for (const li of prunableLayers) {
      const ch = data.layers[li].groups;
      let mx = -Infinity;
      for (let c = 0; c < ch.length; c++) if (value[ch[c]] > mx) mx = value[ch[c]];
      if (mx < highest) { highest = mx; layer = li; }
    }
    const limit = !Number.isFinite(highest) || sorted.length === 0
      ? { percentLimit: 1, highest: Infinity, layer: -1 }
      : { percentLimit: lowerBound(sorted, highest) / sorted.length, highest, layer };
    prep[s] = { eligible, value, sorted, limit };
  }
  // layer_keep / round_to restore a layer's removed channels by its own |γ| (depthwise layers: by
  // their group's score), largest first, ties by channel index
  const restoreOrder: Int32Array[] = [];
  const multiplicity: (Map<number, number> | undefined)[] = [];
  for (const l of data.layers) {
    const ch = l.groups;
    if (l.prunable) {
      const own = l.depthwise ? undefined : l.gamma;
      const sc = (c: number) => (own ? own[c] : score[ch[c]]);
      const idx = Int32Array.from({ length: ch.length }, (_, i) => i);
      idx.sort((a, b) => sc(b) - sc(a) || a - b);
      restoreOrder[l.index] = idx;
    } else restoreOrder[l.index] = new Int32Array(0);
    const m = new Map<number, number>();
    let repeats = false;
    for (let c = 0; c < ch.length; c++) { const n = (m.get(ch[c]) ?? 0) + 1; m.set(ch[c], n); if (n > 1) repeats = true; }
    multiplicity[l.index] = repeats ? m : undefined;
  }
  return { data, groupCount: G, score, prunableLayers, convLayers, prep, restoreOrder, multiplicity };
}

/** The global |γ| threshold of a percent (as planPrune: kept iff value ≥ threshold). */
export function thresholdAt(sorted: Float64Array, percent: number): number {
  if (!(percent > 0) || sorted.length === 0) return -Infinity;
  const idx = Math.floor(sorted.length * percent);
  return idx >= sorted.length ? Infinity : sorted[idx];
}

export function previewPrune(model: PreviewModel, settings: PreviewSettings, out?: { keepGroup?: Uint8Array; kept?: Int32Array }): PreviewResult {
  const { data } = model;
  const p = model.prep[settings.strategy];
  const G = model.groupCount;
  const keep = out?.keepGroup && out.keepGroup.length === G ? out.keepGroup : new Uint8Array(G);
  const threshold = thresholdAt(p.sorted, settings.percent);
  const { value, eligible } = p;
  for (let g = 0; g < G; g++) keep[g] = value[g] >= threshold ? 1 : 0;
  const refused = settings.layerKeep === undefined && settings.percent > 0 && p.sorted.length > 0 && settings.percent > p.limit.percentLimit + 1e-12;

  const keptCount = (l: number): number => {
    const ch = data.layers[l].groups;
    let k = 0;
    for (let c = 0; c < ch.length; c++) k += keep[ch[c]];
    return k;
  };
  /** Restores the best removed channels of a layer (precomputed order) until it keeps `target`. */
  const restore = (l: number, target: number): boolean => {
    const ch = data.layers[l].groups;
    let k = keptCount(l);
    if (k >= target) return false;
    const order = model.restoreOrder[l];
    const mult = model.multiplicity[l];
    let changed = false;
    for (let i = 0; i < order.length && k < target; i++) {
      const g = ch[order[i]];
      if (keep[g] || !eligible[g]) continue;
      keep[g] = 1;
      changed = true;
      k += mult ? mult.get(g)! : 1;
    }
    return changed;
  };
  if (settings.layerKeep !== undefined) {
    for (const l of model.prunableLayers) {
      const n = data.layers[l].groups.length;
      restore(l, Math.max(1, Math.ceil(settings.layerKeep * n - 1e-9)));
    }
  }
  if (settings.roundTo && settings.roundTo > 1) {
    const N = settings.roundTo;
    for (let pass = 0; pass < 8; pass++) {
      let changed = false;
      for (const l of model.prunableLayers) {
        const n = data.layers[l].groups.length;
        const k = keptCount(l);
        if (k === n) continue;
        const target = Math.min(n, Math.ceil(k / N) * N);
        if (k !== target && restore(l, target)) changed = true;
      }
      if (!changed) break;
    }
  }

  const L = data.layers.length;
  const kept = out?.kept && out.kept.length === L ? out.kept : new Int32Array(L);
  for (let l = 0; l < L; l++) kept[l] = keptCount(l);
  let inputKept = 0;
  for (let c = 0; c < data.inputGroups.length; c++) inputKept += keep[data.inputGroups[c]];
  const channelsOf = (i: number) => (i < 0 ? inputKept : kept[i]);

  let params = 0;
  let bflops = 0;
  let removedChannels = 0;
  const emptied: number[] = [];
  for (let l = 0; l < L; l++) {
    const layer = data.layers[l];
    const cost = layer.cost;
    const outC = kept[l];
    let lp = 0, lb = 0;
    switch (cost.kind) {
      case 'conv': {
        const inC = channelsOf(layer.inputs[0] ?? l - 1);
        const perGroup = cost.depthwise ? 1 : cost.groups > 0 ? Math.trunc(inC / cost.groups) : 0;
        const nweights = perGroup * outC * cost.k2;
        lp = nweights + outC + (cost.bn ? outC : 0);
        lb = (2 * nweights * cost.hw) / 1e9;
        if (cost.xnor) lb /= 32;
        const n = layer.groups.length;
        removedChannels += n - outC;
        if (outC === 0 && n > 0) emptied.push(l);
        break;
      }
      case 'pool':
        lb = (cost.k2 * outC * cost.hw) / 1e9;
        break;
      case 'shortcut':
        lp = cost.params;
        lb = (cost.hw * channelsOf(l - 1) * cost.n) / 1e9;
        break;
      case 'fixed':
        lp = cost.params;
        lb = cost.bflops;
        break;
    }
    params += lp;
    // darknet (and graph.ts) keep this sum in single precision
    const f = Math.fround(lb);
    if (f > 0) bflops = Math.fround(bflops + f);
  }
  return {
    settings, threshold, percentLimit: p.limit.percentLimit, limitLayer: p.limit.layer, refused,
    keepGroup: keep, kept, params, bflops, removedChannels, emptied,
  };
}

/** Per-layer channel order by |γ|, largest first (the heatmap's columns). */
export function sortedChannelOrder(gamma: ArrayLike<number>): Int32Array {
  const idx = Int32Array.from({ length: gamma.length }, (_, i) => i);
  idx.sort((a, b) => gamma[b] - gamma[a] || a - b);
  return idx;
}

/** Histogram of values into `bins` equal bins over [lo, hi]. */
export function histogram(values: ArrayLike<number>, bins: number, lo: number, hi: number): { edges: number[]; counts: number[] } {
  const counts = new Array<number>(bins).fill(0);
  const w = (hi - lo) / bins || 1;
  for (let i = 0; i < values.length; i++) {
    let b = Math.floor((values[i] - lo) / w);
    if (b < 0) b = 0;
    if (b >= bins) b = bins - 1;
    counts[b]++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * w), counts };
}

/** The settings as a .prune.yaml (paths relative to the config's folder). */
export function pruneYaml(settings: PreviewSettings, files: { model: string; weights: string }): string {
  const lines = [
    '# Written by Darkslim\'s layer redundancy view ("Prune with these settings").',
    `model: ${yamlString(files.model)}`,
    `weights: ${yamlString(files.weights)}`,
    `strategy: ${settings.strategy}`,
    `percent: ${round(settings.percent, 4)}`,
  ];
  if (settings.layerKeep !== undefined) lines.push(`layer_keep: ${round(settings.layerKeep, 4)}`);
  if (settings.roundTo && settings.roundTo > 1) lines.push(`round_to: ${settings.roundTo}`);
  return lines.join('\n') + '\n';
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function yamlString(s: string): string {
  return /^[\w./-]+$/.test(s) && !/^[-.]/.test(s) ? s : JSON.stringify(s);
}
