// Layer pruning: removes whole residual blocks — a [shortcut] and the layers it wraps — so that
// the layer after the shortcut reads the block's input directly (x + f(x) becomes x). Blocks are
// ranked by the mean |γ| of their BN convs; the lowest go first. Every `layers=`, `from=` and
// `share_index=` reference after a removed block is renumbered (relative references stay relative).
//
// A block is the layers F+1..S of a shortcut S with a single `from=F`, when the block's layers read
// only F and each other, no layer outside the block reads inside it (S itself may be read: readers
// are sent to F), the shortcut is linear with no weights_type, and the block holds a conv.
// Removing a block is not compensated: f(x) depends on the input. Fine-tune afterwards.
import { analyzeCfg } from '../darknet/graph';
import { SectionOptions } from '../darknet/options';
import { splitCList } from '../darknet/parser';
import { editCfg, valueTokenRange, type CfgEdit } from '../darknet/writer';
import type { CfgEntry, LayerWeights, ModelGraph, ModelWeights } from '../darknet/types';
import { PruneError } from './policy';

export interface ResidualBlock {
  /** The shortcut layer. */
  shortcut: number;
  /** The layer whose output the shortcut adds (the block's input). */
  from: number;
  /** Removed layers: from+1 … shortcut. */
  layers: number[];
  /** BN convs in the block. */
  convs: number[];
  /** Mean |γ| of the block's BN convs (NaN without weights). */
  meanGamma: number;
}

export interface BlockSearch {
  blocks: ResidualBlock[];
  /** Shortcuts that do not form a removable block, with the reason. */
  skipped: { shortcut: number; reason: string }[];
}

/** Keys that hold layer references, by section type. */
const REF_KEYS: Record<string, string[]> = {
  route: ['layers'],
  shortcut: ['from'],
  scale_channels: ['from'],
  sam: ['from'],
  convolutional: ['share_index'],
};

export function findResidualBlocks(graph: ModelGraph, weights?: ModelWeights): BlockSearch {
  const layers = graph.layers;
  const readers: number[][] = layers.map(() => []);
  for (const l of layers) for (const i of l.inputs) if (i >= 0) readers[i].push(l.index);
  const blocks: ResidualBlock[] = [];
  const skipped: { shortcut: number; reason: string }[] = [];
  for (const s of layers) {
    if (s.type !== 'shortcut') continue;
    const o = new SectionOptions(s.section);
    const skip = (reason: string) => skipped.push({ shortcut: s.index, reason });
    if (s.inputs.length !== 2) { skip('it adds more than one earlier layer'); continue; }
    const F = s.inputs[1];
    if ((s.activation ?? 'linear') !== 'linear') { skip(`its activation is ${s.activation}, not linear`); continue; }
    if (o.str('weights_type', 'none') !== 'none') { skip('it has weights_type'); continue; }
    if (F >= s.index - 1) { skip('it wraps no layers'); continue; }
    const inner = layers.slice(F + 1, s.index);
    let bad: string | undefined;
    for (const l of inner) {
      if (l.inputs.some((i) => i < F || i >= s.index)) { bad = `layer ${l.index} inside it reads layer ${l.inputs.find((i) => i < F || i >= s.index)}, outside the block`; break; }
      const outside = readers[l.index].find((r) => r > s.index || r <= F);
      if (outside !== undefined) { bad = `layer ${outside} outside it reads layer ${l.index} inside it`; break; }
      if (l.type === 'yolo' || l.type === 'region' || l.type === 'Gaussian_yolo' || l.type === 'detection') { bad = 'it contains a detection head'; break; }
    }
    if (bad) { skip(bad); continue; }
    const sIn = layers[s.index - 1].output;
    const fOut = layers[F].output;
    if (sIn[0] !== fOut[0] || sIn[1] !== fOut[1] || sIn[2] !== fOut[2]) { skip('the shortcut adds tensors of different shapes'); continue; }
    const convs = inner.filter((l) => l.type === 'convolutional' && l.conv?.batchNormalize).map((l) => l.index);
    if (inner.every((l) => l.type !== 'convolutional')) { skip('it wraps no conv'); continue; }
    let meanGamma = NaN;
    if (weights && convs.length) {
      let sum = 0, n = 0;
      for (const c of convs) {
        const g = weights.layers.get(c)?.scales;
        if (!g) continue;
        for (let i = 0; i < g.length; i++) sum += Math.abs(g[i]);
        n += g.length;
      }
      meanGamma = n ? sum / n : NaN;
    }
    blocks.push({ shortcut: s.index, from: F, layers: [...inner.map((l) => l.index), s.index], convs, meanGamma });
  }
  return { blocks, skipped };
}

/** The `n` blocks with the lowest mean |γ| (non-overlapping), in layer order. */
export function selectBlocks(search: BlockSearch, n: number, modelName = 'this model'): ResidualBlock[] {
  if (n <= 0) return [];
  if (search.blocks.length === 0) {
    throw new PruneError('no-blocks', `${modelName} has no residual blocks (a [shortcut] and the convs it wraps), so layer pruning (shortcuts) does not apply to it`
      + (search.skipped.length ? `; shortcuts found but not removable: ${search.skipped.slice(0, 3).map((s) => `layer ${s.shortcut} (${s.reason})`).join(', ')}` : ''));
  }
  const ranked = [...search.blocks].sort((a, b) => (a.meanGamma - b.meanGamma) || a.shortcut - b.shortcut);
  const chosen: ResidualBlock[] = [];
  const used = new Set<number>();
  for (const b of ranked) {
    if (chosen.length >= n) break;
    if (b.layers.some((i) => used.has(i))) continue;
    chosen.push(b);
    for (const i of b.layers) used.add(i);
  }
  if (chosen.length < n) {
    throw new PruneError('no-blocks', `shortcuts=${n} asks for more residual blocks than ${modelName} has: it has ${chosen.length} removable block${chosen.length === 1 ? '' : 's'}`, { available: chosen.length });
  }
  return chosen.sort((a, b) => a.shortcut - b.shortcut);
}

export interface LayerPruneResult {
  text: string;
  graph: ModelGraph;
  weights?: ModelWeights;
  /** Old layer index → new index; -1 for removed layers. */
  indexMap: Int32Array;
}

function refTokens(graph: ModelGraph, entry: CfgEntry): { text: string; sep: string } {
  const r = valueTokenRange(graph.doc, entry);
  const text = graph.doc.lines[entry.line].slice(r.start.character, r.end.character);
  return { text, sep: /,\s/.test(text) ? ', ' : ',' };
}

/** Removes blocks: the cfg without their sections (renumbered), its graph and the remaining weights. */
export function removeBlocks(graph: ModelGraph, weights: ModelWeights | undefined, blocks: ResidualBlock[]): LayerPruneResult {
  const n = graph.layers.length;
  const removed = new Uint8Array(n);
  /** Where readers of a removed shortcut go instead. */
  const redirect = new Int32Array(n).fill(-1);
  for (const b of blocks) {
    for (const i of b.layers) removed[i] = 1;
    redirect[b.shortcut] = b.from;
  }
  const indexMap = new Int32Array(n).fill(-1);
  let k = 0;
  for (let i = 0; i < n; i++) if (!removed[i]) indexMap[i] = k++;
  const target = (abs: number): number => {
    let a = abs;
    while (a >= 0 && removed[a]) {
      if (redirect[a] < 0) throw new PruneError('bad-model', `a kept layer reads layer ${abs}, which a removed block contains`);
      a = redirect[a];
    }
    return a < 0 ? a : indexMap[a];
  };

  const edits: CfgEdit[] = [];
  for (const l of graph.layers) {
    const s = graph.doc.sections.indexOf(l.section);
    if (removed[l.index]) { edits.push({ kind: 'remove-section', section: s }); continue; }
    const keys = REF_KEYS[l.type] ?? [];
    const o = new SectionOptions(l.section);
    for (const key of keys) {
      const entry = o.entry(key);
      if (!entry) continue;
      const raw = key === 'share_index' ? [String(o.int(key, 0))] : splitCList(entry.value);
      const newI = indexMap[l.index];
      let changed = false;
      const vals = raw.map((t) => {
        const r = Number.parseInt(t, 10);
        if (!Number.isFinite(r)) return t;
        const abs = r < 0 ? l.index + r : r;
        const na = target(abs);
        const nr = r < 0 ? na - newI : na;
        if (nr !== r) changed = true;
        return String(nr);
      });
      if (changed) edits.push({ kind: 'set', section: s, key, value: vals.join(refTokens(graph, entry).sep) });
    }
  }
  const text = editCfg(graph.doc, edits);
  const pruned = analyzeCfg(text, { width: graph.net.width, height: graph.net.height });
  const errs = (g: ModelGraph) => g.diagnostics.filter((d) => d.severity === 'error').length;
  if (errs(pruned) > errs(graph) || pruned.layers.length !== k) {
    const first = pruned.diagnostics.find((d) => d.severity === 'error');
    throw new PruneError('bad-model', `internal error: removing residual blocks broke the cfg${first ? `: ${first.message}` : ''}`);
  }
  if (!weights) return { text, graph: pruned, indexMap };
  const layers = new Map<number, LayerWeights>();
  let offset = weights.header.headerBytes;
  for (const l of graph.layers) {
    if (removed[l.index]) continue;
    const lw = weights.layers.get(l.index);
    const ni = indexMap[l.index];
    if (!lw) continue;
    if (pruned.layers[ni].weightFloats !== l.weightFloats) throw new PruneError('bad-model', `internal error: layer ${l.index} (now ${ni}) changed size when blocks were removed`);
    layers.set(ni, { ...lw, index: ni, offset });
    offset += l.weightFloats * 4;
  }
  return { text, graph: pruned, weights: { header: weights.header, layers, loadedLayers: pruned.layers.length, bytes: offset }, indexMap };
}
