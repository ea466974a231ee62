// mAP@0.5 of the tfjs model on prepared validation samples, as darknet's `detector map` measures it
// (thresh .005, per-class NMS .45, area under the PR curve), through core/eval.
import * as tf from '@tensorflow/tfjs-core';
import { correctBoxes, detectionsFromDecoded, type Detection } from '../eval/boxes';
import { computeMap, type MapImage, type MapResult } from '../eval/map';
import type { EvalSample } from './data';
import type { DarknetModel } from './model';

export interface EvalOptions {
  batch?: number;
  thresh?: number;
  iouThresh?: number;
  names?: string[];
  signal?: AbortSignal;
}

export function evaluateSamples(model: DarknetModel, samples: EvalSample[], opts: EvalOptions = {}): MapResult {
  const { netW, netH, letterBox } = model.spec;
  const classes = model.spec.heads[0]?.classes ?? 0;
  const thresh = opts.thresh ?? 0.005;
  const bs = opts.batch ?? 8;
  const images: MapImage[] = [];
  const plane = netW * netH * 3;
  for (let s = 0; s < samples.length; s += bs) {
    if (opts.signal?.aborted) break;
    const chunk = samples.slice(s, s + bs);
    const x = new Float32Array(chunk.length * plane);
    chunk.forEach((c, k) => x.set(c.x, k * plane));
    const decoded = tf.tidy(() => model.decode(model.forward(tf.tensor4d(x, [chunk.length, netH, netW, 3])).heads));
    chunk.forEach((c, k) => {
      const dets: Detection[] = [];
      for (const d of decoded) {
        const per = 5 + d.classes;
        const rows = d.data.subarray(k * d.rows * per, (k + 1) * d.rows * per);
        dets.push(...detectionsFromDecoded(rows, d.rows, d.classes, thresh));
      }
      correctBoxes(dets, c.width, c.height, netW, netH, letterBox);
      images.push({ detections: dets, truths: c.truths.map((t) => ({ classId: t.classId, box: { x: t.x, y: t.y, w: t.w, h: t.h } })) });
    });
  }
  return computeMap(images, classes, { iouThresh: opts.iouThresh ?? 0.5, names: opts.names });
}
