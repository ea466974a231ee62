// Checks a pruning numerically: runs two models (e.g. the masked original and the pruned model)
// through onnxruntime on the same inputs and compares every detection-head output. Kept out of
// core/prune/index.ts so that the language server does not pull in onnxruntime.
import { exportOnnx } from '../onnx/export';
import { OnnxSession } from '../onnx/runtime';
import type { ModelGraph, ModelWeights } from '../darknet/types';

export interface OutputDiff {
  name: string;
  /** max |a − b| */
  maxAbs: number;
  /** max |a| (the reference's scale) */
  scale: number;
  /** maxAbs / scale */
  rel: number;
}

export interface ModelDiff {
  /** The largest relative difference over all outputs and inputs. */
  maxRel: number;
  outputs: OutputDiff[];
}

/** Raw inputs of the detection heads (the convs before [yolo]/[region]) and every graph output. */
export function headInputs(graph: ModelGraph): number[] {
  const out: number[] = [];
  for (const l of graph.layers) {
    if (l.type === 'yolo' || l.type === 'region' || l.type === 'Gaussian_yolo') out.push(l.inputs[0]);
  }
  return out;
}

export async function runModel(graph: ModelGraph, weights: ModelWeights, inputs: Float32Array[], extraOutputs: number[] = headInputs(graph)): Promise<Map<string, Float32Array>[]> {
  const { bytes } = exportOnnx(graph, weights, { extraOutputs });
  const session = await OnnxSession.create(bytes, { threads: 2, spinning: false });
  try {
    const dims = [1, graph.net.channels, graph.net.height, graph.net.width];
    const results: Map<string, Float32Array>[] = [];
    for (const x of inputs) {
      const r = await session.run(x, dims);
      results.push(new Map([...r].map(([k, v]) => [k, v.data])));
    }
    return results;
  } finally {
    await session.dispose();
  }
}

export function diffOutputs(ref: Map<string, Float32Array>[], other: Map<string, Float32Array>[], rename: (name: string) => string = (n) => n): ModelDiff {
  const byName = new Map<string, OutputDiff>();
  for (let i = 0; i < ref.length; i++) {
    for (const [name, a] of ref[i]) {
      const b = other[i].get(rename(name));
      if (!b) throw new Error(`output ${rename(name)} is missing from the second model`);
      if (a.length !== b.length) throw new Error(`output ${name} has ${a.length} values in the first model and ${b.length} in the second`);
      let maxAbs = 0, scale = 0;
      for (let k = 0; k < a.length; k++) {
        const d = Math.abs(a[k] - b[k]);
        if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
        const s = Math.abs(a[k]);
        if (s > scale) scale = s;
      }
      const prev = byName.get(name);
      if (!prev || maxAbs > prev.maxAbs) byName.set(name, { name, maxAbs, scale: Math.max(scale, prev?.scale ?? 0), rel: maxAbs / Math.max(scale, 1e-12) });
    }
  }
  const outputs = [...byName.values()];
  return { maxRel: Math.max(0, ...outputs.map((o) => o.rel)), outputs };
}

/** Runs both models on the inputs and compares the outputs both expose (same layer indices). */
export async function compareModels(a: { graph: ModelGraph; weights: ModelWeights }, b: { graph: ModelGraph; weights: ModelWeights },
  inputs: Float32Array[], extraOutputs: number[] = headInputs(a.graph)): Promise<ModelDiff> {
  const ra = await runModel(a.graph, a.weights, inputs, extraOutputs);
  const rb = await runModel(b.graph, b.weights, inputs, extraOutputs);
  return diffOutputs(ra, rb);
}
