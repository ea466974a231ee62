// Surgery and β compensation, checked with the reference forward pass (core/onnx/reference.ts):
// the pruned model against the original with the removed channels' γ set to 0 (the masked original).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readWeights, writeWeights } from '../../core/darknet/weights';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { buildChannelGroups } from '../../core/prune/groups';
import { planPrune, type PrunePolicy } from '../../core/prune/policy';
import { applyPlan, maskedWeights } from '../../core/prune/surgery';
import { syntheticWeights } from '../../core/prune/synthetic';
import { fixtureGraph, fixtureText, forward, interiorBorderErr, randomInput, relErr } from '../fixtures/prune/helpers';

interface Case { graph: ModelGraph; weights: ModelWeights; input: Float32Array }

function setup(name: string, replace: Record<string, string> = {}, seed = 11): Case {
  const graph = fixtureGraph(name, replace);
  return { graph, weights: syntheticWeights(graph, { seed }), input: randomInput(graph, seed) };
}

/** Outputs of the masked original and of the pruned model (from the masked weights), per layer. */
function run(c: Case, policy: PrunePolicy, opts: { zeroBeta?: boolean; compensate?: boolean } = {}) {
  const groups = buildChannelGroups(c.graph);
  const plan = planPrune(groups, c.weights, policy);
  const masked = maskedWeights(c.graph, c.weights, plan, { zeroBeta: opts.zeroBeta });
  const pruned = applyPlan(c.graph, masked, plan, { compensate: opts.compensate ?? true });
  return {
    plan, pruned,
    ref: forward(c.graph, masked, c.input),
    out: forward(pruned.graph, pruned.weights!, c.input),
  };
}

const half = (c: Case, layer: number) => {
  const g = [...c.weights.layers.get(layer)!.scales!].map(Math.abs).sort((a, b) => a - b);
  return g[Math.floor(g.length / 2)];
};

describe('prune surgery and β compensation', () => {
  for (const act of ['leaky', 'linear', 'relu', 'logistic', 'mish', 'swish']) {
    test(`1×1 consumer: exact everywhere with trained β (producer activation ${act})`, () => {
      const c = setup('consumer1x1.cfg', { ACT: act });
      const policy: PrunePolicy = { strategy: 'slim', percent: 0, thresholds: { 0: half(c, 0) }, exclude: [1] };
      const r = run(c, policy);
      assert.equal(r.plan.kept.get(0)!.length, 8);
      assert.equal(r.pruned.graph.layers[0].output[2], 8);
      for (const l of [1, 2]) assert.ok(relErr(r.ref[l], r.out[l]) < 1e-5, `layer ${l}: ${relErr(r.ref[l], r.out[l])}`);
      const none = run(c, policy, { compensate: false });
      assert.ok(relErr(none.ref[1], none.out[1]) > 1e-3, `without compensation layer 1 differs (${relErr(none.ref[1], none.out[1])})`);
    });
  }

  test('3×3 consumer: exact in the interior, different at the zero-padded border', () => {
    const c = setup('consumer3x3.cfg', { ACT: 'leaky' });
    const r = run(c, { strategy: 'slim', percent: 0, thresholds: { 0: half(c, 0) }, exclude: [1] });
    const [w, h, ch] = c.graph.layers[1].output;
    const e = interiorBorderErr(r.ref[1], r.out[1], ch, h, w, 1);
    assert.ok(e.interior < 1e-5, `interior ${e.interior}`);
    assert.ok(e.border > 1e-3, `border ${e.border}`);
    const none = run(c, { strategy: 'slim', percent: 0, thresholds: { 0: half(c, 0) }, exclude: [1] }, { compensate: false });
    const en = interiorBorderErr(none.ref[1], none.out[1], ch, h, w, 1);
    assert.ok(en.interior > 1e-3 && en.border > e.border * 0 && relErr(none.ref[1], none.out[1]) > relErr(r.ref[1], r.out[1]));
  });

  test('γ = β = 0: exact everywhere for act(0) = 0; logistic(0) = 0.5 is folded like any constant', () => {
    for (const act of ['leaky', 'mish', 'swish']) {
      const c = setup('consumer3x3.cfg', { ACT: act });
      const r = run(c, { strategy: 'slim', percent: 0, thresholds: { 0: half(c, 0) }, exclude: [1] }, { zeroBeta: true });
      assert.ok(relErr(r.ref[2], r.out[2]) < 1e-5, `${act}: ${relErr(r.ref[2], r.out[2])}`);
    }
    const c = setup('consumer3x3.cfg', { ACT: 'logistic' });
    const r = run(c, { strategy: 'slim', percent: 0, thresholds: { 0: half(c, 0) }, exclude: [1] }, { zeroBeta: true });
    const [w, h, ch] = c.graph.layers[1].output;
    const e = interiorBorderErr(r.ref[1], r.out[1], ch, h, w, 1);
    assert.ok(e.interior < 1e-5 && e.border > 1e-4, `logistic: interior ${e.interior}, border ${e.border}`);
  });

  test('depthwise chains and SE blocks: pruned model equals the masked original (trained β)', () => {
    const c = setup('depthwise.cfg', {}, 4);
    for (const strategy of ['normal', 'shortcut', 'slim'] as const) {
      const r = run(c, { strategy, percent: 0.4 });
      assert.ok(r.plan.removedChannels > 10);
      assert.equal(r.pruned.graph.layers[3].conv!.groups, r.plan.kept.get(3)!.length, 'depthwise groups follow its filters');
      // every consumer of a removed channel is 1×1 or a depthwise conv whose channel is removed too
      for (const l of [14]) assert.ok(relErr(r.ref[l], r.out[l]) < 1e-5, `${strategy}: layer ${l}: ${relErr(r.ref[l], r.out[l])}`);
      const none = run(c, { strategy, percent: 0.4 }, { compensate: false });
      assert.ok(relErr(none.ref[14], none.out[14]) > 1e-3);
    }
  });

  test('residual fixture: exact with γ = β = 0 for every strategy; compensation closer with trained β', () => {
    const c = setup('residual.cfg', {}, 6);
    for (const strategy of ['normal', 'shortcut', 'slim'] as const) {
      const z = run(c, { strategy, percent: 0.5 }, { zeroBeta: true });
      for (const l of [14, 20]) assert.ok(relErr(z.ref[l], z.out[l]) < 1e-5, `${strategy} layer ${l}: ${relErr(z.ref[l], z.out[l])}`);
      const comp = run(c, { strategy, percent: 0.5 });
      const none = run(c, { strategy, percent: 0.5 }, { compensate: false });
      for (const l of [14, 20]) {
        assert.ok(relErr(comp.ref[l], comp.out[l]) < relErr(none.ref[l], none.out[l]), `${strategy} layer ${l}`);
      }
    }
  });

  test('constants pass through upsample (times its scale), maxpool, routes: the interior is exact', () => {
    const c = setup('residual.cfg', { '[upsample]\nstride=2': '[upsample]\nstride=2\nscale=0.5' }, 3);
    const r = run(c, { strategy: 'slim', percent: 0.5 });
    // layer 20 reads 19 (3×3) ← route 18 ← upsample 17 ← route 12 ← maxpool 8 ← conv 7 (3×3) ← pruned group:
    // the zero-padded borders spread inwards by a few cells at each step
    const e = interiorBorderErr(r.ref[20], r.out[20], 18, 32, 32, 8);
    assert.ok(e.interior < 1e-5, `interior ${e.interior}`);
    assert.ok(e.border > 1e-3, `border ${e.border}`);
  });

  test('the pruned cfg keeps comments, order and untouched keys; the weights fit it exactly; inputs are not modified', () => {
    const c = setup('residual.cfg', {}, 6);
    const before = writeWeights(c.graph, c.weights).slice();
    const plan = planPrune(buildChannelGroups(c.graph), c.weights, { strategy: 'slim', percent: 0.5 });
    const r = applyPlan(c.graph, c.weights, plan);
    assert.deepEqual(writeWeights(c.graph, c.weights), before, 'input weights unchanged');
    const a = fixtureText('residual.cfg').split('\n');
    const b = r.text.split('\n');
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) assert.match(a[i], /^filters=/, `only filters= lines change (line ${i + 1}: ${a[i]} → ${b[i]})`);
    }
    assert.ok(b.includes('layers=9, -1   # inline comment kept'));
    const bytes = writeWeights(r.graph, r.weights!);
    const check = readWeights(bytes, r.graph).check;
    assert.ok(check.ok && !check.partial, check.message);
    assert.equal(bytes.byteLength, 20 + r.graph.totals.weightFloats * 4);
    assert.equal(r.graph.diagnostics.filter((d) => d.severity === 'error').length, 0);
  });
});
