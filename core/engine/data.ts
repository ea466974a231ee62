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
//   mosaic=1: as darknet's load_data_detection, half the batches (one draw per batch) are mosaics:
//           each sample is cut at a random point (20-80% of the width and height) into four
//           quadrants, each showing a corner of another augmented image (the sample's own and three
//           drawn from the dataset; each with its own crop, flip and colours, and with p=.5 its crop
//           pushed towards the cut so most of it shows). The window is shifted past grey jitter
//           padding; boxes move with it and are clipped to the image (mosaic_bound=1: to their
//           quadrant). [net] resize (random rescale) is not applied.
import { SectionOptions } from '../darknet/options';
import type { ModelGraph } from '../darknet/types';
import type { DatasetItem } from '../data/dataset';
import { decodeImageBytes, loadImage, resizeImage } from '../data/image';
import type { TrainTruth } from './loss';
import { rng } from './model';

export interface AugmentConfig {
  jitter: number;
  flip: boolean;
  hue: number;
  saturation: number;
  exposure: number;
  letterBox: boolean;
  /** mosaic=1: half the batches are 4-image mosaics. */
  mosaic?: boolean;
  /** mosaic_bound=1: mosaic boxes are clipped to their own quadrant. */
  mosaicBound?: boolean;
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
    mosaic: o?.bool('mosaic', false) ?? false,
    mosaicBound: o?.bool('mosaic_bound', false) ?? false,
  };
}

interface Raw { data: Uint8Array; width: number; height: number }

/** One image's augmentation draw: its crop (p*: pixels cut from each side, negative = grey
 * padding), flip and colour shifts. */
interface Crop {
  pleft: number; pright: number; ptop: number; pbot: number;
  /** Cropped size: ow - pleft - pright, oh - ptop - pbot. */
  sw: number; sh: number;
  flip: boolean;
  dhue: number; dsat: number; dexp: number;
}

/** Fraction of the width and height kept between the mosaic cut and the borders (darknet's). */
const MOSAIC_MIN_OFFSET = 0.2;

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
    const r: Raw = await decodeImageBytes(this.items[i].image);
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
    // mosaic: one draw per batch (darknet: half the loads), then three more images per sample
    const pick = rng(batchSeed ^ 0x5bd1e995);
    const mosaic = this.aug.mosaic === true && this.items.length > 0 && pick() < 0.5;
    const tiles = indices.map((i) => (mosaic ? [i, ...[0, 1, 2].map(() => Math.floor(pick() * this.items.length))] : [i]));
    const raws = await Promise.all(tiles.map((t) => Promise.all(t.map((i) => this.raw(i)))));
    this.rand = rng(batchSeed);
    const plane = this.netW * this.netH * 3;
    const x = new Float32Array(indices.length * plane);
    const truths: TrainTruth[][] = [];
    raws.forEach((r, k) => {
      const out = x.subarray(k * plane, (k + 1) * plane);
      if (mosaic) truths.push(this.mosaic(r, tiles[k].map((i) => this.items[i].truths), out));
      else truths.push(this.augment(r[0], this.items[indices[k]].truths, out));
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
    const crop = this.drawCrop(r);
    this.render(r, crop, out);
    return this.cropBoxes(r, crop, truths);
  }

  /**
   * The random crop, flip and colours of one image. `tile` (0-3: top-left, top-right, bottom-left,
   * bottom-right) is a mosaic quadrant: with p=.5 the crop is pushed towards the mosaic's centre,
   * as darknet does, so that most of the image lands in the visible corner.
   */
  private drawCrop(r: Raw, tile?: number): Crop {
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
    const flip = aug.flip && this.rand() < 0.5;
    if (tile !== undefined && this.rand() < 0.5) {
      // the crop's whole horizontal margin on one side (which side: quadrant and flip, as darknet),
      // likewise vertically: the image then sits in the corner that shows
      const marginLeft = (tile & 1) === 1 ? !flip : flip;
      if (marginLeft) { pleft += pright; pright = 0; } else { pright += pleft; pleft = 0; }
      if (tile >> 1) { ptop += pbot; pbot = 0; } else { pbot += ptop; ptop = 0; }
    }
    let sw = ow - pleft - pright, sh = oh - ptop - pbot;
    if (sw < 2) { pleft = 0; pright = 0; sw = ow; }
    if (sh < 2) { ptop = 0; pbot = 0; sh = oh; }
    const dhue = aug.hue ? this.uniform(-aug.hue, aug.hue) : 0;
    const dsat = aug.saturation !== 1 ? this.randScale(aug.saturation) : 1;
    const dexp = aug.exposure !== 1 ? this.randScale(aug.exposure) : 1;
    return { pleft, pright, ptop, pbot, sw, sh, flip, dhue, dsat, dexp };
  }

  /** The crop resized to the network (bilinear, grey outside the image), flipped, colour-shifted. */
  private render(r: Raw, c: Crop, out: Float32Array): void {
    const { netW, netH } = this;
    const ow = r.width, oh = r.height;
    const { pleft, ptop, flip, dhue, dsat, dexp } = c;
    const hsv = dhue !== 0 || dsat !== 1 || dexp !== 1;
    const src = r.data;
    const sx = c.sw / netW, sy = c.sh / netH;
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
  }

  /** The image's boxes after its crop and flip (network-relative), clipped, those under 1 pixel dropped. */
  private cropBoxes(r: Raw, c: Crop, truths: DatasetItem['truths']): TrainTruth[] {
    const { netW, netH } = this;
    const ow = r.width, oh = r.height;
    const { pleft, ptop, sw, sh, flip } = c;
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

  private tileBuffer?: Float32Array;

  /** A 4-image mosaic (darknet's mosaic=1) into `out`; returns its boxes in network coordinates. */
  private mosaic(raws: Raw[], truths: DatasetItem['truths'][], out: Float32Array): TrainTruth[] {
    const { netW: w, netH: h } = this;
    // darknet's rand_int(w·0.2, w·0.8): integer bounds, both included
    const lo = (n: number) => Math.trunc(n * MOSAIC_MIN_OFFSET), hi = (n: number) => Math.trunc(n * (1 - MOSAIC_MIN_OFFSET));
    const cutX = lo(w) + Math.floor(this.rand() * (hi(w) - lo(w) + 1));
    const cutY = lo(h) + Math.floor(this.rand() * (hi(h) - lo(h) + 1));
    const tileImage = (this.tileBuffer ??= new Float32Array(w * h * 3));
    const res: TrainTruth[] = [];
    for (let tile = 0; tile < 4; tile++) {
      const r = raws[tile];
      const crop = this.drawCrop(r, tile);
      this.render(r, crop, tileImage);
      // Grey jitter padding on a side facing the cut is skipped: the window moves past it (a
      // flip moved the padding to the other side).
      const pleft = crop.flip ? crop.pright : crop.pleft, pright = crop.flip ? crop.pleft : crop.pright;
      const leftShift = Math.min(cutX, Math.max(0, Math.trunc((-pleft * w) / r.width)));
      const rightShift = Math.min(w - cutX, Math.max(0, Math.trunc((-pright * w) / r.width)));
      const topShift = Math.min(cutY, Math.max(0, Math.trunc((-crop.ptop * h) / r.height)));
      const botShift = Math.min(h - cutY, Math.max(0, Math.trunc((-crop.pbot * h) / r.height)));
      const right = (tile & 1) === 1, bottom = tile >> 1 === 1;
      // the quadrant [dx0, dx0+qw) x [dy0, dy0+qh) shows the tile image from (sx0, sy0)
      const dx0 = right ? cutX : 0, dy0 = bottom ? cutY : 0;
      const qw = right ? w - cutX : cutX, qh = bottom ? h - cutY : cutY;
      const sx0 = right ? leftShift : w - cutX - rightShift, sy0 = bottom ? topShift : h - cutY - botShift;
      for (let y = 0; y < qh; y++) {
        const from = ((sy0 + y) * w + sx0) * 3;
        out.set(tileImage.subarray(from, from + qw * 3), ((dy0 + y) * w + dx0) * 3);
      }
      for (const b of this.cropBoxes(r, crop, truths[tile])) {
        const moved = mosaicBox(b, (dx0 - sx0) / w, (dy0 - sy0) / h, w, h, this.aug.mosaicBound ? [dx0, dx0 + qw, dy0, dy0 + qh] : undefined);
        if (moved) res.push(moved);
      }
    }
    return res;
  }
}

/**
 * A tile's box moved into the mosaic (darknet's blend_truth_mosaic): shifted by the quadrant's
 * offset and clipped to the image or, with `bound` ([left, right, top, bottom] pixels: mosaic_bound),
 * to its quadrant with whole-pixel edges; undefined when no more than a pixel is left inside.
 */
function mosaicBox(b: TrainTruth, shiftX: number, shiftY: number, w: number, h: number, bound?: number[]): TrainTruth | undefined {
  const xb = b.x + shiftX, yb = b.y + shiftY;
  let left: number, right: number, top: number, bot: number;
  if (bound) {
    left = Math.max(Math.trunc((xb - b.w / 2) * w), bound[0]) / w;
    right = Math.min(Math.trunc((xb + b.w / 2) * w), bound[1]) / w;
    top = Math.max(Math.trunc((yb - b.h / 2) * h), bound[2]) / h;
    bot = Math.min(Math.trunc((yb + b.h / 2) * h), bound[3]) / h;
  } else {
    left = Math.max(0, xb - b.w / 2); right = Math.min(1, xb + b.w / 2);
    top = Math.max(0, yb - b.h / 2); bot = Math.min(1, yb + b.h / 2);
  }
  const bw = right - left, bh = bot - top;
  // darknet keeps boxes strictly inside (0, 1) and over one pixel
  if (bw <= 1 / w || bh <= 1 / h || bw >= 1 || bh >= 1) return undefined;
  return { classId: b.classId, x: (left + right) / 2, y: (top + bot) / 2, w: bw, h: bh };
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
