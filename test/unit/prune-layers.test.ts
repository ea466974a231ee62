// Layer pruning: residual blocks found from the graph, ranked by mean |γ|, removed with every
// layers=/from= reference after them renumbered.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import { SectionOptions } from '../../core/darknet/options';
import { readWeights, writeWeights } from '../../core/darknet/weights';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { findResidualBlocks, removeBlocks, selectBlocks } from '../../core/prune/layers';
import { PruneError } from '../../core/prune/policy';
import { pruneModel } from '../../core/prune/prune';
import { syntheticWeights } from '../../core/prune/synthetic';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';
import { fixtureGraph } from '../fixtures/prune/helpers';

const refs = (g: ModelGraph, i: number, key: string) => new SectionOptions(g.layers[i].section).ints(key)!.join(',');
const errors = (g: ModelGraph) => g.diagnostics.filter((d) => d.severity === 'error');

function checkWeights(g: ModelGraph, w: ModelWeights): void {
  const bytes = writeWeights(g, w);
  const check = readWeights(bytes, g).check;
  assert.ok(check.ok && !check.partial, check.message);
  assert.equal(bytes.byteLength, w.header.headerBytes + g.totals.weightFloats * 4);
}

/** Head input shapes (the convs before [yolo]) must not change. */
function headShapes(g: ModelGraph): string[] {
  return g.layers.filter((l) => l.type === 'yolo').map((l) => g.layers[l.inputs[0]].output.join('x'));
}

describe('layer pruning', () => {
  test('finds the residual blocks of a hand-written model and renumbers references', () => {
    const graph = fixtureGraph('residual.cfg');
    const w = syntheticWeights(graph, { seed: 2 });
    const search = findResidualBlocks(graph, w);
    assert.deepEqual(search.blocks.map((b) => [b.from, b.layers]), [[0, [1, 2, 3]], [3, [4, 5, 6]]]);
    // make block 4–6 the weakest
    for (const l of [4, 5]) w.layers.get(l)!.scales!.fill(0.001);
    const chosen = selectBlocks(search, 1);
    assert.deepEqual(chosen.map((b) => b.shortcut), [6]);
    const r = removeBlocks(graph, w, chosen);
    assert.equal(r.graph.layers.length, graph.layers.length - 3);
    assert.deepEqual(errors(r.graph), []);
    assert.deepEqual([...r.indexMap].slice(0, 8), [0, 1, 2, 3, -1, -1, -1, 4]);
    // route layers=6 (absolute) pointed at the removed shortcut: it now reads the block's input (3)
    assert.equal(refs(r.graph, 7, 'layers'), '3');
    // layers=9, -1 → 6, -1 (absolute renumbered, relative unchanged, comment kept)
    assert.equal(refs(r.graph, 9, 'layers'), '6,-1');
    assert.ok(r.text.includes('layers=6, -1   # inline comment kept'));
    assert.equal(refs(r.graph, 13, 'layers'), '-4');
    assert.equal(refs(r.graph, 15, 'layers'), '-1,3');
    assert.deepEqual(headShapes(r.graph), headShapes(graph));
    checkWeights(r.graph, r.weights!);
    // both blocks: block 2 reads block 1's shortcut, which is removed too (chained redirection)
    const both = removeBlocks(graph, w, selectBlocks(search, 2));
    assert.equal(both.graph.layers.length, graph.layers.length - 6);
    assert.equal(refs(both.graph, 4, 'layers'), '0');
    assert.deepEqual(errors(both.graph), []);
    assert.deepEqual(headShapes(both.graph), headShapes(graph));
    checkWeights(both.graph, both.weights!);
    assert.throws(() => selectBlocks(search, 3), /asks for more residual blocks than this model has: it has 2/);
  });

  test('models without residual blocks say so', () => {
    const graph = fixtureGraph('grouped-route.cfg');
    const w = syntheticWeights(graph);
    assert.throws(() => pruneModel(graph, w, { strategy: 'slim', percent: 0, shortcuts: 1 }, { modelName: 'grouped-route.cfg' }),
      (e: unknown) => e instanceof PruneError && e.code === 'no-blocks' && /grouped-route\.cfg has no residual blocks/.test(e.message));
  });
});

describe('layer pruning: real models', { skip: NO_CORPUS }, () => {
  test('yolov3 (synthetic weights): 12 blocks removed, references renumbered, shapes kept', () => {
    const graph = loadCfg(corpusPath('cfg/alexeyab/yolov3.cfg'));
    const w = syntheticWeights(graph, { seed: 8 });
    const search = findResidualBlocks(graph, w);
    assert.equal(search.blocks.length, 23);
    const run = pruneModel(graph, w, { strategy: 'slim', percent: 0, shortcuts: 12 });
    const g = run.result.graph;
    assert.equal(g.layers.length, 107 - 36);
    assert.deepEqual(errors(g), []);
    assert.deepEqual(headShapes(g), headShapes(graph));
    // the routes into the backbone follow the renumbering: layers=-1, 61 and -1, 36 point at the
    // same (kept or redirected) layers as before
    for (const l of graph.layers) {
      if (l.type !== 'route') continue;
      const ni = run.indexMap[l.index];
      const newInputs = g.layers[ni].inputs;
      const expect = l.inputs.map((i) => {
        let a = i;
        while (run.indexMap[a] < 0) a = run.blocks.find((b) => b.shortcut === a)!.from;
        return run.indexMap[a];
      });
      assert.deepEqual(newInputs, expect, `route ${l.index}`);
    }
    checkWeights(g, run.result.weights!);
    assert.equal(run.report.removedBlocks.length, 12);
    assert.equal(run.report.layers.filter((r) => r.newIndex === null).length, 36);
  });

  test('yolo-fastest (trained): blocks with dropout removed, combined with channel pruning', () => {
    const m = WEIGHTS_MODELS[0];
    const graph = loadCfg(m.cfg);
    const w = loadWeightsFile(m.weights, graph).weights;
    const run = pruneModel(graph, w, { strategy: 'shortcut', percent: 0.3, layerKeep: 0.1, shortcuts: 4 });
    assert.equal(run.blocks.length, 4);
    for (const b of run.blocks) assert.equal(graph.layers[b.shortcut - 1].type, 'dropout');
    const g = run.result.graph;
    assert.deepEqual(errors(g), []);
    assert.deepEqual(headShapes(g), headShapes(graph));
    assert.equal(g.layers.length, graph.layers.length - 20);
    checkWeights(g, run.result.weights!);
    const means = findResidualBlocks(graph, w).blocks.map((b) => b.meanGamma).sort((a, b) => a - b);
    assert.deepEqual(run.blocks.map((b) => b.meanGamma).sort((a, b) => a - b), means.slice(0, 4));
  });

  test('yolov4-tiny has no residual blocks: layer pruning is refused with that reason', () => {
    const graph = loadCfg(corpusPath('cfg/alexeyab/yolov4-tiny.cfg'));
    const w = syntheticWeights(graph);
    assert.throws(() => pruneModel(graph, w, { strategy: 'slim', percent: 0, shortcuts: 1 }, { cfgPath: 'yolov4-tiny.cfg' }),
      /yolov4-tiny\.cfg has no residual blocks \(a \[shortcut\] and the convs it wraps\), so layer pruning \(shortcuts\) does not apply to it/);
  });
});
