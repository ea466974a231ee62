// Histograms of |γ| on a log axis, drawn on a canvas: bars split into kept and removed channels,
// with the threshold and percent_limit marked.
import { fitCanvas, type ThemeColors } from './theme';

export interface HistogramSpec {
  title: string;
  /** |γ| of the channels, and which are removed (same order; optional). */
  values?: ArrayLike<number>;
  removed?: (i: number) => boolean;
  /** Or counts already binned (log bins over [lo, hi]). */
  counts?: { kept: ArrayLike<number>; removed: ArrayLike<number> };
  lo: number;
  hi: number;
  bins?: number;
  threshold?: number;
  limit?: number;
}

export function drawHistogram(canvas: HTMLCanvasElement, width: number, height: number, spec: HistogramSpec, t: ThemeColors): void {
  const ctx = fitCanvas(canvas, width, height);
  ctx.fillStyle = t.background;
  ctx.fillRect(0, 0, width, height);
  const bins = spec.counts ? spec.counts.kept.length : spec.bins ?? 48;
  const llo = Math.log10(spec.lo);
  const lhi = Math.log10(spec.hi);
  const span = lhi - llo || 1;
  let kept: ArrayLike<number>, removed: ArrayLike<number>;
  if (spec.counts) {
    kept = spec.counts.kept;
    removed = spec.counts.removed;
  } else {
    const k = new Float64Array(bins), r = new Float64Array(bins);
    const values = spec.values ?? [];
    for (let i = 0; i < values.length; i++) {
      const b = logBin(values[i], spec.lo, spec.hi, bins);
      if (spec.removed?.(i)) r[b]++; else k[b]++;
    }
    kept = k; removed = r;
  }
  let max = 1;
  for (let b = 0; b < bins; b++) max = Math.max(max, kept[b] + removed[b]);
  const top = 16, bottom = height - 14, left = 4, right = width - 4;
  const plotH = bottom - top;
  const bw = (right - left) / bins;
  ctx.font = '10px var(--vscode-font-family, sans-serif)';
  ctx.fillStyle = t.muted;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText(spec.title, left, 2);
  for (let b = 0; b < bins; b++) {
    // sqrt scale: the spike of near-zero γ does not flatten everything else
    const hk = (Math.sqrt(kept[b]) / Math.sqrt(max)) * plotH;
    const hr = (Math.sqrt(kept[b] + removed[b]) / Math.sqrt(max)) * plotH;
    ctx.fillStyle = t.removed;
    ctx.fillRect(left + b * bw, bottom - hr, Math.max(1, bw - 1), hr - hk);
    ctx.fillStyle = t.series[0];
    ctx.fillRect(left + b * bw, bottom - hk, Math.max(1, bw - 1), hk);
  }
  const xOf = (v: number) => left + ((Math.log10(Math.max(v, spec.lo)) - llo) / span) * (right - left);
  const vline = (v: number | undefined, colour: string, label: string, labelY = top) => {
    if (v === undefined || !Number.isFinite(v) || v <= 0) return;
    const x = Math.round(xOf(v)) + 0.5;
    ctx.strokeStyle = colour;
    ctx.setLineDash([3, 2]);
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = colour;
    ctx.textAlign = x > width / 2 ? 'right' : 'left';
    ctx.fillText(label, x + (x > width / 2 ? -3 : 3), labelY);
  };
  vline(spec.limit, t.limit, 'limit', top + 12);
  vline(spec.threshold, t.foreground, 'threshold');
  ctx.fillStyle = t.muted;
  ctx.textBaseline = 'bottom';
  ctx.textAlign = 'left';
  ctx.fillText(spec.lo.toExponential(0), left, height);
  ctx.textAlign = 'right';
  ctx.fillText(spec.hi.toPrecision(2), right, height);
  ctx.textAlign = 'center';
  ctx.fillText('|γ| (log)', width / 2, height);
}

/** The log bin of a value over [lo, hi] (values outside go to the end bins). */
export function logBin(v: number, lo: number, hi: number, bins: number): number {
  const llo = Math.log10(lo);
  const span = Math.log10(hi) - llo || 1;
  const x = v > 0 ? (Math.log10(v) - llo) / span : 0;
  return Math.max(0, Math.min(bins - 1, Math.floor(x * bins)));
}

/**
 * Binning of an ascending array: each bin is a contiguous range, so the kept/removed split at a
 * threshold index costs one pass over the bins, not over the values.
 */
export class SortedBins {
  readonly start: Int32Array;
  constructor(sorted: ArrayLike<number>, lo: number, hi: number, readonly bins = 48) {
    this.start = new Int32Array(bins + 1);
    const counts = new Int32Array(bins);
    for (let i = 0; i < sorted.length; i++) counts[logBin(sorted[i], lo, hi, bins)]++;
    for (let b = 0; b < bins; b++) this.start[b + 1] = this.start[b] + counts[b];
  }
  /** Counts with the first `removedCount` sorted values removed. */
  split(removedCount: number): { kept: Int32Array; removed: Int32Array } {
    const kept = new Int32Array(this.bins), removed = new Int32Array(this.bins);
    for (let b = 0; b < this.bins; b++) {
      const size = this.start[b + 1] - this.start[b];
      const r = Math.max(0, Math.min(size, removedCount - this.start[b]));
      removed[b] = r;
      kept[b] = size - r;
    }
    return { kept, removed };
  }
}
