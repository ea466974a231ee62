// A synthetic detection dataset, deterministic by seed: shapes (circle, square, triangle, cross, ...)
// of random sizes, colours and positions, overlapping a little, on textured noisy backgrounds,
// written as a darknet dataset:
//   <out>/images/{train,valid}_NNNNN.png   <out>/labels/{train,valid}_NNNNN.txt (class cx cy w h)
//   <out>/train.txt  <out>/valid.txt  <out>/<name>.names  <out>/<name>.data
// Paths in the lists and the .data file are relative to the dataset folder (core/data and darknet
// run from that folder both resolve them). The folder is built under a temporary name and renamed
// into place, so a failed or cancelled run leaves nothing half-written.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { rng as mulberry32 } from '../random';

export const SHAPES = ['circle', 'square', 'triangle', 'cross', 'ring', 'diamond'] as const;
export type ShapeKind = (typeof SHAPES)[number];

export interface SyntheticOptions {
  outDir: string;
  seed?: number;
  /** Images in the training / validation lists. Defaults 1000 / 200. */
  train?: number;
  valid?: number;
  /** Image size in pixels. Default 128×128. */
  width?: number;
  height?: number;
  /** Shape classes, in class-id order. Default circle, square, triangle, cross. */
  classes?: ShapeKind[];
  minObjects?: number;
  maxObjects?: number;
  /** Object size range as a fraction of the smaller image side. Default 0.15–0.45. */
  minSize?: number;
  maxSize?: number;
  /** Largest IoU allowed between two objects of one image. Default 0.25. */
  maxOverlap?: number;
  format?: 'png' | 'jpg';
  /** Base name of the .data and .names files. Default "shapes". */
  name?: string;
  /** Replace an existing dataset folder. Default false (an existing folder is an error). */
  overwrite?: boolean;
  signal?: AbortSignal;
}

export interface SyntheticObject {
  classId: number;
  /** Box relative to the image (centre, size). */
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface SyntheticResult {
  outDir: string;
  dataFile: string;
  namesFile: string;
  trainList: string;
  validList: string;
  names: string[];
  images: number;
  objects: number;
}


function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6) % 6, f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  return ([[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]] as [number, number, number][])[i];
}

/** Is the point (u, v), relative to the object's box ([-1,1]²), inside the shape? */
function inside(kind: ShapeKind, u: number, v: number): boolean {
  switch (kind) {
    case 'circle': return u * u + v * v <= 1;
    case 'square': return Math.abs(u) <= 1 && Math.abs(v) <= 1;
    case 'triangle': return v <= 1 && v >= -1 && Math.abs(u) <= (v + 1) / 2;
    case 'cross': return (Math.abs(u) <= 0.3 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.3 && Math.abs(u) <= 1);
    case 'ring': { const d = u * u + v * v; return d <= 1 && d >= 0.45; }
    case 'diamond': return Math.abs(u) + Math.abs(v) <= 1;
  }
}

function iou(a: SyntheticObject, b: SyntheticObject): number {
  const w = Math.min(a.x + a.w / 2, b.x + b.w / 2) - Math.max(a.x - a.w / 2, b.x - b.w / 2);
  const h = Math.min(a.y + a.h / 2, b.y + b.h / 2) - Math.max(a.y - a.h / 2, b.y - b.h / 2);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / (a.w * a.h + b.w * b.h - w * h);
}

/** Renders one image (interleaved RGB bytes) and its objects, from its own seed. */
export function renderSyntheticImage(seed: number, width: number, height: number, classes: ShapeKind[], o: Required<Pick<SyntheticOptions, 'minObjects' | 'maxObjects' | 'minSize' | 'maxSize' | 'maxOverlap'>>): { rgb: Uint8Array; objects: SyntheticObject[] } {
  const r = mulberry32(seed);
  const img = new Float32Array(width * height * 3);
  // background: a colour gradient, low-frequency value noise and stripes/blobs, then pixel noise
  const base = hsvToRgb(r(), 0.2 + 0.5 * r(), 0.3 + 0.5 * r());
  const base2 = hsvToRgb(r(), 0.2 + 0.5 * r(), 0.3 + 0.5 * r());
  const gx = r() - 0.5, gy = r() - 0.5;
  const grid = 6;
  const noise = Array.from({ length: (grid + 1) * (grid + 1) }, () => r() - 0.5);
  const waves = Array.from({ length: 3 }, () => ({ fx: (r() - 0.5) * 0.6, fy: (r() - 0.5) * 0.6, ph: r() * 6.28, amp: 0.03 + 0.06 * r() }));
  const texture = 0.1 + 0.2 * r();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + gx * (x / width - 0.5) * 2 + gy * (y / height - 0.5) * 2));
      const nx = (x / width) * grid, ny = (y / height) * grid;
      const ix = Math.min(grid - 1, Math.floor(nx)), iy = Math.min(grid - 1, Math.floor(ny));
      const fx = nx - ix, fy = ny - iy;
      const n00 = noise[iy * (grid + 1) + ix], n10 = noise[iy * (grid + 1) + ix + 1];
      const n01 = noise[(iy + 1) * (grid + 1) + ix], n11 = noise[(iy + 1) * (grid + 1) + ix + 1];
      const vn = (n00 * (1 - fx) + n10 * fx) * (1 - fy) + (n01 * (1 - fx) + n11 * fx) * fy;
      let wv = 0;
      for (const w of waves) wv += w.amp * Math.sin(w.fx * x + w.fy * y + w.ph);
      const p = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) img[p + c] = base[c] * (1 - t) + base2[c] * t + texture * vn + wv;
    }
  }
  // objects
  const n = o.minObjects + Math.floor(r() * (o.maxObjects - o.minObjects + 1));
  const objects: SyntheticObject[] = [];
  const kinds: ShapeKind[] = [];
  const side = Math.min(width, height);
  for (let k = 0, tries = 0; k < n && tries < 50 * n; tries++) {
    const classId = Math.floor(r() * classes.length);
    const size = (o.minSize + (o.maxSize - o.minSize) * r()) * side;
    const aspect = classes[classId] === 'circle' || classes[classId] === 'ring' ? 1 : 0.75 + 0.5 * r();
    const bw = Math.max(4, Math.round(size * Math.sqrt(aspect))), bh = Math.max(4, Math.round(size / Math.sqrt(aspect)));
    const x0 = Math.floor(r() * (width - bw)), y0 = Math.floor(r() * (height - bh));
    const obj = { classId, x: (x0 + bw / 2) / width, y: (y0 + bh / 2) / height, w: bw / width, h: bh / height };
    if (objects.some((q) => iou(q, obj) > o.maxOverlap)) continue;
    objects.push(obj);
    kinds.push(classes[classId]);
    k++;
  }
  // paint in order (later objects occlude earlier ones), 3×3 supersampled edges
  objects.forEach((obj, k) => {
    const kind = kinds[k];
    const col = hsvToRgb(r(), 0.5 + 0.5 * r(), 0.35 + 0.65 * r());
    // keep the shape visible against the background: push its value away from the local mean
    const shade = r() < 0.5 ? 0.7 : 1.25;
    const x0 = (obj.x - obj.w / 2) * width, y0 = (obj.y - obj.h / 2) * height;
    const bw = obj.w * width, bh = obj.h * height;
    for (let y = Math.floor(y0); y < Math.ceil(y0 + bh); y++) {
      for (let x = Math.floor(x0); x < Math.ceil(x0 + bw); x++) {
        if (x < 0 || y < 0 || x >= width || y >= height) continue;
        let cover = 0;
        for (let sy = 0; sy < 3; sy++) for (let sx = 0; sx < 3; sx++) {
          const u = ((x + (sx + 0.5) / 3 - x0) / bw) * 2 - 1;
          const v = ((y + (sy + 0.5) / 3 - y0) / bh) * 2 - 1;
          if (inside(kind, u, v)) cover++;
        }
        if (!cover) continue;
        const a = cover / 9;
        const p = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) img[p + c] = img[p + c] * (1 - a) + Math.min(1, col[c] * shade) * a;
      }
    }
  });
  const sigma = 0.02 + 0.03 * r();
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < img.length; i++) rgb[i] = Math.max(0, Math.min(255, Math.round((img[i] + sigma * gauss(r)) * 255)));
  return { rgb, objects };
}

export async function generateSyntheticDataset(opts: SyntheticOptions): Promise<SyntheticResult> {
  const outDir = resolve(opts.outDir);
  const seed = opts.seed ?? 1;
  const width = opts.width ?? 128, height = opts.height ?? 128;
  const classes = opts.classes ?? ['circle', 'square', 'triangle', 'cross'];
  const name = opts.name ?? 'shapes';
  const fmt = opts.format ?? 'png';
  const o = {
    minObjects: opts.minObjects ?? 1, maxObjects: opts.maxObjects ?? 4,
    minSize: opts.minSize ?? 0.15, maxSize: opts.maxSize ?? 0.45, maxOverlap: opts.maxOverlap ?? 0.25,
  };
  if (existsSync(outDir) && readdirSync(outDir).length > 0 && !opts.overwrite) {
    throw new Error(`${outDir} already exists and is not empty (pass overwrite to replace it)`);
  }
  mkdirSync(dirname(outDir), { recursive: true });
  const tmp = join(dirname(outDir), `.${basename(outDir)}.${process.pid}.${Date.now()}.tmp`);
  mkdirSync(join(tmp, 'images'), { recursive: true });
  mkdirSync(join(tmp, 'labels'), { recursive: true });
  let objectsTotal = 0;
  try {
    const splits: [string, number, number][] = [['train', opts.train ?? 1000, 0], ['valid', opts.valid ?? 200, 1]];
    for (const [split, count, salt] of splits) {
      const list: string[] = [];
      for (let i = 0; i < count; i++) {
        if (opts.signal?.aborted) throw new Error('cancelled');
        const stem = `${split}_${String(i).padStart(5, '0')}`;
        const { rgb, objects } = renderSyntheticImage((seed * 1000003 + salt * 7919 + i * 2654435761) >>> 0, width, height, classes, o);
        const file = `images/${stem}.${fmt}`;
        const s = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
        await (fmt === 'png' ? s.png({ compressionLevel: 6 }) : s.jpeg({ quality: 92 })).toFile(join(tmp, file));
        writeFileSync(join(tmp, 'labels', `${stem}.txt`), objects.map((b) => `${b.classId} ${b.x.toFixed(6)} ${b.y.toFixed(6)} ${b.w.toFixed(6)} ${b.h.toFixed(6)}`).join('\n') + (objects.length ? '\n' : ''));
        objectsTotal += objects.length;
        list.push(file);
      }
      writeFileSync(join(tmp, `${split}.txt`), list.join('\n') + '\n');
    }
    writeFileSync(join(tmp, `${name}.names`), classes.join('\n') + '\n');
    writeFileSync(join(tmp, `${name}.data`), `classes = ${classes.length}\ntrain = train.txt\nvalid = valid.txt\nnames = ${name}.names\nbackup = backup/\n`);
    if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return {
    outDir, dataFile: join(outDir, `${name}.data`), namesFile: join(outDir, `${name}.names`),
    trainList: join(outDir, 'train.txt'), validList: join(outDir, 'valid.txt'), names: classes,
    images: (opts.train ?? 1000) + (opts.valid ?? 200), objects: objectsTotal,
  };
}
