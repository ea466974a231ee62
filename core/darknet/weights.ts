// Reads and writes darknet .weights files (parser.c load_weights_upto / save_weights_upto).
// Arrays are Float32Array views into the file's bytes: no copy of the file is made.
import { isHead } from './graph';
import { SectionOptions } from './options';
import type { Layer, LayerWeights, ModelGraph, ModelWeights, WeightsHeader } from './types';

export interface WeightsCheck {
  /** The file holds exactly the floats the cfg needs. */
  ok: boolean;
  /** The file ends exactly after a layer before the last one (darknet `partial`). */
  partial: boolean;
  bytes: number;
  expectedBytes: number;
  /** Layers with weights that the file covers, counted from the first layer. */
  loadedLayers: number;
  /** First layer that does not fit, when not ok and not partial. */
  layer?: number;
  message: string;
}

export interface ReadWeightsResult {
  weights: ModelWeights;
  check: WeightsCheck;
}

/** Bytes one layer occupies in a .weights file. */
export function layerWeightBytes(layer: Layer): number {
  return layer.weightFloats * 4;
}

export function headerBytesFor(major: number, minor: number): number {
  return major * 10 + minor >= 2 ? 20 : 16;
}

export function expectedWeightsBytes(graph: ModelGraph, headerBytes = 20): number {
  let n = headerBytes;
  for (const l of graph.layers) if (!isDontLoad(l)) n += layerWeightBytes(l);
  return n;
}

function isDontLoad(layer: Layer): boolean {
  return new SectionOptions(layer.section).bool('dontload');
}

export function readHeader(bytes: Uint8Array): WeightsHeader | undefined {
  if (bytes.byteLength < 16) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = dv.getInt32(0, true);
  const minor = dv.getInt32(4, true);
  const revision = dv.getInt32(8, true);
  const headerBytes = headerBytesFor(major, minor);
  if (bytes.byteLength < headerBytes) return undefined;
  const seen = headerBytes === 20 ? dv.getBigUint64(12, true) : BigInt(dv.getUint32(12, true));
  return { major, minor, revision, seen, headerBytes };
}

function describe(layer: Layer): string {
  return `layer ${layer.index} [${layer.section.name}] (line ${layer.section.headerRange.start.line + 1})`;
}

/**
 * Reads a .weights file against a graph. Never throws on a size mismatch: the check says which
 * layer does not fit and the weights hold the layers that could be read.
 */
export function readWeights(bytes: Uint8Array, graph: ModelGraph): ReadWeightsResult {
  const header = readHeader(bytes);
  const expected = expectedWeightsBytes(graph, header?.headerBytes ?? 20);
  if (!header) {
    return {
      weights: { header: { major: 0, minor: 0, revision: 0, seen: 0n, headerBytes: 20 }, layers: new Map(), loadedLayers: 0, bytes: bytes.byteLength },
      check: { ok: false, partial: false, bytes: bytes.byteLength, expectedBytes: expected, loadedLayers: 0,
        message: `The file has ${bytes.byteLength} bytes, too few for a darknet weights header (16 or 20 bytes).` },
    };
  }
  // Float32Array views need 4-byte alignment; small Buffers from Node's pool may not have it.
  const aligned = (bytes.byteOffset & 3) === 0 ? bytes : new Uint8Array(bytes);
  const layers = new Map<number, LayerWeights>();
  let offset = header.headerBytes;
  let lastVerified = -1;
  let lastRead = -1;
  let loadedLayers = graph.layers.length;
  let failure: { layer: Layer; reason: string } | undefined;
  let partialAt: Layer | undefined;
  const weighted = graph.layers.filter((l) => l.weightFloats > 0 && !isDontLoad(l));

  for (const layer of weighted) {
    const need = layerWeightBytes(layer);
    if (offset === aligned.byteLength) {
      // darknet `partial` cutoff: the smallest one that explains the file ends after the last layer read
      partialAt = layer;
      loadedLayers = lastRead + 1;
      break;
    }
    if (offset + need > aligned.byteLength) {
      failure = { layer, reason: `the file ends ${offset + need - aligned.byteLength} bytes before the end of this layer's ${need} bytes` };
      break;
    }
    const lw = viewLayer(aligned, offset, layer);
    const problem = implausible(lw);
    if (problem) {
      failure = { layer, reason: problem };
      break;
    }
    if (lw.rollingVariance) lastVerified = layer.index;
    layers.set(layer.index, lw);
    lastRead = layer.index;
    offset += need;
  }

  let check: WeightsCheck;
  if (failure || (!partialAt && offset !== aligned.byteLength)) {
    // The first layer whose data could not be verified is where the mismatch starts: layers without
    // batch norm (e.g. the convs before [yolo]) carry no statistics to check them by.
    const suspect = weighted.find((l) => l.index > lastVerified) ?? failure?.layer ?? weighted[weighted.length - 1];
    const detail = failure
      ? `reading ${describe(failure.layer)}, ${failure.reason}`
      : `${aligned.byteLength - offset} bytes are left over after the last layer`;
    const suspectText = suspect ? describe(suspect) : 'the first layer';
    check = {
      ok: false, partial: false, bytes: aligned.byteLength, expectedBytes: expected,
      loadedLayers: suspect ? suspect.index : 0, layer: suspect?.index,
      message: `The weights do not fit the cfg: the file has ${aligned.byteLength} bytes but the cfg needs ${expected}. The first layer that does not fit is ${suspectText}${suspect && layerWeightBytes(suspect) ? ` (${layerWeightBytes(suspect)} bytes expected)` : ''}; ${detail}.`,
    };
    // Keep only layers before the suspect: their arrays are trustworthy.
    for (const k of [...layers.keys()]) if (suspect && k >= suspect.index) layers.delete(k);
  } else if (partialAt) {
    check = {
      ok: true, partial: true, bytes: aligned.byteLength, expectedBytes: expected, loadedLayers,
      message: `Partial weights: the file covers layers 0–${loadedLayers - 1} and stops before ${describe(partialAt)} (as written by \`darknet partial … ${loadedLayers}\`).`,
    };
  } else {
    check = {
      ok: true, partial: false, bytes: aligned.byteLength, expectedBytes: expected, loadedLayers,
      message: `The weights fit the cfg exactly (${aligned.byteLength} bytes).`,
    };
  }
  return { weights: { header, layers, loadedLayers: check.loadedLayers, bytes: aligned.byteLength }, check };
}

function f32(bytes: Uint8Array, offset: number, count: number): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset + offset, count);
}

function viewLayer(bytes: Uint8Array, offset: number, layer: Layer): LayerWeights {
  const start = offset;
  const empty = new Float32Array(0);
  if (layer.type === 'convolutional' && layer.conv) {
    const n = layer.conv.filters;
    const biases = f32(bytes, offset, n); offset += 4 * n;
    let scales: Float32Array | undefined, rollingMean: Float32Array | undefined, rollingVariance: Float32Array | undefined;
    if (layer.conv.batchNormalize) {
      scales = f32(bytes, offset, n); offset += 4 * n;
      rollingMean = f32(bytes, offset, n); offset += 4 * n;
      rollingVariance = f32(bytes, offset, n); offset += 4 * n;
    }
    const weights = f32(bytes, offset, layer.weightFloats - (offset - start) / 4);
    return { index: layer.index, offset: start, biases, scales, rollingMean, rollingVariance, weights };
  }
  if (layer.type === 'connected') {
    const out = layer.output[2];
    const hasBn = new SectionOptions(layer.section).bool('batch_normalize');
    const inner = layer.weightFloats - out - (hasBn ? 3 * out : 0);
    const biases = f32(bytes, offset, out); offset += 4 * out;
    const weights = f32(bytes, offset, inner); offset += 4 * inner;
    if (!hasBn) return { index: layer.index, offset: start, biases, weights };
    const scales = f32(bytes, offset, out); offset += 4 * out;
    const rollingMean = f32(bytes, offset, out); offset += 4 * out;
    const rollingVariance = f32(bytes, offset, out);
    return { index: layer.index, offset: start, biases, weights, scales, rollingMean, rollingVariance };
  }
  if (layer.type === 'batchnorm') {
    const c = layer.output[2];
    return {
      index: layer.index, offset: start,
      biases: f32(bytes, offset, c), scales: f32(bytes, offset + 4 * c, c),
      rollingMean: f32(bytes, offset + 8 * c, c), rollingVariance: f32(bytes, offset + 12 * c, c), weights: empty,
    };
  }
  return { index: layer.index, offset: start, biases: empty, weights: f32(bytes, offset, layer.weightFloats) };
}

/** A reason the arrays cannot be this layer's (misaligned data), or undefined when they look right. */
function implausible(lw: LayerWeights): string | undefined {
  if (lw.rollingVariance) {
    for (let i = 0; i < lw.rollingVariance.length; i++) {
      const v = lw.rollingVariance[i];
      if (!(v >= 0) || !Number.isFinite(v)) {
        return `its batch-norm variance ${i} reads as ${v}, which no trained model has, so the bytes before it belong to a differently shaped layer`;
      }
    }
  }
  for (const arr of [lw.biases, lw.scales, lw.rollingMean]) {
    if (!arr) continue;
    for (let i = 0; i < arr.length; i++) {
      if (!Number.isFinite(arr[i])) return `it holds a non-finite value (${arr[i]}), so the data is misaligned or corrupt`;
    }
  }
  return undefined;
}

/** Serialises weights in darknet's order. With the same header and arrays, write(read(f)) equals f. */
export function writeWeights(graph: ModelGraph, weights: ModelWeights): Uint8Array {
  const header = weights.header;
  const parts: Float32Array[] = [];
  let floats = 0;
  for (const layer of graph.layers) {
    if (layer.weightFloats === 0 || isDontLoad(layer)) continue;
    const lw = weights.layers.get(layer.index);
    if (!lw) {
      if (layer.index >= weights.loadedLayers) break; // partial file: stop where it stopped
      throw new Error(`No weights for ${describe(layer)}: cannot write a complete .weights file.`);
    }
    const order = layer.type === 'connected'
      ? [lw.biases, lw.weights, lw.scales, lw.rollingMean, lw.rollingVariance]
      : layer.type === 'batchnorm'
        ? [lw.biases, lw.scales, lw.rollingMean, lw.rollingVariance]
        : [lw.biases, lw.scales, lw.rollingMean, lw.rollingVariance, lw.weights];
    let layerFloats = 0;
    for (const a of order) if (a && a.length) { parts.push(a); layerFloats += a.length; }
    if (layerFloats !== layer.weightFloats) {
      throw new Error(`${describe(layer)} has ${layerFloats} weight values but its cfg needs ${layer.weightFloats}.`);
    }
    floats += layerFloats;
  }
  const out = new Uint8Array(header.headerBytes + floats * 4);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, header.major, true);
  dv.setInt32(4, header.minor, true);
  dv.setInt32(8, header.revision, true);
  if (header.headerBytes === 20) dv.setBigUint64(12, header.seen, true);
  else dv.setUint32(12, Number(header.seen & 0xffffffffn), true);
  let offset = header.headerBytes;
  for (const a of parts) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += a.byteLength;
  }
  return out;
}

// ---- γ statistics (BN scales of prunable convs) ----

export interface GammaLayerStats {
  index: number;
  count: number;
  min: number;
  median: number;
  mean: number;
  max: number;
  /** Fractions of |γ| below 0.01 and 0.1 */
  below001: number;
  below01: number;
}

export interface GammaStats {
  layers: GammaLayerStats[];
  /** Fraction of all prunable |γ| below 0.01 */
  sparsity: number;
  /** min over layers of max |γ|: a global threshold above it would empty a layer */
  highestThreshold: number;
  /** rank of highestThreshold among all sorted |γ|, over their count */
  percentLimit: number;
  count: number;
}

/**
 * Convs whose output channels may be pruned, as far as the layer graph alone tells: convs with
 * batch norm whose output is not read directly by a detection head.
 */
export function candidatePrunableConvs(graph: ModelGraph): Layer[] {
  const readByHead = new Set<number>();
  for (const l of graph.layers) if (isHead(l.type)) for (const i of l.inputs) readByHead.add(i);
  return graph.layers.filter((l) => l.type === 'convolutional' && l.conv?.batchNormalize && !readByHead.has(l.index));
}

export function gammaStats(graph: ModelGraph, weights: ModelWeights, layers = candidatePrunableConvs(graph)): GammaStats {
  const perLayer: GammaLayerStats[] = [];
  let total = 0;
  for (const l of layers) {
    const s = weights.layers.get(l.index)?.scales;
    if (s) total += s.length;
  }
  const all = new Float32Array(total);
  let k = 0;
  let highest = Infinity;
  let below001 = 0;
  for (const l of layers) {
    const s = weights.layers.get(l.index)?.scales;
    if (!s || s.length === 0) continue;
    const abs = new Float32Array(s.length);
    let sum = 0, b001 = 0, b01 = 0;
    for (let i = 0; i < s.length; i++) {
      const a = Math.abs(s[i]);
      abs[i] = a;
      all[k++] = a;
      sum += a;
      if (a < 0.01) b001++;
      if (a < 0.1) b01++;
    }
    abs.sort();
    const n = abs.length;
    const median = n % 2 ? abs[(n - 1) / 2] : (abs[n / 2 - 1] + abs[n / 2]) / 2;
    perLayer.push({ index: l.index, count: n, min: abs[0], median, mean: sum / n, max: abs[n - 1], below001: b001 / n, below01: b01 / n });
    highest = Math.min(highest, abs[n - 1]);
    below001 += b001;
  }
  all.sort();
  let rank = 0;
  if (Number.isFinite(highest)) {
    // first index of highest in the sorted list (the study's (sorted == highest).nonzero())
    let lo = 0, hi = all.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (all[mid] < Math.fround(highest)) lo = mid + 1; else hi = mid; }
    rank = lo;
  }
  return {
    layers: perLayer,
    sparsity: total ? below001 / total : 0,
    highestThreshold: Number.isFinite(highest) ? highest : 0,
    percentLimit: total ? rank / total : 0,
    count: total,
  };
}
