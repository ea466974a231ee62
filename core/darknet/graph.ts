// Builds the layer graph from a parsed cfg the way AlexeyAB darknet's parse_network_cfg_custom does:
// each layer sees the previous layer's output as its input (w, h, c, inputs), route/shortcut read
// other layers by absolute or relative index, and BFLOPs/avg_outputs follow darknet's own sums.
import { SectionOptions } from './options';
import { parseCfg } from './parser';
import { validateDocument } from './validate';
import type {
  CfgDocument, CfgSection, ConvOptions, Diagnostic, Layer, LayerType, ModelGraph, NetOptions, Range, Shape,
} from './types';

export interface BuildOptions {
  /** Override the [net] input size (e.g. `--size 608x608`). */
  width?: number;
  height?: number;
}

/** Parse, build and validate in one call. */
export function analyzeCfg(text: string, opts: BuildOptions = {}): ModelGraph {
  return buildGraph(parseCfg(text), opts);
}

const YOLO_LIKE: ReadonlySet<LayerType> = new Set(['yolo', 'Gaussian_yolo', 'region', 'detection']);

export function isHead(type: LayerType): boolean {
  return YOLO_LIKE.has(type);
}

interface State {
  w: number;
  h: number;
  c: number;
  inputs: number;
}

/** What darknet stores as l.w / l.h (used only by avg_outputs). */
interface DarknetDims {
  lw: number;
  lh: number;
}

function trunc(x: number): number {
  return x < 0 ? Math.ceil(x) : Math.floor(x);
}

function cdiv(a: number, b: number): number {
  return b === 0 ? 0 : trunc(a / b);
}

function headerOr(section: CfgSection, opts: SectionOptions, key: string): Range {
  return opts.entry(key)?.valueRange ?? section.headerRange;
}

function readNet(doc: CfgDocument, overrides: BuildOptions): NetOptions {
  const netSection = doc.sections[0]?.type === 'net' ? doc.sections[0] : undefined;
  const raw: Record<string, string> = {};
  if (netSection) for (const e of netSection.entries) if (!(e.key in raw)) raw[e.key] = e.value;
  const o = netSection ? new SectionOptions(netSection) : undefined;
  return {
    width: overrides.width ?? o?.int('width', 0) ?? 0,
    height: overrides.height ?? o?.int('height', 0) ?? 0,
    channels: o?.int('channels', 0) ?? 0,
    batch: o?.int('batch', 1) ?? 1,
    subdivisions: o?.int('subdivisions', 1) ?? 1,
    letterBox: o?.bool('letter_box') ?? false,
    raw,
  };
}

export function buildGraph(doc: CfgDocument, opts: BuildOptions = {}): ModelGraph {
  const net = readNet(doc, opts);
  const diagnostics: Diagnostic[] = [];
  const layers: Layer[] = [];
  const dims: DarknetDims[] = [];
  /** Layers whose shape could not be computed; errors downstream of them are not repeated. */
  const broken = new Set<number>();
  const netOpts = doc.sections[0]?.type === 'net' ? new SectionOptions(doc.sections[0]) : undefined;
  let state: State = {
    w: net.width,
    h: net.height,
    c: net.channels,
    inputs: netOpts?.int('inputs', net.width * net.height * net.channels) ?? net.width * net.height * net.channels,
  };

  let bflopsTotal = 0;
  let avgSum = 0;
  let avgCount = 0;
  let paramsTotal = 0;
  let floatsTotal = 0;

  const layerSections = doc.sections.filter((s) => s.type !== 'net');
  // The layer being built; the helpers below report against it. Declared once, outside the loop.
  let section!: CfgSection;
  let index = 0;
  let o!: SectionOptions;
  const err = (message: string, range: Range = section.headerRange, code?: Diagnostic['code'], data?: Record<string, unknown>) =>
    diagnostics.push({ severity: 'error', message, range, layer: index, code, data });
  const warn = (message: string, range: Range = section.headerRange, code?: Diagnostic['code']) =>
    diagnostics.push({ severity: 'warning', message, range, layer: index, code });
  /** Resolves a reference list (route layers=, shortcut from=) to absolute indices, reporting bad ones. */
  const resolveRefs = (key: string): number[] | undefined => {
    const refs = o.ints(key);
    const range = headerOr(section, o, key);
    if (!refs || refs.length === 0 || (refs.length === 1 && o.str(key) === '')) {
      err(`[${section.name}] layer ${index} needs ${key}= (the layers it reads).`, range, 'bad-reference');
      return undefined;
    }
    const out: number[] = [];
    for (const r of refs) {
      const abs = r < 0 ? index + r : r;
      if (abs < 0) {
        err(`${key}=${r} in layer ${index} points before the first layer (resolves to ${abs}).`, range, 'bad-reference');
        return undefined;
      }
      if (abs >= index) {
        err(`${key}=${r} in layer ${index} refers to layer ${abs}, which is not before it: darknet reads only earlier layers.`, range, 'forward-reference');
        return undefined;
      }
      out.push(abs);
    }
    return out;
  };

  for (const current of layerSections) {
    section = current;
    index = section.index;
    o = new SectionOptions(section);
    const type: LayerType = section.type === undefined || section.type === 'net' ? 'empty' : section.type;
    const layer: Layer = {
      index, type, section, inputs: [index - 1],
      input: [state.w, state.h, state.c], output: [state.w, state.h, state.c],
      params: 0, weightFloats: 0, bflops: 0, outputs: state.inputs,
    };
    const dn: DarknetDims = { lw: state.w, lh: state.h };
    let isBroken = index > 0 && broken.has(index - 1);
    if (section.type === undefined) isBroken = true; // reported by validate.ts

    switch (type) {
      case 'convolutional': {
        const conv = readConv(o, state.c);
        layer.conv = conv;
        const ow = cdiv(state.w + 2 * conv.padding - conv.size, conv.strideX) + 1;
        const oh = cdiv(state.h + 2 * conv.padding - conv.size, conv.strideY) + 1;
        layer.output = [ow, oh, conv.filters];
        const cPerGroup = cdiv(state.c, conv.groups);
        const nweights = cPerGroup * conv.filters * conv.size * conv.size;
        layer.params = nweights + conv.filters + (conv.batchNormalize ? conv.filters : 0);
        layer.weightFloats = conv.shareIndex !== undefined ? 0 : nweights + conv.filters * (conv.batchNormalize ? 4 : 1);
        let bf = (2.0 * nweights * ow * oh) / 1e9;
        if (o.bool('xnor')) bf /= 32;
        layer.bflops = bf;
        if (!isBroken && conv.groups > 0 && state.c % conv.groups !== 0) {
          err(`groups=${conv.groups} does not divide the ${state.c} input channels of layer ${index}.`, headerOr(section, o, 'groups'), 'conv-groups');
        }
        if (!isBroken && conv.groups > 0 && conv.filters % conv.groups !== 0) {
          err(`groups=${conv.groups} does not divide filters=${conv.filters} of layer ${index}.`, headerOr(section, o, 'groups'), 'conv-groups');
        }
        if (o.int('antialiasing', 0)) warn('antialiasing=1 adds a blur layer that Darkslim does not model; shapes and BFLOPs may differ from darknet.', headerOr(section, o, 'antialiasing'), 'unsupported-shape');
        break;
      }
      case 'connected': {
        const out = o.int('output', 1);
        const bn = o.bool('batch_normalize');
        layer.output = [1, 1, out];
        layer.params = out * state.inputs + out + (bn ? out : 0);
        layer.weightFloats = out + out * state.inputs + (bn ? 3 * out : 0);
        layer.bflops = (2.0 * out * state.inputs) / 1e9;
        layer.activation = o.str('activation', 'logistic');
        dn.lw = 1; dn.lh = 1;
        break;
      }
      case 'maxpool':
      case 'local_avgpool': {
        const stride = o.int('stride', 1);
        const sx = o.int('stride_x', stride);
        const sy = o.int('stride_y', stride);
        const size = o.int('size', stride);
        const padding = o.int('padding', size - 1);
        layer.stride = stride; layer.size = size; layer.padding = padding;
        const depth = type === 'maxpool' ? o.int('maxpool_depth', 0) : 0;
        if (depth) {
          layer.output = [state.w, state.h, o.int('out_channels', 1)];
        } else {
          layer.output = [cdiv(state.w + padding - size, sx) + 1, cdiv(state.h + padding - size, sy) + 1, state.c];
        }
        layer.bflops = (size * size * state.c * layer.output[1] * layer.output[0]) / 1e9;
        break;
      }
      case 'avgpool':
        layer.output = [1, 1, state.c];
        break;
      case 'route': {
        const refs = resolveRefs('layers');
        if (!refs) { isBroken = true; break; }
        layer.inputs = refs;
        const groups = o.int('groups', 1);
        const groupId = o.int('group_id', 0);
        layer.groups = groups; layer.groupId = groupId;
        const first = layers[refs[0]];
        const refBroken = refs.some((r) => broken.has(r));
        let w = first.output[0];
        let h = first.output[1];
        let c = first.output[2];
        let outputs = first.outputs;
        for (let i = 1; i < refs.length; i++) {
          const next = layers[refs[i]];
          outputs += next.outputs;
          if (next.output[0] === w && next.output[1] === h) {
            c += next.output[2];
          } else {
            if (!refBroken) {
              err(`route layer ${index} joins layers of different sizes: layer ${refs[0]} is ${fmt(first.output)} but layer ${refs[i]} is ${fmt(next.output)}.`, headerOr(section, o, 'layers'), 'route-spatial-mismatch');
            }
            w = 0; h = 0; c = 0;
            isBroken = true;
            break;
          }
        }
        layer.input = [w, h, c];
        if (groups < 1 || groupId < 0 || groupId >= groups) {
          err(`group_id=${groupId} must be between 0 and groups-1 (groups=${groups}).`, headerOr(section, o, 'group_id'), 'route-groups');
          isBroken = true;
        } else if (!isBroken && c % groups !== 0) {
          err(`groups=${groups} does not divide the ${c} channels that route layer ${index} concatenates.`, headerOr(section, o, 'groups'), 'route-groups');
        }
        layer.output = [w, h, groups >= 1 ? cdiv(c, groups) : 0];
        layer.outputs = groups >= 1 ? cdiv(outputs, groups) : 0;
        dn.lw = first.input[0]; dn.lh = first.input[1];
        if (refBroken) isBroken = true;
        break;
      }
      case 'shortcut': {
        const refs = resolveRefs('from');
        layer.activation = o.str('activation', 'linear');
        if (!refs) { isBroken = true; break; }
        layer.inputs = [index - 1, ...refs];
        const n = refs.length;
        layer.bflops = (state.w * state.h * state.c * n) / 1e9;
        const wt = o.str('weights_type', 'none');
        const nweights = wt === 'per_feature' || wt === 'per_layer' ? n + 1 : wt === 'per_channel' ? (n + 1) * state.c : 0;
        layer.params = nweights;
        layer.weightFloats = nweights;
        const refBroken = refs.some((r) => broken.has(r));
        if (!isBroken && !refBroken) {
          for (const r of refs) {
            const src = layers[r].output;
            if (src[0] !== state.w || src[1] !== state.h) {
              const ratioOk = (a: number, b: number) => a > 0 && b > 0 && (a % b === 0 || b % a === 0);
              if (ratioOk(src[0], state.w) && ratioOk(src[1], state.h) && src[0] / state.w === src[1] / state.h) {
                // darknet's shortcut_cpu strides over the larger input (ResNet-style downsampling)
                warn(`shortcut layer ${index} adds layer ${r} (${fmt(src)}) to layer ${index - 1} (${fmt([state.w, state.h, state.c])}): darknet samples the larger one ("Downsample here").`, headerOr(section, o, 'from'), 'shortcut-mismatch');
              } else {
                err(`shortcut layer ${index} adds layer ${r} (${fmt(src)}) to layer ${index - 1} (${fmt([state.w, state.h, state.c])}): their widths and heights must match.`, headerOr(section, o, 'from'), 'shortcut-mismatch');
              }
            } else if (src[2] !== state.c) {
              warn(`shortcut layer ${index} adds layer ${r} with ${src[2]} channels to ${state.c} channels: darknet adds only the channels both have.`, headerOr(section, o, 'from'), 'shortcut-mismatch');
            }
          }
        }
        if (refBroken) isBroken = true;
        break;
      }
      case 'upsample': {
        const stride = o.int('stride', 2);
        layer.stride = stride;
        layer.output = stride < 0
          ? [cdiv(state.w, -stride), cdiv(state.h, -stride), state.c]
          : [state.w * stride, state.h * stride, state.c];
        break;
      }
      case 'yolo':
      case 'Gaussian_yolo': {
        const classes = o.int('classes', 20);
        const num = o.int('num', 1);
        const mask = o.ints('mask') ?? Array.from({ length: num }, (_, i) => i);
        const anchors = o.floats('anchors') ?? [];
        layer.yolo = { classes, num, mask, anchors, scaleXY: o.float('scale_x_y', 1), newCoords: o.bool('new_coords') };
        const per = type === 'yolo' ? classes + 5 : classes + 9;
        layer.output = [state.w, state.h, mask.length * per];
        layer.outputs = state.w * state.h * mask.length * per;
        if (!isBroken) checkHeadFilters(layer, state, mask.length * per, `(classes + ${per - classes}) * len(mask) = (${classes} + ${per - classes}) * ${mask.length}`);
        break;
      }
      case 'region': {
        const classes = o.int('classes', 20);
        const coords = o.int('coords', 4);
        const num = o.int('num', 1);
        const anchors = o.floats('anchors') ?? [];
        layer.yolo = { classes, num, mask: Array.from({ length: num }, (_, i) => i), anchors, scaleXY: 1, newCoords: false };
        layer.output = [state.w, state.h, num * (classes + coords + 1)];
        layer.outputs = state.w * state.h * num * (classes + coords + 1);
        if (!isBroken) checkHeadFilters(layer, state, num * (classes + coords + 1), `(classes + coords + 1) * num = (${classes} + ${coords} + 1) * ${num}`);
        break;
      }
      case 'detection':
        layer.output = [1, 1, state.inputs];
        break;
      case 'reorg':
      case 'reorg3d': {
        const stride = o.int('stride', 1);
        layer.stride = stride;
        layer.output = o.bool('reverse')
          ? [state.w * stride, state.h * stride, cdiv(state.c, stride * stride)]
          : [cdiv(state.w, stride), cdiv(state.h, stride), state.c * stride * stride];
        break;
      }
      case 'crop':
        layer.output = [o.int('crop_width', 1), o.int('crop_height', 1), state.c];
        break;
      case 'local': {
        const filters = o.int('filters', 1);
        const size = o.int('size', 1);
        const stride = o.int('stride', 1);
        const pad = o.int('pad', 0);
        const ow = cdiv(pad ? state.w - 1 : state.w - size, stride) + 1;
        const oh = cdiv(pad ? state.h - 1 : state.h - size, stride) + 1;
        layer.output = [ow, oh, filters];
        const locations = ow * oh;
        layer.params = size * size * state.c * filters * locations + ow * oh * filters;
        layer.weightFloats = layer.params;
        break;
      }
      case 'batchnorm':
        layer.params = 2 * state.c;
        layer.weightFloats = 4 * state.c;
        break;
      case 'scale_channels':
      case 'sam': {
        const refs = resolveRefs('from');
        layer.activation = o.str('activation', 'linear');
        if (!refs) { isBroken = true; break; }
        layer.inputs = [index - 1, refs[0]];
        const src = layers[refs[0]].output;
        layer.output = [src[0], src[1], src[2]];
        const scaleWh = type === 'scale_channels' && o.bool('scale_wh');
        if (!isBroken && !broken.has(refs[0])) {
          if (type === 'scale_channels' && !scaleWh && state.c !== src[2]) {
            err(`scale_channels layer ${index} scales the ${src[2]} channels of layer ${refs[0]} with ${state.c} values from layer ${index - 1}: the channel counts must match.`, headerOr(section, o, 'from'), 'shortcut-mismatch');
          }
          if (type === 'sam' && (state.w !== src[0] || state.h !== src[1] || state.c !== src[2])) {
            err(`sam layer ${index} multiplies layer ${refs[0]} (${fmt(src)}) by layer ${index - 1} (${fmt([state.w, state.h, state.c])}): the shapes must match.`, headerOr(section, o, 'from'), 'shortcut-mismatch');
          }
        }
        if (broken.has(refs[0])) isBroken = true;
        break;
      }
      case 'implicit': {
        const filters = o.int('filters', 128);
        layer.output = [1, 1, filters];
        layer.params = filters;
        layer.weightFloats = filters;
        break;
      }
      case 'rnn': {
        const hidden = o.int('hidden', 1);
        const out = o.int('output', 1);
        const bn = o.bool('batch_normalize');
        const parts: [number, number][] = [[state.inputs, hidden], [hidden, hidden], [hidden, out]];
        applyConnectedParts(layer, parts, bn);
        layer.output = [1, 1, out];
        dn.lw = 1; dn.lh = 1;
        break;
      }
      case 'gru': {
        const out = o.int('output', 1);
        const bn = o.bool('batch_normalize');
        const parts: [number, number][] = [
          [state.inputs, out], [state.inputs, out], [state.inputs, out], [out, out], [out, out], [out, out]];
        applyConnectedParts(layer, parts, bn);
        layer.output = [1, 1, out];
        dn.lw = 1; dn.lh = 1;
        break;
      }
      case 'lstm': {
        const out = o.int('output', 1);
        const bn = o.bool('batch_normalize');
        const parts: [number, number][] = [
          [out, out], [out, out], [out, out], [out, out],
          [state.inputs, out], [state.inputs, out], [state.inputs, out], [state.inputs, out]];
        applyConnectedParts(layer, parts, bn);
        layer.output = [1, 1, out];
        dn.lw = 1; dn.lh = 1;
        break;
      }
      case 'crnn': {
        const size = o.int('size', 3);
        const stride = o.int('stride', 1);
        const pad = o.int('pad', 0);
        const padding = pad ? cdiv(size, 2) : o.int('padding', 0);
        const hidden = o.int('hidden', 1);
        const out = o.int('output', 1);
        const groups = o.int('groups', 1);
        const bn = o.bool('batch_normalize');
        const ow = cdiv(state.w + 2 * padding - size, stride) + 1;
        const oh = cdiv(state.h + 2 * padding - size, stride) + 1;
        const convs: [number, number][] = [[state.c, hidden], [hidden, hidden], [hidden, out]];
        for (const [cin, cout] of convs) {
          const nw = cdiv(cin, groups) * cout * size * size;
          layer.params += nw + cout + (bn ? cout : 0);
          layer.weightFloats += nw + cout * (bn ? 4 : 1);
          layer.bflops += (2.0 * nw * ow * oh) / 1e9;
        }
        layer.output = [ow, oh, out];
        break;
      }
      case 'conv_lstm': {
        const size = o.int('size', 3);
        const stride = o.int('stride', 1);
        const pad = o.int('pad', 0);
        const padding = pad ? cdiv(size, 2) : o.int('padding', 0);
        const out = o.int('output', 1);
        layer.output = [cdiv(state.w + 2 * padding - size, stride) + 1, cdiv(state.h + 2 * padding - size, stride) + 1, out];
        warn('Darkslim computes the output shape of [conv_lstm] but not its weights or BFLOPs.', section.headerRange, 'unsupported-shape');
        break;
      }
      case 'history':
        layer.output = [state.w, state.h, state.c * o.int('history_size', 4)];
        break;
      case 'softmax':
      case 'cost':
      case 'contrastive':
        layer.output = state.w > 0 && state.h > 0 ? [state.w, state.h, state.c] : [1, 1, state.inputs];
        layer.outputs = state.inputs;
        if (type === 'cost') { dn.lw = 0; dn.lh = 0; }
        break;
      case 'dropout':
        dn.lw = 0; dn.lh = 0; // darknet's dropout layer keeps no w/h, so avg_outputs skips it
        break;
      case 'activation':
      case 'normalization':
      case 'empty':
        if (type === 'activation') layer.activation = o.str('activation', 'linear');
        break;
    }

    if (type !== 'route' && type !== 'yolo' && type !== 'Gaussian_yolo' && type !== 'region' && type !== 'softmax'
      && type !== 'cost' && type !== 'contrastive' && type !== 'detection') {
      layer.outputs = layer.output[0] * layer.output[1] * layer.output[2];
    }
    if (!isBroken && layer.output.some((v) => v <= 0) && !(state.w === 0 && state.h === 0 && isNonSpatialOk(type))) {
      err(`Layer ${index} [${section.name}] would output ${fmt(layer.output)} from an input of ${fmt(layer.input)}: every dimension must be positive.`, section.headerRange, 'non-positive-size');
      isBroken = true;
    }
    if (isBroken) broken.add(index);

    layers.push(layer);
    dims.push(dn);
    state = { w: layer.output[0], h: layer.output[1], c: layer.output[2], inputs: layer.outputs };
    if (type === 'softmax' || type === 'cost' || type === 'detection') {
      // darknet does not set out_w/out_h for these, only outputs.
      state = { w: 0, h: 0, c: 0, inputs: layer.outputs };
    }

    // darknet keeps these sums in single precision
    const lb = Math.fround(layer.bflops);
    if (lb > 0) bflopsTotal = Math.fround(bflopsTotal + lb);
    if (dn.lw > 1 && dn.lh > 1) {
      avgSum = (avgSum + layer.outputs) | 0;
      avgCount++;
    }
    paramsTotal += layer.params;
    floatsTotal += layer.weightFloats;
  }

  function checkHeadFilters(head: Layer, input: State, expected: number, formula: string): void {
    if (input.c === expected && input.inputs === head.outputs) return;
    const prev = layers[head.index - 1];
    const filtersEntry = prev?.type === 'convolutional' ? new SectionOptions(prev.section).entry('filters') : undefined;
    const target = filtersEntry?.valueRange ?? prev?.section.headerRange ?? head.section.headerRange;
    diagnostics.push({
      severity: 'error',
      code: 'head-filters',
      range: target,
      layer: prev?.index ?? head.index,
      message: `filters=${input.c} in layer ${head.index - 1} does not fit the [${head.section.name}] layer ${head.index} after it: it needs ${formula} = ${expected}.`,
      data: { expected, head: head.index, conv: prev?.type === 'convolutional' ? prev.index : undefined },
    });
  }

  const graph: ModelGraph = {
    doc,
    net,
    layers,
    totals: {
      params: paramsTotal,
      bflops: bflopsTotal,
      avgOutputs: avgCount > 0 ? trunc(avgSum / avgCount) : 0,
      weightFloats: floatsTotal,
    },
    diagnostics: [],
  };
  graph.diagnostics = [...doc.diagnostics, ...validateDocument(graph), ...diagnostics];
  return graph;
}

function isNonSpatialOk(type: LayerType): boolean {
  return type === 'connected' || type === 'rnn' || type === 'gru' || type === 'lstm' || type === 'softmax'
    || type === 'cost' || type === 'dropout' || type === 'activation' || type === 'batchnorm' || type === 'empty';
}

function applyConnectedParts(layer: Layer, parts: [number, number][], bn: boolean): void {
  for (const [inputs, outputs] of parts) {
    layer.params += inputs * outputs + outputs + (bn ? outputs : 0);
    layer.weightFloats += outputs + inputs * outputs + (bn ? 3 * outputs : 0);
    layer.bflops += (2.0 * inputs * outputs) / 1e9;
  }
}

export function readConv(o: SectionOptions, inputChannels: number): ConvOptions {
  const size = o.int('size', 1);
  const stride = o.int('stride', 1);
  let strideX = o.int('stride_x', -1);
  let strideY = o.int('stride_y', -1);
  if (strideX < 1 || strideY < 1) {
    if (strideX < 1) strideX = stride;
    if (strideY < 1) strideY = stride;
  }
  const pad = o.int('pad', 0);
  const padding = pad ? trunc(size / 2) : o.int('padding', 0);
  let dilation = o.int('dilation', 1);
  if (size === 1) dilation = 1;
  const shareRaw = o.has('share_index') ? o.int('share_index', 0) : undefined;
  void inputChannels;
  return {
    filters: o.int('filters', 1),
    size,
    strideX,
    strideY,
    dilation,
    padding,
    groups: o.int('groups', 1),
    batchNormalize: o.int('batch_normalize', 0) !== 0 || o.int('cbn', 0) !== 0,
    activation: o.str('activation', 'logistic'),
    shareIndex: shareRaw,
  };
}

export function fmt(s: Shape): string {
  return `${s[0]}×${s[1]}×${s[2]}`;
}
