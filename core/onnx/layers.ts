// Inference semantics of each darknet layer, read once from the graph and the weights: what the ONNX
// exporter emits and what the reference forward pass computes. Everything a layer needs at
// inference is here, checked against what AlexeyAB darknet really computes; what Darkslim cannot
// reproduce exactly is a clear error naming the layer, never a silently different network.
//
// Facts this module encodes (AlexeyAB darknet sources):
//  * conv: im2col with padding pad*dilation and dilation d, but the layer's output size is
//    (w + 2*pad - size)/stride + 1 (dilation ignored). Both agree only when d == 1 or
//    2*pad == size-1 ("same" padding); anything else makes darknet read past its buffers, so it is
//    rejected. BN at inference: (x - mean)/sqrt(var + .00001f) * scale + bias.
//  * maxpool / local_avgpool: window offset -padding/2, out = (w + padding - size)/stride + 1;
//    padded cells are ignored (max of the valid cells; average over the valid cells only).
//  * route: each input contributes its group_id-th of `groups` equal channel slices, in order.
//  * shortcut (shortcut_multilayer_cpu): out[i] = in[i] + from[i] over the flattened CHW arrays, for
//    i < min(outputs of both); with equal channel counts and sizes that is a plain add.
//  * upsample: nearest, times `scale`; stride < 0 is a sum-pool (reverse) times scale.
//  * [yolo]: logistic on x, y, objectness and classes (none at all with new_coords=1), then
//    x,y = x,y*scale_x_y - (scale_x_y-1)/2; box = ((col + x)/W, (row + y)/H, exp(w)*anchor_w/net_w,
//    exp(h)*anchor_h/net_h) or with new_coords (w*w*4*anchor_w/net_w, ...).
import { SectionOptions } from '../darknet/options';
import type { Layer, LayerWeights, ModelGraph, ModelWeights } from '../darknet/types';

/** Activation names darknet accepts (activations.c get_activation). */
export const SUPPORTED_ACTIVATIONS: readonly string[] = Object.freeze([
  'linear', 'logistic', 'loggy', 'relu', 'relu6', 'elu', 'selu', 'gelu', 'relie', 'ramp', 'leaky', 'revleaky',
  'tanh', 'plse', 'stair', 'hardtan', 'lhtan', 'mish', 'hard_mish', 'swish',
  'normalize_channels', 'normalize_channels_softmax', 'normalize_channels_softmax_maxval',
]);

export const SUPPORTED_LAYERS: readonly string[] = Object.freeze([
  'convolutional', 'maxpool', 'local_avgpool', 'avgpool', 'route', 'shortcut', 'upsample', 'scale_channels', 'sam',
  'dropout', 'empty', 'activation', 'batchnorm', 'yolo',
]);

/** [channels, height, width] of one image (batch excluded), the ONNX/NCHW order. */
export type Chw = [number, number, number];

import type { NmsKind } from '../eval/nms';
export type { NmsKind };

export interface BatchNormParams {
  scales: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
}

interface Base {
  index: number;
  /** Section type as written, for messages. */
  name: string;
  /** Absolute indices of the layers read (-1 = network input). */
  inputs: number[];
  /** Output shape. */
  out: Chw;
}

export interface ConvSpec extends Base {
  kind: 'conv';
  in: Chw;
  filters: number;
  size: number;
  strideX: number;
  strideY: number;
  dilation: number;
  /** darknet l.pad (per side, before the dilation factor). */
  padding: number;
  groups: number;
  activation: string;
  /** [filters][c/groups][size][size] */
  weights: Float32Array;
  biases: Float32Array;
  bn?: BatchNormParams;
}

export interface PoolSpec extends Base {
  kind: 'maxpool' | 'local_avgpool';
  in: Chw;
  size: number;
  strideX: number;
  strideY: number;
  /** darknet l.pad: total padding; begin = floor(padding/2), end = padding - begin. */
  padding: number;
}

export interface GlobalAvgSpec extends Base { kind: 'avgpool'; in: Chw }

export interface RouteSpec extends Base {
  kind: 'route';
  ins: Chw[];
  groups: number;
  groupId: number;
}

export interface ShortcutSpec extends Base {
  kind: 'shortcut';
  /** [previous layer, ...from] with their shapes. */
  ins: Chw[];
  activation: string;
}

export interface UpsampleSpec extends Base {
  kind: 'upsample';
  in: Chw;
  stride: number;
  reverse: boolean;
  scale: number;
}

export interface ScaleSpec extends Base {
  kind: 'scale_channels' | 'sam';
  /** inputs = [previous (the scales), from (the feature map)] */
  scalesShape: Chw;
  scaleWh: boolean;
  activation: string;
}

export interface IdentitySpec extends Base { kind: 'identity'; in: Chw }

export interface ActivationSpec extends Base { kind: 'activation'; in: Chw; activation: string }

export interface BatchNormSpec extends Base { kind: 'batchnorm'; in: Chw; biases: Float32Array; bn: BatchNormParams }

export interface YoloSpec extends Base {
  kind: 'yolo';
  in: Chw;
  classes: number;
  /** Anchors used by this head, in mask order: [w0, h0, w1, h1, ...] in network pixels. */
  anchors: number[];
  scaleXY: number;
  newCoords: boolean;
  nmsKind: NmsKind;
  betaNms: number;
  /** Network input size (the decode divides box sizes by it). */
  netW: number;
  netH: number;
}

export type LayerSpec =
  | ConvSpec | PoolSpec | GlobalAvgSpec | RouteSpec | ShortcutSpec | UpsampleSpec | ScaleSpec | IdentitySpec
  | ActivationSpec | BatchNormSpec | YoloSpec;

export interface NetworkSpec {
  /** Network input [c, h, w]. */
  input: Chw;
  netW: number;
  netH: number;
  letterBox: boolean;
  layers: LayerSpec[];
  /** The [yolo] heads, in layer order. */
  heads: YoloSpec[];
  /** NMS darknet applies (`detector test`/`map` read it from the last layer). */
  nms: { kind: NmsKind; beta: number };
}

export class UnsupportedLayerError extends Error {
  constructor(readonly layer: number, message: string) {
    super(message);
    this.name = 'UnsupportedLayerError';
  }
}

function where(l: Layer): string {
  return `layer ${l.index} [${l.section.name}] (line ${l.section.headerRange.start.line + 1})`;
}

function chw(shape: [number, number, number]): Chw {
  return [shape[2], shape[1], shape[0]];
}

function checkActivation(l: Layer, activation: string): string {
  if (!SUPPORTED_ACTIVATIONS.includes(activation)) {
    throw new UnsupportedLayerError(l.index, `${where(l)}: activation=${activation} is not a darknet activation (darknet would silently use relu); fix the cfg.`);
  }
  return activation;
}

/**
 * Reads the inference semantics of every layer. Throws UnsupportedLayerError naming the first
 * layer Darkslim cannot run exactly (type, option or missing weights), and Error for graphs with
 * error diagnostics.
 */
export function networkSpec(graph: ModelGraph, weights: ModelWeights): NetworkSpec {
  const errors = graph.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) {
    const d = errors[0];
    throw new Error(`the cfg has ${errors.length} error${errors.length > 1 ? 's' : ''}; first (line ${d.range.start.line + 1}): ${d.message}`);
  }
  const { net } = graph;
  if (net.width <= 0 || net.height <= 0 || net.channels <= 0) {
    throw new Error(`[net] needs positive width, height and channels (got ${net.width}x${net.height}x${net.channels})`);
  }
  const input: Chw = [net.channels, net.height, net.width];
  const layers: LayerSpec[] = [];
  const heads: YoloSpec[] = [];
  const shapeOf = (i: number): Chw => (i < 0 ? input : chw(graph.layers[i].output));

  for (const l of graph.layers) {
    const o = new SectionOptions(l.section);
    const base = { index: l.index, name: l.section.name, inputs: l.inputs, out: chw(l.output) };
    const inShape = shapeOf(l.index - 1);
    switch (l.type) {
      case 'convolutional': {
        const c = l.conv!;
        for (const key of ['xnor', 'binary', 'antialiasing', 'assisted_excitation', 'deform', 'sway', 'rotate', 'stretch', 'stretch_sway']) {
          if (o.int(key, 0)) throw new UnsupportedLayerError(l.index, `${where(l)}: ${key}=${o.str(key)} is not supported by the ONNX exporter.`);
        }
        if (c.shareIndex !== undefined) throw new UnsupportedLayerError(l.index, `${where(l)}: share_index (weights shared with another layer) is not supported.`);
        if (c.groups < 1 || inShape[0] % c.groups || c.filters % c.groups) {
          throw new UnsupportedLayerError(l.index, `${where(l)}: groups=${c.groups} must divide both the ${inShape[0]} input channels and filters=${c.filters}.`);
        }
        if (c.dilation > 1 && 2 * c.padding !== c.size - 1) {
          throw new UnsupportedLayerError(l.index, `${where(l)}: dilation=${c.dilation} with size=${c.size} and padding=${c.padding}: darknet sizes this layer without the dilation but convolves with it, so its output is undefined; only "same" padding (pad=1 with an odd size) is supported with dilation.`);
        }
        if (c.size === 1 && c.strideX === 1 && c.strideY === 1 && c.dilation === 1 && c.padding !== 0) {
          throw new UnsupportedLayerError(l.index, `${where(l)}: a 1x1 stride-1 conv with padding=${c.padding}: darknet skips im2col for it and reads the unpadded input, so its output is undefined.`);
        }
        const lw = needWeights(l, weights);
        const expectW = c.filters * (inShape[0] / c.groups) * c.size * c.size;
        if (lw.weights.length !== expectW || lw.biases.length !== c.filters) {
          throw new Error(`${where(l)}: weights hold ${lw.weights.length} values, the layer needs ${expectW}.`);
        }
        const spec: ConvSpec = {
          ...base, kind: 'conv', in: inShape, filters: c.filters, size: c.size, strideX: c.strideX, strideY: c.strideY,
          dilation: c.dilation, padding: c.padding, groups: c.groups, activation: checkActivation(l, c.activation),
          weights: lw.weights, biases: lw.biases,
        };
        if (c.batchNormalize) {
          if (!lw.scales || !lw.rollingMean || !lw.rollingVariance) throw new Error(`${where(l)}: batch_normalize=1 but the weights hold no BN statistics.`);
          spec.bn = { scales: lw.scales, mean: lw.rollingMean, variance: lw.rollingVariance };
        }
        layers.push(spec);
        break;
      }
      case 'maxpool':
      case 'local_avgpool': {
        if (o.int('maxpool_depth', 0)) throw new UnsupportedLayerError(l.index, `${where(l)}: maxpool_depth=1 (pooling across channels) is not supported.`);
        if (o.int('antialiasing', 0)) throw new UnsupportedLayerError(l.index, `${where(l)}: antialiasing=1 is not supported.`);
        const stride = o.int('stride', 1);
        const strideX = o.int('stride_x', stride);
        const strideY = o.int('stride_y', stride);
        const size = o.int('size', stride);
        const padding = o.int('padding', size - 1);
        if (size < 1 || strideX < 1 || strideY < 1 || padding < 0 || Math.ceil(padding / 2) > size - 1) {
          throw new UnsupportedLayerError(l.index, `${where(l)}: size=${size} stride=${strideX}x${strideY} padding=${padding} leaves windows without any input cell.`);
        }
        layers.push({ ...base, kind: l.type, in: inShape, size, strideX, strideY, padding });
        break;
      }
      case 'avgpool':
        layers.push({ ...base, kind: 'avgpool', in: inShape });
        break;
      case 'route': {
        const groups = l.groups ?? 1;
        const groupId = l.groupId ?? 0;
        const ins = l.inputs.map(shapeOf);
        for (let k = 0; k < ins.length; k++) {
          if (ins[k][0] % groups) {
            throw new UnsupportedLayerError(l.index, `${where(l)}: groups=${groups} does not divide the ${ins[k][0]} channels of layer ${l.inputs[k]}; darknet would split that layer mid-channel.`);
          }
        }
        layers.push({ ...base, kind: 'route', ins, groups, groupId });
        break;
      }
      case 'shortcut': {
        const wt = o.str('weights_type', 'none');
        if (wt !== 'none') throw new UnsupportedLayerError(l.index, `${where(l)}: weighted shortcut (weights_type=${wt}) is not supported.`);
        layers.push({ ...base, kind: 'shortcut', ins: l.inputs.map(shapeOf), activation: checkActivation(l, l.activation ?? 'linear') });
        break;
      }
      case 'upsample': {
        const raw = l.stride ?? 2;
        const stride = Math.abs(raw);
        const reverse = raw < 0;
        if (stride < 1) throw new UnsupportedLayerError(l.index, `${where(l)}: stride=${raw} is not supported.`);
        if (reverse && (inShape[1] % stride || inShape[2] % stride)) {
          throw new UnsupportedLayerError(l.index, `${where(l)}: a downsampling upsample (stride=${raw}) needs the input size ${inShape[2]}x${inShape[1]} to be a multiple of ${stride}.`);
        }
        layers.push({ ...base, kind: 'upsample', in: inShape, stride, reverse, scale: o.float('scale', 1) });
        break;
      }
      case 'scale_channels':
      case 'sam': {
        const scaleWh = l.type === 'scale_channels' && o.bool('scale_wh');
        const feature = shapeOf(l.inputs[1]);
        const count = inShape[0] * inShape[1] * inShape[2];
        if (l.type === 'scale_channels') {
          const need = scaleWh ? feature[1] * feature[2] : feature[0];
          if (count !== need) {
            throw new UnsupportedLayerError(l.index, `${where(l)}: the previous layer has ${count} values but scaling the ${feature.join('x')} map of layer ${l.inputs[1]} needs ${need}.`);
          }
        } else if (inShape.join() !== feature.join()) {
          throw new UnsupportedLayerError(l.index, `${where(l)}: sam needs equal shapes (${inShape.join('x')} vs ${feature.join('x')}).`);
        }
        layers.push({ ...base, kind: l.type, scalesShape: inShape, scaleWh, activation: checkActivation(l, l.activation ?? 'linear') });
        break;
      }
      case 'dropout':
      case 'empty':
        layers.push({ ...base, kind: 'identity', in: inShape });
        break;
      case 'activation':
        layers.push({ ...base, kind: 'activation', in: inShape, activation: checkActivation(l, l.activation ?? 'linear') });
        break;
      case 'batchnorm': {
        const lw = needWeights(l, weights);
        layers.push({
          ...base, kind: 'batchnorm', in: inShape, biases: lw.biases,
          bn: { scales: lw.scales!, mean: lw.rollingMean!, variance: lw.rollingVariance! },
        });
        break;
      }
      case 'yolo': {
        const y = l.yolo!;
        const anchors: number[] = [];
        for (const m of y.mask) {
          if (m < 0 || 2 * m + 1 >= y.anchors.length) {
            throw new UnsupportedLayerError(l.index, `${where(l)}: mask=${m} has no anchor (anchors lists ${y.anchors.length / 2} pairs).`);
          }
          anchors.push(y.anchors[2 * m], y.anchors[2 * m + 1]);
        }
        const kindText = o.str('nms_kind', 'default');
        const nmsKind: NmsKind = kindText === 'greedynms' || kindText === 'diounms' || kindText === 'cornersnms' ? kindText : 'default';
        const head: YoloSpec = {
          ...base, kind: 'yolo', in: inShape, classes: y.classes, anchors, scaleXY: y.scaleXY, newCoords: y.newCoords,
          nmsKind, betaNms: o.float('beta_nms', 0.6), netW: net.width, netH: net.height,
        };
        layers.push(head);
        heads.push(head);
        break;
      }
      default:
        throw new UnsupportedLayerError(l.index, `${where(l)}: [${l.section.name}] layers are not supported by the ONNX exporter (supported: ${SUPPORTED_LAYERS.join(', ')}).`);
    }
  }
  const last = layers[layers.length - 1];
  const nmsHead = last?.kind === 'yolo' ? last : heads[heads.length - 1];
  const nms = nmsHead ? { kind: nmsHead.nmsKind, beta: nmsHead.betaNms } : { kind: 'default' as NmsKind, beta: 0.6 };
  return { input, netW: net.width, netH: net.height, letterBox: net.letterBox, layers, heads, nms };
}

function needWeights(l: Layer, weights: ModelWeights): LayerWeights {
  const lw = weights.layers.get(l.index);
  if (!lw) {
    const partial = weights.loadedLayers < l.index + 1
      ? ` The weights file covers only the layers before ${weights.loadedLayers} (a partial file?).`
      : '';
    throw new Error(`No weights for ${where(l)}.${partial}`);
  }
  return lw;
}

/** Rows (cells × anchors) of a head's decoded output. */
export function headRows(head: YoloSpec): number {
  return head.in[1] * head.in[2] * (head.anchors.length / 2);
}
