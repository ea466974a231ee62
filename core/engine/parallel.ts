// Data-parallel gradients over worker threads (ARCHITECTURE.md: tfjs wasm is single-threaded in
// Node, so use the cores with one backend per worker). Each worker holds a replica of the model;
// per call it receives the current parameters and a shard of the mini-batch, and returns the
// shard's mean gradient, its batch-norm batch statistics and its loss parts. The caller's model and
// optimizer stay the only state: the replicas are overwritten every call.
//
// Semantics: each shard is normalised with its own batch statistics, exactly as if the shards were
// darknet subdivisions run side by side (PyTorch's DDP without SyncBN does the same). The gradient
// returned is the shard-size-weighted mean of the shards' mean gradients (= the mini-batch's mean
// gradient up to that batch-norm difference), and the BN statistics are the shards' combined into
// the statistics of the whole mini-batch (exact mean, exact unbiased variance).
//
// Integration (trainer.ts): per mini-batch, instead of tf.variableGrads + yoloLoss in-thread,
//   const r = await parallel.gradients(model, xData, n, truths);       // xData: NHWC Float32Array
//   const g = gradTensors(model, r.grads); model.updateRollingStats(statTensors(r.bnStats));
// then accumulate/apply g as the in-thread gradients are (they are mean gradients too).
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendChoice } from './backend';
import type { LossParts, TrainTruth } from './loss';
import { variableKey, type DarknetModel, type ForwardResult } from './model';

export interface ParallelOptions {
  /** The model's cfg text (the workers build the same graph). */
  cfgText: string;
  /** Worker threads (default 2: this machine's cores). */
  workers?: number;
  backend?: BackendChoice;
  /**
   * The worker entry script. Default: parallel-worker.ts/.js beside this file; a bundled build
   * (esbuild) must emit core/engine/parallel-worker.ts as its own entry and pass its path here.
   */
  workerScript?: string;
}

/** A shard's result, as the worker sends it. */
interface ShardResult {
  id: number;
  grads: Record<string, Float32Array>;
  stats: { index: number; mean: Float32Array; variance: Float32Array }[];
  parts: LossParts;
  n: number;
  /** Elements per channel behind the BN statistics (n·H·W of each BN layer). */
  statCounts: Record<number, number>;
  error?: string;
}

export interface ParallelResult {
  /** Mean gradient of the mini-batch per variable, keyed by variableKey (w12, b12, g12). */
  grads: Map<string, Float32Array>;
  /** Batch statistics of the whole mini-batch per BN conv (unbiased variance), for updateRollingStats. */
  bnStats: { index: number; mean: Float32Array; variance: Float32Array }[];
  parts: LossParts;
}

function defaultWorkerScript(): string {
  const ts = join(__dirname, 'parallel-worker.ts');
  return __filename.endsWith('.ts') && existsSync(ts) ? ts : join(__dirname, 'parallel-worker.js');
}

export class DataParallel {
  private seq = 0;

  private constructor(private readonly workers: Worker[], readonly backend: string) {}

  /** Starts the workers and waits until each has built its model and backend. */
  static async create(opts: ParallelOptions): Promise<DataParallel> {
    const n = Math.max(1, opts.workers ?? 2);
    const script = opts.workerScript ?? defaultWorkerScript();
    const workers: Worker[] = [];
    const ready: Promise<string>[] = [];
    for (let i = 0; i < n; i++) {
      const workerData = { cfgText: opts.cfgText, backend: opts.backend ?? 'auto' };
      // from source (tests, benchmarks under tsx): the worker loads the .ts through tsx's require hook
      const w = script.endsWith('.ts')
        ? new Worker(`require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register(); require(${JSON.stringify(script)});`, { eval: true, workerData })
        : new Worker(script, { workerData });
      workers.push(w);
      ready.push(new Promise((resolve, reject) => {
        const onMsg = (m: { ready?: boolean; backend?: string; error?: string }) => {
          if (m.error) reject(new Error(`parallel worker ${i}: ${m.error}`));
          else if (m.ready) resolve(m.backend ?? '?');
          w.off('message', onMsg);
        };
        w.on('message', onMsg);
        w.once('error', (e) => reject(new Error(`parallel worker ${i} (${script}): ${e.message}`)));
      }));
    }
    try {
      const backends = await Promise.all(ready);
      return new DataParallel(workers, backends[0]);
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Gradients of a mini-batch (NHWC `x`, `n` images of `h`×`w`×3) with the model's current
   * parameters, split over the workers (shards of ⌈n/workers⌉ images; fewer workers when n is small).
   */
  async gradients(model: DarknetModel, x: Float32Array, n: number, truths: TrainTruth[][]): Promise<ParallelResult> {
    const { width: w, height: h } = model.graph.net;
    const plane = w * h * 3;
    if (x.length !== n * plane) throw new Error(`parallel: ${x.length} input values for ${n} images of ${w}x${h}x3`);
    const params: Record<string, Float32Array> = {};
    for (const v of model.variables()) params[variableKey(v)] = v.dataSync() as Float32Array;
    const per = Math.ceil(n / this.workers.length);
    const jobs: Promise<ShardResult>[] = [];
    for (let k = 0, a = 0; a < n; k++, a += per) {
      const b = Math.min(n, a + per);
      const worker = this.workers[k];
      const id = ++this.seq;
      const shard = x.slice(a * plane, b * plane);
      jobs.push(new Promise<ShardResult>((resolve, reject) => {
        const onMsg = (m: ShardResult) => {
          if (m.id !== id) return;
          worker.off('message', onMsg);
          worker.off('error', onErr);
          if (m.error) reject(new Error(`parallel worker ${k}: ${m.error}`)); else resolve(m);
        };
        const onErr = (e: Error) => { worker.off('message', onMsg); reject(e); };
        worker.on('message', onMsg);
        worker.once('error', onErr);
        // parameters are copied (structured clone), the shard is moved
        worker.postMessage({ id, params, x: shard, shape: [b - a, h, w, 3], truths: truths.slice(a, b) }, [shard.buffer]);
      }));
    }
    return combine(await Promise.all(jobs), n);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Shard results → the mini-batch's mean gradient, combined BN statistics and loss parts. */
function combine(results: ShardResult[], n: number): ParallelResult {
  const grads = new Map<string, Float32Array>();
  for (const r of results) {
    const wgt = r.n / n;
    for (const [k, g] of Object.entries(r.grads)) {
      let acc = grads.get(k);
      if (!acc) { acc = new Float32Array(g.length); grads.set(k, acc); }
      for (let i = 0; i < g.length; i++) acc[i] += wgt * g[i];
    }
  }
  // per channel: N = Σn_i, m = Σn_i·m_i/N, (N-1)·var = Σ(n_i-1)·v_i + Σn_i·(m_i-m)²
  const bnStats: ParallelResult['bnStats'] = [];
  for (let s = 0; s < results[0].stats.length; s++) {
    const index = results[0].stats[s].index;
    const C = results[0].stats[s].mean.length;
    const mean = new Float32Array(C), variance = new Float32Array(C);
    let N = 0;
    for (const r of results) N += r.statCounts[index];
    for (let c = 0; c < C; c++) {
      let m = 0;
      for (const r of results) m += r.statCounts[index] * r.stats[s].mean[c];
      m /= N;
      let ss = 0;
      for (const r of results) {
        const ni = r.statCounts[index];
        const d = r.stats[s].mean[c] - m;
        ss += (ni - 1) * r.stats[s].variance[c] + ni * d * d;
      }
      mean[c] = m;
      variance[c] = ss / Math.max(1, N - 1);
    }
    bnStats.push({ index, mean, variance });
  }
  const parts: LossParts = { total: 0, box: 0, obj: 0, cls: 0, count: 0, avgIou: 0 };
  let iou = 0;
  for (const r of results) {
    const wgt = r.n / n;
    parts.total += wgt * r.parts.total; parts.box += wgt * r.parts.box; parts.obj += wgt * r.parts.obj; parts.cls += wgt * r.parts.cls;
    parts.count += r.parts.count; iou += r.parts.avgIou * r.parts.count;
  }
  parts.avgIou = parts.count ? iou / parts.count : 0;
  return { grads, bnStats, parts };
}

/** The gradients as tensors keyed by the model's variables (what Sgd.apply takes). */
export function gradTensors(model: DarknetModel, grads: Map<string, Float32Array>): Map<tf.Variable, tf.Tensor> {
  const out = new Map<tf.Variable, tf.Tensor>();
  for (const v of model.variables()) {
    const g = grads.get(variableKey(v));
    if (!g) throw new Error(`parallel: no gradient for ${variableKey(v)}`);
    out.set(v, tf.tensor(g, v.shape));
  }
  return out;
}

/** The combined statistics as the tensors DarknetModel.updateRollingStats takes (it disposes them). */
export function statTensors(stats: ParallelResult['bnStats']): ForwardResult['bnStats'] {
  return stats.map((s) => ({ index: s.index, mean: tf.tensor1d(s.mean), variance: tf.tensor1d(s.variance) }));
}
