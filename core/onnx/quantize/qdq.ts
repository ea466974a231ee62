// The float model → QDQ int8 model rewrite (and the calibration model with extra outputs).
//
// What onnxruntime's CPU EP fuses (core/optimizer/qdq_transformer, QDQSelectorActionTransformer),
// and therefore how the rewrite is shaped:
//  * Conv: DQ(x), DQ(w) (int8, per output channel: axis 0), optional bias, then Conv, then a single
//    Q on its output (the Conv output must feed nothing else and not be a graph output) →
//    QLinearConv. A Relu (or Clip) between Conv and Q is dropped when the Q's range makes it
//    redundant: zero point at the bottom of the quantized range. Depthwise convs (group) included.
//  * LeakyRelu, Sigmoid, AveragePool, GlobalAveragePool: DQ → op → Q → com.microsoft QLinear<op>.
//  * Add, Mul: two DQ inputs, one Q → QLinearAdd / QLinearMul (scales may differ).
//  * Concat: DQ on every input, one Q → QLinearConcat (scales may differ).
//  * MaxPool (opset 12+), Resize, Reshape, Slice...: the Q/DQ pair is dropped and the op runs on
//    8-bit data, but only when input and output share one scale and zero point: their output
//    tensors are "tied" to their input here.
//  * Activations are uint8 (U8S8: the default for x86 in onnxruntime, int8 ones are converted to
//    uint8 on CPUs where it does not allow int8) or int8; zero point 128 / 0 (signed tensors:
//    symmetric, [-T, T] → [-127, 127]·T/127) or the bottom of the range for tensors that are
//    never negative ([0, T] over all 256 steps).
// The [yolo] decode stays float. The head convs (the convs feeding a [yolo] layer) have three
// modes: 'qlinear' (int8 in and out), 'integer' (ConvInteger: int8 inputs and weights, the int32
// accumulator scaled to float: no requantization of the logits) and 'float'.
import {
  AttrType, type AttributeProto, DataType, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from '../proto';
import type { LayerSpec, NetworkSpec } from '../layers';

export type ActivationType = 'uint8' | 'int8';
export type HeadMode = 'qlinear' | 'integer' | 'float';
export const HEAD_MODES: readonly HeadMode[] = ['qlinear', 'integer', 'float'];

/** TensorProto data types beyond proto.ts' DataType. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7 } as const;

/** Ops computed on 8-bit data when all their activation inputs are. */
const QLINEAR_OPS = new Set(['Conv', 'LeakyRelu', 'Sigmoid', 'Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
/** Ops whose 8-bit form needs the same quantization on input and output (ORT drops their Q/DQ). */
const TIED_OPS = new Set(['MaxPool', 'Resize']);

export interface PlannedTensor {
  /** Tensor name in the float model. */
  name: string;
  /** darknet layer of the producing node (-1: the network input). */
  layer: number;
  /** Producing op ('input' for the network input; 'Relu' after a fused Conv). */
  op: string;
  /** Shares the quantization of this (untied) tensor: MaxPool / Resize outputs. */
  tiedTo?: string;
  /** Quantized from its range [0, max] regardless of the method (the network input). */
  fullRange?: boolean;
}

export interface QdqPlan {
  /** darknet layer of each node of the float model. */
  layerOfNode: number[];
  /** Nodes (indices into the float model's node list) computed on 8-bit data. */
  quantized: Set<number>;
  /** Relu / Clip nodes folded into the quantized Conv before them. */
  fused: Set<number>;
  /** Head convs computed with ConvInteger (float output). */
  integer: Set<number>;
  /** Every quantized activation tensor, in production order. */
  tensors: PlannedTensor[];
  /** The tensors that need calibration statistics (the untied ones). */
  calibrate: string[];
  /** darknet layers left in float (asked, or not quantizable). */
  floatLayers: number[];
}

export interface PlanOptions {
  keepFloat?: number[];
  heads?: HeadMode;
}

function isInitializer(model: ModelProto, name: string, inits: Set<string>): boolean {
  void model;
  return inits.has(name);
}

/**
 * Which darknet layer each node belongs to. `ends` maps each layer index to the tensor that holds
 * its result (the `layer_<i>` extra outputs of the export, `yolo_<i>` for heads): the exporter emits
 * layers in order, so a layer's nodes are those emitted after the previous layer's result up to its own.
 */
export function assignLayers(nodes: NodeProto[], spec: NetworkSpec, ends: Map<number, string>): number[] {
  const order = spec.layers.map((l) => l.index);
  const produced = new Set<string>(['input']);
  let li = 0;
  const advance = () => {
    while (li < order.length) {
      const end = ends.get(order[li]);
      if (end === undefined || !produced.has(end)) break;
      li++;
    }
  };
  advance();
  const out: number[] = [];
  for (const n of nodes) {
    if (li >= order.length) throw new Error(`internal: node ${n.opType} after the last layer`);
    out.push(order[li]);
    for (const o of n.output) produced.add(o);
    advance();
  }
  return out;
}

/** Decides what runs on 8-bit data. `layerOfNode` from assignLayers on the same node list. */
export function planQdq(model: ModelProto, spec: NetworkSpec, layerOfNode: number[], opts: PlanOptions = {}): QdqPlan {
  const nodes = model.graph.node;
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const graphOutputs = new Set(model.graph.output.map((o) => o.name));
  const byIndex = new Map<number, LayerSpec>(spec.layers.map((l) => [l.index, l]));
  const keep = new Set(opts.keepFloat ?? []);
  for (const k of keep) {
    if (!byIndex.has(k)) throw new Error(`--keep-float ${k}: the network has no layer ${k} (layers 0..${spec.layers.length - 1})`);
  }
  const heads = opts.heads ?? 'integer';
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const o of n.output) producer.set(o, i);
    for (const x of n.input) {
      if (!x) continue;
      if (!consumers.has(x)) consumers.set(x, []);
      consumers.get(x)!.push(i);
    }
  });
  const activationInputs = (n: NodeProto): string[] => {
    if (n.opType === 'Conv' || n.opType === 'Resize') return [n.input[0]];
    return n.input.filter((x) => x && !isInitializer(model, x, inits));
  };
  // Convs feeding a [yolo] layer.
  const headConvs = new Set<number>();
  for (const h of spec.heads) {
    const src = byIndex.get(h.inputs[0]);
    if (src?.kind !== 'conv') continue;
    nodes.forEach((n, i) => { if (n.opType === 'Conv' && layerOfNode[i] === src.index) headConvs.add(i); });
  }

  const quantized = new Set<number>();
  const fused = new Set<number>();
  const integer = new Set<number>();
  const tiedNodes = new Set<number>();
  nodes.forEach((n, i) => {
    const layer = byIndex.get(layerOfNode[i]);
    if (!layer || layer.kind === 'yolo' || keep.has(layer.index)) return;
    if (n.output.some((o) => graphOutputs.has(o))) return;
    if (headConvs.has(i)) {
      if (heads === 'qlinear') quantized.add(i);
      else if (heads === 'integer') integer.add(i);
      return;
    }
    if (QLINEAR_OPS.has(n.opType) && !(process.env.DS_FUSELEAKY && n.opType === 'LeakyRelu' && nodes[producer.get(n.input[0]) ?? -1]?.opType === 'Conv' && (process.env.DS_FUSELAYERS ? process.env.DS_FUSELAYERS.split(',').map(Number).includes(layerOfNode[i]) : true))) {
      const acts = activationInputs(n);
      if (acts.length === 0) return;
      if ((n.opType === 'Add' || n.opType === 'Mul') && acts.length !== 2) return; // x·const: stays float
      if (n.opType === 'Concat' && acts.length !== n.input.length) return;
      if (n.opType === 'Conv' && !(inits.has(n.input[1]) && (n.input.length < 3 || !n.input[2] || inits.has(n.input[2])))) return;
      quantized.add(i);
    } else if (TIED_OPS.has(n.opType)) {
      if (n.opType === 'Resize' && attrString(n, 'mode') !== 'nearest') return;
      tiedNodes.add(i);
    }
  });
  // Relu / Clip(0, …) right after a quantized Conv that feeds nothing else: folded in.
  for (const i of quantized) {
    const n = nodes[i];
    if (n.opType !== 'Conv') continue;
    const cs = consumers.get(n.output[0]) ?? [];
    if (cs.length !== 1 || graphOutputs.has(n.output[0])) continue;
    const next = nodes[cs[0]];
    if (layerOfNode[cs[0]] !== layerOfNode[i]) continue;
    if (next.opType === 'Relu' || (next.opType === 'Clip' && clipMin(model, next) === 0) || (process.env.DS_FUSELEAKY && next.opType === 'LeakyRelu' && (process.env.DS_FUSELAYERS ? process.env.DS_FUSELAYERS.split(',').map(Number).includes(layerOfNode[i]) : true))) {
      if (!next.output.some((o) => graphOutputs.has(o))) fused.add(cs[0]);
    }
  }
  // A tied op (MaxPool, Resize) runs on 8-bit data when its input is quantized and some consumer
  // of its output is (else it stays float, reading the dequantized input).
  const quantTensor = new Set<string>();
  const markInputs = () => {
    for (const i of [...quantized, ...integer]) for (const x of activationInputs(nodes[i])) quantTensor.add(x);
  };
  markInputs();
  // Propagate from consumers back through tied ops (in reverse order so chains resolve).
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!tiedNodes.has(i)) continue;
    const out = nodes[i].output[0];
    if (quantTensor.has(out)) quantTensor.add(nodes[i].input[0]);
  }

  const tensors: PlannedTensor[] = [];
  const tied = new Map<string, string>();
  const root = (t: string): string => tied.get(t) ?? t;
  const planned = new Set<string>();
  const add = (t: PlannedTensor) => {
    if (planned.has(t.name)) return;
    planned.add(t.name);
    tensors.push(t);
  };
  const inputName = model.graph.input[0]?.name ?? 'input';
  if (quantTensor.has(inputName)) add({ name: inputName, layer: -1, op: 'input', fullRange: true });
  const floatLayers = new Set<number>();
  nodes.forEach((n, i) => {
    const layer = layerOfNode[i];
    if (quantized.has(i)) {
      const cs = consumers.get(n.output[0]) ?? [];
      const fusedNext = n.opType === 'Conv' && cs.length === 1 && fused.has(cs[0]);
      if (!fusedNext) add({ name: n.output[0], layer, op: n.opType });
      return;
    }
    if (fused.has(i)) {
      add({ name: n.output[0], layer, op: `Conv+${n.opType}` });
      return;
    }
    if (tiedNodes.has(i) && quantTensor.has(n.input[0]) && quantTensor.has(n.output[0])) {
      tied.set(n.output[0], root(n.input[0]));
      add({ name: n.output[0], layer, op: n.opType, tiedTo: root(n.input[0]) });
      return;
    }
    if (integer.has(i)) return;
    const spec = byIndex.get(layer);
    if (spec && spec.kind !== 'yolo' && ['Conv', 'LeakyRelu', 'Add', 'Concat', 'MaxPool', 'Resize'].includes(n.opType)) floatLayers.add(layer);
    // A float producer of a tensor some 8-bit node reads: quantized after it.
    for (const o of n.output) if (quantTensor.has(o)) add({ name: o, layer, op: n.opType });
  });
  // A tied op whose output turned out not to be quantized: its nodes stay float, and then its input
  // must still be quantized if 8-bit consumers read it (they do, by construction of quantTensor).
  for (const i of tiedNodes) {
    const n = nodes[i];
    if (!tied.has(n.output[0])) tiedNodes.delete(i);
  }
  return {
    layerOfNode,
    quantized: new Set([...quantized, ...tiedNodes]),
    fused,
    integer,
    tensors,
    calibrate: tensors.filter((t) => !t.tiedTo).map((t) => t.name),
    floatLayers: [...floatLayers].sort((a, b) => a - b),
  };
}

function attrString(n: NodeProto, name: string): string | undefined {
  const a = n.attribute.find((x) => x.name === name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}

function clipMin(model: ModelProto, n: NodeProto): number | undefined {
  const name = n.input[1];
  if (!name) return undefined;
  const t = model.graph.initializer.find((x) => x.name === name);
  if (!t) return undefined;
  const v = floatValues(t);
  return v.length === 1 ? v[0] : undefined;
}

/** The values of a float initializer (raw_data or float_data). */
export function floatValues(t: TensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new Error(`initializer ${t.name} is not float`);
  if (t.rawData && t.rawData.length) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

// ---- quantization parameters ---------------------------------------------------------------------

export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
  type: ActivationType;
  /** [0, T] over the whole 8-bit range. */
  nonNegative: boolean;
  threshold: number;
}

/** Scale and zero point of an activation with threshold T. */
export function activationParams(threshold: number, nonNegative: boolean, type: ActivationType): ActivationQuant {
  const t = threshold > 0 && Number.isFinite(threshold) ? threshold : 1;
  if (nonNegative) return { scale: Math.fround(t / 255), zeroPoint: type === 'uint8' ? 0 : -128, type, nonNegative, threshold: t };
  return { scale: Math.fround(t / 127), zeroPoint: type === 'uint8' ? 128 : 0, type, nonNegative, threshold: t };
}

export interface WeightQuant {
  /** int8 values, same layout as the float weights. */
  q: Int8Array;
  /** Per output channel: max|w| / 127 (1 for an all-zero channel). */
  scales: Float32Array;
}

/** Symmetric int8 per output channel: scale = max|w|/127, q = round(w/scale) in [-127, 127]. */
export function quantizeWeights(w: Float32Array, channels: number, qmax = Number(process.env.DS_QMAX ?? 127)): WeightQuant {
  const per = w.length / channels;
  if (!Number.isInteger(per)) throw new Error(`internal: ${w.length} weights for ${channels} channels`);
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    let m = 0;
    for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(w[o * per + k]));
    const s = m > 0 ? Math.fround(m / qmax) : 1;
    scales[o] = s;
    for (let k = 0; k < per; k++) q[o * per + k] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[o * per + k] / s)));
  }
  return { q, scales };
}

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- tensors -------------------------------------------------------------------------------------

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function rawTensor(name: string, dims: number[], dataType: number, data: ArrayBufferView): TensorProto {
  return { name, dims, dataType, rawData: new Uint8Array(bytesOf(data)) };
}

function cleanAttribute(a: AttributeProto): AttributeProto {
  const out: AttributeProto = { name: a.name, type: a.type };
  switch (a.type) {
    case AttrType.FLOAT: out.f = a.f; break;
    case AttrType.INT: out.i = a.i; break;
    case AttrType.STRING: out.s = a.s; break;
    case AttrType.TENSOR: out.t = a.t ? cleanTensor(a.t) : a.t; break;
    case AttrType.FLOATS: out.floats = a.floats; break;
    case AttrType.INTS: out.ints = a.ints; break;
    default: return { ...a };
  }
  return out;
}

function cleanTensor(t: TensorProto): TensorProto {
  const out: TensorProto = { name: t.name, dims: t.dims, dataType: t.dataType };
  if (t.rawData && t.rawData.length) out.rawData = t.rawData;
  else if (t.floatData && t.floatData.length) out.floatData = t.floatData;
  else if (t.int64Data && t.int64Data.length) out.int64Data = t.int64Data;
  else if (t.dataType === DT.FLOAT || t.dataType === DT.INT64) out.rawData = new Uint8Array(0);
  return out;
}

function cleanNode(n: NodeProto): NodeProto {
  const out: NodeProto = { name: '', opType: n.opType, input: [...n.input], output: [...n.output], attribute: n.attribute.map(cleanAttribute) };
  if (n.domain) out.domain = n.domain;
  return out;
}

/** An output declaration with the element type only (shape left to the runtime). */
function typedOutput(name: string, elemType = DT.FLOAT): ValueInfoProto {
  return { name, type: { tensorType: { elemType } } } as unknown as ValueInfoProto;
}

/** The float model with `names` added as graph outputs (for calibration). */
export function withExtraOutputs(model: ModelProto, names: string[]): ModelProto {
  const have = new Set(model.graph.output.map((o) => o.name));
  return {
    ...model,
    graph: {
      ...model.graph,
      output: [...model.graph.output, ...names.filter((n) => !have.has(n)).map((n) => typedOutput(n))],
    },
  };
}

/** A decoded model with the decoder's default-filled fields removed (so it re-encodes as written). */
export function cleanModel(model: ModelProto): ModelProto {
  return {
    irVersion: model.irVersion,
    opsetImport: model.opsetImport.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    ...(model.docString ? { docString: model.docString } : {}),
    graph: {
      name: model.graph.name,
      node: model.graph.node.map((n) => ({ ...cleanNode(n), name: n.name })),
      initializer: model.graph.initializer.map(cleanTensor),
      input: model.graph.input,
      output: model.graph.output,
    },
    metadataProps: model.metadataProps.map((m) => ({ key: m.key, value: m.value })),
  };
}

/** The model without the listed graph outputs and the Identity nodes that only fed them. */
export function withoutOutputs(model: ModelProto, drop: Set<string>): ModelProto {
  return {
    ...model,
    graph: {
      ...model.graph,
      node: model.graph.node.filter((n) => !(n.opType === 'Identity' && n.output.length === 1 && drop.has(n.output[0]))),
      output: model.graph.output.filter((o) => !drop.has(o.name)),
    },
  };
}

// ---- the rewrite ---------------------------------------------------------------------------------

export interface BuildOptions {
  activations?: ActivationType;
  /** Bias of quantized convs: int32 through a DequantizeLinear (scale s_x·s_w) or left float (onnxruntime quantizes it when it fuses). */
  bias?: 'int32' | 'float';
  /** Extra metadata entries. */
  metadata?: { key: string; value: string }[];
  /** Rename internal tensors to short names (smaller file). Default true. */
  shortNames?: boolean;
}

export interface BuildResult {
  model: ModelProto;
  /** Quantization parameters of every quantized tensor (tied ones included). */
  params: Map<string, ActivationQuant>;
  /** Per quantized conv: darknet layer, weight scale range. */
  convs: { layer: number; mode: 'qlinear' | 'integer'; channels: number; minScale: number; maxScale: number }[];
}

/**
 * Rewrites the float model into a QDQ model. `stats` gives each calibrated tensor its threshold and
 * sign (min over the calibration images).
 */
export function buildQdqModel(
  model: ModelProto,
  plan: QdqPlan,
  thresholds: Map<string, { threshold: number; min: number }>,
  opts: BuildOptions = {},
): BuildResult {
  const actType = opts.activations ?? 'uint8';
  const biasMode = opts.bias ?? 'float';
  const src = model.graph;
  const inits = new Map(src.initializer.map((t) => [t.name, t]));
  const graphOutputs = new Set(src.output.map((o) => o.name));
  const newInits: TensorProto[] = [];
  const usedInits = new Set<string>();
  const nodes: NodeProto[] = [];
  let counter = 0;
  const fresh = (hint: string) => `${hint}.${counter++}`;

  // Quantization parameters.
  const params = new Map<string, ActivationQuant>();
  const leakyNext = new Set<string>(); for (const n of src.node) if (n.opType === 'LeakyRelu') leakyNext.add(n.input[0]);
  for (const t of plan.tensors) {
    if (t.tiedTo) continue;
    const st = thresholds.get(t.name);
    if (!st) throw new Error(`internal: no calibration statistics for ${t.name}`);
    if (process.env.DS_ASYM && st.min < 0) {
      const k = Number(process.env.DS_K ?? 1e9); const hi = Math.min(st.threshold, st.max > 0 ? st.max : st.threshold); const lo = Math.max(st.min, -st.threshold, t.op === 'Conv' && leakyNext.has(t.name) ? -k * hi : -Infinity); const sc = Math.fround((hi - lo) / 255);
      params.set(t.name, { scale: sc, zeroPoint: Math.round(-lo / sc), type: actType, nonNegative: false, threshold: hi });
    } else
    params.set(t.name, activationParams(st.threshold, st.min >= 0, actType));
  }
  if (process.env.DS_SHARE) {
    for (const n of src.node) if (n.opType === 'LeakyRelu' && params.has(n.input[0]) && params.has(n.output[0])) {
      const a = thresholds.get(n.input[0])!; const b = thresholds.get(n.output[0])!;
      const k = Number(process.env.DS_K ?? 1e9);
      const hi = Math.min(b.threshold, Math.max(b.threshold, 0)); const lo = Math.max(a.min, -a.threshold, -k * hi);
      const sc = Math.fround((hi - lo) / 255); const p = { scale: sc, zeroPoint: Math.round(-lo / sc), type: actType, nonNegative: false, threshold: hi };
      params.set(n.input[0], p); params.set(n.output[0], p);
    }
  }
  for (const t of plan.tensors) if (t.tiedTo) params.set(t.name, params.get(t.tiedTo)!);

  // Shared scalar initializers: scales per value, zero points per value.
  const scalars = new Map<string, string>();
  const zpType = actType === 'uint8' ? DT.UINT8 : DT.INT8;
  const scaleInit = (v: number): string => {
    const key = `s${Math.fround(v)}`;
    let name = scalars.get(key);
    if (!name) {
      name = fresh('s');
      newInits.push(rawTensor(name, [], DT.FLOAT, Float32Array.of(v)));
      scalars.set(key, name);
    }
    return name;
  };
  const zpInit = (v: number, type: number = zpType): string => {
    const key = `z${type}:${v}`;
    let name = scalars.get(key);
    if (!name) {
      name = fresh('z');
      const data = type === DT.UINT8 ? Uint8Array.of(v) : Int8Array.of(v);
      newInits.push(rawTensor(name, [], type, data));
      scalars.set(key, name);
    }
    return name;
  };

  // Per quantized tensor: the names of its 8-bit form and of its dequantized form.
  const qName = new Map<string, string>();
  const dqName = new Map<string, string>();
  const quantizedNodes = plan.quantized;
  const emitQdq = (t: string) => {
    if (qName.has(t)) return;
    const p = params.get(t)!;
    const s = scaleInit(p.scale);
    const z = zpInit(p.zeroPoint);
    const q = fresh('q');
    const dq = fresh('d');
    nodes.push({ name: '', opType: 'QuantizeLinear', input: [t, s, z], output: [q], attribute: [] });
    nodes.push({ name: '', opType: 'DequantizeLinear', input: [q, s, z], output: [dq], attribute: [] });
    qName.set(t, q);
    dqName.set(t, dq);
  };
  // Whether a tensor's readers must go through its DQ (its producer is an 8-bit node whose only
  // consumer has to be the Q) or may read the float original (float producer).
  const producedBy8bit = new Set<string>();
  src.node.forEach((n, i) => {
    if (quantizedNodes.has(i) || plan.fused.has(i)) for (const o of n.output) if (params.has(o)) producedBy8bit.add(o);
  });

  const inputName = src.input[0]?.name ?? 'input';
  if (params.has(inputName)) emitQdq(inputName);

  const convs: BuildResult['convs'] = [];
  const useInit = (name: string) => usedInits.add(name);

  src.node.forEach((n0, i) => {
    const n = cleanNode(n0);
    const is8bit = quantizedNodes.has(i);
    // Inputs.
    n.input = n.input.map((x, k) => {
      if (!x) return x;
      if (inits.has(x)) return x;
      if (!params.has(x)) return x;
      if (is8bit) {
        if ((n.opType === 'Conv' || n.opType === 'Resize') && k > 0) return x;
        return dqName.get(x)!;
      }
      if (plan.integer.has(i) && k === 0) return x; // rewritten below
      return producedBy8bit.has(x) ? dqName.get(x)! : x;
    });

    if (is8bit && n.opType === 'Conv') {
      const w = inits.get(n.input[1])!;
      const wf = floatValues(w);
      const channels = w.dims[0];
      const wq = quantizeWeights(wf, channels);
      if (process.env.DS_FLOATW) { for (let k = 0; k < wq.q.length; k++) (wq.q as any)[k] = 0; }
      const wName = fresh('w');
      newInits.push(rawTensor(wName, w.dims, DT.INT8, wq.q));
      const wsName = fresh('ws');
      newInits.push(rawTensor(wsName, [channels], DT.FLOAT, wq.scales));
      const wdq = fresh('wd');
      nodes.push({ name: '', opType: 'DequantizeLinear', input: [wName, wsName], output: [wdq], attribute: [{ name: 'axis', type: AttrType.INT, i: 0 }] });
      n.input[1] = process.env.DS_FLOATW ? (useInit(n.input[1]), n.input[1]) : wdq;
      if (n.input[2]) {
        const b = inits.get(n.input[2])!;
        if (biasMode === 'int32') {
          const bf = floatValues(b);
          const sx = params.get(src.node[i].input[0])!.scale;
          const bs = new Float32Array(channels);
          const bq = new Int32Array(channels);
          for (let o = 0; o < channels; o++) {
            bs[o] = Math.fround(sx * wq.scales[o]);
            bq[o] = Math.max(-2147483647, Math.min(2147483647, roundHalfEven(bf[o] / bs[o])));
          }
          const bName = fresh('b');
          const bsName = fresh('bs');
          newInits.push(rawTensor(bName, [channels], DT.INT32, bq));
          newInits.push(rawTensor(bsName, [channels], DT.FLOAT, bs));
          const bdq = fresh('bd');
          nodes.push({ name: '', opType: 'DequantizeLinear', input: [bName, bsName], output: [bdq], attribute: [{ name: 'axis', type: AttrType.INT, i: 0 }] });
          n.input[2] = bdq;
        } else {
          useInit(n.input[2]);
        }
      }
      convs.push({ layer: plan.layerOfNode[i], mode: 'qlinear', channels, minScale: Math.min(...wq.scales), maxScale: Math.max(...wq.scales) });
      nodes.push(n);
    } else if (plan.integer.has(i)) {
      // ConvInteger(x_u8, w_u8) → int32 → float · (s_x·s_w) + b. onnxruntime's CPU ConvInteger takes
      // uint8 input and weights: the symmetric int8 weights are stored offset by 128 (zero point 128).
      const x = src.node[i].input[0];
      const p = params.get(x)!;
      if (p.type !== 'uint8') throw new Error('integer heads need uint8 activations');
      const w = inits.get(n.input[1])!;
      const wf = floatValues(w);
      const channels = w.dims[0];
      const wq = quantizeWeights(wf, channels);
      const wu = new Uint8Array(wq.q.length);
      for (let k = 0; k < wu.length; k++) wu[k] = wq.q[k] + 128;
      const wName = fresh('w');
      newInits.push(rawTensor(wName, w.dims, DT.UINT8, wu));
      const acc = fresh('i');
      nodes.push({
        name: '', opType: 'ConvInteger', input: [qName.get(x)!, wName, zpInit(p.zeroPoint, DT.UINT8), zpInit(128, DT.UINT8)], output: [acc],
        attribute: n.attribute,
      });
      const accF = fresh('f');
      nodes.push({ name: '', opType: 'Cast', input: [acc], output: [accF], attribute: [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }] });
      const scale = new Float32Array(channels);
      for (let o = 0; o < channels; o++) scale[o] = Math.fround(p.scale * wq.scales[o]);
      const sName = fresh('hs');
      newInits.push(rawTensor(sName, [1, channels, 1, 1], DT.FLOAT, scale));
      let y = n.output[0];
      const scaled = n.input[2] ? fresh('m') : y;
      nodes.push({ name: '', opType: 'Mul', input: [accF, sName], output: [scaled], attribute: [] });
      if (n.input[2]) {
        const b = floatValues(inits.get(n.input[2])!);
        const bName = fresh('hb');
        newInits.push(rawTensor(bName, [1, channels, 1, 1], DT.FLOAT, b));
        nodes.push({ name: '', opType: 'Add', input: [scaled, bName], output: [y], attribute: [] });
      }
      y = n.output[0];
      convs.push({ layer: plan.layerOfNode[i], mode: 'integer', channels, minScale: Math.min(...wq.scales), maxScale: Math.max(...wq.scales) });
    } else {
      for (const x of n.input) if (x && inits.has(x)) useInit(x);
      nodes.push(n);
    }
    // Outputs that are quantized: Q/DQ right after their producer.
    for (const o of n0.output) {
      if (params.has(o)) emitQdq(o);
    }
  });

  // Float initializers still read, compacted when they hold small integers (the decode grids).
  const casts: NodeProto[] = [];
  for (const name of usedInits) {
    const t = cleanTensor(inits.get(name)!);
    const compact = t.dataType === DT.FLOAT ? compactInteger(t) : undefined;
    if (compact) {
      newInits.push(compact.tensor);
      casts.push({ name: '', opType: 'Cast', input: [compact.tensor.name], output: [name], attribute: [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }] });
    } else {
      newInits.push(t);
    }
  }

  const renamed = opts.shortNames === false
    ? { nodes: [...casts, ...nodes], initializers: newInits }
    : shortenNames([...casts, ...nodes], newInits, new Set([inputName, ...graphOutputs]));
  const out: ModelProto = {
    irVersion: model.irVersion,
    opsetImport: model.opsetImport.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    docString: 'Darkslim int8 (QDQ) model: int8 weights per output channel, 8-bit activations calibrated per tensor; the [yolo] decode in float.',
    graph: {
      name: src.name,
      node: renamed.nodes,
      initializer: renamed.initializers,
      input: src.input,
      output: src.output,
    },
    metadataProps: [...model.metadataProps.map((m) => ({ key: m.key, value: m.value })), ...(opts.metadata ?? [])],
  };
  void graphOutputs;
  return { model: out, params, convs };
}

/** A float initializer of integer values that fit 8 or 16 bits, stored as such (Cast back to float at load, folded by the runtime). */
function compactInteger(t: TensorProto): { tensor: TensorProto } | undefined {
  const v = floatValues(t);
  if (v.length < 32) return undefined;
  let mn = Infinity;
  let mx = -Infinity;
  for (const x of v) {
    if (!Number.isInteger(x)) return undefined;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  const name = `${t.name}_i`;
  if (mn >= 0 && mx <= 255) return { tensor: rawTensor(name, t.dims, DT.UINT8, Uint8Array.from(v)) };
  if (mn >= -128 && mx <= 127) return { tensor: rawTensor(name, t.dims, DT.INT8, Int8Array.from(v)) };
  if (mn >= 0 && mx <= 65535) return { tensor: rawTensor(name, t.dims, DT.UINT16, Uint16Array.from(v)) };
  if (mn >= -32768 && mx <= 32767) return { tensor: rawTensor(name, t.dims, DT.INT16, Int16Array.from(v)) };
  return undefined;
}

/** Short tensor names (the int8 file is small enough that names matter); interface names kept. */
function shortenNames(nodes: NodeProto[], inits: TensorProto[], keep: Set<string>): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const map = new Map<string, string>();
  let k = 0;
  const rename = (x: string): string => {
    if (!x || keep.has(x)) return x;
    let r = map.get(x);
    if (!r) {
      r = k.toString(36);
      k++;
      while (keep.has(r)) r = `_${r}`;
      map.set(x, r);
    }
    return r;
  };
  for (const t of inits) t.name = rename(t.name);
  for (const n of nodes) {
    n.input = n.input.map(rename);
    n.output = n.output.map(rename);
  }
  return { nodes, initializers: inits };
}

export { DataType };
