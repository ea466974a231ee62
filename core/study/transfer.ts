// Weights for a cfg whose detection heads changed (`classes` set with the language server's quick
// fix, core/darknet/edits.ts changeClassesEdits): every layer whose arrays fit is copied from the
// source model, the convs feeding the heads get fresh weights for their new filter count.
// Neither DarknetModel nor readWeights load such a mismatch (the head convs differ in size, and the
// file is not a darknet `partial` cut), so a new, complete .weights file is written instead.
//
// head: 'fresh'  — the head convs start as darknet initialises a conv (objectness prior -4.6);
//       'boxes'  — per anchor, the 4 box rows and the objectness row of the pretrained head are
//                  kept (the anchors and masks do not change with `classes`), the class rows are
//                  fresh, or copied from the source classes named in `classFrom`. Short fine-tunes
//                  start from localisation that already works.
import { applyEdits, changeClassesEdits } from '../darknet/edits';
import { analyzeCfg } from '../darknet/graph';
import type { LayerWeights, ModelGraph, ModelWeights } from '../darknet/types';
import { initWeights } from '../engine/model';

export type HeadInit = 'fresh' | 'boxes';

export interface TransferOptions {
  head?: HeadInit;
  /** For each new class, the source class id whose rows it starts from (undefined: fresh). */
  classFrom?: (number | undefined)[];
  seed?: number;
}

export interface TransferResult {
  weights: ModelWeights;
  /** Layers copied whole. */
  copied: number[];
  /** Head convs rebuilt (fresh or partly copied). */
  heads: number[];
}

/** The cfg text with `classes` changed everywhere (the quick fix's edits, applied). */
export function changeClassesText(cfgText: string, classes: number): { text: string; edits: number } {
  const graph = analyzeCfg(cfgText);
  const edits = changeClassesEdits(graph, classes);
  return { text: applyEdits(cfgText, edits), edits: edits.length };
}

function sameShape(a: LayerWeights, b: LayerWeights): boolean {
  const len = (x?: Float32Array) => x?.length ?? -1;
  return len(a.biases) === len(b.biases) && len(a.weights) === len(b.weights) && len(a.scales) === len(b.scales)
    && len(a.rollingMean) === len(b.rollingMean) && len(a.rollingVariance) === len(b.rollingVariance);
}

function headInfo(graph: ModelGraph): Map<number, { anchors: number; classes: number }> {
  const m = new Map<number, { anchors: number; classes: number }>();
  for (const l of graph.layers) if (l.type === 'yolo' && l.yolo) m.set(l.inputs[0], { anchors: l.yolo.mask.length, classes: l.yolo.classes });
  return m;
}

/**
 * Weights for `dst` from a model `src` of the same layer structure (layer by layer, by index).
 * Throws when the two differ in anything but the head convs' filters.
 */
export function transferWeights(src: ModelGraph, srcWeights: ModelWeights, dst: ModelGraph, opts: TransferOptions = {}): TransferResult {
  if (src.layers.length !== dst.layers.length) {
    throw new Error(`cannot transfer weights: the source model has ${src.layers.length} layers, the new cfg ${dst.layers.length}`);
  }
  const fresh = initWeights(dst, opts.seed ?? 1);
  const srcHeads = headInfo(src), dstHeads = headInfo(dst);
  const out: ModelWeights = { header: { ...srcWeights.header, seen: 0n }, layers: new Map(), loadedLayers: dst.layers.length, bytes: 0 };
  const copied: number[] = [], heads: number[] = [];
  for (const l of dst.layers) {
    const f = fresh.layers.get(l.index);
    if (!f) continue;
    const s = srcWeights.layers.get(l.index);
    const sl = src.layers[l.index];
    if (sl.type !== l.type) throw new Error(`cannot transfer weights: layer ${l.index} is [${sl.type}] in the source model but [${l.type}] in the new cfg`);
    if (s && sameShape(s, f)) {
      out.layers.set(l.index, s);
      copied.push(l.index);
      continue;
    }
    const sh = srcHeads.get(l.index), dh = dstHeads.get(l.index);
    if (sh && dh && s) {
      heads.push(l.index);
      if ((opts.head ?? 'boxes') === 'boxes' && sh.anchors === dh.anchors && s.weights.length / s.biases.length === f.weights.length / f.biases.length) {
        copyHeadRows(s, f, sh, dh, opts.classFrom);
      }
      out.layers.set(l.index, f);
      continue;
    }
    if (!s) throw new Error(`cannot transfer weights: the source weights have no data for layer ${l.index}`);
    throw new Error(`cannot transfer weights: layer ${l.index} [${l.type}] has a different shape in the new cfg and is not a head conv`);
  }
  return { weights: out, copied, heads };
}

/** Box (4) and objectness (1) rows of each anchor; class rows per `classFrom`. Layout [anchor][5 + classes]. */
function copyHeadRows(s: LayerWeights, d: LayerWeights, sh: { classes: number }, dh: { anchors: number; classes: number }, classFrom?: (number | undefined)[]): void {
  const per = s.weights.length / s.biases.length; // floats of one output filter
  const sPer = 5 + sh.classes, dPer = 5 + dh.classes;
  const copyRow = (from: number, to: number) => {
    d.biases[to] = s.biases[from];
    d.weights.set(s.weights.subarray(from * per, (from + 1) * per), to * per);
    if (s.scales && d.scales) { d.scales[to] = s.scales[from]; d.rollingMean![to] = s.rollingMean![from]; d.rollingVariance![to] = s.rollingVariance![from]; }
  };
  for (let a = 0; a < dh.anchors; a++) {
    for (let r = 0; r < 5; r++) copyRow(a * sPer + r, a * dPer + r);
    for (let c = 0; c < dh.classes; c++) {
      const from = classFrom?.[c];
      if (from !== undefined && from >= 0 && from < sh.classes) copyRow(a * sPer + 5 + from, a * dPer + 5 + c);
    }
  }
}
