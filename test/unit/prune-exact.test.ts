// Exactness on real models and real images, through the ONNX export and onnxruntime:
//  1. γ = β = 0 for the channels the plan removes (the masked original) vs the pruned model:
//     outputs agree within 1e-4 (relative to each output's largest value).
//  2. β left as trained (only γ = 0): β compensation brings the pruned model to the masked
//     original; without compensation it is far off. Both errors are reported (t.diagnostic).
// The compared outputs are every decoded [yolo] output and the raw conv output feeding it.
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { before, describe, test } from 'node:test';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { loadImage, prepareInput } from '../../core/data/image';
import { pruneModel, type PruneOptions } from '../../core/prune/prune';
import { applyPlan, maskedWeights } from '../../core/prune/surgery';
import { syntheticWeights } from '../../core/prune/synthetic';
import { compareModels } from '../../core/prune/verify';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';

const IMAGES = ['dog.jpg', 'person.jpg'];

async function inputs(graph: ModelGraph, names = IMAGES): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const n of names) out.push(prepareInput(await loadImage(corpusPath('images', n)), graph.net.width, graph.net.height, graph.net.letterBox).tensor);
  return out;
}

interface Measured { zeroBeta: number; compensated: number; uncompensated: number; removed: number }

async function measure(graph: ModelGraph, weights: ModelWeights, options: PruneOptions, images: Float32Array[]): Promise<Measured> {
  const { plan } = pruneModel(graph, weights, options, { dryRun: true });
  const m0 = maskedWeights(graph, weights, plan, { zeroBeta: true });
  const p0 = applyPlan(graph, m0, plan);
  const zero = await compareModels({ graph, weights: m0 }, { graph: p0.graph, weights: p0.weights! }, images);
  const m1 = maskedWeights(graph, weights, plan);
  const p1 = applyPlan(graph, m1, plan);
  const p2 = applyPlan(graph, m1, plan, { compensate: false });
  const comp = await compareModels({ graph, weights: m1 }, { graph: p1.graph, weights: p1.weights! }, images);
  const none = await compareModels({ graph, weights: m1 }, { graph: p2.graph, weights: p2.weights! }, images);
  return { zeroBeta: zero.maxRel, compensated: comp.maxRel, uncompensated: none.maxRel, removed: plan.removedChannels };
}

const fmt = (m: Measured) => `removed ${m.removed} channels; γ=β=0: ${m.zeroBeta.toExponential(2)}; trained β: compensated ${m.compensated.toExponential(2)}, uncompensated ${m.uncompensated.toExponential(2)}`;

describe('prune exactness (onnxruntime, real images)', { skip: NO_CORPUS }, () => {
  const plans: { model: number; strategy: PruneOptions['strategy'] }[] = [
    { model: 3, strategy: 'normal' }, { model: 3, strategy: 'shortcut' }, { model: 3, strategy: 'slim' }, // yoloface: all strategies
    { model: 0, strategy: 'slim' }, { model: 1, strategy: 'normal' }, { model: 2, strategy: 'shortcut' },
  ];
  for (const p of plans) {
    const m = WEIGHTS_MODELS[p.model];
    test(`${basename(m.cfg)}, ${p.strategy}`, async (t) => {
      const graph = loadCfg(m.cfg);
      const weights = loadWeightsFile(m.weights, graph).weights;
      const r = await measure(graph, weights, { strategy: p.strategy, percent: 0.5, layerKeep: 0.1 }, await inputs(graph));
      t.diagnostic(fmt(r));
      assert.ok(r.removed > 100);
      assert.ok(r.zeroBeta < 1e-4, `masked (γ=β=0) vs pruned: ${r.zeroBeta}`);
      assert.ok(r.compensated < r.uncompensated, 'compensation brings the pruned model closer');
      // every k×k (k > 1) conv that reads a removed channel in these models is a depthwise conv whose
      // channel is removed too, so compensation is exact here, borders included
      assert.ok(r.compensated < 1e-4, `compensated: ${r.compensated}`);
      assert.ok(r.uncompensated > 1e-2, `uncompensated: ${r.uncompensated}`);
    });
  }

  test('yolov4-tiny (synthetic weights, 160×160, grouped routes): exact with γ=β=0; compensation closer with trained β', async (t) => {
    const graph = loadCfg(corpusPath('cfg/alexeyab/yolov4-tiny.cfg'), { width: 160, height: 160 });
    const weights = syntheticWeights(graph, { seed: 7 });
    const r = await measure(graph, weights, { strategy: 'slim', percent: 0.3 }, await inputs(graph, ['dog.jpg']));
    t.diagnostic(fmt(r));
    assert.ok(r.zeroBeta < 1e-4, `masked (γ=β=0) vs pruned: ${r.zeroBeta}`);
    // dense 3×3 consumers: exact in the interior only, the zero-padded borders differ
    assert.ok(r.compensated < r.uncompensated, `compensated ${r.compensated} vs uncompensated ${r.uncompensated}`);
  });
});
