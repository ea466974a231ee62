// Training batches from a darknet dataset: images decoded once by sharp (cached as 8-bit RGB while
// they fit the cache budget), augmented on the fly as darknet's load_data_detection does from the
// [net] keys, and prefetched: the next batch's decoding runs on libuv's threads while the current
// step trains.
//   jitter: random crop of ±jitter·(w,h) on each side (outside the image: grey), resized to the
//           network; flip: horizontal mirror with p=.5; hue/saturation/exposure: HSV shifts
//           (hue ±hue, saturation and value scaled by rand_scale: ×[1,s] or ÷[1,s]).
//   letter_box=1: the crop is widened on the image's short side to the network's aspect (grey
//           bars), so objects keep their proportions, as at inference with letter_box.
//   Boxes follow the crop and flip, are clipped to the image and dropped below 1 pixel.
import sharp from 'sharp';
import { SectionOptions } from '../darknet/options';
import type { ModelGraph } from '../darknet/types';
import type { DatasetItem } from '../data/dataset';
import { loadImage, resizeImage } from '../data/image';
import type { TrainTruth } from './loss';
import { rng } from './model';

export interface AugmentConfig {
  jitter: number;
  flip: boolean;
  hue: number;
  saturation: number;
  exposure: number;
  letterBox: boolean;
}

export function augmentConfig(graph: ModelGraph, enabled = true): AugmentConfig {
  const net = graph.doc.sections[0];
  const o = net && net.type === 'net' ? new SectionOptions(net) : undefined;
  // jitter lives in the [yolo] sections in darknet; the last one wins there too
  let jitter = 0.2;
  for (const l of graph.layers) if (l.type === 'yolo') jitter = new SectionOptions(l.section).float('jitter', 0.2);
  if (!enabled) return { jitter: 0, flip: false, hue: 0, saturation: 1, exposure: 1, letterBox: graph.net.letterBox };
  return {
    jitter,
    flip: o?.bool('flip', true) ?? true,
    hue: o?.float('hue', 0) ?? 0,
    saturation: o?.float('saturation', 1) ?? 1,
    exposure: o?.float('exposure', 1) ?? 1,
    letterBox: graph.net.letterBox,
  };
}

interface Raw { data: Uint8Array; width: number; height: number }

async function decode(path: string): Promise<Raw> {
  const { data, info } = await sharp(path, { autoOrient: true, ignoreIcc: true }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`cannot decode image ${path}: ${info.channels} channels`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

export interface Batch {
  /** NHWC float [n, netH, netW, 3] */
  x: Float32Array;
  n: number;
  truths: TrainTruth[][];
}

export class TrainLoader {
  private readonly cache = new Map<number, Raw>();
  private cachedBytes = 0;
  private readonly shuffleRand: () => number;
  private rand: () => number;
  private batches = 0;

  constructor(
    readonly items: DatasetItem[], readonly netW: number, readonly netH: number, readonly aug: AugmentConfig,
    seed: number, private readonly cacheBudget = 1.5e9,
  ) {
    this.shuffleRand = rng(seed);
    this.rand = rng(seed + 1);
    this.seed = seed;
  }

  private readonly seed: number;

  /** A permutation of the item indices for one epoch. */
  shuffle(): number[] {
    const idx = this.items.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(this.shuffleRand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx;
  }

  private async raw(i: number): Promise<Raw> {
    const hit = this.cache.get(i);
    if (hit) return hit;
    const r = await decode(this.items[i].image);
    if (this.cachedBytes + r.data.byteLength <= this.cacheBudget) {
      this.cache.set(i, r);
      this.cachedBytes += r.data.byteLength;
    }
    return r;
  }

  /** Builds one augmented batch (decoding concurrently). */
  async batch(indices: number[]): Promise<Batch> {
    // each batch's augmentation draws from its own stream: results do not depend on I/O timing
    const batchSeed = (this.seed * 7919 + ++this.batches * 104729) >>> 0;
    const raws = await Promise.all(indices.map((i) => this.raw(i)));
    this.rand = rng(batchSeed);
    const plane = this.netW * this.netH * 3;
    const x = new Float32Array(indices.length * plane);
    const truths: TrainTruth[][] = [];
    raws.forEach((r, k) => {
      truths.push(this.augment(r, this.items[indices[k]].truths, x.subarray(k * plane, (k + 1) * plane)));
    });
    return { x, n: indices.length, truths };
  }

  private uniform(a: number, b: number): number {
    return a + (b - a) * this.rand();
  }

  private randScale(s: number): number {
    const v = this.uniform(1, Math.max(1, s));
    return this.rand() < 0.5 ? v : 1 / v;
  }

  /** Writes the augmented image (NHWC, [0,1]) into `out`; returns the boxes in network coordinates. */
  augment(r: Raw, truths: DatasetItem['truths'], out: Float32Array): TrainTruth[] {
    const { netW, netH, aug } = this;
    const ow = r.width, oh = r.height;
    const dw = ow * aug.jitter, dh = oh * aug.jitter;
    let pleft = Math.round(this.uniform(-dw, dw)), pright = Math.round(this.uniform(-dw, dw));
    let ptop = Math.round(this.uniform(-dh, dh)), pbot = Math.round(this.uniform(-dh, dh));
    if (aug.jitter === 0) pleft = pright = ptop = pbot = 0;
    if (aug.letterBox) {
      // letter_box=1: widen the crop on the short side (grey beyond the image) so that it has the
      // network's aspect and the image is not stretched, as darknet's load_data_detection does.
      const netAr = netW / netH;
      if (ow / oh / netAr > 1) {
        const delta = (ow / netAr - oh) / 2;
        ptop = Math.trunc(ptop - delta); pbot = Math.trunc(pbot - delta);
      } else {
        const delta = (oh * netAr - ow) / 2;
        pleft = Math.trunc(pleft - delta); pright = Math.trunc(pright - delta);
      }
    }
    let sw = ow - pleft - pright, sh = oh - ptop - pbot;
    if (sw < 2) { pleft = 0; sw = ow; }
    if (sh < 2) { ptop = 0; sh = oh; }
    const flip = aug.flip && this.rand() < 0.5;
    const dhue = aug.hue ? this.uniform(-aug.hue, aug.hue) : 0;
    const dsat = aug.saturation !== 1 ? this.randScale(aug.saturation) : 1;
    const dexp = aug.exposure !== 1 ? this.randScale(aug.exposure) : 1;
    const hsv = dhue !== 0 || dsat !== 1 || dexp !== 1;
    const src = r.data;
    const sx = sw / netW, sy = sh / netH;
    for (let Y = 0; Y < netH; Y++) {
      const fy = ptop + (Y + 0.5) * sy - 0.5;
      const y0 = Math.floor(fy), wy = fy - y0;
      for (let X = 0; X < netW; X++) {
        const Xs = flip ? netW - 1 - X : X;
        const fx = pleft + (Xs + 0.5) * sx - 0.5;
        const x0 = Math.floor(fx), wx = fx - x0;
        let rr = 0, gg = 0, bb = 0;
        for (let q = 0; q < 4; q++) {
          const xx = x0 + (q & 1), yy = y0 + (q >> 1);
          const wgt = ((q & 1) ? wx : 1 - wx) * ((q >> 1) ? wy : 1 - wy);
          if (wgt === 0) continue;
          if (xx < 0 || yy < 0 || xx >= ow || yy >= oh) { rr += 0.5 * wgt; gg += 0.5 * wgt; bb += 0.5 * wgt; continue; }
          const p = (yy * ow + xx) * 3;
          rr += src[p] / 255 * wgt; gg += src[p + 1] / 255 * wgt; bb += src[p + 2] / 255 * wgt;
        }
        const o = (Y * netW + X) * 3;
        if (hsv) {
          [rr, gg, bb] = hsvShift(rr, gg, bb, dhue, dsat, dexp);
        }
        out[o] = rr; out[o + 1] = gg; out[o + 2] = bb;
      }
    }
    const res: TrainTruth[] = [];
    for (const t of truths) {
      let l = ((t.x - t.w / 2) * ow - pleft) / sw, rgt = ((t.x + t.w / 2) * ow - pleft) / sw;
      const top = ((t.y - t.h / 2) * oh - ptop) / sh, bot = ((t.y + t.h / 2) * oh - ptop) / sh;
      if (flip) { const nl = 1 - rgt; rgt = 1 - l; l = nl; }
      const cl = Math.max(0, Math.min(1, l)), cr = Math.max(0, Math.min(1, rgt));
      const ct = Math.max(0, Math.min(1, top)), cb = Math.max(0, Math.min(1, bot));
      const w = cr - cl, h = cb - ct;
      if (w * netW < 1 || h * netH < 1) continue;
      res.push({ classId: t.classId, x: (cl + cr) / 2, y: (ct + cb) / 2, w, h });
    }
    return res;
  }
}

function hsvShift(r: number, g: number, b: number, dh: number, ds: number, dv: number): [number, number, number] {
  const max = Math.max(r, g, b), min = Math.min(r, g, b);
  const delta = max - min;
  let h = 0;
  let s = max > 0 ? delta / max : 0;
  let v = max;
  if (delta > 0) {
    if (r === max) h = (g - b) / delta;
    else if (g === max) h = 2 + (b - r) / delta;
    else h = 4 + (r - g) / delta;
    h /= 6;
    if (h < 0) h += 1;
  }
  h += dh;
  if (h > 1) h -= 1; else if (h < 0) h += 1;
  s = Math.min(1, s * ds);
  v = Math.min(1, v * dv);
  if (s === 0) return [v, v, v];
  const hh = h * 6;
  const i = Math.floor(hh) % 6;
  const f = hh - Math.floor(hh);
  const p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}

export interface EvalSample {
  /** NHWC [netH, netW, 3] as darknet's `map` prepares it (resize_image, or letterbox). */
  x: Float32Array;
  width: number;
  height: number;
  truths: DatasetItem['truths'];
}

/** Validation inputs prepared once, exactly as darknet's `detector map` resizes them. */
export async function loadEvalSamples(items: DatasetItem[], netW: number, netH: number, letterBox: boolean): Promise<EvalSample[]> {
  const { letterboxImage } = await import('../data/image');
  const out: EvalSample[] = [];
  for (const item of items) {
    if (item.missingImage) continue;
    const img = await loadImage(item.image);
    const r = letterBox ? letterboxImage(img, netW, netH).image : resizeImage(img, netW, netH);
    const plane = netW * netH;
    const x = new Float32Array(plane * 3);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) x[p * 3 + c] = r.data[c * plane + p];
    out.push({ x, width: img.width, height: img.height, truths: item.truths });
  }
  return out;
}
