// The float model → QDQ int8 model rewrite (and the calibration model with extra outputs).
//
// What onnxruntime's CPU EP fuses (core/optimizer/qdq_transformer, QDQSelectorActionTransformer),
// and therefore how the rewrite is shaped:
//  * Conv: DQ(x), DQ(w) (int8, per output channel: axis 0), bias, Conv, then a single Q on its
//    output (the Conv output must feed nothing else and not be a graph output) → QLinearConv;
//    depthwise convs (group) included. The bias is written as an int32 DQ in units of
//    s_x·s_w[o] (stored as int16 when it fits, the scale a Mul of the two scales): onnxruntime
//    would quantize a float bias itself when the Q follows the Conv directly (its rounding differs
//    a little: outputs 4% further from the float model's on yolo-fastest), but with a Relu / Clip
//    in between (folded away when the Q's zero point sits at the bottom of its range) 1.22 drops
//    the Relu after it has passed over a float bias. The Cast and Mul are folded at load.
//  * LeakyRelu, Sigmoid, AveragePool, GlobalAveragePool: DQ → op → Q → com.microsoft QLinear<op>.
//    There is no int8 Conv+LeakyRelu: a leaky conv's output is requantized twice (before and
//    after the LeakyRelu), the main precision cost of leaky YOLOs (see the report).
//  * Add, Mul: two DQ inputs, one Q → QLinearAdd / QLinearMul (scales may differ).
//  * Concat: DQ on every input, one Q → QLinearConcat (scales may differ).
//  * MaxPool, Resize: the Q/DQ pair is dropped and the op runs on 8-bit data, but only when input
//    and output share one scale and zero point: their outputs are "tied" to their input here.
//  * Activations are uint8 (U8S8, onnxruntime's x86 form: its CPU EP converts int8 activations to
//    uint8 anyway where it does not allow them).
// Where the int8 kernels lose (measured on an AVX2 CPU without VNNI, see defaultKeepFloat): a
// QLinearLeakyRelu / QLinearAdd is a separate pass over the tensor (a 256-entry table lookup per
// element, ~0.5 ns) where the float Conv fuses both for free; MLAS's symmetric u8s8 kernels, the
// fast ones, need depthwise channels a multiple of 16 and 1x1 convs with at least 16 outputs (a
// multiple of 8) and inputs a multiple of 4, else a generic path 2-4x slower. Convs computed in
// float keep int8 (or float16) weights in the file, converted at load (see floatWeights).
// The [yolo] decode stays float. The head convs (the convs feeding a [yolo] layer) have three
// modes: 'integer' (ConvInteger: 8-bit input and weights, the int32 accumulator scaled to float,
// so the logits are never requantized), 'qlinear' (int8 in and out), 'float'.
import { AttrType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../proto';
import type { LayerSpec, NetworkSpec } from '../layers';
import { packFunctions } from '../functions';

export type HeadMode = 'integer' | 'qlinear' | 'float';
export const HEAD_MODES: readonly HeadMode[] = ['integer', 'qlinear', 'float'];

/**
 * How an activation threshold T becomes a uint8 grid:
 *  - 'symmetric': [-T, T] → zero point 128, scale T/127 (METHOD §4); a tensor never negative on
 *    the calibration images (ReLU outputs, the image) gets [0, T] → zero point 0, scale T/255.
 *  - 'asymmetric': [max(min, -T), min(max, T)] over all 256 steps, zero point where 0 falls (0
 *    stays exact): leaky outputs live in [-0.1·m, M] and waste half of a symmetric grid.
 */
export type ActivationScheme = 'symmetric' | 'asymmetric';
export const ACTIVATION_SCHEMES: readonly ActivationScheme[] = ['symmetric', 'asymmetric'];

/** TensorProto data types. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, FLOAT16: 10 } as const;

// ---- float16 (weight scales are stored as halves: 2 bytes a channel saved, exact after the Cast) ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits of x (round to nearest even); x is expected to be a normal half (see isHalfNormal). */
export function halfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  let mant = b & 0x7fffff;
  if (exp <= 0 || exp >= 31) throw new Error(`internal: ${x} is not a normal float16`);
  // round mantissa 23 → 10 bits, to nearest even
  const rest = mant & 0x1fff;
  mant >>>= 13;
  if (rest > 0x1000 || (rest === 0x1000 && (mant & 1))) mant++;
  let e = exp;
  if (mant === 0x400) {
    mant = 0;
    e++;
  }
  return sign | (e << 10) | mant;
}

/** The float16 bits of any float (round to nearest even), subnormals and zero included; |x| <= 65504. */
export function halfBitsAny(x: number): number {
  if (isHalfNormal(x)) return halfBits(x);
  const a = Math.abs(x);
  if (a > 65504) throw new Error(`internal: ${x} does not fit a float16`);
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  // subnormal: m · 2^-24, m < 1024 (1024 rounds up to the smallest normal, bits 0x400)
  const m = roundHalfEven(a / 2 ** -24);
  return sign | m;
}

/** The value of float16 bits. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** x rounded to float16 (for normal halves). */
export function toHalf(x: number): number {
  return halfValue(halfBits(x));
}

export function isHalfNormal(x: number): boolean {
  const a = Math.abs(x);
  return a >= 6.104e-5 && a <= 65504;
}

/** Ops computed on 8-bit data when all their activation inputs are. */
const QLINEAR_OPS = new Set(['Conv', 'LeakyRelu', 'Sigmoid', 'Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
/** Ops whose 8-bit form needs the same quantization on input and output (their Q/DQ are dropped). */
const TIED_OPS = new Set(['MaxPool', 'Resize']);

export interface PlannedTensor {
  /** Tensor name in the float model. */
  name: string;
  /** darknet layer of the producing node (-1: the network input). */
  layer: number;
  /** Producing op ('input' for the network input; 'Conv+Relu' for a Relu folded into its Conv). */
  op: string;
  /** Shares the quantization of this (untied) tensor: MaxPool / Resize outputs. */
  tiedTo?: string;
  /** Quantized over its whole range [min, max] whatever the method (the network input). */
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
  /** darknet layers (not [yolo]) left in float, asked or not quantizable. */
  floatLayers: number[];
}

export interface PlanOptions {
  /** darknet layers kept in float. */
  keepFloat?: number[];
  /** Default 'integer'. */
  heads?: HeadMode;
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
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const x of n.input) {
      if (!x) continue;
      if (!consumers.has(x)) consumers.set(x, []);
      consumers.get(x)!.push(i);
    }
  });
  const activationInputs = (n: NodeProto): string[] => {
    if (n.opType === 'Conv' || n.opType === 'Resize' || n.opType === 'MaxPool') return [n.input[0]];
    return n.input.filter((x) => x && !inits.has(x));
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
  const tiedCandidates = new Set<number>();
  nodes.forEach((n, i) => {
    const layer = byIndex.get(layerOfNode[i]);
    if (!layer || layer.kind === 'yolo' || keep.has(layer.index)) return;
    if (n.output.some((o) => graphOutputs.has(o))) return;
    const convOk = n.opType === 'Conv' && inits.has(n.input[1]) && (!n.input[2] || inits.has(n.input[2]));
    if (headConvs.has(i)) {
      if (!convOk || heads === 'float') return;
      if (heads === 'qlinear') quantized.add(i);
      else integer.add(i);
      return;
    }
    if (QLINEAR_OPS.has(n.opType)) {
      const acts = activationInputs(n);
      if (acts.length === 0) return;
      if ((n.opType === 'Add' || n.opType === 'Mul') && acts.length !== 2) return; // x·constant stays float
      if (n.opType === 'Concat' && acts.length !== n.input.length) return;
      if (n.opType === 'Conv' && !convOk) return;
      quantized.add(i);
    } else if (TIED_OPS.has(n.opType)) {
      if (n.opType === 'Resize' && attrString(n, 'mode') !== 'nearest') return;
      tiedCandidates.add(i);
    }
  });
  // Relu / Clip(0, ...) right after a quantized Conv that feeds nothing else: folded in.
  for (const i of quantized) {
    const n = nodes[i];
    if (n.opType !== 'Conv') continue;
    const cs = consumers.get(n.output[0]) ?? [];
    if (cs.length !== 1 || graphOutputs.has(n.output[0]) || layerOfNode[cs[0]] !== layerOfNode[i]) continue;
    const next = nodes[cs[0]];
    const relu = next.opType === 'Relu' || (next.opType === 'Clip' && clipMin(model, next) === 0);
    if (relu && !next.output.some((o) => graphOutputs.has(o))) fused.add(cs[0]);
  }
  // The tensors 8-bit nodes read; then back through tied ops whose output is read in 8 bits.
  const quantTensor = new Set<string>();
  for (const i of [...quantized, ...integer]) for (const x of activationInputs(nodes[i])) quantTensor.add(x);
  const tiedNodes = new Set<number>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!tiedCandidates.has(i)) continue;
    if (quantTensor.has(nodes[i].output[0])) {
      quantTensor.add(nodes[i].input[0]);
      tiedNodes.add(i);
    }
  }

  const tensors: PlannedTensor[] = [];
  const tied = new Map<string, string>();
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
    if (tiedNodes.has(i)) {
      const root = tied.get(n.input[0]) ?? n.input[0];
      tied.set(n.output[0], root);
      add({ name: n.output[0], layer, op: n.opType, tiedTo: root });
      return;
    }
    if (integer.has(i)) return;
    const spec = byIndex.get(layer);
    if (spec && spec.kind !== 'yolo' && ['Conv', 'LeakyRelu', 'Add', 'Concat', 'MaxPool', 'Resize'].includes(n.opType)) floatLayers.add(layer);
    // A float producer of a tensor some 8-bit node reads: quantized after it.
    for (const o of n.output) if (quantTensor.has(o)) add({ name: o, layer, op: n.opType });
  });
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
  /** uint8 zero point. */
  zeroPoint: number;
  /** The range represented: [scale·(0 - zp), scale·(255 - zp)]. */
  lo: number;
  hi: number;
  threshold: number;
}

/** Scale and uint8 zero point of an activation with threshold T and calibration range [min, max]. */
export function activationParams(threshold: number, min: number, max: number, scheme: ActivationScheme): ActivationQuant {
  const t = threshold > 0 && Number.isFinite(threshold) ? threshold : 1;
  const make = (scale: number, zeroPoint: number): ActivationQuant => ({ scale, zeroPoint, lo: -zeroPoint * scale, hi: (255 - zeroPoint) * scale, threshold: t });
  if (min >= 0) return make(Math.fround(t / 255), 0);
  if (scheme === 'symmetric') return make(Math.fround(t / 127), 128);
  const hi = Math.max(Math.min(max, t), 0);
  const lo = Math.min(Math.max(min, -t), 0);
  if (!(hi - lo > 0)) return make(Math.fround(t / 127), 128);
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  return make(scale, zeroPoint);
}

export interface WeightQuant {
  /** int8 values, same layout as the float weights. */
  q: Int8Array;
  /** Per output channel: max|w| / qmax (1 for an all-zero channel). */
  scales: Float32Array;
}

/**
 * Symmetric int8 per output channel: scale = max|w|/qmax, q = round(w/scale) in [-qmax, qmax]
 * (with `half`, the scale is the next float16 at or above max|w|/qmax, so it is stored exactly).
 * qmax 127 (8 bits) or 63 (7 bits: onnxruntime's "reduce range", which keeps AVX2 CPUs without
 * VNNI on their u8s8 kernels instead of converting the weights to u8u8).
 */
export function quantizeWeights(w: Float32Array, channels: number, qmax = 127, half = false): WeightQuant {
  const per = w.length / channels;
  if (!Number.isInteger(per)) throw new Error(`internal: ${w.length} weights for ${channels} channels`);
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    let m = 0;
    for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(w[o * per + k]));
    let s = m > 0 ? Math.fround(m / qmax) : 1;
    // A half scale rounded up, so that max|w| / s stays within qmax.
    if (half) {
      const h = toHalf(s);
      s = h >= s ? h : halfValue(halfBits(s) + 1);
    }
    scales[o] = s;
    for (let k = 0; k < per; k++) q[o * per + k] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[o * per + k] / s)));
  }
  return { q, scales };
}

/** Whether a conv's weight scales can all be normal float16 values. */
function halfScales(w: Float32Array, channels: number, qmax: number): boolean {
  const per = w.length / channels;
  for (let o = 0; o < channels; o++) {
    let m = 0;
    for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(w[o * per + k]));
    if (m > 0 && !isHalfNormal((m / qmax) * 1.001)) return false;
  }
  return true;
}

/** Round half to even (QuantizeLinear's rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- tensors and model hygiene -------------------------------------------------------------------

export function rawTensor(name: string, dims: number[], dataType: number, data: ArrayBufferView): TensorProto {
  return { name, dims, dataType, rawData: new Uint8Array(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
}

function cleanAttribute(a: AttributeProto): AttributeProto {
  const out: AttributeProto = { name: a.name, type: a.type };
  if (a.refAttrName) return { ...out, refAttrName: a.refAttrName };
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
  else out.rawData = new Uint8Array(0);
  return out;
}

function cleanNode(n: NodeProto): NodeProto {
  const out: NodeProto = { name: n.name ?? '', opType: n.opType, input: [...n.input], output: [...n.output], attribute: n.attribute.map(cleanAttribute) };
  if (n.domain) out.domain = n.domain;
  return out;
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
      node: model.graph.node.map(cleanNode),
      initializer: model.graph.initializer.map(cleanTensor),
      input: model.graph.input,
      output: model.graph.output,
    },
    metadataProps: model.metadataProps.map((m) => ({ key: m.key, value: m.value })),
    ...(model.functions?.length ? {
      functions: model.functions.map((f) => ({
        name: f.name, domain: f.domain, input: [...f.input], output: [...f.output], attribute: [...f.attribute],
        node: f.node.map(cleanNode), opsetImport: f.opsetImport.map((o) => ({ domain: o.domain, version: o.version })),
      })),
    } : {}),
  };
}

/** An output declaration with the element type only (shape left to the runtime). */
function typedOutput(name: string, elemType: number = DT.FLOAT): ValueInfoProto {
  return { name, type: { tensorType: { elemType } } } as unknown as ValueInfoProto;
}

/** The model with `names` added as graph outputs (calibration reads them). */
export function withExtraOutputs(model: ModelProto, names: string[]): ModelProto {
  const have = new Set(model.graph.output.map((o) => o.name));
  return {
    ...model,
    graph: { ...model.graph, output: [...model.graph.output, ...names.filter((n) => !have.has(n)).map((n) => typedOutput(n))] },
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

/**
 * Conv attributes that carry no information are dropped (the int8 file is small): those at their
 * ONNX defaults, and kernel_shape, which the weights' shape gives.
 */
function withoutDefaultAttributes(n: NodeProto): NodeProto {
  if (n.opType !== 'Conv' && n.opType !== 'ConvInteger') return n;
  const isDefault = (a: AttributeProto) =>
    a.name === 'kernel_shape'
    || (a.name === 'group' && a.i === 1)
    || ((a.name === 'strides' || a.name === 'dilations') && (a.ints ?? []).every((v) => v === 1))
    || (a.name === 'pads' && (a.ints ?? []).every((v) => v === 0));
  return { ...n, attribute: n.attribute.filter((a) => !isDefault(a)) };
}

// ---- the rewrite ---------------------------------------------------------------------------------

export interface BuildOptions {
  scheme?: ActivationScheme;
  /** 8 (default) or 7 (reduce range). */
  weightBits?: 7 | 8;
  /** Extra metadata entries. */
  metadata?: { key: string; value: string }[];
  /** Rename internal tensors to short names (smaller file). Default true. */
  shortNames?: boolean;
  /**
   * How the convs computed in float store their weights: 'int8' (default: per output channel,
   * dequantized once when onnxruntime loads the model; every weight of the file in 8 bits),
   * 'float16' (converted at load: 2^-11 weight error instead of 2^-8, a few KiB more) or 'float'
   * (as exported). On coco128 / the VOC set the mAP differences between the three are within
   * the evaluation's sensitivity (see bench/results/quantize.json).
   */
  floatWeights?: FloatWeights;
  /**
   * Write repeated node patterns once, as model-local functions (see core/onnx/functions.ts):
   * the same graph once onnxruntime has loaded it, a smaller file. Default true; false writes the
   * flat graph, for runtimes without ONNX functions.
   */
  functions?: boolean;
}

export type FloatWeights = 'int8' | 'float16' | 'float';
export const FLOAT_WEIGHTS: readonly FloatWeights[] = ['int8', 'float16', 'float'];

export interface BuildResult {
  model: ModelProto;
  /** Quantization parameters of every quantized tensor (tied ones included). */
  params: Map<string, ActivationQuant>;
  /** Float-computed convs (node indices of the float model) whose weights are stored in float16 or int8. */
  weightOnly: number[];
}

/**
 * Rewrites the float model into a QDQ model. `thresholds` gives each calibrated tensor its
 * threshold and calibration range.
 */
export function buildQdqModel(
  model: ModelProto,
  plan: QdqPlan,
  thresholds: Map<string, { threshold: number; min: number; max: number }>,
  opts: BuildOptions = {},
): BuildResult {
  const scheme = opts.scheme ?? 'asymmetric';
  const qmax = opts.weightBits === 7 ? 63 : 127;
  const floatWeights = opts.floatWeights ?? 'int8';
  const src = model.graph;
  const inits = new Map(src.initializer.map((t) => [t.name, t]));
  const isFloatInit = (name: string | undefined) => !!name && inits.get(name)?.dataType === DT.FLOAT;
  const weightOnly: number[] = [];
  const graphOutputs = new Set(src.output.map((o) => o.name));
  const newInits: TensorProto[] = [];
  const usedInits = new Set<string>();
  const nodes: NodeProto[] = [];
  let counter = 0;
  const fresh = (hint: string) => `${hint}.${counter++}`;
  const node = (opType: string, input: string[], output: string[], attribute: AttributeProto[] = []) => {
    nodes.push({ name: '', opType, input, output, attribute });
  };
  const axis0: AttributeProto[] = [{ name: 'axis', type: AttrType.INT, i: 0 }];

  const params = new Map<string, ActivationQuant>();
  for (const t of plan.tensors) {
    if (t.tiedTo) continue;
    const st = thresholds.get(t.name);
    if (!st) throw new Error(`internal: no calibration statistics for ${t.name}`);
    params.set(t.name, activationParams(st.threshold, st.min, st.max, scheme));
  }
  for (const t of plan.tensors) if (t.tiedTo) params.set(t.name, params.get(t.tiedTo)!);

  // Shared scalars: one initializer per distinct scale, per zero point.
  const scalars = new Map<string, string>();
  const scalar = (key: string, make: (name: string) => TensorProto): string => {
    let name = scalars.get(key);
    if (!name) {
      name = fresh('k');
      newInits.push(make(name));
      scalars.set(key, name);
    }
    return name;
  };
  const scaleInit = (v: number) => scalar(`s${Math.fround(v)}`, (n) => rawTensor(n, [], DT.FLOAT, Float32Array.of(v)));
  const zpInit = (v: number) => scalar(`z${v}`, (n) => rawTensor(n, [], DT.UINT8, Uint8Array.of(v)));

  // Per quantized tensor: its 8-bit form and its dequantized form.
  const qName = new Map<string, string>();
  const dqName = new Map<string, string>();
  const emitQdq = (t: string) => {
    if (qName.has(t)) return;
    const p = params.get(t)!;
    const s = scaleInit(p.scale);
    const z = zpInit(p.zeroPoint);
    const q = fresh('q');
    const dq = fresh('d');
    node('QuantizeLinear', [t, s, z], [q]);
    node('DequantizeLinear', [q, s, z], [dq]);
    qName.set(t, q);
    dqName.set(t, dq);
  };
  // Readers of a tensor an 8-bit node produces go through its DQ (that node's output must feed its
  // Q alone); readers of a float producer's tensor may keep the float original.
  const producedBy8bit = new Set<string>();
  src.node.forEach((n, i) => {
    if (plan.quantized.has(i) || plan.fused.has(i)) for (const o of n.output) if (params.has(o)) producedBy8bit.add(o);
  });
  // Convs whose output reaches its Q through a folded Relu / Clip: int32 bias (see the header).
  const int32Bias = new Set<number>();
  src.node.forEach((n, i) => {
    if (!plan.fused.has(i)) return;
    const conv = src.node.findIndex((m) => m.output[0] === n.input[0]);
    if (conv >= 0) int32Bias.add(conv);
  });

  const inputName = src.input[0]?.name ?? 'input';
  if (params.has(inputName)) emitQdq(inputName);

  src.node.forEach((n0, i) => {
    const n = cleanNode(n0);
    n.name = '';
    const is8bit = plan.quantized.has(i);
    n.input = n.input.map((x, k) => {
      if (!x || inits.has(x) || !params.has(x)) return x;
      if (is8bit) return (n.opType === 'Conv' || n.opType === 'Resize' || n.opType === 'MaxPool') && k > 0 ? x : dqName.get(x)!;
      if (plan.integer.has(i) && k === 0) return x; // rewritten below
      return producedBy8bit.has(x) ? dqName.get(x)! : x;
    });

    if (is8bit && n.opType === 'Conv') {
      const w = inits.get(n.input[1])!;
      const channels = w.dims[0];
      const wf = floatValues(w);
      const wq = quantizeWeights(wf, channels, qmax, halfScales(wf, channels, qmax));
      const wName = fresh('w');
      const wsName = fresh('ws');
      const wdq = fresh('wd');
      newInits.push(rawTensor(wName, w.dims, DT.INT8, wq.q));
      if (wq.scales.every(isHalfNormal)) {
        const h = fresh('wh');
        newInits.push(rawTensor(h, [channels], DT.FLOAT16, Uint16Array.from(wq.scales, halfBits)));
        node('Cast', [h], [wsName], [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }]);
      } else {
        newInits.push(rawTensor(wsName, [channels], DT.FLOAT, wq.scales));
      }
      node('DequantizeLinear', [wName, wsName], [wdq], axis0);
      n.input[1] = wdq;
      if (n.input[2]) {
        // The bias in int32 units of s_x·s_w[o], as onnxruntime quantizes a float bias when it
        // fuses the QLinearConv; stored as int16 when every value fits (half the bytes), the scale
        // computed in the graph from the two scales already there (Mul, folded at load).
        const bf = floatValues(inits.get(n.input[2])!);
        const sx = params.get(n0.input[0])!.scale;
        const bq = new Int32Array(channels);
        for (let o = 0; o < channels; o++) bq[o] = Math.max(-2147483647, Math.min(2147483647, roundHalfEven(bf[o] / Math.fround(sx * wq.scales[o]))));
        const short = bq.every((v) => v >= -32768 && v <= 32767);
        if (int32Bias.has(i) || short) {
          const bName = fresh('b');
          const bsName = fresh('bs');
          const bdq = fresh('bd');
          if (short) {
            const b16 = fresh('bh');
            newInits.push(rawTensor(b16, [channels], DT.INT16, Int16Array.from(bq)));
            node('Cast', [b16], [bName], [{ name: 'to', type: AttrType.INT, i: DT.INT32 }]);
          } else {
            newInits.push(rawTensor(bName, [channels], DT.INT32, bq));
          }
          node('Mul', [scaleInit(sx), wsName], [bsName]);
          node('DequantizeLinear', [bName, bsName], [bdq], axis0);
          n.input[2] = bdq;
        } else {
          usedInits.add(n.input[2]);
        }
      }
      nodes.push(withoutDefaultAttributes(n));
    } else if (plan.integer.has(i)) {
      // ConvInteger(x_u8, w_u8) → int32 → float·(s_x·s_w) + b. onnxruntime's CPU ConvInteger takes
      // uint8 input and weights: the symmetric int8 weights are stored offset by 128 (zero point 128).
      const x = n0.input[0];
      const p = params.get(x)!;
      const w = inits.get(n.input[1])!;
      const channels = w.dims[0];
      const wq = quantizeWeights(floatValues(w), channels, qmax);
      const wu = new Uint8Array(wq.q.length);
      for (let k = 0; k < wu.length; k++) wu[k] = wq.q[k] + 128;
      const wName = fresh('w');
      newInits.push(rawTensor(wName, w.dims, DT.UINT8, wu));
      const acc = fresh('i');
      nodes.push(withoutDefaultAttributes({ name: '', opType: 'ConvInteger', input: [qName.get(x)!, wName, zpInit(p.zeroPoint), zpInit(128)], output: [acc], attribute: n.attribute }));
      const accF = fresh('f');
      node('Cast', [acc], [accF], [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }]);
      const scale = new Float32Array(channels);
      for (let o = 0; o < channels; o++) scale[o] = Math.fround(p.scale * wq.scales[o]);
      const sName = fresh('hs');
      newInits.push(rawTensor(sName, [1, channels, 1, 1], DT.FLOAT, scale));
      const scaled = n.input[2] ? fresh('m') : n.output[0];
      node('Mul', [accF, sName], [scaled]);
      if (n.input[2]) {
        const bName = fresh('hb');
        newInits.push(rawTensor(bName, [1, channels, 1, 1], DT.FLOAT, floatValues(inits.get(n.input[2])!)));
        node('Add', [scaled, bName], [n.output[0]]);
      }
    } else if (n.opType === 'Conv' && floatWeights === 'float16' && isFloatInit(n.input[1]) && floatValues(inits.get(n.input[1])!).every((v) => Math.abs(v) <= 65504)) {
      // A conv computed in float with its weights stored as float16 (relative error below 2^-11:
      // 2e-3 on the outputs where int8 weights everywhere cost 6e-2): Cast to float, folded by
      // onnxruntime at load, so the Conv runs as in the float model.
      const w = inits.get(n.input[1])!;
      const h = fresh('wh');
      const wf32 = fresh('wf');
      newInits.push(rawTensor(h, w.dims, DT.FLOAT16, Uint16Array.from(floatValues(w), halfBitsAny)));
      node('Cast', [h], [wf32], [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }]);
      n.input[1] = wf32;
      for (const x of n.input.slice(2)) if (x && inits.has(x)) usedInits.add(x);
      weightOnly.push(i);
      nodes.push(withoutDefaultAttributes(n));
    } else if (n.opType === 'Conv' && floatWeights === 'int8' && isFloatInit(n.input[1]) && (!n.input[2] || inits.has(n.input[2]))) {
      // A conv computed in float (kept float, or a float head) with its weights stored in 8 bits:
      // int8 per output channel (qmax 127: float compute has no u8s8 saturation) → Cast → ·scale.
      // Not a DequantizeLinear, which onnxruntime keeps (its constant folding skips DQ nodes in
      // QDQ models) and would run at every inference before an unoptimised Conv: Cast and Mul of
      // constants are folded at load, so the Conv gets a constant float weight again and runs as
      // in the float model (NCHWc, activation fused).
      const w = inits.get(n.input[1])!;
      const channels = w.dims[0];
      const wf = floatValues(w);
      const half = halfScales(wf, channels, 127);
      const wq = quantizeWeights(wf, channels, 127, half);
      const wName = fresh('w');
      const wCast = fresh('wc');
      const sName = fresh('ws');
      const wf32 = fresh('wf');
      newInits.push(rawTensor(wName, w.dims, DT.INT8, wq.q));
      const sDims = [channels, ...w.dims.slice(1).map(() => 1)];
      if (half) {
        const h = fresh('wh');
        newInits.push(rawTensor(h, sDims, DT.FLOAT16, Uint16Array.from(wq.scales, halfBits)));
        node('Cast', [h], [sName], [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }]);
      } else {
        newInits.push(rawTensor(sName, sDims, DT.FLOAT, wq.scales));
      }
      node('Cast', [wName], [wCast], [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }]);
      node('Mul', [wCast, sName], [wf32]);
      n.input[1] = wf32;
      if (n.input[2]) usedInits.add(n.input[2]);
      weightOnly.push(i);
      nodes.push(withoutDefaultAttributes(n));
    } else {
      for (const x of n.input) if (x && inits.has(x)) usedInits.add(x);
      nodes.push(withoutDefaultAttributes(n));
    }
    for (const o of n0.output) if (params.has(o)) emitQdq(o);
  });

  // Float initializers still read, compacted when they hold small integers (the decode grids).
  const casts: NodeProto[] = [];
  for (const name of usedInits) {
    const t = cleanTensor(inits.get(name)!);
    const compact = t.dataType === DT.FLOAT ? compactConstant(t, fresh) : undefined;
    if (compact) {
      newInits.push(...compact.initializers);
      casts.push(...compact.nodes);
    } else {
      newInits.push(t);
    }
  }

  // Unnamed nodes: no name field at all (an empty string would still be encoded).
  const flat: ModelProto = {
    irVersion: model.irVersion,
    opsetImport: model.opsetImport.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    docString: 'Darkslim int8 QDQ model (see the darkslim_int8 metadata).',
    graph: { name: src.name, node: [...casts, ...nodes].map(withoutName), initializer: newInits, input: src.input.map(withoutDoc), output: src.output.map(withoutDoc) },
    metadataProps: [...model.metadataProps.map((m) => ({ key: m.key, value: m.value })), ...(opts.metadata ?? [])],
  };
  const out = opts.functions === false ? flat : packFunctions(flat);
  if (opts.shortNames !== false) {
    const renamed = shortenNames(out.graph.node, out.graph.initializer, new Set([inputName, ...graphOutputs]));
    out.graph = { ...out.graph, node: renamed.nodes, initializer: renamed.initializers };
  }
  return { model: out, params, weightOnly };
}

function withoutDoc(v: ValueInfoProto): ValueInfoProto {
  return { name: v.name, type: v.type };
}

function withoutName(n: NodeProto): NodeProto {
  if (n.name) return n;
  const { name: _unused, ...rest } = n;
  void _unused;
  return rest as NodeProto;
}

/** Integer values that fit 8 or 16 bits, as the smallest such tensor. */
function integerTensor(name: string, dims: number[], v: Float32Array): TensorProto | undefined {
  let mn = Infinity;
  let mx = -Infinity;
  for (const x of v) {
    if (!Number.isInteger(x)) return undefined;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  if (mn >= 0 && mx <= 255) return rawTensor(name, dims, DT.UINT8, Uint8Array.from(v));
  if (mn >= -128 && mx <= 127) return rawTensor(name, dims, DT.INT8, Int8Array.from(v));
  if (mn >= 0 && mx <= 65535) return rawTensor(name, dims, DT.UINT16, Uint16Array.from(v));
  if (mn >= -32768 && mx <= 32767) return rawTensor(name, dims, DT.INT16, Int16Array.from(v));
  return undefined;
}

/** The smallest p dividing n with rows[r] == rows[r mod p] (rows of `width` values). */
function period(v: Float32Array, rows: number, width: number): number {
  for (let p = 1; p < rows; p++) {
    if (rows % p) continue;
    let ok = true;
    for (let k = p * width; k < v.length && ok; k++) ok = v[k] === v[k - p * width];
    if (ok) return p;
  }
  return rows;
}

/** The largest b dividing n with rows[r] == rows[r - r mod b] (runs of b equal rows). */
function runLength(v: Float32Array, rows: number, width: number): number {
  for (let b = rows; b > 1; b--) {
    if (rows % b) continue;
    let ok = true;
    for (let r = 0; r < rows && ok; r++) {
      const first = r - (r % b);
      for (let k = 0; k < width && ok; k++) ok = v[r * width + k] === v[first * width + k];
    }
    if (ok) return b;
  }
  return 1;
}

/**
 * A float constant [1, R, C] of small integers (the [yolo] decode's cell grid and anchors, rows
 * (y·W + x)·A + a) stored compactly, its float form rebuilt by nodes onnxruntime folds at load:
 * a periodic table (anchors: A rows repeated) is tiled, a table of runs of equal rows (the grid:
 * each cell repeated for its A anchors) is expanded, and the integers are cast back to float.
 */
function compactConstant(t: TensorProto, fresh: (hint: string) => string): { initializers: TensorProto[]; nodes: NodeProto[] } | undefined {
  const v = floatValues(t);
  if (v.length < 32) return undefined;
  const cast = (input: string, output: string): NodeProto => ({ name: '', opType: 'Cast', input: [input], output: [output], attribute: [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }] });
  const ints = (name: string, values: number[]) => rawTensor(name, [values.length], DT.INT64, BigInt64Array.from(values.map(BigInt)));
  if (t.dims.length === 3 && t.dims[0] === 1) {
    const [, rows, width] = t.dims;
    const p = period(v, rows, width);
    if (p < rows) {
      const small = integerTensor(fresh('c'), [1, p, width], v.subarray(0, p * width));
      if (small) {
        const f = fresh('c');
        const reps = fresh('c');
        return {
          initializers: [small, ints(reps, [1, rows / p, 1])],
          nodes: [cast(small.name, f), { name: '', opType: 'Tile', input: [f, reps], output: [t.name], attribute: [] }],
        };
      }
    }
    const b = runLength(v, rows, width);
    if (b > 1) {
      const base = new Float32Array((rows / b) * width);
      for (let r = 0; r < rows / b; r++) for (let k = 0; k < width; k++) base[r * width + k] = v[r * b * width + k];
      const small = integerTensor(fresh('c'), [1, rows / b, 1, width], base);
      if (small) {
        const f = fresh('c');
        const e = fresh('c');
        const shape = fresh('c');
        const back = fresh('c');
        return {
          initializers: [small, ints(shape, [1, rows / b, b, width]), ints(back, [1, rows, width])],
          nodes: [
            cast(small.name, f),
            { name: '', opType: 'Expand', input: [f, shape], output: [e], attribute: [] },
            { name: '', opType: 'Reshape', input: [e, back], output: [t.name], attribute: [] },
          ],
        };
      }
    }
  }
  const small = integerTensor(fresh('c'), t.dims, v);
  return small ? { initializers: [small], nodes: [cast(small.name, t.name)] } : undefined;
}

const NAME_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** The k-th shortest name over NAME_CHARS: 62 of one character, then 3844 of two, ... */
function shortName(k: number): string {
  let len = 1;
  let count = NAME_CHARS.length;
  while (k >= count) {
    k -= count;
    len++;
    count *= NAME_CHARS.length;
  }
  let r = '';
  for (let i = 0; i < len; i++, k = Math.floor(k / NAME_CHARS.length)) r = NAME_CHARS[k % NAME_CHARS.length] + r;
  return r;
}

/**
 * Short tensor names (in a file this small they matter), the most referenced ones shortest; the
 * interface names (`keep`) stay.
 */
function shortenNames(nodes: NodeProto[], inits: TensorProto[], keep: Set<string>): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const refs = new Map<string, number>();
  const count = (x: string) => { if (x && !keep.has(x)) refs.set(x, (refs.get(x) ?? 0) + 1); };
  for (const t of inits) count(t.name);
  for (const n of nodes) for (const x of [...n.input, ...n.output]) count(x);
  const map = new Map<string, string>();
  let k = 0;
  for (const [name] of [...refs].sort((a, b) => b[1] - a[1])) {
    let r = shortName(k++);
    while (keep.has(r)) r = shortName(k++);
    map.set(name, r);
  }
  const rename = (x: string) => map.get(x) ?? x;
  return {
    initializers: inits.map((t) => ({ ...t, name: rename(t.name) })),
    nodes: nodes.map((n) => ({ ...n, input: n.input.map(rename), output: n.output.map(rename) })),
  };
}
