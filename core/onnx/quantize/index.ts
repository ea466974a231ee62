// Int8 quantization of a darknet model into a QDQ ONNX model onnxruntime runs with int8 kernels.
//
//   quantizeDarknet(graph, weights, { calib, images, method, keepFloat, heads, ... })
//     1. export the float model (exactly `darkslim export`: the reference for size, latency, mAP),
//        and, for quantization, its cross-layer-equalized twin (equalize.ts: the same function,
//        channel ranges balanced), once more with every layer's result exposed to map each node
//        to its darknet layer;
//     2. plan what runs on 8-bit data (qdq.ts), expose the tensors to calibrate as extra outputs;
//     3. calibrate on the images (calibrate.ts: range pass, then histogram pass) and choose one
//        threshold per tensor (thresholds.ts: kl, minmax, percentile);
//     4. rewrite into QDQ: int8 weights per output channel, Q/DQ on the activations; the layers
//        kept in float (by default the stem, defaultKeepFloat) compute in float and store their
//        conv weights in int8 (or float16), converted once when onnxruntime loads the model;
//     5. load it in onnxruntime with graph optimisation on, save the optimised graph and count the
//        int8 kernels it really runs (QLinearConv, QLinearAdd, ConvInteger...): a model in which
//        onnxruntime fused no int8 kernel is an error, never a silently float "int8" model.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelGraph, ModelWeights } from '../../darknet/types';
import { exportSpec, type OnnxMetadata } from '../export';
import { networkSpec, type NetworkSpec } from '../layers';
import { decodeModel, encodeModel, type ModelProto } from '../proto';
import { calibrationImages, collectStatistics } from './calibrate';
import { equalizeSpec } from './equalize';
import {
  type ActivationScheme, assignLayers, buildQdqModel, cleanModel, type FloatWeights, type HeadMode, planQdq, type QdqPlan,
  withExtraOutputs, withoutOutputs,
} from './qdq';
import { type CalibrationMethod, chooseThreshold, DEFAULT_PERCENTILE, type TensorStats } from './thresholds';

export * from './thresholds';
export * from './qdq';
export * from './calibrate';
export * from './equalize';
export * from './report';

/** Metadata key of the int8 model's quantization settings (JSON). */
export const QUANT_METADATA_KEY = 'darkslim_int8';

export interface QuantizeSettings {
  /** Default 'kl'. */
  method?: CalibrationMethod;
  /** For method 'percentile'. Default 99.99. */
  percentile?: number;
  /** darknet layer indices computed in float. Default: the first conv (defaultKeepFloat). */
  keepFloat?: number[];
  /** The convs feeding [yolo] layers. Default 'integer'. */
  heads?: HeadMode;
  /** Activation grids. Default 'asymmetric'. */
  scheme?: ActivationScheme;
  /**
   * Weight bits: 7 (default: onnxruntime's "reduce range") or 8. On x86 CPUs without VNNI
   * onnxruntime's u8s8 kernels sum pairs of products in int16 and saturate with 8-bit weights:
   * Yolo-Fastest loses 3.4 mAP points to that alone (28.29 simulated vs 24.86 run). Use 8 for
   * CPUs with VNNI (or ARM).
   */
  weightBits?: 7 | 8;
  /** Weights of the convs computed in float: 'int8' (default), 'float16' or 'float' (converted at load). */
  floatWeights?: FloatWeights;
  /** Write the flat graph, without model-local functions (BuildOptions.functions). Default false. */
  flat?: boolean;
}

/**
 * Output stride from which layers run in int8 by default: the layers before it (the "stem")
 * compute in float.
 */
export const INT8_FROM_STRIDE = 8;

/**
 * The layers kept in float unless told otherwise: the stem, i.e. the leading layers whose output
 * is finer than stride 8 (INT8_FROM_STRIDE), the first conv (which reads the image) always among them.
 *
 * Why (measured with onnxruntime 1.22's profiler on an AVX2 CPU without VNNI, see
 * bench/results/quantize.json): at stride 2 and 4 these detectors run few channels (4-24) over
 * large maps, where onnxruntime's u8s8 kernels lose to its float NCHWc kernels by 2-4x: their
 * cost goes per output pixel (requantization, a separate QLinearLeakyRelu / QLinearAdd pass over
 * every element that the float Conv fuses for free), depthwise convs with channels not a multiple
 * of 16 miss MLAS's symmetric depthwise kernel, 1x1 convs with fewer than 16 outputs its
 * symmetric GEMM. Yolo-Fastest's stem (layers 0-22) took 6 of its 18 ms in int8 and 1.5 in float.
 * These layers hold few weights: stored as int8 too (float compute, see BuildOptions.floatWeights),
 * the file does not grow. The stem also reads the image, the most sensitive part for mAP.
 * When the stem would be the whole network (tiny inputs), only the first conv stays float.
 */
export function defaultKeepFloat(spec: NetworkSpec): number[] {
  const first = spec.layers.find((l) => l.kind === 'conv' && l.inputs.length === 1 && l.inputs[0] === -1);
  const minH = spec.netH / INT8_FROM_STRIDE;
  const minW = spec.netW / INT8_FROM_STRIDE;
  const stem: number[] = [];
  for (const l of spec.layers) {
    if (l.kind === 'yolo' || !(l.out[1] > minH || l.out[2] > minW)) break;
    stem.push(l.index);
  }
  const headConvs = new Set(spec.heads.map((h) => h.inputs[0]));
  const inStem = new Set(stem);
  const int8Left = spec.layers.some((l) => l.kind === 'conv' && !inStem.has(l.index) && !headConvs.has(l.index));
  if (stem.length > 0 && int8Left && (!first || inStem.has(first.index))) return stem;
  return first ? [first.index] : [];
}

export interface QuantizeOptions extends QuantizeSettings {
  /** Calibration images: a .data file (train list, else valid), an image list or a folder. */
  calib: string;
  /** Calibration images to use (evenly spread over the source). Default 100. */
  images?: number;
  /** Cross-layer equalization before calibration. Default true. */
  equalize?: boolean;
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
  scheme: ActivationScheme;
  heads: HeadMode;
  weightBits: 7 | 8;
  equalized: boolean;
  keepFloat: number[];
  /** keepFloat is the default (the first conv), not asked. */
  keepFloatDefault: boolean;
  /** Layers computed in float (asked, or with nothing quantizable), [yolo] decode excluded. */
  floatLayers: number[];
  /** How the float-computed convs store their weights. */
  floatWeights: FloatWeights;
  /** darknet layers of the float-computed convs whose weights are stored in float16 or int8. */
  weightOnlyLayers: number[];
  tensors: TensorReport[];
  /** Op counts of the graph onnxruntime runs after optimisation (empty when not verified). */
  optimizedOps: Record<string, number>;
  /** The 8-bit kernels among them. */
  int8Ops: Record<string, number>;
  /** Seconds spent calibrating. */
  calibrationSeconds: number;
}

/** Op types that are 8-bit integer kernels (onnxruntime's fused QDQ groups). */
export function isInt8Kernel(op: string): boolean {
  return /^QLinear/.test(op) || /^NhwcQLinear/.test(op) || op === 'ConvInteger' || op === 'MatMulInteger' || op === 'QGemm';
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
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3, intraOpNumThreads: 1,
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
  /** The network as quantized (equalized when asked). */
  spec: NetworkSpec;
  /** The float model, as `darkslim export` writes it (not equalized). */
  floatBytes: Uint8Array;
  metadata: OnnxMetadata;
  /** The model quantization rewrites (equalized when asked), decoded, without extra outputs. */
  model: ModelProto;
  /** darknet layer of each of its nodes. */
  layerOfNode: number[];
  equalized: boolean;
}

/** Exports the float model, and the one to quantize with its nodes mapped to darknet layers. */
export function prepareFloat(graph: ModelGraph, weights: ModelWeights, opts: { names?: string[]; batch?: number; equalize?: boolean } = {}): PreparedModel {
  const original = networkSpec(graph, weights);
  if (original.heads.length === 0) throw new Error('the network has no [yolo] layer: quantization is calibrated and reported for YOLO detectors');
  const equalized = opts.equalize ?? true;
  const spec = equalized ? equalizeSpec(original).spec : original;
  const plain = exportSpec(original, { names: opts.names, batch: opts.batch });
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
  return { spec, floatBytes: plain.bytes, metadata: plain.metadata, model, layerOfNode, equalized };
}

export interface Calibration {
  /** Statistics per calibrated tensor (float-model names). */
  stats: Map<string, TensorStats>;
  /** Whether |x| histograms were collected (kl and percentile need them). */
  histograms: boolean;
  images: string[];
  seconds: number;
}

/** Runs the calibration images through the model to quantize and gathers statistics of `tensors`. */
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
    netW: spec.netW, netH: spec.netH, channels: spec.input[0], letterBox: spec.letterBox, histograms, threads: opts.threads,
    workers: opts.workers, onProgress: opts.onProgress,
  });
  return { stats, histograms, images, seconds: (performance.now() - t0) / 1000 };
}

/** Every tensor a plan could quantize: the input and the outputs of all nodes outside the [yolo] decode (calibrate once, build many). */
export function allActivationTensors(prepared: PreparedModel): string[] {
  const yolo = new Set(prepared.spec.heads.map((h) => h.index));
  const out = [prepared.model.graph.input[0]?.name ?? 'input'];
  prepared.model.graph.node.forEach((n, i) => {
    if (!yolo.has(prepared.layerOfNode[i])) out.push(...n.output.filter(Boolean));
  });
  return out;
}

export interface BuildQuantizedOptions extends QuantizeSettings {
  /** Skip loading the result in onnxruntime to count its kernels. */
  skipVerify?: boolean;
}

/** The int8 model from a plan and calibration statistics (every tensor of the plan calibrated). */
export async function buildQuantized(prepared: PreparedModel, plan: QdqPlan, calibration: Calibration, opts: BuildQuantizedOptions = {}): Promise<QuantizeResult> {
  const method = opts.method ?? 'kl';
  const percent = opts.percentile ?? DEFAULT_PERCENTILE;
  const heads = opts.heads ?? 'integer';
  const scheme = opts.scheme ?? 'asymmetric';
  const weightBits = opts.weightBits ?? 7;
  const floatWeights = opts.floatWeights ?? 'int8';
  const keepFloat = opts.keepFloat ?? defaultKeepFloat(prepared.spec);
  if (method !== 'minmax' && !calibration.histograms) throw new Error(`${method} calibration needs histograms`);
  const thresholds = new Map<string, { threshold: number; min: number; max: number; klBin?: number }>();
  const fullRange = new Set(plan.tensors.filter((t) => t.fullRange).map((t) => t.name));
  for (const name of plan.calibrate) {
    const s = calibration.stats.get(name);
    if (!s) throw new Error(`internal: tensor ${name} was not calibrated`);
    const choice = fullRange.has(name) ? { threshold: s.absMax } : chooseThreshold(s, method, percent);
    thresholds.set(name, { threshold: choice.threshold, min: s.min, max: s.max, klBin: 'klBin' in choice ? choice.klBin : undefined });
  }
  const settings = {
    method, ...(method === 'percentile' ? { percentile: percent } : {}), images: calibration.images.length, scheme, heads, weightBits,
    equalized: prepared.equalized, keepFloat, floatWeights, ...(opts.flat ? { flat: true } : {}),
  };
  const built = buildQdqModel(prepared.model, plan, thresholds, {
    scheme, weightBits, floatWeights, functions: !opts.flat, metadata: [{ key: QUANT_METADATA_KEY, value: JSON.stringify(settings) }],
  });
  const bytes = encodeModel(built.model);

  let ops: Record<string, number> = {};
  if (!opts.skipVerify) {
    try {
      ops = await optimizedOps(bytes);
    } catch (e) {
      throw new Error(`internal: the int8 model does not load in onnxruntime: ${(e as Error).message}`);
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
    scheme,
    heads,
    weightBits,
    equalized: prepared.equalized,
    keepFloat: [...keepFloat].sort((a, b) => a - b),
    keepFloatDefault: opts.keepFloat === undefined,
    floatLayers: plan.floatLayers,
    floatWeights,
    weightOnlyLayers: [...new Set(built.weightOnly.map((i) => plan.layerOfNode[i]))].sort((a, b) => a - b),
    tensors,
    optimizedOps: ops,
    int8Ops,
    calibrationSeconds: calibration.seconds,
  };
}

/** The whole pipeline: cfg + weights + calibration images → verified int8 model (nothing written). */
export async function quantizeDarknet(graph: ModelGraph, weights: ModelWeights, opts: QuantizeOptions): Promise<QuantizeResult> {
  const method = opts.method ?? 'kl';
  const prepared = prepareFloat(graph, weights, { names: opts.names, batch: opts.batch, equalize: opts.equalize });
  const keepFloat = opts.keepFloat ?? defaultKeepFloat(prepared.spec);
  const plan = planQdq(prepared.model, prepared.spec, prepared.layerOfNode, { keepFloat, heads: opts.heads });
  if (plan.quantized.size === 0 && plan.integer.size === 0) throw new Error('nothing to quantize: every layer is kept in float');
  const source = await calibrationImages(opts.calib, opts.images ?? 100);
  const calibration = await calibrate(prepared, plan.calibrate, source.images, {
    histograms: method !== 'minmax', threads: opts.threads, workers: opts.workers, onProgress: opts.onProgress,
  });
  return buildQuantized(prepared, plan, calibration, opts); // keepFloat undefined there too: the same default, reported as such
}
