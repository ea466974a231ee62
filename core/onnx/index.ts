// Inference on onnxruntime-node: ONNX export of darknet graphs, sessions, detection, mAP runs,
// benchmarks. See export.ts for the model's inputs, outputs and metadata.
export { exportOnnx, exportSpec, foldConv, IR_VERSION, METADATA_KEY, OPSET } from './export';
export type { ExportOptions, ExportResult, OnnxHeadInfo, OnnxMetadata } from './export';
export { networkSpec, headRows, SUPPORTED_ACTIVATIONS, SUPPORTED_LAYERS, UnsupportedLayerError } from './layers';
export type { LayerSpec, NetworkSpec, NmsKind, YoloSpec } from './layers';
export { referenceForward, decodeYolo, activateScalar } from './reference';
export type { ReferenceResult } from './reference';
export { OnnxSession, readMetadata, defaultThreads, ENGINE } from './runtime';
export type { RuntimeOptions, TensorOut } from './runtime';
export { Detector, selectDetections, detectionRecords, formatRecord, detectionsSvg, classColor, cRound, printfRound, outputRecord } from './detect';
export type { DetectorSource, DetectorOptions, DetectOptions, DetectionRecord, SelectedDetection } from './detect';
export { applyNms, diounmsSort, boxDiou } from '../eval/nms';
export { evaluate } from './evaluate';
export type { EvaluateOptions, EvaluateResult, EvaluateTiming } from './evaluate';
export { ImagePrefetcher, HelperPool, postprocessOutputs, defaultDecodeWorkers } from './prefetch';
export type { PreparedImage, PrefetchOptions, PostConfig } from './prefetch';
export { decodeForNetwork, inputFromInterleaved } from './fastprep';
export { benchModel, benchSession, median, percentile } from './bench';
export type { BenchOptions, BenchResult } from './bench';
export { loadDarknet, detectorSource, resolveNames, isOnnxPath } from './model';
export { createProgress } from './progress';
export type { Progress, ProgressOptions } from './progress';
export { encodeModel, decodeModel } from './proto';
