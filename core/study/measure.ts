// One row of a study's table, measured the same way for every stage: params, file size, BFLOPs
// (darknet's count), onnxruntime latency (batch 1, median, N threads) and mAP@0.5 (points 0, as
// darknet's `detector map`) of the model's ONNX export on the evaluation split.
import { loadavg } from 'node:os';
import { statSync } from 'node:fs';
import type { Dataset } from '../data/dataset';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { benchModel } from '../onnx/bench';
import { Detector } from '../onnx/detect';
import { evaluate } from '../onnx/evaluate';
import { exportOnnx } from '../onnx/export';

export interface StudyRow {
  /** Stage name (the yaml's `name`), and the row's label in the table. */
  stage: string;
  name: string;
  type: string;
  params: number;
  /** Size of the model file: .weights for darknet models, .onnx for int8. */
  sizeBytes: number;
  file: string;
  bflops: number;
  /** onnxruntime, batch 1, median of the runs (ms). */
  latencyMs: number | null;
  /** mAP@0.5 (fraction) on the evaluation split; precision/recall at thresh .25. */
  map: number | null;
  precision?: number;
  recall?: number;
  /** Seconds the stage's work took (training, pruning, quantizing), measurements excluded. */
  seconds: number;
  note?: string;
  /** 1-minute load average when the row was measured (latency is sensitive to it). */
  load: number;
}

export interface MeasureOptions {
  threads: number;
  latencyRuns: number;
}

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** Measures a darknet model (exported to ONNX here) or an ONNX model (int8) whose graph is given. */
export async function measureModel(
  source: { graph: ModelGraph; weights: ModelWeights } | { graph: ModelGraph; onnx: Uint8Array },
  file: string, evalSet: Dataset, opts: MeasureOptions,
): Promise<Pick<StudyRow, 'params' | 'sizeBytes' | 'file' | 'bflops' | 'latencyMs' | 'map' | 'precision' | 'recall' | 'load'>> {
  const graph = source.graph;
  const onnx = 'onnx' in source ? source.onnx : exportOnnx(graph, source.weights).bytes;
  const det = await Detector.create({ onnx }, { threads: opts.threads });
  let map: number, precision: number, recall: number;
  try {
    const r = await evaluate(det, evalSet, { pureRuns: 0, workers: 0, points: 0 });
    ({ mAP: map, precision, recall } = r.map);
  } finally {
    await det.dispose();
  }
  const load = loadavg()[0];
  const b = await benchModel(onnx, [1, graph.net.channels, graph.net.height, graph.net.width], {
    threads: opts.threads, runs: opts.latencyRuns, warmup: Math.min(10, opts.latencyRuns),
  });
  return {
    params: graph.totals.params, sizeBytes: statSync(file).size, file, bflops: r4(graph.totals.bflops),
    latencyMs: Number.isFinite(b.median_ms) ? b.median_ms : null, map: r4(map), precision: r4(precision), recall: r4(recall),
    load: Math.round(load * 100) / 100,
  };
}
