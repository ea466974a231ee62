// `darknet detector map` on onnxruntime: every image of a dataset through the detector (decoding
// overlapped with inference by the prefetcher), detections at thresh .005, the model's NMS at .45,
// then darknet's mAP (core/eval). Also measures the end-to-end rate against the pure inference
// rate of the same session.
import type { Dataset } from '../data/dataset';
import { splitDifficult } from '../data/dataset';
import { MapAccumulator, type MapPoints, type MapResult } from '../eval/map';
import type { Detection } from '../eval/boxes';
import { type Detector, outputRecord } from './detect';
import { decodeForNetwork } from './fastprep';
import { ImagePrefetcher, postprocessOutputs } from './prefetch';
import { median } from './bench';

export interface EvaluateOptions {
  /** 0 (area under the curve, darknet's default), 11 or 101. */
  points?: MapPoints;
  /** IoU threshold for a match. Default 0.5. */
  iou?: number;
  /** thresh_calc_avg_iou for precision/recall/F1/average IoU. Default 0.25. */
  thresh?: number;
  /** Detection threshold. Default 0.005, as darknet's map. */
  detThresh?: number;
  /** NMS threshold. Default 0.45. */
  nms?: number;
  /** Evaluate only the first N images. */
  limit?: number;
  /** Decoding worker threads (0 = inline). */
  workers?: number;
  /** Images decoded ahead. Default 3. */
  prefetch?: number;
  /**
   * Where boxes + NMS run: 'auto' (default) sends each image to whichever thread has less work so
   * far, 'main' keeps them on the inference thread, 'helper' on the decoding thread.
   */
  post?: 'auto' | 'main' | 'helper';
  /** Pure-inference runs around the pass (half before, half after), for the rate comparison (0 skips). Default 20. */
  pureRuns?: number;
  names?: string[];
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluateTiming {
  images: number;
  seconds: number;
  /** End to end: decode, inference, boxes, NMS, matching. */
  imagesPerSecond: number;
  /** Pure inference on one prepared input, same session, median of `pureRuns` (half before the pass, half after). */
  inferenceMs: number;
  inferenceImagesPerSecond: number;
  /** imagesPerSecond / inferenceImagesPerSecond. */
  ratio: number;
  threads: number;
  decodeWorkers: number;
  /** Means per image, in the pass: decoding (helper thread), waiting for a decoded image, inference, post-processing (either thread). */
  decodeMs: number;
  waitMs: number;
  inferMs: number;
  postMs: number;
  /** Share of the images post-processed on the inference thread (the rest on the helper). */
  postOnMain: number;
}

export interface EvaluateResult {
  map: MapResult;
  timing: EvaluateTiming;
}

export async function evaluate(detector: Detector, dataset: Dataset, opts: EvaluateOptions = {}): Promise<EvaluateResult> {
  const items = opts.limit !== undefined ? dataset.items.slice(0, Math.max(0, opts.limit)) : dataset.items;
  const missing = items.find((it) => it.missingImage);
  if (missing) throw new Error(`image not found: ${missing.image}`);
  const classes = detector.classes;
  for (const it of items) {
    const bad = it.truths.find((t) => t.classId < 0 || t.classId >= classes);
    if (bad) throw new Error(`${it.labelPath ?? it.image}: class id ${bad.classId} is outside the model's ${classes} classes`);
  }
  const names = opts.names ?? dataset.names ?? detector.meta.names;
  const acc = new MapAccumulator(classes, {
    points: opts.points ?? 0, iouThresh: opts.iou ?? 0.5, thresh: opts.thresh ?? 0.25, nms: 0, names,
  });
  const config = detector.postConfig({ thresh: opts.detThresh ?? 0.005, nms: opts.nms ?? 0.45 });
  const prefetcher = new ImagePrefetcher(items.map((it) => it.image), {
    netW: detector.meta.netW, netH: detector.meta.netH, letterBox: detector.letterBox,
    prefetch: opts.prefetch, workers: opts.workers,
  });
  await prefetcher.ready(); // thread start-up is a one-time cost, like loading the model
  // The pure-inference reference brackets the pass (half its runs before, half after), so that a
  // machine whose speed drifts (shared hosts) weighs on both sides of the ratio alike.
  const runs = opts.pureRuns ?? 20;
  const pure: number[] = [];
  const timePure = async (tensor: Float32Array, n: number) => {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await detector.infer(tensor);
      pure.push(performance.now() - t);
    }
  };
  if (runs > 1 && items.length) {
    const first = await decodeForNetwork(items[0].image, detector.meta.netW, detector.meta.netH, detector.letterBox).catch(() => undefined);
    if (first) await timePure(first.tensor, Math.floor(runs / 2)); // a bad image is reported by the pass
  }
  const decodeWorkers = prefetcher.workers;
  let decodeMs = 0;
  let waitMs = 0;
  let inferMs = 0;
  let postMs = 0;
  let lastTensor: Float32Array | undefined;
  // Detections are added to the accumulator in image order (darknet's ranking depends on it).
  const ready = new Map<number, Detection[]>();
  let nextToAdd = 0;
  const flush = () => {
    while (ready.has(nextToAdd)) {
      acc.add({ detections: ready.get(nextToAdd)!, ...splitDifficult(items[nextToAdd].truths) });
      ready.delete(nextToAdd);
      nextToAdd++;
      opts.onProgress?.(nextToAdd, items.length);
    }
  };
  // Post-processing (boxes, NMS) of an image runs on whichever thread has less work so far: the
  // helper (which decodes) or this one (which infers). With a small model decoding costs more
  // than inference, so part of the NMS moves here; with a big one it all stays on the helper.
  // Busy times: this thread's inference + inline post-processing, the helper's decoding + its
  // post-processing (estimated when sent, corrected when done).
  const postOn = decodeWorkers > 0 ? opts.post ?? 'auto' : 'main';
  let mainBusy = 0;
  let helperBusy = 0;
  let postEstimate = 0;
  let inlinePosts = 0;
  const posts: Promise<void>[] = [];
  const t0 = performance.now();
  try {
    let tWait = performance.now();
    for await (const img of prefetcher) {
      const t1 = performance.now();
      waitMs += t1 - tWait;
      decodeMs += img.decodeMs;
      helperBusy += img.decodeMs / Math.max(1, decodeWorkers);
      const outputs = await detector.infer(img.tensor);
      const t2 = performance.now();
      inferMs += t2 - t1;
      mainBusy += t2 - t1;
      const index = img.index;
      const record = outputRecord(outputs);
      const inline = postOn === 'main'
        || (postOn === 'auto' && mainBusy + postEstimate <= helperBusy + postEstimate / Math.max(1, decodeWorkers));
      if (inline) {
        const dets = postprocessOutputs(config, record, img.width, img.height);
        const ms = performance.now() - t2;
        postMs += ms;
        mainBusy += ms;
        postEstimate = postEstimate ? 0.8 * postEstimate + 0.2 * ms : ms;
        inlinePosts++;
        ready.set(index, dets);
        flush();
      } else {
        const estimate = postEstimate / Math.max(1, decodeWorkers);
        helperBusy += estimate;
        const post = prefetcher.postprocess(config, record, img.width, img.height).then(({ dets, ms }) => {
          postMs += ms;
          helperBusy += ms / Math.max(1, decodeWorkers) - estimate;
          postEstimate = postEstimate ? 0.8 * postEstimate + 0.2 * ms : ms;
          ready.set(index, dets);
          flush();
        });
        post.catch(() => undefined); // reported by Promise.all below, or moot when the loop throws
        posts.push(post);
      }
      lastTensor = img.tensor;
      tWait = performance.now();
    }
    await Promise.all(posts);
  } finally {
    await prefetcher.close();
  }
  const seconds = (performance.now() - t0) / 1000;

  if (lastTensor && runs > 0) await timePure(lastTensor, runs - pure.length);
  const n = Math.max(1, items.length);
  const inferenceMs = pure.length ? median(pure) : NaN;
  const imagesPerSecond = items.length / seconds;
  const inferenceImagesPerSecond = 1000 / inferenceMs;
  return {
    map: acc.result(),
    timing: {
      images: items.length,
      seconds,
      imagesPerSecond,
      inferenceMs,
      inferenceImagesPerSecond,
      ratio: imagesPerSecond / inferenceImagesPerSecond,
      threads: detector.session.threads,
      decodeWorkers,
      decodeMs: decodeMs / n,
      waitMs: waitMs / n,
      inferMs: inferMs / n,
      postMs: postMs / n,
      postOnMain: inlinePosts / n,
    },
  };
}
