// Every strategy on real cfgs: yolov3, yolov3-spp, yolov4, yolov4-tiny with synthetic BN weights,
// and the corpus models with trained weights. The pruned files pass `darkslim inspect` with an
// exact weights size, keep every non-conv section byte for byte (anchors, classes, masks), and can
// be pruned again.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { main } from '../../cli/main';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import { readWeights, writeWeights } from '../../core/darknet/weights';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { STRATEGIES } from '../../core/prune/policy';
import { defaultOutputPaths, pruneModel, prunedWeightsBytes, writePruneOutputs, type PruneOptions } from '../../core/prune/prune';
import { syntheticWeights } from '../../core/prune/synthetic';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

/** Text of every section that is not a conv, by position (pruning must not touch them). */
function nonConvSections(g: ModelGraph): string[] {
  return g.doc.sections.filter((s) => s.type !== 'convolutional').map((s) => g.doc.lines.slice(s.headerRange.start.line, s.range.end.line + 1).join('\n'));
}

function checkPruned(before: ModelGraph, after: ModelGraph, weights: ModelWeights, what: string): void {
  assert.deepEqual(after.diagnostics.filter((d) => d.severity === 'error'), [], what);
  assert.deepEqual(nonConvSections(after), nonConvSections(before), `${what}: non-conv sections unchanged`);
  const bytes = writeWeights(after, weights);
  const check = readWeights(bytes, after).check;
  assert.ok(check.ok && !check.partial, `${what}: ${check.message}`);
  assert.equal(bytes.byteLength, weights.header.headerBytes + after.totals.weightFloats * 4);
  assert.ok(after.totals.params < before.totals.params, `${what}: fewer params`);
  assert.ok(after.totals.bflops < before.totals.bflops, `${what}: fewer BFLOPs`);
}

/** Layer pruning (2 blocks) on the graph: no errors, head shapes kept; models without blocks refuse. */
function checkLayerPruning(graph: ModelGraph, weights: ModelWeights, name: string): void {
  const heads = (g: ModelGraph) => g.layers.filter((l) => l.type === 'yolo').map((l) => g.layers[l.inputs[0]].output.join('x'));
  if (name === 'yolov4-tiny.cfg') {
    assert.throws(() => pruneModel(graph, weights, { strategy: 'slim', percent: 0, shortcuts: 2 }, { dryRun: true, modelName: name }), /has no residual blocks/);
    return;
  }
  const run = pruneModel(graph, weights, { strategy: 'slim', percent: 0, shortcuts: 2 }, { dryRun: true });
  const g = run.result.graph;
  assert.deepEqual(g.diagnostics.filter((d) => d.severity === 'error'), [], `${name}: layer pruning`);
  assert.deepEqual(heads(g), heads(graph), `${name}: head shapes`);
  assert.equal(g.layers.length, graph.layers.length - run.blocks.reduce((n, b) => n + b.layers.length, 0));
  for (const l of graph.layers) {
    const ni = run.indexMap[l.index];
    if (ni < 0) continue;
    assert.deepEqual(g.layers[ni].output, l.output, `${name}: layer ${l.index} → ${ni} keeps its shape`);
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'darkslim-prune-models-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function writeAndInspect(cfgPath: string, weightsPath: string, graph: ModelGraph, weights: ModelWeights, options: PruneOptions, dir: string) {
  const run = pruneModel(graph, weights, options, { cfgPath, weightsPath });
  const paths = defaultOutputPaths(cfgPath, options, dir);
  writePruneOutputs(paths, { cfg: run.result.text, weights: prunedWeightsBytes(run), report: run.report }, [cfgPath, weightsPath]);
  const r = await runCli(['inspect', paths.cfg, '--weights', paths.weights, '--json']);
  assert.equal(r.code, 0, r.err + r.out.slice(0, 2000));
  const report = JSON.parse(r.out);
  assert.equal(report.weights.ok, true);
  assert.equal(report.weights.bytes, report.weights.expectedBytes);
  return { run, paths };
}

const SYNTHETIC = ['yolov3.cfg', 'yolov3-spp.cfg', 'yolov4.cfg', 'yolov4-tiny.cfg'];

describe('prune real models', { skip: NO_CORPUS }, () => {
  for (const name of SYNTHETIC) {
    test(`${name} (synthetic BN weights): every strategy`, async () => {
      const cfgPath = corpusPath('cfg/alexeyab', name);
      const graph = loadCfg(cfgPath);
      const weights = syntheticWeights(graph, { seed: 21 });
      for (const strategy of STRATEGIES) {
        const run = pruneModel(graph, weights, { strategy, percent: 0.5, roundTo: strategy === 'slim' ? 8 : undefined });
        checkPruned(graph, run.result.graph, run.result.weights!, `${name} ${strategy}`);
        if (strategy === 'slim') {
          for (const r of run.report.layers) if (r.type === 'convolutional' && r.after !== r.before) assert.equal(r.after % 8, 0, `${name} layer ${r.index} rounded to 8`);
        }
      }
      checkLayerPruning(graph, weights, name);
      if (name === 'yolov3.cfg' || name === 'yolov4-tiny.cfg') {
        // through the files: write, inspect, prune the pruned model again
        const dir = mkdtempSync(join(tmp, 'm-'));
        const src = join(dir, name);
        const srcWeights = join(dir, name.replace('.cfg', '.weights'));
        writePruneOutputs({ cfg: src, weights: srcWeights, report: join(dir, 'unused.json') }, { cfg: graph.doc.text, weights: writeWeights(graph, weights), report: '{}' }, []);
        const first = await writeAndInspect(src, srcWeights, graph, weights, { strategy: 'shortcut', percent: 0.4 }, dir);
        const g2 = loadCfg(first.paths.cfg);
        const w2 = loadWeightsFile(first.paths.weights, g2).weights;
        const second = await writeAndInspect(first.paths.cfg, first.paths.weights, g2, w2, { strategy: 'slim', percent: 0.3 }, dir);
        assert.match(basename(second.paths.cfg), /-pruned-0\.4-pruned-0\.3\.cfg$/);
        assert.ok(second.run.result.graph.totals.params < g2.totals.params);
      }
    });
  }

  for (const m of WEIGHTS_MODELS) {
    test(`${basename(m.cfg)} (trained weights): every strategy, then inspect and prune again`, async () => {
      const graph = loadCfg(m.cfg);
      const weights = loadWeightsFile(m.weights, graph).weights;
      for (const strategy of STRATEGIES) {
        const run = pruneModel(graph, weights, { strategy, percent: 0.5, layerKeep: 0.1 });
        checkPruned(graph, run.result.graph, run.result.weights!, `${basename(m.cfg)} ${strategy}`);
      }
      checkLayerPruning(graph, weights, basename(m.cfg));
      const dir = mkdtempSync(join(tmp, 'w-'));
      const first = await writeAndInspect(m.cfg, m.weights, graph, weights, { strategy: 'slim', percent: 0.4, layerKeep: 0.1 }, dir);
      const g2 = loadCfg(first.paths.cfg);
      const w2 = loadWeightsFile(first.paths.weights, g2).weights;
      await writeAndInspect(first.paths.cfg, first.paths.weights, g2, w2, { strategy: 'normal', percent: 0.2 }, dir);
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0, 'no temporary files left');
    });
  }
});
