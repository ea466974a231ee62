// Synthetic darknet weights for cfgs without trained ones: a seeded, well-scaled random .weights
// image (He-scaled conv weights, BN statistics near identity), read back with the real reader.
import { readWeights } from '../../core/darknet/weights';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { rng } from '../../core/random';
export { rng } from '../../core/random';


function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** The bytes of a .weights file (header 0.2.5) holding random values for every layer of the graph. */
export function syntheticWeightsBytes(graph: ModelGraph, seed = 1): Uint8Array {
  const r = rng(seed);
  const total = graph.layers.reduce((n, l) => n + l.weightFloats, 0);
  const values = new Float32Array(total);
  let at = 0;
  const floats = { push: (v: number) => { values[at++] = v; } };
  for (const l of graph.layers) {
    if (l.type === 'convolutional' && l.conv) {
      const n = l.conv.filters;
      const fanIn = (l.input[2] / l.conv.groups) * l.conv.size * l.conv.size;
      for (let i = 0; i < n; i++) floats.push((r() - 0.5) * 0.2); // biases (BN β)
      if (l.conv.batchNormalize) {
        for (let i = 0; i < n; i++) floats.push(0.5 + r()); // γ
        for (let i = 0; i < n; i++) floats.push((r() - 0.5) * 0.2); // mean
        for (let i = 0; i < n; i++) floats.push(0.5 + r()); // variance
      }
      const count = l.weightFloats - n * (l.conv.batchNormalize ? 4 : 1);
      const std = Math.sqrt(2 / Math.max(1, fanIn));
      for (let i = 0; i < count; i++) floats.push(gaussian(r) * std);
    } else if (l.type === 'batchnorm') {
      const c = l.output[2];
      for (let i = 0; i < c; i++) floats.push((r() - 0.5) * 0.2);
      for (let i = 0; i < c; i++) floats.push(0.5 + r());
      for (let i = 0; i < c; i++) floats.push((r() - 0.5) * 0.2);
      for (let i = 0; i < c; i++) floats.push(0.5 + r());
    } else if (l.weightFloats > 0) {
      for (let i = 0; i < l.weightFloats; i++) floats.push((r() - 0.5) * 0.2);
    }
  }
  const out = new Uint8Array(20 + at * 4);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, 0, true);
  dv.setInt32(4, 2, true);
  dv.setInt32(8, 5, true);
  dv.setBigUint64(12, 0n, true);
  new Float32Array(out.buffer, 20, at).set(values.subarray(0, at));
  return out;
}

export function syntheticWeights(graph: ModelGraph, seed = 1): ModelWeights {
  const { weights, check } = readWeights(syntheticWeightsBytes(graph, seed), graph);
  if (!check.ok) throw new Error(`synthetic weights do not fit: ${check.message}`);
  return weights;
}

/** A deterministic input in [0,1). */
export function syntheticInput(n: number, seed = 7): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = r();
  return x;
}
