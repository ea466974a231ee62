// Darknet graph + weights → ONNX (opset 13), with darknet's inference semantics (see layers.ts).
//
// Model interface:
//   input  `input`      float32 [N, C, H, W]: planar RGB in [0,1], resized as darknet does (see core/data).
//   output `yolo_<i>`   float32 [N, H_i*W_i*A_i, 5 + classes] for each [yolo] layer i, in layer order.
//                       Rows are cell-major then anchor (row = (y*W + x)*A + a), the order darknet's
//                       get_yolo_detections visits them. Columns: x, y, w, h (box centre and size
//                       relative to the network input, 0..1), objectness, then per-class scores
//                       (already through the logistic, NOT multiplied by objectness).
//   output `detections` (option `concat`) float32 [N, Σ rows, 5 + classes]: the heads concatenated.
//   output `layer_<i>`  (option `extraOutputs`) the raw output of darknet layer i, NCHW.
//   A graph without [yolo] layers exposes the last layer's output as `output`.
// Metadata (`metadata_props`): key `darkslim` holds JSON (OnnxMetadata) with the network size,
// letterbox flag, classes, heads and the NMS darknet would apply, so an .onnx file alone can drive
// `detect`, `map` and `bench`.
import { type Chw, type ConvSpec, type LayerSpec, type NetworkSpec, networkSpec, type YoloSpec, headRows } from './layers';
import {
  AttrType, type AttributeProto, DataType, encodeModel, floatTensor, int64Tensor, type ModelProto, type NodeProto,
  type TensorProto, valueInfo, type ValueInfoProto,
} from './proto';
import type { ModelGraph, ModelWeights } from '../darknet/types';

export const OPSET = 13;
export const IR_VERSION = 7;
export const METADATA_KEY = 'darkslim';

export interface ExportOptions {
  /** Add the `detections` output (all heads concatenated). Default false. */
  concat?: boolean;
  /** Also output the raw result of these layers as `layer_<i>` (debugging, parity tests). */
  extraOutputs?: number[];
  /** Class names to embed in the metadata. */
  names?: string[];
  /** Fixed batch size instead of the symbolic `N`. */
  batch?: number;
}

export interface OnnxHeadInfo {
  /** darknet layer index of the [yolo] layer. */
  index: number;
  output: string;
  /** Grid width, height and anchors per cell. */
  w: number;
  h: number;
  anchors: number;
  rows: number;
  classes: number;
}

export interface OnnxMetadata {
  format: 1;
  netW: number;
  netH: number;
  channels: number;
  letterBox: boolean;
  classes: number;
  heads: OnnxHeadInfo[];
  nms: { kind: string; beta: number };
  names?: string[];
}

export interface ExportResult {
  bytes: Uint8Array;
  metadata: OnnxMetadata;
  /** Graph output names in order. */
  outputs: string[];
  nodes: number;
}

const EPS = Math.fround(0.00001);
const f = Math.fround;

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  private consts = new Map<string, string>();

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  node(opType: string, inputs: string[], attrs: AttributeProto[] = [], hint = opType.toLowerCase(), output?: string): string {
    const out = output ?? this.fresh(hint);
    this.nodes.push({ name: `${opType}_${this.nodes.length}`, opType, input: inputs, output: [out], attribute: attrs });
    return out;
  }

  nodeMulti(opType: string, inputs: string[], outputs: number, attrs: AttributeProto[], hint: string): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(hint));
    this.nodes.push({ name: `${opType}_${this.nodes.length}`, opType, input: inputs, output: outs, attribute: attrs });
    return outs;
  }

  floatInit(hint: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(hint);
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  /** A small shared float constant (scalar or short vector), deduplicated. */
  scalar(value: number, dims: number[] = []): string {
    const key = `f:${dims.join('x')}:${f(value)}`;
    let name = this.consts.get(key);
    if (!name) {
      const n = dims.reduce((a, b) => a * b, 1);
      name = this.floatInit('c', dims, new Float32Array(n).fill(value));
      this.consts.set(key, name);
    }
    return name;
  }

  floats(values: number[], dims: number[]): string {
    const key = `fv:${dims.join('x')}:${values.map((v) => f(v)).join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.floatInit('c', dims, Float32Array.from(values));
      this.consts.set(key, name);
    }
    return name;
  }

  ints(values: number[]): string {
    const key = `i:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh('shape');
      this.initializers.push(int64Tensor(name, [values.length], values));
      this.consts.set(key, name);
    }
    return name;
  }
}

function attrInt(name: string, i: number): AttributeProto {
  return { name, type: AttrType.INT, i };
}
function attrInts(name: string, ints: number[]): AttributeProto {
  return { name, type: AttrType.INTS, ints };
}
function attrFloat(name: string, v: number): AttributeProto {
  return { name, type: AttrType.FLOAT, f: v };
}
function attrString(name: string, s: string): AttributeProto {
  return { name, type: AttrType.STRING, s: new TextEncoder().encode(s) };
}

/** Emits darknet activation `name` on tensor x; returns the result tensor. */
function emitActivation(g: GraphBuilder, x: string, name: string): string {
  switch (name) {
    case 'linear':
      return x;
    case 'logistic':
      return g.node('Sigmoid', [x]);
    case 'loggy': {
      const s = g.node('Sigmoid', [x]);
      return g.node('Sub', [g.node('Mul', [s, g.scalar(2)]), g.scalar(1)]);
    }
    case 'relu':
      return g.node('Relu', [x]);
    case 'relu6':
      return g.node('Clip', [x, g.scalar(0), g.scalar(6)]);
    case 'elu':
      return g.node('Elu', [x], [attrFloat('alpha', 1)]);
    case 'selu':
      return g.node('Selu', [x], [attrFloat('alpha', 1.6732), attrFloat('gamma', 1.0507)]);
    case 'gelu': {
      const x3 = g.node('Mul', [g.node('Mul', [x, x]), x]);
      const inner = g.node('Add', [g.node('Mul', [x, g.scalar(0.797885)]), g.node('Mul', [x3, g.scalar(0.035677)])]);
      const t = g.node('Add', [g.node('Tanh', [inner]), g.scalar(1)]);
      return g.node('Mul', [g.node('Mul', [x, g.scalar(0.5)]), t]);
    }
    case 'relie':
      return g.node('LeakyRelu', [x], [attrFloat('alpha', 0.01)]);
    case 'ramp':
      return g.node('Add', [g.node('Relu', [x]), g.node('Mul', [x, g.scalar(0.1)])]);
    case 'leaky':
    case 'revleaky':
      return g.node('LeakyRelu', [x], [attrFloat('alpha', 0.1)]);
    case 'tanh':
      return g.node('Tanh', [x]);
    case 'plse': {
      const low = g.node('Mul', [g.node('Add', [x, g.scalar(4)]), g.scalar(0.01)]);
      const high = g.node('Add', [g.node('Mul', [g.node('Sub', [x, g.scalar(4)]), g.scalar(0.01)]), g.scalar(1)]);
      const mid = g.node('Add', [g.node('Mul', [x, g.scalar(0.125)]), g.scalar(0.5)]);
      const upper = g.node('Where', [g.node('Greater', [x, g.scalar(4)]), high, mid]);
      return g.node('Where', [g.node('Less', [x, g.scalar(-4)]), low, upper]);
    }
    case 'stair': {
      // n = floor(x); n even: floor(x/2); n odd: (x - n) + floor(x/2)
      const n = g.node('Floor', [x]);
      const half = g.node('Floor', [g.node('Mul', [x, g.scalar(0.5)])]);
      const odd = g.node('Sub', [n, g.node('Mul', [g.node('Floor', [g.node('Mul', [n, g.scalar(0.5)])]), g.scalar(2)])]);
      return g.node('Add', [half, g.node('Mul', [odd, g.node('Sub', [x, n])])]);
    }
    case 'hardtan':
      return g.node('Clip', [x, g.scalar(-1), g.scalar(1)]);
    case 'lhtan': {
      const low = g.node('Mul', [x, g.scalar(0.001)]);
      const high = g.node('Add', [g.node('Mul', [g.node('Sub', [x, g.scalar(1)]), g.scalar(0.001)]), g.scalar(1)]);
      const upper = g.node('Where', [g.node('Greater', [x, g.scalar(1)]), high, x]);
      return g.node('Where', [g.node('Less', [x, g.scalar(0)]), low, upper]);
    }
    case 'mish':
      return g.node('Mul', [x, g.node('Tanh', [g.node('Softplus', [x])])]);
    case 'hard_mish': {
      const quad = g.node('Add', [g.node('Mul', [g.node('Mul', [x, x]), g.scalar(0.5)]), x]);
      const neg = g.node('Where', [g.node('Greater', [x, g.scalar(-2)]), quad, g.scalar(0)]);
      return g.node('Where', [g.node('Greater', [x, g.scalar(0)]), x, neg]);
    }
    case 'swish':
      return g.node('Mul', [x, g.node('Sigmoid', [x])]);
    case 'normalize_channels': {
      const r = g.node('Relu', [x]);
      const sum = g.node('Add', [g.node('ReduceSum', [r, g.ints([1])], [attrInt('keepdims', 1)]), g.scalar(0.0001)]);
      return g.node('Div', [r, sum]);
    }
    case 'normalize_channels_softmax':
    case 'normalize_channels_softmax_maxval': {
      const shifted = name.endsWith('maxval') ? g.node('Sub', [x, g.node('ReduceMax', [x], [attrInts('axes', [1]), attrInt('keepdims', 1)])]) : x;
      const e = g.node('Exp', [shifted]);
      const sum = g.node('Add', [g.node('ReduceSum', [e, g.ints([1])], [attrInt('keepdims', 1)]), g.scalar(0.0001)]);
      return g.node('Div', [e, sum]);
    }
    default:
      throw new Error(`activation ${name} is not supported`);
  }
}

/** Conv weights and biases with batch norm folded in: w' = w*γ/√(σ²+ε), b' = β - γ·μ/√(σ²+ε). */
export function foldConv(spec: ConvSpec): { weights: Float32Array; biases: Float32Array } {
  if (!spec.bn) return { weights: spec.weights, biases: spec.biases };
  const n = spec.filters;
  const per = spec.weights.length / n;
  const weights = new Float32Array(spec.weights.length);
  const biases = new Float32Array(n);
  for (let o = 0; o < n; o++) {
    const inv = spec.bn.scales[o] / Math.sqrt(f(spec.bn.variance[o] + EPS));
    for (let k = 0; k < per; k++) weights[o * per + k] = spec.weights[o * per + k] * inv;
    biases[o] = spec.biases[o] - spec.bn.mean[o] * inv;
  }
  return { weights, biases };
}

function emitConv(g: GraphBuilder, x: string, s: ConvSpec): string {
  const { weights, biases } = foldConv(s);
  const w = g.floatInit(`w${s.index}`, [s.filters, s.in[0] / s.groups, s.size, s.size], weights);
  const b = g.floatInit(`b${s.index}`, [s.filters], biases);
  const p = s.padding * s.dilation;
  const conv = g.node('Conv', [x, w, b], [
    attrInts('kernel_shape', [s.size, s.size]),
    attrInts('strides', [s.strideY, s.strideX]),
    attrInts('pads', [p, p, p, p]),
    attrInts('dilations', [s.dilation, s.dilation]),
    attrInt('group', s.groups),
  ], `conv${s.index}`);
  return emitActivation(g, conv, s.activation);
}

function flatSize(s: Chw): number {
  return s[0] * s[1] * s[2];
}

/** darknet shortcut_multilayer_cpu: out[i] = a[i] + b[i] for i < min(|a|, |b|), over flattened CHW. */
function emitFlatAdd(g: GraphBuilder, a: string, aShape: Chw, b: string, bShape: Chw): string {
  if (aShape.join() === bShape.join()) return g.node('Add', [a, b]);
  const la = flatSize(aShape);
  const lb = flatSize(bShape);
  const bFlat = g.node('Reshape', [b, g.ints([-1, lb])]);
  const bFit = lb >= la
    ? g.node('Slice', [bFlat, g.ints([0]), g.ints([la]), g.ints([1])])
    : g.node('Pad', [bFlat, g.ints([0, 0, 0, la - lb])], [attrString('mode', 'constant')]);
  const aFlat = g.node('Reshape', [a, g.ints([-1, la])]);
  return g.node('Reshape', [g.node('Add', [aFlat, bFit]), g.ints([-1, ...aShape])]);
}

function emitYolo(g: GraphBuilder, x: string, s: YoloSpec, out: string): void {
  const [, H, W] = s.in;
  const A = s.anchors.length / 2;
  const C = s.classes;
  const rows = H * W * A;
  const r1 = g.node('Reshape', [x, g.ints([-1, A, 5 + C, H * W])]);
  const t = g.node('Transpose', [r1], [attrInts('perm', [0, 3, 1, 2])]);
  const r2 = g.node('Reshape', [t, g.ints([-1, rows, 5 + C])]);
  let [xy, wh, rest] = g.nodeMulti('Split', [r2, g.ints([2, 2, 1 + C])], 3, [attrInt('axis', 2)], `split${s.index}`);
  if (!s.newCoords) {
    xy = g.node('Sigmoid', [xy]);
    rest = g.node('Sigmoid', [rest]);
  }
  if (s.scaleXY !== 1) {
    xy = g.node('Add', [g.node('Mul', [xy, g.scalar(s.scaleXY)]), g.scalar(-0.5 * (s.scaleXY - 1))]);
  }
  const grid = new Float32Array(rows * 2);
  const anchors = new Float32Array(rows * 2);
  for (let cell = 0; cell < H * W; cell++) {
    for (let a = 0; a < A; a++) {
      const r = cell * A + a;
      grid[2 * r] = cell % W;
      grid[2 * r + 1] = Math.floor(cell / W);
      anchors[2 * r] = s.anchors[2 * a];
      anchors[2 * r + 1] = s.anchors[2 * a + 1];
    }
  }
  const gridName = g.floatInit(`grid${s.index}`, [1, rows, 2], grid);
  const anchorName = g.floatInit(`anchors${s.index}`, [1, rows, 2], anchors);
  const xyOut = g.node('Div', [g.node('Add', [xy, gridName]), g.floats([W, H], [1, 1, 2])]);
  const size = s.newCoords
    ? g.node('Mul', [g.node('Mul', [wh, wh]), g.scalar(4)])
    : g.node('Exp', [wh]);
  const whOut = g.node('Div', [g.node('Mul', [size, anchorName]), g.floats([s.netW, s.netH], [1, 1, 2])]);
  g.node('Concat', [xyOut, whOut, rest], [attrInt('axis', 2)], 'yolo', out);
}

/** Builds the ONNX model of a graph with its weights. */
export function exportOnnx(graph: ModelGraph, weights: ModelWeights, opts: ExportOptions = {}): ExportResult {
  const spec = networkSpec(graph, weights);
  return exportSpec(spec, opts);
}

export function exportSpec(spec: NetworkSpec, opts: ExportOptions = {}): ExportResult {
  const g = new GraphBuilder();
  const names = new Map<number, string>();
  names.set(-1, 'input');
  const shapes = new Map<number, Chw>();
  shapes.set(-1, spec.input);
  const outputs: ValueInfoProto[] = [];
  const batch: number | string = opts.batch ?? 'N';
  const extra = new Set(opts.extraOutputs ?? []);
  const classes = spec.heads.length ? spec.heads[0].classes : 0;
  if (opts.concat && spec.heads.some((h) => h.classes !== classes)) {
    throw new Error('the [yolo] layers have different class counts: they cannot be concatenated into one `detections` output');
  }

  for (const layer of spec.layers) {
    const x = names.get(layer.inputs[0]);
    if (x === undefined) throw new Error(`layer ${layer.index} reads layer ${layer.inputs[0]}, which produced no tensor`);
    let y: string;
    if (layer.kind === 'yolo') {
      y = `yolo_${layer.index}`;
      emitYolo(g, x, layer, y);
      outputs.push(valueInfo(y, DataType.FLOAT, [batch, headRows(layer), 5 + layer.classes],
        `[yolo] layer ${layer.index}: rows (y*W+x)*A+a; x, y, w, h relative to the network input, objectness, class scores`));
    } else {
      y = emitLayer(g, layer, names, shapes);
    }
    names.set(layer.index, y);
    shapes.set(layer.index, layer.out);
  }

  if (spec.heads.length === 0) {
    const last = spec.layers[spec.layers.length - 1];
    const out = g.node('Identity', [names.get(last.index)!], [], 'output', 'output');
    outputs.push(valueInfo(out, DataType.FLOAT, [batch, ...last.out]));
  }
  if (opts.concat && spec.heads.length) {
    const total = spec.heads.reduce((n, h) => n + headRows(h), 0);
    g.node('Concat', spec.heads.map((h) => `yolo_${h.index}`), [attrInt('axis', 1)], 'detections', 'detections');
    outputs.push(valueInfo('detections', DataType.FLOAT, [batch, total, 5 + classes], 'all [yolo] outputs concatenated in layer order'));
  }
  for (const i of [...extra].sort((a, b) => a - b)) {
    const layer = spec.layers[i];
    if (!layer || layer.kind === 'yolo') throw new Error(`extra output: layer ${i} does not exist or is a [yolo] head`);
    const name = `layer_${i}`;
    g.node('Identity', [names.get(i)!], [], name, name);
    outputs.push(valueInfo(name, DataType.FLOAT, [batch, ...layer.out]));
  }

  const metadata: OnnxMetadata = {
    format: 1,
    netW: spec.netW,
    netH: spec.netH,
    channels: spec.input[0],
    letterBox: spec.letterBox,
    classes,
    heads: spec.heads.map((h) => ({
      index: h.index, output: `yolo_${h.index}`, w: h.in[2], h: h.in[1], anchors: h.anchors.length / 2, rows: headRows(h), classes: h.classes,
    })),
    nms: { kind: spec.nms.kind, beta: spec.nms.beta },
    ...(opts.names ? { names: opts.names } : {}),
  };

  const model: ModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'darkslim',
    producerVersion: '0.1.0',
    docString: 'Exported by Darkslim from a Darknet cfg + weights. Outputs yolo_<layer>: [N, H*W*A, 5+classes] decoded boxes (x, y, w, h relative to the input), objectness, class scores.',
    graph: {
      name: 'darknet',
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo('input', DataType.FLOAT, [batch, ...spec.input], 'planar RGB in [0,1], resized as darknet does')],
      output: outputs,
    },
    metadataProps: [{ key: METADATA_KEY, value: JSON.stringify(metadata) }],
  };
  return { bytes: encodeModel(model), metadata, outputs: outputs.map((o) => o.name), nodes: g.nodes.length };
}

function emitLayer(g: GraphBuilder, layer: Exclude<LayerSpec, YoloSpec>, names: Map<number, string>, shapes: Map<number, Chw>): string {
  const x = names.get(layer.inputs[0])!;
  switch (layer.kind) {
    case 'conv':
      return emitConv(g, x, layer);
    case 'maxpool':
    case 'local_avgpool': {
      const begin = Math.floor(layer.padding / 2);
      const end = layer.padding - begin;
      const attrs = [
        attrInts('kernel_shape', [layer.size, layer.size]),
        attrInts('strides', [layer.strideY, layer.strideX]),
        attrInts('pads', [begin, begin, end, end]),
      ];
      if (layer.kind === 'maxpool') return g.node('MaxPool', [x], attrs, `maxpool${layer.index}`);
      return g.node('AveragePool', [x], [...attrs, attrInt('count_include_pad', 0)], `avgpool${layer.index}`);
    }
    case 'avgpool':
      return g.node('GlobalAveragePool', [x], [], `gap${layer.index}`);
    case 'route': {
      const parts = layer.inputs.map((i, k) => {
        const t = names.get(i)!;
        if (layer.groups === 1) return t;
        const c = layer.ins[k][0] / layer.groups;
        return g.node('Slice', [t, g.ints([layer.groupId * c]), g.ints([(layer.groupId + 1) * c]), g.ints([1])], [], `slice${layer.index}`);
      });
      return parts.length === 1 ? parts[0] : g.node('Concat', parts, [attrInt('axis', 1)], `route${layer.index}`);
    }
    case 'shortcut': {
      let acc = x;
      for (let k = 1; k < layer.inputs.length; k++) {
        acc = emitFlatAdd(g, acc, layer.ins[0], names.get(layer.inputs[k])!, layer.ins[k]);
      }
      return emitActivation(g, acc, layer.activation);
    }
    case 'upsample': {
      let y: string;
      if (layer.reverse) {
        const s = layer.stride;
        const avg = g.node('AveragePool', [x], [attrInts('kernel_shape', [s, s]), attrInts('strides', [s, s])], `down${layer.index}`);
        return g.node('Mul', [avg, g.scalar(s * s * layer.scale)]);
      }
      y = g.node('Resize', [x, '', g.floats([1, 1, layer.stride, layer.stride], [4])], [
        attrString('mode', 'nearest'),
        attrString('coordinate_transformation_mode', 'asymmetric'),
        attrString('nearest_mode', 'floor'),
      ], `up${layer.index}`);
      if (layer.scale !== 1) y = g.node('Mul', [y, g.scalar(layer.scale)]);
      return y;
    }
    case 'scale_channels':
    case 'sam': {
      const feature = names.get(layer.inputs[1])!;
      const fShape = shapes.get(layer.inputs[1])!;
      let scales = x;
      if (layer.kind === 'scale_channels') {
        const target = layer.scaleWh ? [-1, 1, fShape[1], fShape[2]] : [-1, fShape[0], 1, 1];
        scales = g.node('Reshape', [x, g.ints(target)]);
      }
      return emitActivation(g, g.node('Mul', [feature, scales], [], `scale${layer.index}`), layer.activation);
    }
    case 'identity':
      return x;
    case 'activation':
      return emitActivation(g, x, layer.activation);
    case 'batchnorm': {
      const c = layer.in[0];
      const a = new Float32Array(c);
      const b = new Float32Array(c);
      for (let k = 0; k < c; k++) {
        const inv = layer.bn.scales[k] / Math.sqrt(f(layer.bn.variance[k] + EPS));
        a[k] = inv;
        b[k] = layer.biases[k] - layer.bn.mean[k] * inv;
      }
      const scaled = g.node('Mul', [x, g.floatInit(`bn${layer.index}`, [c, 1, 1], a)]);
      return g.node('Add', [scaled, g.floatInit(`bnb${layer.index}`, [c, 1, 1], b)]);
    }
  }
}

