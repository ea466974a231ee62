// Channel surgery: removes the planned channels from the producing convs (filters, biases, BN
// triplet) and from every consumer's input weights, through routes, shortcuts and pass-through
// layers, and folds each removed channel's constant output into its consumers (β compensation).
//
// A removed channel is assumed to have γ = 0, so its BN output is β and the channel outputs the
// constant act(β) everywhere (METHOD.md §2). A depthwise channel that follows a removed input
// outputs act(γ·(c·Σw − mean)/√(var+ε) + β) for its input constant c. The constants travel through
// route (concatenation, slices), shortcut (sum, then the shortcut's activation), scale_channels
// (product), upsample, maxpool, avgpool and dropout (unchanged); every conv that reads them adds
// offset[o] = Σ_c Σ_k W[o,c,k]·const_c to its BN rolling_mean (subtracting) or, without BN, to its
// bias. This is exact wherever the consumer's kernel lies inside the image; at zero-padded borders
// of k×k consumers (k > 1) the padded taps saw 0, not the constant, so the border rows and columns
// differ. 1×1 consumers are exact everywhere.
import { analyzeCfg } from '../darknet/graph';
import { SectionOptions } from '../darknet/options';
import { editCfg, type CfgEdit } from '../darknet/writer';
import { readWeights, writeWeights } from '../darknet/weights';
import type { Layer, LayerWeights, ModelGraph, ModelWeights } from '../darknet/types';
import { activate, BN_EPSILON } from './activations';
import { PruneError, type PrunePlan } from './policy';

export interface SurgeryOptions {
  /** Fold removed channels' constants into their consumers (default true). */
  compensate?: boolean;
  /** Build the pruned weights (default true); false computes only the pruned cfg and graph. */
  weights?: boolean;
}

export interface SurgeryResult {
  text: string;
  graph: ModelGraph;
  weights?: ModelWeights;
  /** Consumer output channels whose mean or bias was adjusted by compensation. */
  compensatedChannels: number;
}

/** Keep mask (1 = kept) of every layer's output channels under a plan. */
export function layerKeepMasks(plan: PrunePlan): Uint8Array[] {
  return plan.groups.layerChannels.map((ch) => {
    const m = new Uint8Array(ch.length);
    for (let c = 0; c < ch.length; c++) m[c] = plan.keepGroup[ch[c]];
    return m;
  });
}

function inputMask(plan: PrunePlan, masks: Uint8Array[], i: number): Uint8Array {
  if (i >= 0) return masks[i];
  return new Uint8Array(plan.groups.inputChannels.length).fill(1);
}

/**
 * The constant each removed channel of each layer outputs (0 for kept channels); undefined for
 * layers without removed channels.
 */
export function removedConstants(graph: ModelGraph, weights: ModelWeights, plan: PrunePlan, masks = layerKeepMasks(plan)): (Float64Array | undefined)[] {
  const deltas: (Float64Array | undefined)[] = [];
  const any = (m: Uint8Array) => m.includes(0);
  const of = (i: number) => (i >= 0 ? deltas[i] : undefined);
  for (const l of graph.layers) {
    const mask = masks[l.index];
    if (!any(mask)) { deltas.push(undefined); continue; }
    const d = new Float64Array(mask.length);
    switch (l.type) {
      case 'convolutional': {
        const lw = weights.layers.get(l.index);
        if (!lw?.scales || !lw.rollingMean || !lw.rollingVariance) throw new PruneError('no-weights', `no batch-norm weights for layer ${l.index}`);
        const act = l.conv!.activation;
        const dw = plan.groups.depthwise.has(l.index);
        const kk = l.conv!.size * l.conv!.size;
        const din = dw ? of(l.inputs[0]) : undefined;
        for (let c = 0; c < mask.length; c++) {
          if (mask[c]) continue;
          if (dw) {
            let wsum = 0;
            for (let k = 0; k < kk; k++) wsum += lw.weights[c * kk + k];
            const pre = (din ? din[c] : 0) * wsum;
            const bn = lw.scales[c] * (pre - lw.rollingMean[c]) / Math.sqrt(lw.rollingVariance[c] + BN_EPSILON) + lw.biases[c];
            d[c] = activate(act, bn);
          } else {
            d[c] = activate(act, lw.biases[c]);
          }
        }
        break;
      }
      case 'route': {
        const parts = l.inputs.map((i) => ({ n: i >= 0 ? masks[i].length : plan.groups.inputChannels.length, d: of(i) }));
        const total = parts.reduce((s, p) => s + p.n, 0);
        const cat = new Float64Array(total);
        let k = 0;
        for (const p of parts) { if (p.d) cat.set(p.d, k); k += p.n; }
        const g = l.groups ?? 1;
        const s = total / g;
        d.set(g > 1 ? cat.subarray((l.groupId ?? 0) * s, ((l.groupId ?? 0) + 1) * s) : cat);
        break;
      }
      case 'shortcut': {
        const act = l.activation ?? 'linear';
        for (let c = 0; c < mask.length; c++) {
          if (mask[c]) continue;
          let sum = 0;
          for (const i of l.inputs) sum += of(i)?.[c] ?? 0;
          d[c] = activate(act, sum);
        }
        break;
      }
      case 'scale_channels':
      case 'sam': {
        const a = of(l.inputs[0]);
        const b = of(l.inputs[1]);
        const act = l.activation ?? 'linear';
        for (let c = 0; c < mask.length; c++) if (!mask[c]) d[c] = activate(act, (a?.[c] ?? 0) * (b?.[c] ?? 0));
        break;
      }
      case 'activation': {
        const a = of(l.inputs[0]);
        for (let c = 0; c < mask.length; c++) if (!mask[c]) d[c] = activate(l.activation ?? 'linear', a?.[c] ?? 0);
        break;
      }
      case 'upsample': {
        // nearest upsampling times `scale`; stride < 0 sums stride² cells (then times scale)
        const a = of(l.inputs[0]);
        const raw = l.stride ?? 2;
        const k = new SectionOptions(l.section).float('scale', 1) * (raw < 0 ? raw * raw : 1);
        if (a) for (let c = 0; c < d.length; c++) d[c] = a[c] * k;
        break;
      }
      default: {
        // pass-through layers (maxpool, avgpool, local_avgpool, dropout): a constant channel stays constant
        const a = of(l.inputs[0]);
        if (a) d.set(a.subarray(0, d.length));
      }
    }
    deltas.push(d);
  }
  return deltas;
}

function indices(mask: Uint8Array): Int32Array {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  const out = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[k++] = i;
  return out;
}

// Hot loops live in small functions with fixed argument types so V8 keeps them optimised.

/** Rows `outKeep` of W (row length rowOld), all of each row. */
function gatherRows(W: Float32Array, outKeep: Int32Array, rowOld: number): Float32Array {
  const out = new Float32Array(outKeep.length * rowOld);
  for (let j = 0; j < outKeep.length; j++) {
    const src = outKeep[j] * rowOld;
    out.set(W.subarray(src, src + rowOld), j * rowOld);
  }
  return out;
}

/** Rows `outKeep` of W restricted to the input-channel runs (runStart[r], runLen[r]) of kk floats each. */
function gatherRuns(W: Float32Array, outKeep: Int32Array, rowOld: number, runStart: Int32Array, runLen: Int32Array, rowNew: number): Float32Array {
  const out = new Float32Array(outKeep.length * rowNew);
  const nr = runStart.length;
  for (let j = 0; j < outKeep.length; j++) {
    const src = outKeep[j] * rowOld;
    let t = j * rowNew;
    for (let r = 0; r < nr; r++) {
      const s = src + runStart[r];
      const len = runLen[r];
      if (len > 48) {
        out.set(W.subarray(s, s + len), t);
      } else {
        for (let k = 0; k < len; k++) out[t + k] = W[s + k];
      }
      t += len;
    }
  }
  return out;
}

/** offset[j] = Σ_c Σ_k W[outKeep[j], remIdx[c], k] · remVal[c] */
function offsets(W: Float32Array, outKeep: Int32Array, rowOld: number, kk: number, remIdx: Int32Array, remVal: Float64Array): Float64Array {
  const off = new Float64Array(outKeep.length);
  for (let j = 0; j < outKeep.length; j++) {
    const row = outKeep[j] * rowOld;
    let acc = 0;
    for (let c = 0; c < remIdx.length; c++) {
      const s = row + remIdx[c] * kk;
      let ws = 0;
      for (let k = 0; k < kk; k++) ws += W[s + k];
      acc += ws * remVal[c];
    }
    off[j] = acc;
  }
  return off;
}

function pickF32(a: Float32Array, idx: Int32Array): Float32Array {
  const r = new Float32Array(idx.length);
  for (let j = 0; j < idx.length; j++) r[j] = a[idx[j]];
  return r;
}

/** A conv's arrays with only the kept output/input channels, compensation offsets applied. */
function pruneConvWeights(l: Layer, lw: LayerWeights, outKeep: Int32Array, inMask: Uint8Array | undefined, dw: boolean,
  inDelta: Float64Array | undefined, compensate: boolean): { lw: LayerWeights; compensated: number } {
  const conv = l.conv!;
  const kk = conv.size * conv.size;
  const cinFull = dw ? 1 : l.input[2] / conv.groups;
  const inKeep = !dw && inMask && inMask.includes(0) ? indices(inMask) : undefined;
  const n = outKeep.length;
  const rowOld = cinFull * kk;
  // compensation: removed inputs with a non-zero constant
  const rem: number[] = [];
  if (compensate && inDelta && !dw && inMask) for (let c = 0; c < inMask.length; c++) if (!inMask[c] && inDelta[c] !== 0) rem.push(c);
  const allOut = n === conv.filters;
  if (allOut && !inKeep && rem.length === 0) return { lw, compensated: 0 };

  const W = lw.weights;
  let weights: Float32Array;
  if (allOut && !inKeep) {
    weights = W;
  } else if (!inKeep) {
    weights = gatherRows(W, outKeep, rowOld);
  } else {
    const starts: number[] = [];
    const lens: number[] = [];
    for (let c = 0; c < inKeep.length;) {
      let e = c + 1;
      while (e < inKeep.length && inKeep[e] === inKeep[e - 1] + 1) e++;
      starts.push(inKeep[c] * kk);
      lens.push((e - c) * kk);
      c = e;
    }
    weights = gatherRuns(W, outKeep, rowOld, Int32Array.from(starts), Int32Array.from(lens), inKeep.length * kk);
  }
  const pick = (a: Float32Array) => (allOut ? new Float32Array(a) : pickF32(a, outKeep));
  const biases = pick(lw.biases);
  const scales = lw.scales ? (allOut ? lw.scales : pickF32(lw.scales, outKeep)) : undefined;
  const rollingMean = lw.rollingMean ? pick(lw.rollingMean) : undefined;
  const rollingVariance = lw.rollingVariance ? (allOut ? lw.rollingVariance : pickF32(lw.rollingVariance, outKeep)) : undefined;
  let compensated = 0;
  if (rem.length) {
    const off = offsets(W, outKeep, rowOld, kk, Int32Array.from(rem), Float64Array.from(rem, (c) => inDelta![c]));
    const target = conv.batchNormalize && rollingMean ? rollingMean : biases;
    const sign = target === rollingMean ? -1 : 1;
    for (let j = 0; j < n; j++) {
      if (off[j] === 0) continue;
      compensated++;
      target[j] = target[j] + sign * off[j];
    }
  }
  return { lw: { index: l.index, offset: 0, biases, scales, rollingMean, rollingVariance, weights }, compensated };
}

function sectionIndex(graph: ModelGraph, l: Layer): number {
  return graph.doc.sections.indexOf(l.section);
}

/** Applies a plan: the pruned cfg text, its graph and (unless opts.weights is false) its weights. */
export function applyPlan(graph: ModelGraph, weights: ModelWeights | undefined, plan: PrunePlan, opts: SurgeryOptions = {}): SurgeryResult {
  const compensate = opts.compensate ?? true;
  const buildWeights = opts.weights ?? true;
  const masks = layerKeepMasks(plan);
  const edits: CfgEdit[] = [];
  for (const l of graph.layers) {
    if (l.type !== 'convolutional') continue;
    const kept = plan.kept.get(l.index)!;
    if (kept.length === l.conv!.filters) continue;
    const s = sectionIndex(graph, l);
    edits.push({ kind: 'set', section: s, key: 'filters', value: String(kept.length) });
    if (plan.groups.depthwise.has(l.index)) edits.push({ kind: 'set', section: s, key: 'groups', value: String(kept.length) });
  }
  const text = edits.length ? editCfg(graph.doc, edits) : graph.doc.text;
  const pruned = analyzeCfg(text, { width: graph.net.width, height: graph.net.height });
  checkPrunedGraph(graph, pruned, plan);
  if (!buildWeights || !weights) return { text, graph: pruned, compensatedChannels: 0 };

  const deltas = compensate ? removedConstants(graph, weights, plan, masks) : [];
  const layers = new Map<number, LayerWeights>();
  let compensatedChannels = 0;
  for (const l of graph.layers) {
    const lw = weights.layers.get(l.index);
    if (!lw) {
      if (l.weightFloats > 0) throw new PruneError('no-weights', `no weights for layer ${l.index}: the weights file does not cover it (partial weights cannot be pruned)`);
      continue;
    }
    if (l.type !== 'convolutional') { layers.set(l.index, lw); continue; }
    const dw = plan.groups.depthwise.has(l.index);
    const inIdx = l.inputs[0];
    const r = pruneConvWeights(l, lw, plan.kept.get(l.index)!, inputMask(plan, masks, inIdx), dw,
      inIdx >= 0 ? deltas[inIdx] : undefined, compensate);
    compensatedChannels += r.compensated;
    layers.set(l.index, r.lw);
  }
  const out: ModelWeights = { header: weights.header, layers, loadedLayers: pruned.layers.length, bytes: 0 };
  let offset = weights.header.headerBytes;
  for (const l of pruned.layers) {
    const lw = layers.get(l.index);
    if (lw) { lw.offset = offset; offset += l.weightFloats * 4; }
  }
  out.bytes = offset;
  return { text, graph: pruned, weights: out, compensatedChannels };
}

function checkPrunedGraph(before: ModelGraph, after: ModelGraph, plan: PrunePlan): void {
  const errs = (g: ModelGraph) => g.diagnostics.filter((d) => d.severity === 'error').length;
  if (after.layers.length !== before.layers.length || errs(after) > errs(before)) {
    const first = after.diagnostics.find((d) => d.severity === 'error');
    throw new PruneError('bad-model', `internal error: the pruned cfg does not build cleanly${first ? `: ${first.message}` : ''}`);
  }
  for (const l of after.layers) {
    if (l.type !== 'convolutional') continue;
    const k = plan.kept.get(l.index)!.length;
    if (l.output[2] !== k) throw new PruneError('bad-model', `internal error: pruned layer ${l.index} has ${l.output[2]} channels, the plan keeps ${k}`);
  }
}

/** A deep copy of a model's weights (one new buffer). */
export function cloneWeights(graph: ModelGraph, weights: ModelWeights): ModelWeights {
  return readWeights(writeWeights(graph, weights), graph).weights;
}

/**
 * The original model with the planned channels switched off: γ = 0 for every removed channel
 * (and β = 0 with zeroBeta). The pruned model reproduces this model's outputs (exactly with
 * zeroBeta and activations with act(0) = 0; with trained β exactly away from padded borders).
 */
export function maskedWeights(graph: ModelGraph, weights: ModelWeights, plan: PrunePlan, opts: { zeroBeta?: boolean } = {}): ModelWeights {
  const copy = cloneWeights(graph, weights);
  for (const g of plan.groups.groups) {
    if (plan.keepGroup[g.id]) continue;
    for (const m of g.members) {
      const lw = copy.layers.get(m.layer)!;
      lw.scales![m.channel] = 0;
      if (opts.zeroBeta) lw.biases[m.channel] = 0;
    }
  }
  return copy;
}
