// The redundancy view's slider preview (core/pipeline/preview.ts, also bundled into the webview)
// must say exactly what a real prune would do: the same kept channels per layer, params, BFLOPs
// and percent_limit as planPrune / pruneModel, for every strategy, with layer_keep and round_to.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { preparePreview, previewPrune, pruneYaml, sortedChannelOrder, histogram, PREVIEW_STRATEGIES, type PreviewModel, type PreviewSettings } from '../../core/pipeline/preview';
import { buildRedundancy } from '../../core/pipeline/redundancy';
import { PruneError } from '../../core/prune/policy';
import { pruneModel } from '../../core/prune/prune';
import { syntheticWeights } from '../../core/prune/synthetic';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';

interface Model { name: string; graph: ModelGraph; weights: ModelWeights }

function models(): Model[] {
  const out: Model[] = WEIGHTS_MODELS.map((m) => {
    const graph = loadCfg(m.cfg);
    return { name: m.cfg.split('/').pop()!, graph, weights: loadWeightsFile(m.weights, graph).weights };
  });
  for (const name of ['yolov4.cfg', 'yolov3-tiny.cfg', 'yolov4-tiny.cfg', 'yolov4-csp.cfg', 'enet-coco.cfg']) {
    const graph = loadCfg(corpusPath('cfg', 'alexeyab', name));
    out.push({ name, graph, weights: syntheticWeights(graph, { seed: 7 }) });
  }
  return out;
}

function check(m: Model, model: PreviewModel, settings: PreviewSettings): void {
  const data = model.data;
  const p = previewPrune(model, settings);
  const what = `${m.name} ${JSON.stringify(settings)}`;
  assert.equal(p.percentLimit, data.limits[settings.strategy].percentLimit, `${what}: percent_limit`);
  let run;
  try {
    run = pruneModel(m.graph, m.weights, { ...settings }, { dryRun: true });
  } catch (e) {
    if (!(e instanceof PruneError)) throw e;
    assert.ok(p.refused || p.emptied.length > 0, `${what}: core refused (${e.message}) but the preview did not`);
    return;
  }
  assert.equal(p.refused, false, `${what}: preview refused but the core pruned`);
  for (const [layer, kept] of run.plan.kept) assert.equal(p.kept[layer], kept.length, `${what}: kept channels of layer ${layer}`);
  assert.equal(p.params, run.report.after.params, `${what}: params after`);
  assert.ok(Math.abs(p.bflops - run.report.after.bflops) <= 1e-5 * Math.max(1, run.report.after.bflops), `${what}: BFLOPs ${p.bflops} vs ${run.report.after.bflops}`);
  assert.equal(p.removedChannels, run.report.removedChannels, `${what}: removed channels`);
}

describe('pruning preview = planPrune + pruneModel', { skip: NO_CORPUS }, () => {
  const all = NO_CORPUS ? [] : models();
  for (const m of all) {
    test(m.name, () => {
      const data = buildRedundancy(m.graph, m.weights, { cfg: m.name, weights: 'w' });
      const model = preparePreview(data);
      // nothing pruned at 0: the totals are the graph's
      const zero = previewPrune(model, { strategy: 'slim', percent: 0 });
      assert.equal(zero.params, m.graph.totals.params);
      assert.ok(Math.abs(zero.bflops - m.graph.totals.bflops) < 1e-6 * m.graph.totals.bflops + 1e-9);
      for (const strategy of PREVIEW_STRATEGIES) {
        const limit = data.limits[strategy].percentLimit;
        for (const percent of [0.1, limit * 0.5, limit, Math.min(1, limit + 0.05)]) check(m, model, { strategy, percent });
        check(m, model, { strategy, percent: 0.9, layerKeep: 0.1 });
        check(m, model, { strategy, percent: Math.min(limit, 0.5), roundTo: 8 });
      }
    });
  }
});

describe('preview helpers', () => {
  test('channel order is by |γ| descending, stable', () => {
    assert.deepEqual(Array.from(sortedChannelOrder([0.1, 0.5, 0.1, 0.9])), [3, 1, 0, 2]);
  });
  test('histogram clamps to the range', () => {
    const h = histogram([0, 0.5, 1, 2, -1], 2, 0, 1);
    assert.deepEqual(h.counts, [2, 3]);
    assert.deepEqual(h.edges, [0, 0.5, 1]);
  });
  test('pruneYaml writes a config the core reads', () => {
    const y = pruneYaml({ strategy: 'slim', percent: 0.51234, layerKeep: 0.1, roundTo: 8 }, { model: 'a b.cfg', weights: 'm.weights' });
    assert.match(y, /^model: "a b.cfg"$/m);
    assert.match(y, /^weights: m.weights$/m);
    assert.match(y, /^percent: 0.5123$/m);
    assert.match(y, /^layer_keep: 0.1$/m);
    assert.match(y, /^round_to: 8$/m);
  });
});
