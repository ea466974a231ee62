// Pruning policies over channel groups: normal / shortcut / slim, global percent with the
// percent_limit guard, layer_keep, per-layer and explicit thresholds, round_to and exclude.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModelWeights } from '../../core/darknet/types';
import { buildChannelGroups, type ChannelGroups } from '../../core/prune/groups';
import { percentLimit, planPrune, PruneError, type PrunePlan } from '../../core/prune/policy';
import { syntheticWeights } from '../../core/prune/synthetic';
import { fixtureGraph } from '../fixtures/prune/helpers';

function setup(name = 'residual.cfg', seed = 5): { g: ChannelGroups; w: ModelWeights } {
  const graph = fixtureGraph(name);
  return { g: buildChannelGroups(graph), w: syntheticWeights(graph, { seed }) };
}
const gamma = (w: ModelWeights, l: number) => w.layers.get(l)!.scales!;
const keptSet = (p: PrunePlan, l: number) => new Set(p.kept.get(l)!);

describe('prune policies', () => {
  test('normal keeps shortcut-coupled channels whole and thresholds the rest globally', () => {
    const { g, w } = setup();
    const plan = planPrune(g, w, { strategy: 'normal', percent: 0.4 });
    for (const l of [0, 2, 5]) assert.equal(plan.kept.get(l)!.length, 16, `shortcut-coupled layer ${l} untouched`);
    // the ranked values: |γ| of layers 1, 4, 7, 11, 13, 19
    const ranked = [1, 4, 7, 11, 13, 19].flatMap((l) => [...gamma(w, l)].map(Math.abs)).sort((a, b) => a - b);
    const thr = ranked[Math.floor(ranked.length * 0.4)];
    assert.equal(plan.threshold, thr);
    for (const l of [1, 4, 7, 11, 13, 19]) {
      const expect = [...gamma(w, l)].map((v, c) => (Math.abs(v) >= thr ? c : -1)).filter((c) => c >= 0);
      assert.deepEqual([...plan.kept.get(l)!], expect, `layer ${l}`);
    }
    assert.equal(plan.removedChannels, ranked.filter((v) => v < thr).length);
  });

  test('shortcut: coupled groups follow their first member; slim: OR of the members', () => {
    const { g, w } = setup();
    const sc = planPrune(g, w, { strategy: 'shortcut', percent: 0.3 });
    const sl = planPrune(g, w, { strategy: 'slim', percent: 0.3 });
    assert.equal(sc.threshold, sl.threshold);
    const thr = sc.threshold;
    for (let c = 0; c < 16; c++) {
      const first = Math.abs(gamma(w, 0)[c]) >= thr;
      const any = [0, 2, 5].some((l) => Math.abs(gamma(w, l)[c]) >= thr);
      for (const l of [0, 2, 5]) {
        assert.equal(keptSet(sc, l).has(c), first, `shortcut: layer ${l} channel ${c}`);
        assert.equal(keptSet(sl, l).has(c), any, `slim: layer ${l} channel ${c}`);
      }
    }
  });

  test('percent above percent_limit is refused with the number and the layer; layer_keep lifts the guard', () => {
    const { g, w } = setup();
    // make layer 11 the weakest: its largest |γ| is tiny
    const g11 = gamma(w, 11);
    for (let c = 0; c < g11.length; c++) g11[c] = 0.001 * (c + 1);
    const lim = percentLimit(g, w, 'slim');
    assert.equal(lim.layer, 11);
    assert.equal(lim.highestThreshold, Math.fround(0.006));
    // brute force: the largest percent (in steps of the ranked count) that keeps a channel in every layer
    let ok = 0;
    for (let k = 0; k <= lim.count; k++) {
      const p = k / lim.count;
      try { planPrune(g, w, { strategy: 'slim', percent: p }); ok = p; } catch (e) { if (!(e instanceof PruneError)) throw e; }
    }
    assert.ok(Math.abs(ok - lim.percentLimit) < 1e-9, `brute-force limit ${ok} vs ${lim.percentLimit}`);
    assert.throws(() => planPrune(g, w, { strategy: 'slim', percent: lim.percentLimit + 0.01 }), (e: unknown) => {
      assert.ok(e instanceof PruneError);
      assert.equal(e.code, 'percent-limit');
      assert.match(e.message, new RegExp(`percent_limit ${lim.percentLimit.toFixed(4)}`));
      assert.match(e.message, /conv layer 11/);
      assert.match(e.message, /layer_keep/);
      return true;
    });
    const kept = planPrune(g, w, { strategy: 'slim', percent: 0.9, layerKeep: 0.25 });
    for (const l of g.prunableLayers) {
      const n = g.layerChannels[l].length;
      assert.ok(kept.kept.get(l)!.length >= Math.ceil(0.25 * n), `layer ${l} keeps ≥ 25%`);
    }
    // layer 11 keeps its two largest |γ| (channels 4, 5 of 6)
    assert.deepEqual([...kept.kept.get(11)!], [4, 5]);
  });

  test('round_to rounds every pruned layer up to a multiple of N', () => {
    const { g, w } = setup();
    const plan = planPrune(g, w, { strategy: 'slim', percent: 0.5, roundTo: 4 });
    for (const l of g.prunableLayers) {
      const n = g.layerChannels[l].length;
      const k = plan.kept.get(l)!.length;
      assert.ok(k === n || k % 4 === 0, `layer ${l}: ${k} of ${n}`);
    }
    const plain = planPrune(g, w, { strategy: 'slim', percent: 0.5 });
    assert.ok(plan.removedChannels <= plain.removedChannels);
  });

  test('exclude keeps layers (and their coupled groups) whole; per-layer and explicit thresholds', () => {
    const { g, w } = setup();
    const ex = planPrune(g, w, { strategy: 'slim', percent: 0.5, exclude: [2, 13] });
    for (const l of [0, 2, 5, 13]) assert.equal(ex.kept.get(l)!.length, g.layerChannels[l].length, `layer ${l} whole`);
    const pl = planPrune(g, w, { strategy: 'normal', percent: 0.5, perLayer: true });
    for (const l of [1, 4, 7, 11, 13, 19]) {
      const n = g.layerChannels[l].length;
      assert.equal(pl.kept.get(l)!.length, n - Math.floor(n * 0.5), `layer ${l} keeps half`);
    }
    const t = planPrune(g, w, { strategy: 'normal', percent: 0, thresholds: { 7: 0.2 } });
    const expect = [...gamma(w, 7)].map((v, c) => (Math.abs(v) >= 0.2 ? c : -1)).filter((c) => c >= 0);
    assert.deepEqual([...t.kept.get(7)!], expect);
    for (const l of [1, 4, 11, 13, 19]) assert.equal(t.kept.get(l)!.length, g.layerChannels[l].length);
  });

  test('grouped routes keep the producer symmetric; depthwise channels follow their input', () => {
    const r = setup('grouped-route.cfg', 9);
    const plan = planPrune(r.g, r.w, { strategy: 'slim', percent: 0.5 });
    const k1 = keptSet(plan, 1);
    for (let c = 0; c < 8; c++) assert.equal(k1.has(c), k1.has(c + 8), `layer 1 channel ${c} / ${c + 8}`);
    const d = setup('depthwise.cfg', 3);
    const dw = planPrune(d.g, d.w, { strategy: 'normal', percent: 0.5 });
    assert.deepEqual([...dw.kept.get(3)!], [...dw.kept.get(2)!]);
    // the depthwise γ is not ranked: only layer 2's decides
    const thr = dw.threshold;
    const expect = [...gamma(d.w, 2)].map((v, c) => (Math.abs(v) >= thr ? c : -1)).filter((c) => c >= 0);
    assert.deepEqual([...dw.kept.get(3)!], expect);
  });

  test('bad options are refused', () => {
    const { g, w } = setup();
    assert.throws(() => planPrune(g, w, { strategy: 'slim', percent: 1.5 }), /percent must be between 0 and 1/);
    assert.throws(() => planPrune(g, w, { strategy: 'bogus' as 'slim', percent: 0.5 }), /unknown strategy/);
    assert.throws(() => planPrune(g, w, { strategy: 'slim', percent: 0.5, layerKeep: 0 }), /layer_keep/);
    assert.throws(() => planPrune(g, w, { strategy: 'slim', percent: 0.5, roundTo: 0 }), /round_to/);
    assert.throws(() => planPrune(g, w, { strategy: 'slim', percent: 0.5, exclude: [99] }), /layer 99 does not exist/);
    const warn = planPrune(g, w, { strategy: 'slim', percent: 0.1, exclude: [3, 14] });
    assert.ok(warn.warnings.some((m) => /layer 3 is a \[shortcut\]/.test(m)));
    assert.ok(warn.warnings.some((m) => /layer 14 is not prunable/.test(m)));
  });
});
