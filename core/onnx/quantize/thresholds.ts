// Activation thresholds from calibration statistics (pure functions, no I/O).
//
// Every quantized activation tensor gets one threshold T: values in [-T, T] map onto the int8 grid
// (or [0, T] onto the uint8 grid for tensors that are never negative), values outside saturate.
// T comes from a histogram of |x| over the calibration images, HISTOGRAM_BINS bins from 0 to
// max|x| (bin k covers [k·w, (k+1)·w), w = max|x| / HISTOGRAM_BINS):
//   - kl: the MNN / TensorRT entropy calibration (bin 0 flattened first: withoutZeroSpike). For each candidate i in TARGET_BINS..BINS-1 the
//     reference distribution P is bins 0..i-1 with the whole tail (bins i..) folded into bin i-1;
//     Q is bins 0..i-1 (without the tail, as in TensorRT's recipe: otherwise i = TARGET_BINS
//     would always win with KL = 0) merged into TARGET_BINS bins and expanded back (each merged
//     bin's mass spread evenly over the non-empty bins it covers, bins cut by a boundary weighted
//     by the fraction covered). The i with the smallest KL(P‖Q) wins (the first one on ties);
//     T = (i + 0.5)·w.
//   - minmax: T = max|x|.
//   - percentile: T = the p-th percentile of |x| (99.99 by default), interpolated inside its bin.

export const HISTOGRAM_BINS = 2048;
export const KL_TARGET_BINS = 128;
export const DEFAULT_PERCENTILE = 99.99;

export type CalibrationMethod = 'kl' | 'minmax' | 'percentile';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['kl', 'minmax', 'percentile'];

export interface KlResult {
  threshold: number;
  /** The winning candidate i (number of bins kept). */
  bin: number;
  /** KL(P‖Q) at that candidate. */
  divergence: number;
}

/** KL(P‖Q) of two unnormalised distributions over the same bins; bins where P is 0 contribute nothing. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let sp = 0;
  let sq = 0;
  for (let k = 0; k < p.length; k++) {
    sp += p[k];
    sq += q[k];
  }
  if (sp <= 0) return 0;
  if (sq <= 0) return Infinity;
  let kl = 0;
  for (let k = 0; k < p.length; k++) {
    if (p[k] <= 0) continue;
    const pk = p[k] / sp;
    const qk = q[k] / sq;
    // Q is built so that it is positive wherever P is; a zero here can only come from rounding.
    kl += qk > 0 ? pk * Math.log(pk / qk) : pk * Math.log(pk / 1e-12);
  }
  return kl;
}

/**
 * The Q of a candidate: `p` (length i) merged into `target` bins, then expanded back over the
 * non-empty bins of `p`. Merged bin j covers [j·i/target, (j+1)·i/target) in units of p's bins;
 * a bin cut by a boundary contributes (and receives) in proportion to the part covered.
 */
export function mergeAndExpand(p: ArrayLike<number>, target: number, out?: Float64Array): Float64Array {
  const n = p.length;
  const q = out && out.length >= n ? out.subarray(0, n) : new Float64Array(n);
  q.fill(0);
  const per = n / target;
  for (let j = 0; j < target; j++) {
    const start = j * per;
    const end = start + per;
    const lo = Math.ceil(start); // first whole bin
    const hi = Math.floor(end); // one past the last whole bin
    let mass = 0;
    let count = 0;
    const leftPart = lo > start ? lo - start : 0; // fraction of bin lo-1 inside [start, end)
    const rightPart = hi < end ? end - hi : 0; // fraction of bin hi inside [start, end)
    // Merged bin narrower than one source bin: start and end inside the same bin.
    if (lo > hi) {
      const k = hi;
      const part = end - start;
      mass += part * p[k];
      if (p[k] !== 0) count += part;
      if (count > 0) q[k] += (mass / count) * part;
      continue;
    }
    if (leftPart > 0) {
      mass += leftPart * p[lo - 1];
      if (p[lo - 1] !== 0) count += leftPart;
    }
    for (let k = lo; k < hi; k++) {
      mass += p[k];
      if (p[k] !== 0) count += 1;
    }
    if (rightPart > 0 && hi < n) {
      mass += rightPart * p[hi];
      if (p[hi] !== 0) count += rightPart;
    }
    if (count === 0) continue;
    const each = mass / count;
    if (leftPart > 0 && p[lo - 1] !== 0) q[lo - 1] += each * leftPart;
    for (let k = lo; k < hi; k++) if (p[k] !== 0) q[k] += each;
    if (rightPart > 0 && hi < n && p[hi] !== 0) q[hi] += each * rightPart;
  }
  return q;
}

/**
 * The reference implementation of one candidate: KL(P‖Q) with P = hist[0..i) plus the tail folded
 * into bin i-1, Q = hist[0..i) (tail not folded, as TensorRT's recipe) merged into `target` bins and
 * expanded back. O(i) with a log per bin: klThreshold computes the same in O(target).
 */
export function candidateDivergence(hist: ArrayLike<number>, i: number, target = KL_TARGET_BINS): number {
  const p = new Float64Array(i);
  let tail = 0;
  for (let k = 0; k < hist.length; k++) {
    if (k < i) p[k] = hist[k];
    else tail += hist[k];
  }
  p[i - 1] += tail;
  const q = mergeAndExpand(Array.prototype.slice.call(hist, 0, i) as number[], target);
  return klDivergence(p, q);
}

/** Strictly smaller beyond rounding noise (so ties keep the first, smallest candidate). */
export function improves(kl: number, best: number): boolean {
  return best === Infinity ? kl < Infinity : kl < best - 1e-12 * Math.max(1, Math.abs(best));
}

/** The normalised Q where P has mass and Q none (a tail folded into an empty last bin). */
const Q_FLOOR = 1e-12;

/**
 * Entropy calibration over a histogram of |x| (`hist[k]` counts values in [k·w, (k+1)·w)): the
 * candidate i in [target, bins) with the smallest KL(P‖Q) (see candidateDivergence), the first
 * one on ties; T = (i + 0.5)·w. Histograms of at most `target` bins, or empty ones, give the full
 * range. Each candidate costs O(target) thanks to prefix sums: inside a merged bin Q is constant
 * over the non-empty bins, so Σ p·log q over them is (their mass)·log(that constant).
 */
export function klThreshold(hist: ArrayLike<number>, binWidth: number, target = KL_TARGET_BINS): KlResult {
  const n = hist.length;
  let total = 0;
  for (let k = 0; k < n; k++) total += hist[k];
  if (n <= target || total <= 0) return { threshold: n * binWidth, bin: n, divergence: 0 };
  // Prefix sums: mass, non-empty bins, Σ h·log h.
  const H = new Float64Array(n + 1);
  const NZ = new Float64Array(n + 1);
  const HL = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) {
    const h = hist[k];
    H[k + 1] = H[k] + h;
    NZ[k + 1] = NZ[k] + (h !== 0 ? 1 : 0);
    HL[k + 1] = HL[k] + (h > 0 ? h * Math.log(h) : 0);
  }
  const qb = new Float64Array(n); // Q of bins cut by a merged-bin boundary
  const cut: number[] = [];
  let best = target;
  let bestKl = Infinity;
  for (let i = target; i < n; i++) {
    const per = i / target;
    const sp = total; // P holds everything: bins below i and the folded tail
    const sq = H[i]; // Q holds the bins below i
    if (sq <= 0) continue;
    const last = i - 1;
    const pLast = hist[last] + (total - H[i]);
    let sumPLogQ = 0;
    let qLast = 0;
    cut.length = 0;
    for (let j = 0; j < target; j++) {
      const start = j * per;
      const end = j === target - 1 ? i : start + per;
      const lo = Math.ceil(start);
      const hi = Math.floor(end);
      const leftFrac = lo > start ? lo - start : 0; // of bin lo-1
      const rightFrac = hi < end ? end - hi : 0; // of bin hi
      let mass = H[hi] - H[lo];
      let count = NZ[hi] - NZ[lo];
      if (leftFrac > 0) {
        mass += leftFrac * hist[lo - 1];
        if (hist[lo - 1] !== 0) count += leftFrac;
      }
      if (rightFrac > 0) {
        mass += rightFrac * hist[hi];
        if (hist[hi] !== 0) count += rightFrac;
      }
      if (count <= 0) continue;
      const e = mass / count;
      const logE = Math.log(e);
      // whole bins of this merged bin, the last bin excluded (its P carries the tail)
      let inner = H[hi] - H[lo];
      if (last >= lo && last < hi) {
        inner -= hist[last];
        if (hist[last] !== 0) qLast = e;
      }
      if (inner > 0) sumPLogQ += inner * logE;
      if (leftFrac > 0 && hist[lo - 1] !== 0) {
        if (qb[lo - 1] === 0) cut.push(lo - 1);
        qb[lo - 1] += e * leftFrac;
      }
      if (rightFrac > 0 && hist[hi] !== 0) {
        if (qb[hi] === 0) cut.push(hi);
        qb[hi] += e * rightFrac;
      }
    }
    for (const k of cut) {
      if (k !== last) sumPLogQ += hist[k] * Math.log(qb[k]);
      else qLast = qb[k];
      qb[k] = 0;
    }
    // Σ p·log p over bins below the last, then the last bin.
    let sumPLogP = HL[last];
    if (pLast > 0) {
      sumPLogP += pLast * Math.log(pLast);
      sumPLogQ += pLast * (qLast > 0 ? Math.log(qLast) : Math.log(Q_FLOOR * sq));
    }
    // KL = Σ (p/sp)·log((p/sp)/(q/sq)) = (Σ p log p - Σ p log q)/sp + log(sq/sp)
    const kl = (sumPLogP - sumPLogQ) / sp + Math.log(sq / sp);
    if (improves(kl, bestKl)) {
      bestKl = kl;
      best = i;
    }
  }
  return { threshold: (best + 0.5) * binWidth, bin: best, divergence: Math.max(0, bestKl) };
}

/** The `percent`-th percentile (0..100] of the values counted by a histogram of |x|, linear inside its bin. */
export function percentileThreshold(hist: ArrayLike<number>, binWidth: number, percent = DEFAULT_PERCENTILE): number {
  if (!(percent > 0 && percent <= 100)) throw new Error(`percentile must be in (0, 100], got ${percent}`);
  let total = 0;
  for (let k = 0; k < hist.length; k++) total += hist[k];
  if (total <= 0) return hist.length * binWidth;
  const want = (percent / 100) * total;
  let cum = 0;
  for (let k = 0; k < hist.length; k++) {
    const c = hist[k];
    if (c > 0 && cum + c >= want) {
      const frac = Math.min(1, Math.max(0, (want - cum) / c));
      return (k + frac) * binWidth;
    }
    cum += c;
  }
  return hist.length * binWidth;
}

/** Streaming statistics of one tensor over the calibration images. */
export interface TensorStats {
  min: number;
  max: number;
  /** max |x|, the histogram's range. */
  absMax: number;
  /** Values seen. */
  count: number;
  /** |x| histogram over [0, absMax] (HISTOGRAM_BINS bins), when collected. */
  hist?: Float64Array;
}

export function emptyStats(): TensorStats {
  return { min: Infinity, max: -Infinity, absMax: 0, count: 0 };
}

/** First pass: range. */
export function addRange(stats: TensorStats, data: ArrayLike<number>): void {
  let mn = stats.min;
  let mx = stats.max;
  for (let k = 0; k < data.length; k++) {
    const v = data[k];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
    if (v !== v) throw new Error('calibration produced NaN activations');
  }
  stats.min = mn;
  stats.max = mx;
  stats.absMax = Math.max(Math.abs(mn), Math.abs(mx));
  stats.count += data.length;
}

/** Second pass: |x| into HISTOGRAM_BINS bins over [0, absMax] (absMax from the first pass; larger values land in the last bin). */
export function addToHistogram(stats: TensorStats, data: ArrayLike<number>, bins = HISTOGRAM_BINS): void {
  const hist = (stats.hist ??= new Float64Array(bins));
  const range = stats.absMax;
  if (!(range > 0)) {
    hist[0] += data.length;
    return;
  }
  const k = bins / range;
  const last = bins - 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    let b = Math.floor((v < 0 ? -v : v) * k);
    if (b > last) b = last;
    hist[b]++;
  }
}

/**
 * The histogram with bin 0 replaced by bin 1 (as NVIDIA's entropy calibrator does): the exact
 * zeros of ReLU outputs (and the near-zero mass of any activation) would otherwise dominate P and
 * pull the KL threshold down to a sliver of the range (MobileNetV2-YOLOv3-Nano: mAP 0.02 without).
 */
export function withoutZeroSpike(hist: ArrayLike<number>): Float64Array {
  const h = Float64Array.from(hist);
  if (h.length > 1) h[0] = h[1];
  return h;
}

export interface ThresholdChoice {
  threshold: number;
  /** The KL candidate, for the report. */
  klBin?: number;
}

/** Chooses T for one tensor. Needs `stats.hist` for kl and percentile. */
export function chooseThreshold(stats: TensorStats, method: CalibrationMethod, percent = DEFAULT_PERCENTILE): ThresholdChoice {
  const range = stats.absMax;
  if (!(range > 0)) return { threshold: 0 };
  if (method === 'minmax') return { threshold: range };
  if (!stats.hist) throw new Error(`${method} calibration needs a histogram`);
  const width = range / stats.hist.length;
  if (method === 'percentile') return { threshold: Math.min(range, percentileThreshold(stats.hist, width, percent)) };
  const kl = klThreshold(withoutZeroSpike(stats.hist), width);
  return { threshold: Math.min(range, kl.threshold), klBin: kl.bin };
}
