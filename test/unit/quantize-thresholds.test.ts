// Calibration thresholds (KL / MinMax / Percentile) on constructed histograms with known answers,
// the streaming statistics, and the quantization grids (activations, per-channel weights, halves).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activationParams, addRange, addToHistogram, candidateDivergence, chooseThreshold, defaultKeepFloat, emptyStats, halfBits, halfBitsAny, halfValue,
  HISTOGRAM_BINS, improves, klDivergence, klThreshold, layerRanges, mergeAndExpand, percentileThreshold, quantizeWeights, roundHalfEven,
  toHalf, withoutZeroSpike,
} from '../../core/onnx/quantize/index';
import { analyzeCfg } from '../../core/darknet/graph';
import { networkSpec } from '../../core/onnx/layers';
import { rng, syntheticWeights } from '../helpers/synthetic';

/** The reference search: candidateDivergence (plain O(i) per candidate) over every i. */
function referenceKl(hist: Float64Array): { bin: number; kl: number } {
  let bin = 128;
  let kl = Infinity;
  for (let i = 128; i < hist.length; i++) {
    const d = candidateDivergence(hist, i);
    if (improves(d, kl)) {
      kl = d;
      bin = i;
    }
  }
  return { bin, kl };
}

describe('KL threshold search', () => {
  test('mass only below bin 128: nothing to clip, nothing merged at i = 128 → KL 0, T = 128.5 bins', () => {
    const r = rng(3);
    const hist = new Float64Array(HISTOGRAM_BINS);
    for (let k = 0; k < 128; k++) hist[k] = 1 + Math.floor(r() * 1000);
    const res = klThreshold(hist, 0.01);
    assert.equal(res.bin, 128);
    assert.ok(res.divergence < 1e-12, `KL ${res.divergence}`);
    assert.ok(Math.abs(res.threshold - 128.5 * 0.01) < 1e-12);
  });

  test('constant over groups of 3 bins up to bin 384, empty beyond: merging loses nothing at i = 384 only', () => {
    const r = rng(11);
    const hist = new Float64Array(HISTOGRAM_BINS);
    for (let g = 0; g < 128; g++) {
      const v = 1 + Math.floor(r() * 500);
      for (let k = 0; k < 3; k++) hist[3 * g + k] = v;
    }
    const res = klThreshold(hist, 1);
    assert.equal(res.bin, 384);
    assert.ok(res.divergence < 1e-9, `KL ${res.divergence}`);
    assert.equal(res.threshold, 384.5);
    // below 384 the folded tail is missing from Q; above, merged bins straddle the steps
    for (const i of [200, 383, 385, 500, 1000]) assert.ok(candidateDivergence(hist, i) > 1e-6, `candidate ${i}`);
  });

  test('a lone far outlier is clipped: the threshold stays with the bulk of the distribution', () => {
    const hist = new Float64Array(HISTOGRAM_BINS);
    for (let k = 0; k < 400; k++) hist[k] = Math.round(1e5 * Math.exp(-k / 60));
    hist[2040] = 1;
    const res = klThreshold(hist, 0.05);
    assert.ok(res.bin > 128 && res.bin < 1000, `bin ${res.bin}`);
    assert.ok(res.threshold < 0.05 * 1000);
  });

  test('the O(target) search equals the plain definition on random histograms (argmin and value)', () => {
    const r = rng(7);
    const shapes: ((k: number) => number)[] = [
      (k) => Math.floor(1e6 * Math.exp(-k / 150)) + (k % 7),
      (k) => (r() < 0.3 ? Math.floor(r() * 100) : 0),
      (k) => Math.floor(1e5 * Math.exp(-(k * k) / (2 * 400 * 400))),
      (k) => (k < 700 ? Math.floor(50 + 40 * Math.sin(k / 9)) : k === 1999 ? 5 : 0),
    ];
    for (const [s, shape] of shapes.entries()) {
      const hist = Float64Array.from({ length: HISTOGRAM_BINS }, (_, k) => shape(k));
      const fast = klThreshold(hist, 1);
      const ref = referenceKl(hist);
      assert.equal(fast.bin, ref.bin, `shape ${s}`);
      assert.ok(Math.abs(fast.divergence - ref.kl) < 1e-9 * Math.max(1, ref.kl), `shape ${s}: ${fast.divergence} vs ${ref.kl}`);
    }
  });

  test('short or empty histograms give the full range', () => {
    assert.deepEqual(klThreshold(new Float64Array(100).fill(1), 2), { threshold: 200, bin: 100, divergence: 0 });
    assert.equal(klThreshold(new Float64Array(HISTOGRAM_BINS), 1).threshold, HISTOGRAM_BINS);
  });

  test('merge and expand: mass kept, empty bins stay empty, fractional merged bins split in proportion', () => {
    const p = [4, 0, 2, 2, 6, 0, 0, 3, 1, 1];
    const q = mergeAndExpand(p, 4); // 2.5 source bins per merged bin
    assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 19) < 1e-12);
    for (let k = 0; k < p.length; k++) if (p[k] === 0) assert.equal(q[k], 0);
    // merged bin 0 = [0, 2.5): 4 + 0 + 0.5·2 = 5 over 1 + 0.5 non-empty → 10/3 per whole bin
    assert.ok(Math.abs(q[0] - 10 / 3) < 1e-12);
    assert.deepEqual([...mergeAndExpand([1, 2, 3, 4], 4)], [1, 2, 3, 4]);
    assert.deepEqual([...mergeAndExpand([1, 3, 0, 4], 2)], [2, 2, 0, 4]);
  });

  test('KL divergence: 0 for equal distributions (any scale), the textbook value otherwise', () => {
    assert.equal(klDivergence([1, 2, 3], [2, 4, 6]), 0);
    const kl = klDivergence([1, 1], [3, 1]);
    assert.ok(Math.abs(kl - (0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(0.5 / 0.25))) < 1e-12);
    assert.equal(klDivergence([0, 0], [1, 1]), 0);
  });

  test('bin 0 flattened before the search (ReLU zeros must not decide the threshold)', () => {
    assert.deepEqual([...withoutZeroSpike([1000, 5, 4])], [5, 5, 4]);
    // a ReLU-like tensor: a huge zero spike plus a spread of positives up to the top
    const hist = new Float64Array(HISTOGRAM_BINS);
    hist[0] = 1e9;
    for (let k = 1; k < HISTOGRAM_BINS; k++) hist[k] = Math.round(1e4 * Math.exp(-k / 700));
    const stats = { ...emptyStats(), min: 0, max: 10, absMax: 10, count: 1, hist };
    const t = chooseThreshold(stats, 'kl').threshold;
    assert.ok(t > 5, `threshold ${t} of 10`);
  });
});

describe('MinMax and Percentile', () => {
  test('minmax: max |x| over the calibration data', () => {
    const s = emptyStats();
    addRange(s, Float32Array.of(-3, 1, 2));
    addRange(s, Float32Array.of(0.5, -1, 2.5));
    assert.deepEqual({ min: s.min, max: s.max, absMax: s.absMax, count: s.count }, { min: -3, max: 2.5, absMax: 3, count: 6 });
    assert.equal(chooseThreshold(s, 'minmax').threshold, 3);
  });

  test('percentile of a uniform histogram: exact, interpolated inside the bin', () => {
    const hist = new Float64Array(1000).fill(10); // 10000 values spread evenly over [0, 1000·w)
    assert.ok(Math.abs(percentileThreshold(hist, 0.5, 50) - 250) < 1e-9);
    assert.ok(Math.abs(percentileThreshold(hist, 1, 99.99) - 999.9) < 1e-9);
    assert.equal(percentileThreshold(hist, 1, 100), 1000);
    assert.throws(() => percentileThreshold(hist, 1, 0), /percentile/);
  });

  test('percentile 99.99 (default) cuts a 1-in-20000 outlier, keeps the bulk', () => {
    const s = emptyStats();
    const data = new Float32Array(20000);
    for (let i = 0; i < data.length; i++) data[i] = ((i % 1000) / 1000) * (i % 2 ? 1 : -1);
    data[123] = 50;
    addRange(s, data);
    addToHistogram(s, data);
    const t = chooseThreshold(s, 'percentile').threshold;
    assert.ok(t > 0.9 && t < 1.1, `threshold ${t}`);
  });

  test('streaming histogram: |x| binned over [0, absMax], the top value in the last bin, chunks add up', () => {
    const s = emptyStats();
    const a = Float32Array.of(-4, 0, 1, 2);
    const b = Float32Array.of(3, -1);
    addRange(s, a);
    addRange(s, b);
    addToHistogram(s, a, 4);
    addToHistogram(s, b, 4);
    assert.deepEqual([...s.hist!], [1, 2, 1, 2]); // bins of width 1: [0,1) [1,2) [2,3) [3,4]
    assert.throws(() => addRange(emptyStats(), Float32Array.of(NaN)), /NaN/);
  });
});

describe('quantization grids', () => {
  test('symmetric activations: [-T, T] on zero point 128, [0, T] on zero point 0 when never negative', () => {
    const p = activationParams(12.7, -3, 20, 'symmetric');
    assert.equal(p.zeroPoint, 128);
    assert.equal(p.scale, Math.fround(12.7 / 127));
    const n = activationParams(5.1, 0, 6, 'symmetric');
    assert.deepEqual([n.zeroPoint, n.scale], [0, Math.fround(5.1 / 255)]);
  });

  test('asymmetric activations: [max(min,-T), min(max,T)] over 256 steps, 0 exactly representable', () => {
    const p = activationParams(10, -1, 20, 'asymmetric'); // range [-1, 10]
    assert.ok(Math.abs(p.scale - 11 / 255) < 1e-6);
    assert.equal(p.zeroPoint, Math.round(1 / p.scale));
    assert.ok(p.lo <= -0.99 && p.hi >= 9.9);
    const clipped = activationParams(2, -30, 8, 'asymmetric'); // range [-2, 2]
    assert.ok(Math.abs(clipped.scale - 4 / 255) < 1e-6);
    assert.equal(activationParams(0, 0, 0, 'asymmetric').scale, Math.fround(1 / 255)); // dead tensor: any grid
  });

  test('weights: symmetric per output channel, scale max|w|/qmax, error at most half a step', () => {
    const w = Float32Array.of(0.5, -1, 0.25, /**/ 10, 2, -7, /**/ 0, 0, 0);
    for (const qmax of [127, 63]) {
      const { q, scales } = quantizeWeights(w, 3, qmax);
      assert.deepEqual([...scales], [Math.fround(1 / qmax), Math.fround(10 / qmax), 1]);
      assert.equal(q[1], -qmax);
      assert.equal(q[3], qmax);
      for (let i = 0; i < w.length; i++) {
        const s = scales[Math.floor(i / 3)];
        assert.ok(Math.abs(q[i] * s - w[i]) <= s / 2 + 1e-7);
        assert.ok(Math.abs(q[i]) <= qmax);
      }
    }
  });

  test('half-precision scales: exact float16 values, never below max|w|/qmax (no saturation)', () => {
    const w = Float32Array.of(0.123456, -0.0131, 3.3333, 0.01);
    const { q, scales } = quantizeWeights(w, 4, 63, true);
    for (let o = 0; o < 4; o++) {
      assert.equal(toHalf(scales[o]), scales[o]);
      assert.ok(scales[o] >= Math.abs(w[o]) / 63);
      assert.ok(Math.abs(q[o]) <= 63);
    }
    for (const x of [1, 0.5, 65504, 6.103515625e-5, 0.1, 3.14159]) {
      assert.ok(Math.abs(halfValue(halfBits(x)) - x) <= Math.abs(x) * 2 ** -11);
    }
    assert.equal(halfBits(1), 0x3c00);
    assert.equal(halfValue(0xc000), -2);
  });

  test('round half to even, as QuantizeLinear', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].map(roundHalfEven), [0, 2, 2, -0, -2, 2, -3]);
  });
});

describe('layers kept in float by default (the stem)', () => {
  const yolo = (mask: string) => `[yolo]\nmask=${mask}\nanchors=10,14, 23,27, 37,58, 81,82\nclasses=1\nnum=4\n`;
  const specOf = (text: string) => {
    const graph = analyzeCfg(text);
    return networkSpec(graph, syntheticWeights(graph));
  };

  test('the leading layers finer than stride 8; int8 from the first layer at stride 8', () => {
    const spec = specOf(`[net]\nwidth=64\nheight=64\nchannels=3\n`
      + '[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n' // 0: 32x32 (stride 2)
      + '[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n' // 1: 16x16 (stride 4)
      + '[shortcut]\nfrom=-1\nactivation=linear\n' // 2: 16x16
      + '[convolutional]\nfilters=16\nsize=3\nstride=2\npad=1\nactivation=leaky\n' // 3: 8x8 (stride 8)
      + '[convolutional]\nfilters=16\nsize=1\nstride=1\npad=1\nactivation=leaky\n' // 4
      + '[convolutional]\nfilters=12\nsize=1\nstride=1\npad=1\nactivation=linear\n' // 5: head
      + yolo('0,1'));
    assert.deepEqual(defaultKeepFloat(spec), [0, 1, 2]);
  });

  test('a network all finer than stride 8 keeps only its first conv float (something left to quantize)', () => {
    const spec = specOf(`[net]\nwidth=64\nheight=64\nchannels=3\n`
      + '[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n'
      + '[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n'
      + '[convolutional]\nfilters=12\nsize=1\nstride=1\npad=1\nactivation=linear\n'
      + yolo('0,1'));
    assert.deepEqual(defaultKeepFloat(spec), [0]);
  });

  test('float16 weights: normals, subnormals, zero and signs round to nearest', () => {
    for (const x of [0.1, -2.5, 6.1e-5, 3e-6, -3e-6, 1e-9, 0, 65504]) {
      const back = halfValue(halfBitsAny(x));
      const ulp = Math.abs(x) < 6.104e-5 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(Math.abs(x))) - 10);
      assert.ok(Math.abs(back - x) <= ulp / 2, `${x} → ${back}`);
    }
    assert.equal(halfBitsAny(-3e-6) & 0x8000, 0x8000);
    assert.throws(() => halfBitsAny(70000), /does not fit/);
  });

  test('layer lists print as ranges', () => {
    assert.equal(layerRanges([7, 0, 1, 2, 3, 9, 10]), '0-3, 7, 9-10');
    assert.equal(layerRanges([]), '');
  });
});
