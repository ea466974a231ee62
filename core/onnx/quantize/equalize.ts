// Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization and
// Bias Correction", ICCV 2019) for conv → conv pairs, before quantization.
//
// Depthwise-separable YOLOs (Yolo-Fastest, MobileNet-YOLO) fold BN into convs whose output
// channels have wildly different ranges: a channel of a 1x1 conv that lives in [-0.5, -0.2] next
// to channels reaching 14, read by a depthwise conv whose weights for that channel reach 46. One
// scale per activation tensor then leaves such a channel a handful of levels, and the depthwise
// conv multiplies that error by 46. Equalization rescales channel c of the producer by 1/s_c and
// the consumer's weights reading channel c by s_c: the network computes exactly the same function
// (a conv is linear, and linear / ReLU / leaky ReLU commute with a positive scale), but the
// channels' ranges become comparable. s_c = sqrt(r1_c / r2_c), r1_c = max|W_producer[c]|,
// r2_c = max|W_consumer[:, c]|, so both weight ranges become sqrt(r1_c · r2_c).
//
// A pair qualifies when the producer is a conv whose activation is positively homogeneous
// (linear, relu, leaky) and its output is read by the consumer conv alone (not by a shortcut,
// route or [yolo] layer).
import { foldConv } from '../export';
import type { ConvSpec, LayerSpec, NetworkSpec } from '../layers';

const HOMOGENEOUS = new Set(['linear', 'relu', 'leaky', 'revleaky', 'relie']);

export interface EqualizedPair {
  producer: number;
  consumer: number;
  /** Range of s_c over the channels. */
  minScale: number;
  maxScale: number;
}

/** Conv layers with BN folded in (bn undefined afterwards), copies: the spec's arrays are not touched. */
function folded(l: ConvSpec): ConvSpec {
  const { weights, biases } = foldConv(l);
  return { ...l, weights: new Float32Array(weights), biases: new Float32Array(biases), bn: undefined };
}

/** The pairs that can be equalized: producer conv → consumer conv, the producer read by nothing else. */
export function equalizablePairs(spec: NetworkSpec): [number, number][] {
  const readers = new Map<number, number[]>();
  for (const l of spec.layers) for (const i of l.inputs) {
    if (!readers.has(i)) readers.set(i, []);
    readers.get(i)!.push(l.index);
  }
  const byIndex = new Map<number, LayerSpec>(spec.layers.map((l) => [l.index, l]));
  const pairs: [number, number][] = [];
  for (const l of spec.layers) {
    if (l.kind !== 'conv' || !HOMOGENEOUS.has(l.activation)) continue;
    const r = readers.get(l.index) ?? [];
    if (r.length !== 1) continue;
    const c = byIndex.get(r[0]);
    if (!c || c.kind !== 'conv' || c.inputs.length !== 1 || c.dilation !== 1) continue;
    pairs.push([l.index, c.index]);
  }
  return pairs;
}

/**
 * A copy of the spec with every equalizable pair equalized (the convs of the pairs get their BN
 * folded). Pairs are processed in order, so a layer that is the consumer of one pair and the
 * producer of the next sees both rescalings.
 */
export function equalizeSpec(spec: NetworkSpec, opts: { maxScale?: number } = {}): { spec: NetworkSpec; pairs: EqualizedPair[] } {
  const limit = opts.maxScale ?? 1e3;
  const layers = spec.layers.map((l) => (l.kind === 'conv' ? folded(l) : l));
  const byIndex = new Map<number, LayerSpec>(layers.map((l) => [l.index, l]));
  const out: EqualizedPair[] = [];
  for (const [pi, ci] of equalizablePairs(spec)) {
    const p = byIndex.get(pi) as ConvSpec;
    const c = byIndex.get(ci) as ConvSpec;
    const channels = p.filters;
    const pPer = p.weights.length / channels;
    const inPerGroup = c.in[0] / c.groups;
    const outPerGroup = c.filters / c.groups;
    const k2 = c.size * c.size;
    const cPer = inPerGroup * k2; // weights per consumer output channel
    const r1 = new Float64Array(channels);
    const r2 = new Float64Array(channels);
    for (let ch = 0; ch < channels; ch++) {
      let m = 0;
      for (let k = 0; k < pPer; k++) m = Math.max(m, Math.abs(p.weights[ch * pPer + k]));
      r1[ch] = m;
    }
    // consumer weights reading input channel ch: group g = ch / inPerGroup, local ch % inPerGroup
    const each = (ch: number, fn: (index: number) => void) => {
      const g = Math.floor(ch / inPerGroup);
      const local = ch % inPerGroup;
      for (let o = g * outPerGroup; o < (g + 1) * outPerGroup; o++) {
        const base = o * cPer + local * k2;
        for (let k = 0; k < k2; k++) fn(base + k);
      }
    };
    for (let ch = 0; ch < channels; ch++) {
      let m = 0;
      each(ch, (i) => { m = Math.max(m, Math.abs(c.weights[i])); });
      r2[ch] = m;
    }
    let lo = Infinity;
    let hi = 0;
    for (let ch = 0; ch < channels; ch++) {
      let s = r1[ch] > 0 && r2[ch] > 0 ? Math.sqrt(r1[ch] / r2[ch]) : 1;
      s = Math.min(limit, Math.max(1 / limit, s));
      lo = Math.min(lo, s);
      hi = Math.max(hi, s);
      for (let k = 0; k < pPer; k++) p.weights[ch * pPer + k] /= s;
      p.biases[ch] /= s;
      each(ch, (i) => { c.weights[i] *= s; });
    }
    out.push({ producer: pi, consumer: ci, minScale: lo, maxScale: hi });
  }
  return { spec: { ...spec, layers }, pairs: out };
}
