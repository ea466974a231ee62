// Work around inference, off the thread that runs it. onnxruntime-node runs inference on the
// calling JS thread, so a helper worker thread decodes images ahead (sharp, then darknet's resize,
// handed over as transferred buffers) and can turn head outputs into NMS'd detections (evaluate()
// sends it the share of that work that balances the two threads). The helper decodes one image at
// a time, its libvips stage overlapping the resize of the previous image (HelperJobs).
// Where a worker cannot start (e.g. a bundle without decode-worker.js), the same work runs inline,
// still a few images ahead (sharp's decoding then overlaps inference; the rest does not).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { correctBoxes, type Detection, detectionsFromDecoded } from '../eval/boxes';
import { decodeImageBytes } from '../data/image';
import { decodeForNetwork, inputFromInterleaved } from './fastprep';
import type { NmsKind } from './layers';
import { applyNms } from '../eval/nms';

export const WORKER_FLAG = 'darkslimDecodeWorker';

export interface DecodeRequest {
  kind: 'decode';
  id: number;
  path: string;
  netW: number;
  netH: number;
  letterBox: boolean;
}

/** How head outputs become detections (darknet get_network_boxes + NMS). */
export interface PostConfig {
  heads: { output: string; rows: number; classes: number }[];
  classes: number;
  netW: number;
  netH: number;
  letterBox: boolean;
  /** Detection threshold (0.005 for mAP, 0.25 for detect). */
  thresh: number;
  /** NMS threshold; 0 disables. */
  nmsThresh: number;
  nms: { kind: NmsKind; beta: number };
}

export interface PostRequest {
  kind: 'post';
  id: number;
  config: PostConfig;
  width: number;
  height: number;
  outputs: Record<string, Float32Array>;
}

export type HelperRequest = DecodeRequest | PostRequest;

export type HelperReply =
  | { kind: 'decode'; id: number; ok: true; tensor: Float32Array; width: number; height: number; ms: number }
  | { kind: 'post'; id: number; ok: true; packed: Float32Array; count: number; classes: number; ms: number }
  | { kind: HelperRequest['kind']; id: number; ok: false; error: string };

/** Decodes and prepares one image (= core/data loadImage + prepareInput); the tensor owns its buffer. */
export async function decodeRequest(req: DecodeRequest): Promise<HelperReply> {
  const t0 = performance.now();
  try {
    const { tensor, width, height } = await decodeForNetwork(req.path, req.netW, req.netH, req.letterBox);
    return { kind: 'decode', id: req.id, ok: true, tensor, width, height, ms: performance.now() - t0 };
  } catch (e) {
    return { kind: 'decode', id: req.id, ok: false, error: (e as Error).message };
  }
}

/** Head outputs → detections relative to the image, after NMS (darknet's order of operations). */
export function postprocessOutputs(config: PostConfig, outputs: Record<string, Float32Array>, width: number, height: number): Detection[] {
  const dets: Detection[] = [];
  for (const head of config.heads) {
    const data = outputs[head.output];
    if (!data) throw new Error(`the model has no output ${head.output}`);
    for (const d of detectionsFromDecoded(data, head.rows, head.classes, config.thresh)) dets.push(d);
  }
  correctBoxes(dets, width, height, config.netW, config.netH, config.letterBox);
  applyNms(dets, config.classes, config.nms, config.nmsThresh);
  return dets;
}

/** Detections as one array of rows [x, y, w, h, objectness, prob_0 .. prob_{C-1}], in order. */
export function packDetections(dets: Detection[], classes: number): Float32Array {
  const stride = 5 + classes;
  const out = new Float32Array(dets.length * stride);
  dets.forEach((d, i) => {
    const o = i * stride;
    out[o] = d.box.x;
    out[o + 1] = d.box.y;
    out[o + 2] = d.box.w;
    out[o + 3] = d.box.h;
    out[o + 4] = d.objectness;
    out.set(d.prob.subarray(0, classes), o + 5);
  });
  return out;
}

export function unpackDetections(packed: Float32Array, count: number, classes: number): Detection[] {
  const stride = 5 + classes;
  const dets: Detection[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * stride;
    dets.push({
      box: { x: packed[o], y: packed[o + 1], w: packed[o + 2], h: packed[o + 3] },
      objectness: packed[o + 4],
      prob: packed.subarray(o + 5, o + stride),
      classes,
    });
  }
  return dets;
}

export function postRequest(req: PostRequest): HelperReply {
  const t0 = performance.now();
  try {
    const dets = postprocessOutputs(req.config, req.outputs, req.width, req.height);
    return { kind: 'post', id: req.id, ok: true, packed: packDetections(dets, req.config.classes), count: dets.length, classes: req.config.classes, ms: performance.now() - t0 };
  } catch (e) {
    return { kind: 'post', id: req.id, ok: false, error: (e as Error).message };
  }
}

export async function handleRequest(req: HelperRequest): Promise<HelperReply> {
  return req.kind === 'decode' ? decodeRequest(req) : postRequest(req);
}

/**
 * The helper thread's job runner: replies in arrival order, with decoding split in two stages so
 * that libvips decodes the next image (on a libuv thread) while this thread resizes the current
 * one. Each stage runs one job at a time. A decode's `ms` is the sum of its two stages' busy time.
 */
export class HelperJobs {
  private decoding: Promise<unknown> = Promise.resolve();
  private replies: Promise<void> = Promise.resolve();

  constructor(private readonly send: (reply: HelperReply, job: number) => void) {}

  push(req: HelperRequest, job: number): void {
    if (req.kind === 'post') {
      this.replies = this.replies.then(() => this.send(postRequest(req), job));
      return;
    }
    const raw = this.decoding.then(async () => {
      const t0 = performance.now();
      try {
        return { ok: true as const, ...(await decodeImageBytes(req.path)), ms: performance.now() - t0 };
      } catch (e) {
        return { ok: false as const, error: (e as Error).message };
      }
    });
    this.decoding = raw;
    this.replies = this.replies.then(async () => {
      const r = await raw;
      if (!r.ok) {
        this.send({ kind: 'decode', id: req.id, ok: false, error: r.error }, job);
        return;
      }
      const t1 = performance.now();
      let reply: HelperReply;
      try {
        const tensor = inputFromInterleaved(r.data, r.width, r.height, req.netW, req.netH, req.letterBox);
        reply = { kind: 'decode', id: req.id, ok: true, tensor, width: r.width, height: r.height, ms: r.ms + performance.now() - t1 };
      } catch (e) {
        reply = { kind: 'decode', id: req.id, ok: false, error: `${req.path}: ${(e as Error).message}` };
      }
      this.send(reply, job);
    });
  }
}

/**
 * Helper threads by default: one up to 4 cores; beyond, about a third of the cores (small models
 * stop scaling with onnxruntime threads long before decoding stops needing cores), at most 6.
 */
export function defaultDecodeWorkers(cores = availableParallelism()): number {
  return cores <= 4 ? 1 : Math.min(6, Math.floor(cores / 3));
}

/** The worker's script: dist/decode-worker.js beside a bundle, else the TypeScript source (dev, tests). */
function workerSpec(): { code: string; eval: boolean } | undefined {
  const js = join(__dirname, 'decode-worker.js');
  if (existsSync(js)) return { code: js, eval: false };
  const ts = join(__dirname, 'decode-worker.ts');
  if (!existsSync(ts)) return undefined;
  // Node does not apply --import loaders to worker threads: register tsx inside the worker.
  let tsx: string;
  try {
    tsx = require.resolve('tsx/cjs/api');
  } catch {
    return undefined;
  }
  return { code: `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(ts)});`, eval: true };
}

interface Pending {
  resolve: (r: HelperReply) => void;
  req: HelperRequest;
}

let nextJobId = 1;

/** Helper worker threads (or inline execution when none can run). */
export class HelperPool {
  private workers: Worker[] = [];
  private pending = new Map<number, Pending>();
  private next = 0;
  private closing = false;
  private broken = false;
  private readonly started: Promise<void>[] = [];

  constructor(count: number) {
    const spec = count > 0 ? workerSpec() : undefined;
    if (!spec) return;
    for (let i = 0; i < count; i++) {
      let w: Worker;
      try {
        w = new Worker(spec.code, { eval: spec.eval, workerData: { [WORKER_FLAG]: true } });
      } catch {
        this.broken = true;
        break;
      }
      w.unref();
      let markReady!: () => void;
      this.started.push(new Promise<void>((resolve) => { markReady = resolve; }));
      w.on('exit', () => markReady());
      w.on('error', () => markReady());
      w.on('message', (reply: (HelperReply & { job?: number }) | { kind: 'ready' }) => {
        if (reply.kind === 'ready') {
          markReady();
          return;
        }
        const p = this.pending.get(reply.job ?? -1);
        if (!p) return;
        this.pending.delete(reply.job!);
        p.resolve(reply);
      });
      const fail = () => {
        // A worker that cannot start or dies: finish its work inline, stop using workers.
        if (this.closing) return;
        this.broken = true;
        for (const [job, p] of this.pending) {
          this.pending.delete(job);
          void handleRequest(p.req).then(p.resolve);
        }
      };
      w.on('error', fail);
      w.on('exit', (code) => { if (code !== 0 || this.pending.size) fail(); });
      this.workers.push(w);
    }
  }

  /** Worker threads in use (0 = inline). */
  get size(): number {
    return this.broken ? 0 : this.workers.length;
  }

  /** Resolves once every worker has loaded its code (or failed to): a one-time start-up cost. */
  async ready(): Promise<void> {
    await Promise.all(this.started);
  }

  run(req: HelperRequest): Promise<HelperReply> {
    if (this.broken || this.workers.length === 0) return handleRequest(req);
    return new Promise((resolve) => {
      const job = nextJobId++;
      this.pending.set(job, { resolve, req });
      const w = this.workers[this.next++ % this.workers.length];
      const transfer: ArrayBuffer[] = req.kind === 'post' ? Object.values(req.outputs).map((a) => a.buffer as ArrayBuffer) : [];
      w.postMessage({ ...req, job }, transfer);
    });
  }

  /** Stops the workers; jobs still pending are finished inline. */
  async close(): Promise<void> {
    this.closing = true;
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate().catch(() => 0)));
    for (const [job, p] of this.pending) {
      this.pending.delete(job);
      void handleRequest(p.req).then(p.resolve);
    }
  }
}

export interface PreparedImage {
  index: number;
  path: string;
  /** Original image size. */
  width: number;
  height: number;
  /** [C, netH, netW] network input. */
  tensor: Float32Array;
  /** Time spent decoding and preparing (in its own thread). */
  decodeMs: number;
}

export interface PrefetchOptions {
  netW: number;
  netH: number;
  letterBox: boolean;
  /** Images decoded ahead of the consumer. Default 3. */
  prefetch?: number;
  /** Helper worker threads; 0 works inline. Default: defaultDecodeWorkers(). */
  workers?: number;
}

/**
 * Iterates prepared images in input order, decoding up to `prefetch` ahead; also post-processes
 * outputs. Call close() when done (the helper threads are unref'd, so a forgotten close does not
 * keep the process alive).
 */
export class ImagePrefetcher implements AsyncIterable<PreparedImage> {
  private readonly pool: HelperPool;
  private readonly opts: Required<PrefetchOptions>;

  constructor(private readonly paths: string[], opts: PrefetchOptions) {
    this.opts = {
      netW: opts.netW,
      netH: opts.netH,
      letterBox: opts.letterBox,
      prefetch: opts.prefetch ?? 3,
      workers: opts.workers ?? defaultDecodeWorkers(),
    };
    // A worker costs a few hundred ms to start: not worth it for a handful of images.
    this.pool = new HelperPool(paths.length > 2 ? this.opts.workers : 0);
  }

  /** Helper threads in use (0 = inline). */
  get workers(): number {
    return this.pool.size;
  }

  /** Resolves once the helper threads are started (their start-up is not per-image work). */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<PreparedImage> {
    const { netW, netH, letterBox } = this.opts;
    const ahead = Math.max(1, this.opts.prefetch);
    const queue: Promise<HelperReply>[] = [];
    let issued = 0;
    const issue = () => {
      while (issued < this.paths.length && queue.length < ahead) {
        const id = issued++;
        queue.push(this.pool.run({ kind: 'decode', id, path: this.paths[id], netW, netH, letterBox }));
      }
    };
    for (let i = 0; i < this.paths.length; i++) {
      issue();
      const reply = await queue.shift()!;
      issue();
      if (!reply.ok) throw new Error(reply.error);
      if (reply.kind !== 'decode') throw new Error('internal: unexpected reply');
      yield { index: i, path: this.paths[i], width: reply.width, height: reply.height, tensor: reply.tensor, decodeMs: reply.ms };
    }
  }

  /** Detections of one image from its head outputs (boxes, NMS), computed by the helper thread. */
  async postprocess(config: PostConfig, outputs: Record<string, Float32Array>, width: number, height: number): Promise<{ dets: Detection[]; ms: number }> {
    // Own copies: onnxruntime's output buffers may be shared or not transferable.
    const owned: Record<string, Float32Array> = {};
    for (const h of config.heads) owned[h.output] = outputs[h.output].slice();
    const reply = await this.pool.run({ kind: 'post', id: 0, config, outputs: owned, width, height });
    if (!reply.ok) throw new Error(reply.error);
    if (reply.kind !== 'post') throw new Error('internal: unexpected reply');
    return { dets: unpackDetections(reply.packed, reply.count, reply.classes), ms: reply.ms };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
