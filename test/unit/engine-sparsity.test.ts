// Sparsity schedules (core/engine/sparsity.ts): which channels get λ and when, read back from the
// gradient the regularizer adds to zero gradients of the BN scales.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { analyzeCfg } from '../../core/darknet/graph';
import { selectBackend } from '../../core/engine/backend';
import { DarknetModel } from '../../core/engine/model';
import { gammaHistogram, SparsityRegularizer, type SparsityOptions } from '../../core/engine/sparsity';
import { tinyDetectorCfg } from '../helpers/tiny-cfg';

// two prunable BN convs (8 + 8 channels) and the head conv (not prunable)
const CFG = tinyDetectorCfg({
  width: 32, height: 32, layers: [{ filters: 8, stride: 2 }, { filters: 8 }], classes: 1, anchors: [[4, 4], [8, 8], [12, 12]],
});

/** |λ_c| per prunable channel as the regularizer applies it, layer by layer. */
function lambdas(model: DarknetModel, reg: SparsityRegularizer): Map<number, number[]> {
  const grads = new Map<tf.Variable, tf.Tensor>();
  for (const i of reg.masks.keys()) grads.set(model.convs.get(i)!.gamma!, tf.zeros([8]));
  reg.apply(grads);
  const out = new Map<number, number[]>();
  for (const i of reg.masks.keys()) {
    const g = grads.get(model.convs.get(i)!.gamma!)!;
    out.set(i, Array.from(g.dataSync(), (x) => Math.round(Math.abs(x) * 1e6) / 1e6));
    g.dispose();
  }
  return out;
}

function setup(opts: SparsityOptions) {
  const graph = analyzeCfg(CFG);
  const model = DarknetModel.create(graph);
  // γ: layer 0 large (1..8), layer 1 small (0.1..0.8): the 8 largest |γ| are all in layer 0
  model.convs.get(0)!.gamma!.assign(tf.tensor1d([1, 2, 3, 4, 5, 6, 7, 8]));
  model.convs.get(1)!.gamma!.assign(tf.tensor1d([0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]));
  const masks = new Map([[0, new Float32Array(8).fill(1)], [1, new Float32Array(8).fill(1)]]);
  return { model, reg: new SparsityRegularizer(model, masks, opts) };
}

test('sparsity schedules: constant, decay and topk, with the switch point', async () => {
  await selectBackend('cpu');
  const lam = 0.5;
  {
    // topk by default: every channel gets λ in the first half, then only the channels below the top-k
    const { model, reg } = setup({ lambda: lam, schedule: 'topk', topk: 0.5 });
    assert.deepEqual([...lambdas(model, reg).values()].flat(), new Array(16).fill(lam));
    reg.update(0.49);
    assert.deepEqual([...lambdas(model, reg).values()].flat(), new Array(16).fill(lam));
    reg.update(0.5);
    const l = lambdas(model, reg);
    assert.deepEqual(l.get(0), new Array(8).fill(lam * 0.01), 'the top half (layer 0) is protected');
    assert.deepEqual(l.get(1), new Array(8).fill(lam), 'the rest keeps λ');
    model.dispose();
  }
  {
    // switchAt 0: topk's local sparsity from the first iteration (ranked when the regularizer is built)
    const { model, reg } = setup({ lambda: lam, schedule: 'topk', topk: 0.25, switchAt: 0 });
    const l = lambdas(model, reg);
    assert.deepEqual(l.get(0), [lam, lam, lam, lam, lam * 0.01, lam * 0.01, lam * 0.01, lam * 0.01]);
    assert.deepEqual(l.get(1), new Array(8).fill(lam));
    // the sign follows γ (layer 1 channel 1 is negative)
    const grads = new Map<tf.Variable, tf.Tensor>([[model.convs.get(1)!.gamma!, tf.zeros([8])]]);
    reg.apply(grads);
    assert.ok(grads.get(model.convs.get(1)!.gamma!)!.dataSync()[1] < 0);
    model.dispose();
  }
  {
    // layerKeep: each layer's own top share is protected too (layer 1 has none of the global top 25%)
    const { model, reg } = setup({ lambda: lam, schedule: 'topk', topk: 0.25, switchAt: 0, layerKeep: 0.2 });
    const l = lambdas(model, reg);
    assert.deepEqual(l.get(0), [lam, lam, lam, lam, lam * 0.01, lam * 0.01, lam * 0.01, lam * 0.01]);
    assert.deepEqual(l.get(1), [lam, lam, lam, lam, lam, lam, lam * 0.01, lam * 0.01], 'ceil(0.2·8) = 2 largest of layer 1');
    model.dispose();
  }
  {
    // decay with an earlier switch; constant never changes
    const { model, reg } = setup({ lambda: lam, schedule: 'decay', switchAt: 0.25 });
    reg.update(0.2);
    assert.equal(reg.lambdaNow, lam);
    reg.update(0.25);
    assert.ok(Math.abs(reg.lambdaNow - lam * 0.01) < 1e-12);
    assert.deepEqual([...lambdas(model, reg).values()].flat(), new Array(16).fill(lam * 0.01));
    const c = new SparsityRegularizer(model, reg.masks, { lambda: lam, schedule: 'constant', switchAt: 0 });
    c.update(0.9);
    assert.deepEqual([...lambdas(model, c).values()].flat(), new Array(16).fill(lam));
    // the histogram counts |γ| < 0.01 over the masked channels
    model.convs.get(1)!.gamma!.assign(tf.tensor1d([0.001, -0.005, 0.009, 0.02, 0.5, 0.6, 0.7, 0.8]));
    const h = gammaHistogram(model, reg.masks);
    assert.equal(h.count, 16);
    assert.equal(h.sparsity, 3 / 16);
    model.dispose();
  }
});
