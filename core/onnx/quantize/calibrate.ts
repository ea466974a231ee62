// Calibration: the float model (with every tensor to quantize exposed as an extra output) runs on
// N images prepared exactly as inference prepares them (darknet resize or letterbox, see
// fastprep.ts), and each tensor's values are folded into streaming statistics. Memory is bounded
// by the statistics (a 2048-bin histogram per tensor), never by the number of images: a first pass
// finds each tensor's range, a second fills the |x| histograms over that range (kl, percentile).
import { existsSync } from 'node:fs';
import { loadDataset } from '../../data/dataset';
import { ImagePrefetcher } from '../prefetch';
import { OnnxSession } from '../runtime';
import { addRange, addToHistogram, emptyStats, type TensorStats } from './thresholds';

export interface CalibrationSource {
  /** Image paths, in the order they will be used. */
  images: string[];
  /** What was asked (for messages). */
  spec: string;
  /** Images the source holds in total. */
  available: number;
}

/**
 * Up to `count` images from a dataset spec (a .data file: its train list, else valid; an image
 * list; a folder), evenly spread over the list (deterministic). No image at all is an error.
 */
export async function calibrationImages(spec: string, count: number): Promise<CalibrationSource> {
  if (!(count >= 1)) throw new Error(`the number of calibration images must be at least 1, got ${count}`);
  let items: { image: string; missingImage?: true }[];
  try {
    items = (await loadDataset(spec, { split: 'train' })).items;
  } catch (e) {
    throw new Error(`calibration images: ${(e as Error).message}`);
  }
  if (items.length === 0) throw new Error(`no calibration images found in ${spec}`);
  const n = Math.min(count, items.length);
  const picked: string[] = [];
  for (let k = 0; k < n; k++) picked.push(items[Math.floor((k * items.length) / n)].image);
  const missing = picked.find((p) => !existsSync(p));
  if (missing) throw new Error(`calibration image not found: ${missing}`);
  return { images: picked, spec, available: items.length };
}

export interface CollectOptions {
  netW: number;
  netH: number;
  /** Input channels (3). */
  channels?: number;
  letterBox: boolean;
  /** Second pass filling the |x| histograms (kl, percentile). */
  histograms: boolean;
  threads?: number;
  /** Decoding threads (0: inline). */
  workers?: number;
  /** Called after each image of each pass. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Statistics of each named tensor of `model` over the images (model: float ONNX with those tensors
 * as outputs; the graph input needs none).
 */
export async function collectStatistics(model: Uint8Array, tensors: string[], images: string[], opts: CollectOptions): Promise<Map<string, TensorStats>> {
  const stats = new Map<string, TensorStats>(tensors.map((t) => [t, emptyStats()]));
  const passes = opts.histograms ? 2 : 1;
  const session = await OnnxSession.create(model, { threads: opts.threads, spinning: false });
  const total = images.length * passes;
  let done = 0;
  try {
    const dims = [1, opts.channels ?? 3, opts.netH, opts.netW];
    for (let pass = 0; pass < passes; pass++) {
      const prefetcher = new ImagePrefetcher(images, {
        netW: opts.netW, netH: opts.netH, letterBox: opts.letterBox, prefetch: 2, workers: opts.workers,
      });
      try {
        for await (const img of prefetcher) {
          // All outputs, never a subset: onnxruntime-node 1.22 returns a requested subset under the
          // wrong names (microsoft/onnxruntime#26865).
          const out = await session.run(img.tensor, dims);
          for (const name of tensors) {
            const t = name === session.inputName ? { data: img.tensor } : out.get(name);
            if (!t) throw new Error(`internal: calibration model has no output ${name}`);
            const s = stats.get(name)!;
            if (pass === 0) addRange(s, t.data);
            else addToHistogram(s, t.data);
          }
          done++;
          opts.onProgress?.(done, total);
        }
      } finally {
        await prefetcher.close();
      }
    }
  } finally {
    await session.dispose();
  }
  return stats;
}
