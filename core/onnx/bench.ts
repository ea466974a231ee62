// Latency of one model on onnxruntime at batch 1: warm-up, then `runs` timed forward passes on a
// fixed pseudo-random input.
import { ENGINE, OnnxSession, type RuntimeOptions } from './runtime';

export interface BenchOptions extends RuntimeOptions {
  runs?: number;
  warmup?: number;
}

export interface BenchResult {
  engine: string;
  threads: number;
  runs: number;
  median_ms: number;
  p90_ms: number;
  mean_ms: number;
  min_ms: number;
  input: number[];
}

/** Nearest-rank percentile of ascending values, p in [0, 1]. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}

/** Median of unsorted values (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** A deterministic input in [0,1). */
export function benchInput(n: number, seed = 12345): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s >>> 8) / 16777216;
  }
  return x;
}

export async function benchSession(session: OnnxSession, dims: number[], opts: BenchOptions = {}): Promise<BenchResult> {
  const runs = Math.max(1, opts.runs ?? 50);
  const warmup = Math.max(0, opts.warmup ?? 5);
  const input = benchInput(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < warmup; i++) await session.run(input, dims);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run(input, dims);
    times.push(performance.now() - t);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    engine: ENGINE,
    threads: session.threads,
    runs,
    median_ms: r3(median(times)),
    p90_ms: r3(percentile(sorted, 0.9)),
    mean_ms: r3(times.reduce((a, b) => a + b, 0) / runs),
    min_ms: r3(sorted[0]),
    input: dims,
  };
}

export async function benchModel(model: Uint8Array | string, dims: number[], opts: BenchOptions = {}): Promise<BenchResult> {
  const session = await OnnxSession.create(model, opts);
  try {
    return await benchSession(session, dims, opts);
  } finally {
    await session.dispose();
  }
}
