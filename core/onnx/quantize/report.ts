// What quantization cost and gained: file sizes, latency of the float and int8 models measured in
// the same run (interleaved, so a busy machine slows both alike), mAP of both on a labelled set,
// and the per-tensor threshold table.
import type { Dataset } from '../../data/dataset';
import type { MapPoints } from '../../eval/map';
import { benchInput, median } from '../bench';
import { Detector } from '../detect';
import { evaluate } from '../evaluate';
import { OnnxSession, type OptimizationLevel } from '../runtime';
import type { QuantizeResult, TensorReport } from './index';

export interface LatencyOptions {
  threads?: number;
  /** Timed runs per model. Default 50. */
  runs?: number;
  /** Untimed runs per model first. Default 10. */
  warmup?: number;
}

export interface LatencyStats {
  median_ms: number;
  min_ms: number;
  p90_ms: number;
  /**
   * Median CPU time of the process per run (user + system). On a machine shared with other work it
   * is far steadier than wall time, which counts the time the thread waits for a core; with one
   * thread it is the work the model costs. With several threads it adds up theirs.
   */
  cpu_ms: number;
}

/**
 * Median latency (batch 1) of each model, runs interleaved round-robin (a, b, a, b, ...) on the
 * same pseudo-random input, after a warm-up of each.
 */
export async function interleavedLatency(models: Uint8Array[], dims: number[], opts: LatencyOptions = {}): Promise<LatencyStats[]> {
  const runs = Math.max(1, opts.runs ?? 50);
  const warmup = Math.max(0, opts.warmup ?? 10);
  const sessions: OnnxSession[] = [];
  try {
    // no spinning: between its runs a session's idle pool threads would spin on the cores the next
    // session needs (with 2 threads and five sessions that doubled every latency)
    for (const m of models) sessions.push(await OnnxSession.create(m, { threads: opts.threads ?? 1, spinning: false }));
    const input = benchInput(dims.reduce((a, b) => a * b, 1));
    for (const s of sessions) for (let i = 0; i < warmup; i++) await s.run(input, dims);
    const times = sessions.map(() => [] as number[]);
    const cpu = sessions.map(() => [] as number[]);
    for (let r = 0; r < runs; r++) {
      // Alternate the order too, so neither model always runs right after the other.
      const order = r % 2 === 0 ? sessions.map((_, i) => i) : sessions.map((_, i) => sessions.length - 1 - i);
      for (const i of order) {
        const c = process.cpuUsage();
        const t = performance.now();
        await sessions[i].run(input, dims);
        times[i].push(performance.now() - t);
        const used = process.cpuUsage(c);
        cpu[i].push((used.user + used.system) / 1000);
      }
    }
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return times.map((t, i) => {
      const sorted = [...t].sort((a, b) => a - b);
      return {
        median_ms: r3(median(t)), min_ms: r3(sorted[0]), p90_ms: r3(sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)]),
        cpu_ms: r3(median(cpu[i])),
      };
    });
  } finally {
    for (const s of sessions) await s.dispose();
  }
}

export interface ModelMap {
  mAP: number;
  images: number;
}

/** mAP@0.5 of an exported (float or int8) model over a labelled dataset, darknet's `map` protocol. */
export async function modelMap(
  model: Uint8Array, dataset: Dataset,
  opts: {
    points?: MapPoints; threads?: number; workers?: number; limit?: number; optimization?: OptimizationLevel;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<ModelMap> {
  const detector = await Detector.create({ onnx: model }, { threads: opts.threads, spinning: false, optimization: opts.optimization });
  try {
    const r = await evaluate(detector, dataset, {
      points: opts.points ?? 0, pureRuns: 0, workers: opts.workers, limit: opts.limit, onProgress: opts.onProgress,
    });
    return { mAP: r.map.mAP, images: r.map.images };
  } finally {
    await detector.dispose();
  }
}

/** Whether a dataset has labels to compute mAP with. */
export function hasLabels(dataset: Dataset): boolean {
  return dataset.summary.withLabels > 0 && dataset.summary.boxes > 0;
}

function fmt(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)) return x.toExponential(3);
  return x.toFixed(digits);
}

/** The per-tensor threshold table, one line per quantized tensor. */
export function formatThresholdTable(tensors: TensorReport[]): string {
  const rows = tensors.map((t) => [
    t.layer < 0 ? 'in' : String(t.layer), t.op, fmt(t.min), fmt(t.max), fmt(t.threshold),
    t.max !== 0 && Number.isFinite(t.max) ? `${((100 * t.threshold) / Math.max(Math.abs(t.min), Math.abs(t.max))).toFixed(1)}%` : '',
    fmt(t.scale, 6), String(t.zeroPoint), t.tiedTo ? 'tied' : t.klBin !== undefined ? String(t.klBin) : '',
  ]);
  const head = ['layer', 'op', 'min', 'max', 'T', 'T/max', 'scale', 'zp', 'kl bin'];
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => (k < 2 ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

export interface QuantizeSummary {
  output?: string;
  bytes: number;
  floatBytes: number;
  method: string;
  images: number;
  latency?: { float_ms: number; int8_ms: number; threads: number; runs: number; float_cpu_ms?: number; int8_cpu_ms?: number };
  mAP?: { float: number; int8: number; images: number; points: number };
}

export function formatSummary(result: QuantizeResult, summary: QuantizeSummary): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines: string[] = [];
  if (summary.output) lines.push(`wrote ${summary.output}`);
  lines.push(`  size      int8 ${kb(summary.bytes)} vs float ${kb(summary.floatBytes)} (${((100 * summary.bytes) / summary.floatBytes).toFixed(1)}%)`);
  lines.push(`  calib     ${summary.method}${result.percentile !== undefined ? ` ${result.percentile}` : ''} on ${summary.images} images (${result.calibrationSeconds.toFixed(1)} s), ${result.scheme} uint8 activations, ${result.weightBits}-bit weights${result.equalized ? ', cross-layer equalized' : ''}, heads ${result.heads}`);
  const kernels = Object.entries(result.int8Ops).map(([op, n]) => `${op} x${n}`).join(', ');
  lines.push(`  kernels   onnxruntime runs ${kernels}`);
  const dq = (result.optimizedOps.DequantizeLinear ?? 0) + (result.optimizedOps.QuantizeLinear ?? 0);
  if (dq) lines.push(`            plus ${dq} Quantize/DequantizeLinear at the float boundaries`);
  const why = result.keepFloatDefault ? ' (the stem: stride < 8, by default)' : result.keepFloat.length ? ` (asked: ${result.keepFloat.join(', ')})` : '';
  if (result.floatLayers.length) lines.push(`  float     layers ${layerRanges(result.floatLayers)}${why}, and the [yolo] decode`);
  else lines.push('  float     the [yolo] decode only');
  if (result.weightOnlyLayers.length) lines.push(`            their conv weights stored in ${result.floatWeights} (${result.weightOnlyLayers.length} convs), converted once at load`);
  if (summary.latency) {
    const l = summary.latency;
    lines.push(`  latency   float ${l.float_ms.toFixed(2)} ms, int8 ${l.int8_ms.toFixed(2)} ms (x${(l.float_ms / l.int8_ms).toFixed(2)}, median of ${l.runs} interleaved runs, ${l.threads} thread${l.threads > 1 ? 's' : ''})`);
    if (l.float_cpu_ms && l.int8_cpu_ms) lines.push(`            CPU time float ${l.float_cpu_ms.toFixed(2)} ms, int8 ${l.int8_cpu_ms.toFixed(2)} ms (x${(l.float_cpu_ms / l.int8_cpu_ms).toFixed(2)})`);
  }
  if (summary.mAP) {
    const m = summary.mAP;
    lines.push(`  mAP@0.5   float ${(100 * m.float).toFixed(2)} %, int8 ${(100 * m.int8).toFixed(2)} % (${((m.int8 - m.float) * 100).toFixed(2)} points, ${m.images} images${m.points ? `, ${m.points}-point` : ''})`);
  }
  return lines.join('\n');
}

/** 0,1,2,3,7 → "0-3, 7". */
export function layerRanges(layers: number[]): string {
  const out: string[] = [];
  const sorted = [...layers].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j + 1;
  }
  return out.join(', ');
}
