// onnxruntime-node sessions: graph optimisation on, a chosen number of intra-op threads, one
// inference at a time. Note: onnxruntime-node's run() executes on the calling JS thread (wrapped
// in a setImmediate), so work meant to overlap inference must live in another thread (see
// pipeline.ts) or in libuv's pool (sharp's decoding).
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { decodeModel } from './proto';
import { METADATA_KEY, type OnnxMetadata } from './export';

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface RuntimeOptions {
  /** Intra-op threads; default: all available cores. */
  threads?: number;
  /** Graph optimisation level; default 'all'. */
  optimization?: OptimizationLevel;
  /** Let idle pool threads spin (lower latency, burns CPU). Default true, as onnxruntime. */
  spinning?: boolean;
}

export const ENGINE = `onnxruntime-node ${ort.env.versions?.common ?? '1.22'} (cpu)`;

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

export interface TensorOut {
  data: Float32Array;
  dims: readonly number[];
}

export class OnnxSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly threads: number,
    readonly metadata: OnnxMetadata | undefined,
  ) {}

  static async create(model: Uint8Array | string, opts: RuntimeOptions = {}): Promise<OnnxSession> {
    const threads = Math.max(1, Math.floor(opts.threads ?? defaultThreads()));
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: opts.optimization ?? 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      logSeverityLevel: 3,
    };
    if (opts.spinning === false) {
      options.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
    }
    let session: ort.InferenceSession;
    try {
      session = typeof model === 'string'
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
    } catch (e) {
      throw new Error(`onnxruntime could not load the model${typeof model === 'string' ? ` ${model}` : ''}: ${(e as Error).message}`);
    }
    let metadata: OnnxMetadata | undefined;
    try {
      const bytes = typeof model === 'string' ? await import('node:fs').then((fs) => fs.readFileSync(model)) : model;
      metadata = readMetadata(bytes);
    } catch {
      metadata = undefined;
    }
    return new OnnxSession(session, threads, metadata);
  }

  get inputName(): string {
    return this.session.inputNames[0];
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs one batch: `data` is NCHW with the given dims. */
  async run(data: Float32Array, dims: number[], outputs?: string[]): Promise<Map<string, TensorOut>> {
    const feeds: Record<string, ort.Tensor> = { [this.inputName]: new ort.Tensor('float32', data, dims) };
    const result = outputs ? await this.session.run(feeds, outputs) : await this.session.run(feeds);
    const out = new Map<string, TensorOut>();
    for (const [name, t] of Object.entries(result)) {
      out.set(name, { data: t.data as Float32Array, dims: t.dims });
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** The `darkslim` metadata of an exported model, or undefined for other ONNX files. */
export function readMetadata(bytes: Uint8Array): OnnxMetadata | undefined {
  const model = decodeModel(bytes);
  const entry = model.metadataProps.find((p) => p.key === METADATA_KEY);
  if (!entry) return undefined;
  const meta = JSON.parse(entry.value) as OnnxMetadata;
  return meta.format === 1 ? meta : undefined;
}
