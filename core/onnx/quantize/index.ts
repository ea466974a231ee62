// Int8 quantization of a darknet model into a QDQ ONNX model onnxruntime runs with int8 kernels.
//
//   quantizeDarknet(graph, weights, { calib, images, method, keepFloat, heads })
//     1. export the float model (exactly `darkslim export`), and once more with every layer's
//        result exposed, to know which nodes make up which darknet layer;
//     2. plan what runs on 8-bit data (qdq.ts), expose the tensors to calibrate as extra outputs;
//     3. calibrate on the images (calibrate.ts) and choose one threshold per tensor (thresholds.ts);
//     4. rewrite into QDQ: int8 weights per output channel, Q/DQ on the activations;
//     5. load it in onnxruntime with graph optimisation on, save the optimised graph and count the
//        int8 kernels it really runs (QLinearConv, QLinearAdd, ConvInteger...): no int8 kernel at
//        all is an error, never a silently float "int8" model.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelGraph, ModelWeights } from '../../darknet/types';
import { exportSpec, type OnnxMetadata } from '../export';
import { networkSpec, type NetworkSpec } from '../layers';
import { decodeModel, encodeModel } from '../proto';
import { calibrationImages, collectStatistics } from './calibrate';
import { equalizeSpec } from './equalize';
import {
  type ActivationType, assignLayers, buildQdqModel, cleanModel, type HeadMode, planQdq, type QdqPlan, withExtraOutputs, withoutOutputs,
} from './qdq';
import { type CalibrationMethod, chooseThreshold, DEFAULT_PERCENTILE, type TensorStats } from './thresholds';

export * from './thresholds';
export * from './qdq';
export * from './calibrate';
export * from './report';

export const QUANT_METADATA_KEY = 'darkslim_int8';

export interface QuantizeOptions {
  /** Calibration images: a .data file (train list, else valid), an image list or a folder. */
  calib: string;
  /** Calibration images to use (evenly spread over the source). Default 100. */
  images?: number;
  method?: CalibrationMethod;
  /** For method 'percentile'. Default 99.99. */
  percentile?: number;
  /** darknet layer indices computed in float. */
  keepFloat?: number[];
  /** The convs feeding [yolo] layers. Default 'integer'. */
  heads?: HeadMode;
  /** Default 'uint8'. */
  activations?: ActivationType;
  /** Quantized conv biases: int32 DequantizeLinear, or float (onnxruntime quantizes them). Default 'float'. */
  bias?: 'int32' | 'float';
  /** onnxruntime threads for calibration. */
  threads?: number;
  /** Image decoding threads during calibration. */
  workers?: number;
  /** Class names to embed (as export). */
  names?: string[];
  /** Fixed batch size (as export); default symbolic. */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface TensorReport {
  /** darknet layer (-1: the network input). */
  layer: number;
  op: string;
  tensor: string;
  min: number;
  max: number;
  threshold: number;
  scale: number;
  zeroPoint: number;
  /** KL: the winning candidate bin (of 2048). */
  klBin?: number;
  /** Shares its quantization with this tensor (MaxPool / Resize output). */
  tiedTo?: string;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  /** The float model, as `darkslim export` writes it. */
  floatBytes: Uint8Array;
  metadata: OnnxMetadata;
  method: CalibrationMethod;
  percentile?: number;
  images: number;
  calibrationImages: string[];
  activations: ActivationType;
  heads: HeadMode;
  keepFloat: number[];
  /** Layers computed in float (asked, or with nothing quantizable). */
  floatLayers: number[];
  tensors: TensorReport[];
  /** Op counts of the graph onnxruntime runs after optimisation. */
  optimizedOps: Record<string, number>;
  /** The 8-bit kernels among them. */
  int8Ops: Record<string, number>;
  /** Seconds spent calibrating. */
  calibrationSeconds: number;
}

/** Op types that are 8-bit integer kernels (onnxruntime's fused QDQ groups). */
export function isInt8Kernel(op: string): boolean {
  return /^QLinear/.test(op) || op === 'ConvInteger' || op === 'MatMulInteger' || op === 'QGemm' || op === 'NhwcQLinearConv';
}

/**
 * Loads the model in onnxruntime (CPU, graph optimisation 'all', as inference runs it), saves the
 * optimised graph and counts its op types.
 */
export async function optimizedOps(model: Uint8Array): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'darkslim-ort-'));
  const file = join(dir, 'optimized.onnx');
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3,
      intraOpNumThreads: 1,
    });
    await session.release();
    const counts: Record<string, number> = {};
    for (const n of decodeModel(readFileSync(file)).graph.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PreparedModel {
  spec: NetworkSpec;
  floatBytes: Uint8Array;
  metadata: OnnxMetadata;
  /** The float model decoded, without extra outputs, with its nodes' darknet layers. */
  model: ReturnType<typeof decodeModel>;
  layerOfNode: number[];
}

/** Exports the float model and maps its nodes to darknet layers. */
export function prepareFloat(graph: ModelGraph, weights: ModelWeights, opts: { names?: string[]; batch?: number } = {}): PreparedModel {
  let spec = networkSpec(graph, weights);
  if (process.env.DS_CLE) spec = equalizeSpec(spec).spec;
  if (spec.heads.length === 0) throw new Error('the network has no [yolo] layer: quantization is calibrated and reported for YOLO detectors');
  const plain = exportSpec(spec, { names: opts.names, batch: opts.batch });
  const layers = spec.layers.filter((l) => l.kind !== 'yolo').map((l) => l.index);
  const probe = exportSpec(spec, { names: opts.names, batch: opts.batch, extraOutputs: layers });
  const ends = new Map<number, string>();
  const decoded = cleanModel(decodeModel(probe.bytes));
  for (const n of decoded.graph.node) {
    const m = /^layer_(\d+)$/.exec(n.output[0] ?? '');
    if (n.opType === 'Identity' && m) ends.set(Number(m[1]), n.input[0]);
  }
  for (const h of spec.heads) ends.set(h.index, `yolo_${h.index}`);
  const model = withoutOutputs(decoded, new Set(layers.map((i) => `layer_${i}`)));
  if (model.graph.node.length !== plain.nodes) throw new Error('internal: the layer probe changed the exported graph');
  const layerOfNode = assignLayers(model.graph.node, spec, ends);
  return { spec, floatBytes: plain.bytes, metadata: plain.metadata, model, layerOfNode };
}

export interface Calibration {
  /** Statistics per calibrated tensor (float-model names). */
  stats: Map<string, TensorStats>;
  /** Whether |x| histograms were collected (kl and percentile need them). */
  histograms: boolean;
  images: string[];
  seconds: number;
}

/** Runs the calibration images through the float model and gathers statistics of `tensors`. */
export async function calibrate(
  prepared: PreparedModel, tensors: string[], images: string[],
  opts: { histograms?: boolean; threads?: number; workers?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<Calibration> {
  const { model, spec } = prepared;
  const inputName = model.graph.input[0]?.name ?? 'input';
  const calibModel = encodeModel(withExtraOutputs(model, tensors.filter((n) => n !== inputName)));
  const t0 = performance.now();
  const histograms = opts.histograms ?? true;
  const stats = await collectStatistics(calibModel, tensors, images, {
    netW: spec.netW, netH: spec.netH, letterBox: spec.letterBox, method: histograms ? 'kl' : 'minmax', threads: opts.threads,
    workers: opts.workers, onProgress: opts.onProgress,
  });
  return { stats, histograms, images, seconds: (performance.now() - t0) / 1000 };
}

/** Every float tensor a plan could quantize: the input and the outputs of all nodes outside the [yolo] decode. */
export function allActivationTensors(prepared: PreparedModel): string[] {
  const yolo = new Set(prepared.spec.heads.map((h) => h.index));
  const out = [prepared.model.graph.input[0]?.name ?? 'input'];
  prepared.model.graph.node.forEach((n, i) => {
    if (!yolo.has(prepared.layerOfNode[i])) out.push(...n.output.filter(Boolean));
  });
  return out;
}

export interface BuildQuantizedOptions {
  method?: CalibrationMethod;
  percentile?: number;
  keepFloat?: number[];
  heads?: HeadMode;
  activations?: ActivationType;
  bias?: 'int32' | 'float';
  /** Skip loading the result in onnxruntime to count its kernels (tests of the rewrite alone). */
  skipVerify?: boolean;
}

/** The int8 model from a plan and calibration statistics (the plan's tensors must all be calibrated). */
export async function buildQuantized(prepared: PreparedModel, plan: QdqPlan, calibration: Calibration, opts: BuildQuantizedOptions = {}): Promise<QuantizeResult> {
  const method = opts.method ?? 'kl';
  const percent = opts.percentile ?? DEFAULT_PERCENTILE;
  const heads = opts.heads ?? 'integer';
  const activations = opts.activations ?? 'uint8';
  if (method !== 'minmax' && !calibration.histograms) throw new Error(`${method} calibration needs histograms`);
  const thresholds = new Map<string, { threshold: number; min: number; klBin?: number }>();
  const fullRange = new Set(plan.tensors.filter((t) => t.fullRange).map((t) => t.name));
  for (const name of plan.calibrate) {
    const s = calibration.stats.get(name);
    if (!s) throw new Error(`internal: tensor ${name} was not calibrated`);
    const choice = fullRange.has(name) ? { threshold: s.absMax } : chooseThreshold(s, method, percent);
    thresholds.set(name, { threshold: choice.threshold, min: s.min, klBin: 'klBin' in choice ? choice.klBin : undefined });
  }
  const quantMeta = {
    method, ...(method === 'percentile' ? { percentile: percent } : {}), images: calibration.images.length, activations, heads,
    keepFloat: opts.keepFloat ?? [],
  };
  const built = buildQdqModel(prepared.model, plan, thresholds, {
    activations, bias: opts.bias, metadata: [{ key: QUANT_METADATA_KEY, value: JSON.stringify(quantMeta) }],
  });
  const bytes = encodeModel(built.model);

  let ops: Record<string, number> = {};
  if (!opts.skipVerify) {
    try {
      ops = await optimizedOps(bytes);
    } catch (e) {
      throw new Error(`the int8 model does not load in onnxruntime: ${(e as Error).message}`);
    }
  }
  const int8Ops = Object.fromEntries(Object.entries(ops).filter(([op]) => isInt8Kernel(op)));
  if (!opts.skipVerify && Object.keys(int8Ops).length === 0) throw new Error('onnxruntime fused no int8 kernel in the quantized model');

  const tensors: TensorReport[] = plan.tensors.map((t) => {
    const p = built.params.get(t.name)!;
    const s = calibration.stats.get(t.tiedTo ?? t.name);
    const th = thresholds.get(t.tiedTo ?? t.name);
    return {
      layer: t.layer, op: t.op, tensor: t.name, min: s?.min ?? NaN, max: s?.max ?? NaN, threshold: p.threshold, scale: p.scale,
      zeroPoint: p.zeroPoint, ...(th?.klBin !== undefined && method === 'kl' && !t.tiedTo ? { klBin: th.klBin } : {}),
      ...(t.tiedTo ? { tiedTo: t.tiedTo } : {}),
    };
  });
  return {
    bytes,
    floatBytes: prepared.floatBytes,
    metadata: prepared.metadata,
    method,
    ...(method === 'percentile' ? { percentile: percent } : {}),
    images: calibration.images.length,
    calibrationImages: calibration.images,
    activations,
    heads,
    keepFloat: [...(opts.keepFloat ?? [])].sort((a, b) => a - b),
    floatLayers: plan.floatLayers,
    tensors,
    optimizedOps: ops,
    int8Ops,
    calibrationSeconds: calibration.seconds,
  };
}

export async function quantizeDarknet(graph: ModelGraph, weights: ModelWeights, opts: QuantizeOptions): Promise<QuantizeResult> {
  const method = opts.method ?? 'kl';
  const heads = opts.heads ?? 'integer';
  const activations = opts.activations ?? 'uint8';
  if (heads === 'integer' && activations !== 'uint8') throw new Error('integer heads (ConvInteger) need uint8 activations');
  const prepared = prepareFloat(graph, weights, { names: opts.names, batch: opts.batch });
  const plan = planQdq(prepared.model, prepared.spec, prepared.layerOfNode, { keepFloat: opts.keepFloat, heads });
  if (plan.quantized.size === 0 && plan.integer.size === 0) throw new Error('nothing to quantize: every layer is kept in float');
  const source = await calibrationImages(opts.calib, opts.images ?? 100);
  const calibration = await calibrate(prepared, plan.calibrate, source.images, {
    histograms: method !== 'minmax', threads: opts.threads, workers: opts.workers, onProgress: opts.onProgress,
  });
  return buildQuantized(prepared, plan, calibration, {
    method, percentile: opts.percentile, keepFloat: opts.keepFloat, heads, activations, bias: opts.bias,
  });
}
