// Detection with an exported model on onnxruntime, the way `darknet detector test` does it:
// resize_image (or letterbox), forward, get_yolo_detections above thresh, correct_yolo_boxes, the
// model's NMS at 0.45, then draw_detections_v3's selection, order and text.
import { correctBoxes, type Detection, detectionsFromDecoded } from '../eval/boxes';
import { prepareInput, type RgbImage } from '../data/image';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import { exportOnnx, type OnnxMetadata } from './export';
import type { NmsKind } from './layers';
import { type PostConfig, postprocessOutputs } from './prefetch';
import { OnnxSession, type RuntimeOptions, type TensorOut } from './runtime';

const f = Math.fround;

export type DetectorSource =
  | { graph: ModelGraph; weights: ModelWeights }
  | { onnx: string | Uint8Array };

export interface DetectorOptions extends RuntimeOptions {
  /** Override the model's letter_box (darknet's -letter_box flag). */
  letterBox?: boolean;
}

export interface DetectOptions {
  /** Detection threshold (objectness and class probability), darknet -thresh. Default 0.25. */
  thresh?: number;
  /** NMS threshold; 0 disables. Default 0.45 (darknet's). */
  nms?: number;
}

export class Detector {
  readonly letterBox: boolean;

  private constructor(readonly session: OnnxSession, readonly meta: OnnxMetadata, letterBox: boolean | undefined) {
    this.letterBox = letterBox ?? meta.letterBox;
  }

  static async create(source: DetectorSource, opts: DetectorOptions = {}): Promise<Detector> {
    let bytes: Uint8Array | string;
    let meta: OnnxMetadata | undefined;
    if ('graph' in source) {
      const ex = exportOnnx(source.graph, source.weights, { batch: 1 });
      bytes = ex.bytes;
      meta = ex.metadata;
    } else {
      bytes = source.onnx;
    }
    const session = await OnnxSession.create(bytes, opts);
    meta ??= session.metadata;
    if (!meta) {
      await session.dispose();
      throw new Error('this ONNX model has no darkslim metadata (network size, heads): export it with `darkslim export`');
    }
    if (meta.channels !== 3) {
      await session.dispose();
      throw new Error(`the model takes ${meta.channels}-channel input: detection reads RGB images (3 channels)`);
    }
    if (meta.heads.length === 0) {
      await session.dispose();
      throw new Error('the model has no [yolo] layer: nothing to detect with');
    }
    return new Detector(session, meta, opts.letterBox);
  }

  get classes(): number {
    return this.meta.classes;
  }

  get nmsKind(): { kind: NmsKind; beta: number } {
    return { kind: this.meta.nms.kind as NmsKind, beta: this.meta.nms.beta };
  }

  /** The network input for an image (darknet resize_image, or letterbox_image). */
  prepare(img: RgbImage): Float32Array {
    return prepareInput(img, this.meta.netW, this.meta.netH, this.letterBox).tensor;
  }

  /** One forward pass on a prepared [C, H, W] tensor. */
  async infer(tensor: Float32Array): Promise<Map<string, TensorOut>> {
    return this.session.run(tensor, [1, this.meta.channels, this.meta.netH, this.meta.netW]);
  }

  /**
   * darknet get_network_boxes(): the head rows with objectness > thresh, heads in layer order,
   * boxes corrected to the original image (relative 0..1). No NMS.
   */
  boxes(outputs: Map<string, TensorOut>, imageW: number, imageH: number, thresh: number): Detection[] {
    const dets: Detection[] = [];
    for (const head of this.meta.heads) {
      const out = outputs.get(head.output);
      if (!out) throw new Error(`the model has no output ${head.output}`);
      for (const d of detectionsFromDecoded(out.data, head.rows, head.classes, thresh)) dets.push(d);
    }
    return correctBoxes(dets, imageW, imageH, this.meta.netW, this.meta.netH, this.letterBox);
  }

  /** How outputs become detections: thresholds, heads, letterbox, the model's NMS. */
  postConfig(opts: DetectOptions = {}): PostConfig {
    return {
      heads: this.meta.heads.map((h) => ({ output: h.output, rows: h.rows, classes: h.classes })),
      classes: this.classes,
      netW: this.meta.netW,
      netH: this.meta.netH,
      letterBox: this.letterBox,
      thresh: opts.thresh ?? 0.25,
      nmsThresh: opts.nms ?? 0.45,
      nms: this.nmsKind,
    };
  }

  /** boxes() then the model's NMS (darknet's order of operations). */
  postprocess(outputs: Map<string, TensorOut>, imageW: number, imageH: number, opts: DetectOptions = {}): Detection[] {
    return postprocessOutputs(this.postConfig(opts), outputRecord(outputs), imageW, imageH);
  }

  async detect(img: RgbImage, opts: DetectOptions = {}): Promise<Detection[]> {
    const outputs = await this.infer(this.prepare(img));
    return this.postprocess(outputs, img.width, img.height, opts);
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

export function outputRecord(outputs: Map<string, TensorOut>): Record<string, Float32Array> {
  const r: Record<string, Float32Array> = {};
  for (const [name, t] of outputs) r[name] = t.data;
  return r;
}

// ---- darknet's selection and text (image.c get_actual_detections / draw_detections_v3) ----

export interface SelectedDetection {
  det: Detection;
  bestClass: number;
}

/** get_actual_detections(): detections whose best class prob > thresh (names "dont_show*" never win), sorted by left edge. */
export function selectDetections(dets: Detection[], thresh: number, names?: string[]): SelectedDetection[] {
  const t = f(thresh);
  const out: SelectedDetection[] = [];
  for (const det of dets) {
    let best = -1;
    let bestProb = t;
    for (let j = 0; j < det.classes; j++) {
      const show = !(names?.[j] ?? '').startsWith('dont_show');
      if (det.prob[j] > bestProb && show) {
        best = j;
        bestProb = det.prob[j];
      }
    }
    if (best >= 0) out.push({ det, bestClass: best });
  }
  // compare_by_lefts, qsort (glibc: stable merge sort)
  const left = (d: Detection): number => f(d.box.x - f(d.box.w / 2));
  out.sort((a, b) => {
    const delta = f(left(a.det) - left(b.det));
    return delta < 0 ? -1 : delta > 0 ? 1 : 0;
  });
  return out;
}

/** One printed line of `-ext_output`: a class of a detection with its box in original-image pixels. */
export interface DetectionRecord {
  class: number;
  name: string;
  /** 0..1 */
  prob: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

/** C round(): half away from zero. */
export function cRound(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** printf("%.0f"): round half to even on the exact binary value. */
export function printfRound(x: number): number {
  const fl = Math.floor(x);
  const diff = x - fl;
  if (diff === 0.5) return fl % 2 === 0 ? fl : fl + 1;
  return Math.round(x);
}

function boxPixels(det: Detection, imageW: number, imageH: number): { left: number; top: number; width: number; height: number } {
  const b = det.box;
  return {
    left: cRound(f(f(b.x - f(b.w / 2)) * imageW)),
    top: cRound(f(f(b.y - f(b.h / 2)) * imageH)),
    width: cRound(f(b.w * imageW)),
    height: cRound(f(b.h * imageH)),
  };
}

function nameOf(names: string[] | undefined, j: number): string {
  return names?.[j] ?? String(j);
}

/** The lines draw_detections_v3 prints, as records: best class first, then the other classes above thresh. */
export function detectionRecords(dets: Detection[], imageW: number, imageH: number, thresh: number, names?: string[]): DetectionRecord[] {
  const t = f(thresh);
  const records: DetectionRecord[] = [];
  for (const { det, bestClass } of selectDetections(dets, thresh, names)) {
    const px = boxPixels(det, imageW, imageH);
    const push = (j: number) => records.push({ class: j, name: nameOf(names, j), prob: det.prob[j], ...px });
    push(bestClass);
    for (let j = 0; j < det.classes; j++) if (det.prob[j] > t && j !== bestClass) push(j);
  }
  return records;
}

function pad4(v: number): string {
  const s = Object.is(v, -0) ? '-0' : String(v);
  return s.padStart(4, ' ');
}

/** darknet's `-ext_output` text, e.g. `dog: 65%\t(left_x:  122   top_y:  222   width:  244   height:  295)`. */
export function formatRecord(r: DetectionRecord, extOutput = true): string {
  const pct = `${r.name}: ${printfRound(f(r.prob * 100))}%`;
  if (!extOutput) return pct;
  return `${pct}\t(left_x: ${pad4(r.left)}   top_y: ${pad4(r.top)}   width: ${pad4(r.width)}   height: ${pad4(r.height)})`;
}

/** darknet get_color(): the class colour channel c (0 = blue, 1 = green, 2 = red) as 0..1. */
export function classColor(classId: number, classes: number): [number, number, number] {
  const colors = [[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]];
  const offset = (classId * 123457) % classes;
  const get = (c: number): number => {
    let ratio = (offset / classes) * 5;
    const i = Math.floor(ratio);
    const j = Math.ceil(ratio);
    ratio -= i;
    return (1 - ratio) * colors[i][c] + ratio * colors[j][c];
  };
  return [get(2), get(1), get(0)];
}

/** SVG overlay of darknet's drawing (boxes by ascending prob, label with all classes above thresh). */
export function detectionsSvg(dets: Detection[], imageW: number, imageH: number, thresh: number, names?: string[]): string {
  const t = f(thresh);
  const selected = selectDetections(dets, thresh, names)
    .sort((a, b) => {
      const d = f(a.det.prob[a.bestClass] - b.det.prob[b.bestClass]);
      return d < 0 ? -1 : d > 0 ? 1 : 0;
    });
  const width = Math.max(1, Math.trunc(imageH * 0.006));
  const fontSize = Math.max(10, Math.round(imageH * 0.03));
  const parts: string[] = [];
  for (const { det, bestClass } of selected) {
    const b = det.box;
    let left = Math.trunc((b.x - b.w / 2) * imageW);
    let right = Math.trunc((b.x + b.w / 2) * imageW);
    let top = Math.trunc((b.y - b.h / 2) * imageH);
    let bot = Math.trunc((b.y + b.h / 2) * imageH);
    left = Math.max(0, left);
    right = Math.min(imageW - 1, right);
    top = Math.max(0, top);
    bot = Math.min(imageH - 1, bot);
    const [r, g, bl] = classColor(bestClass, det.classes).map((v) => Math.round(v * 255));
    const color = `rgb(${r},${g},${bl})`;
    const labels = [nameOf(names, bestClass)];
    for (let j = 0; j < det.classes; j++) if (det.prob[j] > t && j !== bestClass) labels.push(nameOf(names, j));
    const label = escapeXml(labels.join(', '));
    const half = width / 2;
    parts.push(`<rect x="${left + half}" y="${top + half}" width="${Math.max(0, right - left + 1 - width)}" height="${Math.max(0, bot - top + 1 - width)}" fill="none" stroke="${color}" stroke-width="${width}"/>`);
    const textW = Math.round(label.length * fontSize * 0.6) + 6;
    const labelTop = top - fontSize - 4 >= 0 ? top - fontSize - 4 : top;
    parts.push(`<rect x="${left}" y="${labelTop}" width="${textW}" height="${fontSize + 4}" fill="${color}"/>`);
    parts.push(`<text x="${left + 3}" y="${labelTop + fontSize}" font-family="sans-serif" font-size="${fontSize}" fill="black">${label}</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${imageW}" height="${imageH}">${parts.join('')}</svg>`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
