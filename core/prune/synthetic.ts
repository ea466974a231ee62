// Deterministic synthetic weights for cfgs without trained weights (tests, benchmarks, previews):
// BN γ = |N(0,1)|·0.5 with a fraction pushed near 0 (as after sparsity training), β ~ N(0, 0.3),
// rolling_mean ~ N(0, 0.1), rolling_variance in [0.5, 1.5), conv weights with variance 1/fan_in
// (a sum of four uniforms: close to normal and fast enough for 60M floats).
import { expectedWeightsBytes, readWeights } from '../darknet/weights';
import type { ModelGraph, ModelWeights } from '../darknet/types';

export interface SyntheticOptions {
  seed?: number;
  /** Fraction of γ drawn near zero (|γ| < 0.005). Default 0.3. */
  sparse?: number;
  /** Header version (default 0.2.5, 20-byte header). */
  major?: number;
  minor?: number;
}

/** xorshift32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let s = (seed | 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export function gaussian(next: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) { const s = spare; spare = undefined; return s; }
    let u = 0;
    while (u === 0) u = next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** The bytes of a complete synthetic .weights file for a graph. */
export function syntheticWeightsBytes(graph: ModelGraph, opts: SyntheticOptions = {}): Uint8Array {
  const major = opts.major ?? 0;
  const minor = opts.minor ?? 2;
  const headerBytes = major * 10 + minor >= 2 ? 20 : 16;
  const total = expectedWeightsBytes(graph, headerBytes);
  const bytes = new Uint8Array(total);
  const dv = new DataView(bytes.buffer);
  dv.setInt32(0, major, true);
  dv.setInt32(4, minor, true);
  dv.setInt32(8, 5, true);
  if (headerBytes === 20) dv.setBigUint64(12, 0n, true); else dv.setUint32(12, 0, true);
  const f = new Float32Array(bytes.buffer, headerBytes, (total - headerBytes) / 4);
  const next = rng(opts.seed ?? 1);
  const normal = gaussian(next);
  const sparse = opts.sparse ?? 0.3;
  let k = 0;
  const fillWeights = (n: number, fanIn: number) => {
    // sum of 4 U(-0.5,0.5) has variance 1/3; scale to 1/fan_in
    const scale = Math.sqrt(3 / Math.max(1, fanIn));
    for (let i = 0; i < n; i++) f[k++] = (next() + next() + next() + next() - 2) * scale;
  };
  for (const l of graph.layers) {
    if (l.weightFloats === 0) continue;
    const start = k;
    if (l.type === 'convolutional' && l.conv) {
      const n = l.conv.filters;
      const bn = l.conv.batchNormalize;
      for (let i = 0; i < n; i++) f[k++] = normal() * (bn ? 0.3 : 0.1);
      if (bn) {
        for (let i = 0; i < n; i++) { const g = Math.abs(normal()) * 0.5; f[k++] = next() < sparse ? g * 0.01 : g; }
        for (let i = 0; i < n; i++) f[k++] = normal() * 0.1;
        for (let i = 0; i < n; i++) f[k++] = 0.5 + next();
      }
      const fanIn = (l.input[2] / Math.max(1, l.conv.groups)) * l.conv.size * l.conv.size;
      fillWeights(start + l.weightFloats - k, fanIn);
    } else if (l.type === 'batchnorm') {
      const c = l.output[2];
      for (let i = 0; i < c; i++) f[k++] = normal() * 0.3;
      for (let i = 0; i < c; i++) f[k++] = Math.abs(normal()) * 0.5;
      for (let i = 0; i < c; i++) f[k++] = normal() * 0.1;
      for (let i = 0; i < c; i++) f[k++] = 0.5 + next();
    } else {
      fillWeights(l.weightFloats, Math.max(1, l.input[0] * l.input[1] * l.input[2]));
      if (l.type === 'connected' && l.weightFloats > 4 * l.output[2]) {
        // connected with BN stores scales, mean, variance last: keep the variance positive
        const out = l.output[2];
        const hasBn = l.weightFloats === out + out * l.input[0] * l.input[1] * l.input[2] + 3 * out;
        if (hasBn) for (let i = 0; i < out; i++) f[start + l.weightFloats - out + i] = 0.5 + next();
      }
    }
    k = start + l.weightFloats;
  }
  return bytes;
}

/** Synthetic weights read back against the graph (views into one fresh buffer). */
export function syntheticWeights(graph: ModelGraph, opts: SyntheticOptions = {}): ModelWeights {
  const r = readWeights(syntheticWeightsBytes(graph, opts), graph);
  if (!r.check.ok) throw new Error(`synthetic weights do not fit: ${r.check.message}`);
  return r.weights;
}
