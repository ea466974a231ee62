// Issue "Channel and layer pruning": plan + surgery + writing the pruned cfg and weights for a
// yolov3-sized model (synthetic 248 MB weights), against reading plus writing the same bytes
// unchanged, measured in the same run (interleaved, so both see the same page cache).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeCfg } from '../core/darknet/graph';
import { writeFileAtomic } from '../core/darknet/files';
import { readWeights, writeWeights } from '../core/darknet/weights';
import { buildChannelGroups } from '../core/prune/groups';
import { planPrune, type PruneStrategy } from '../core/prune/policy';
import { defaultOutputPaths, pruneModel, writePruneOutputs } from '../core/prune/prune';
import { applyPlan } from '../core/prune/surgery';
import { syntheticWeightsBytes } from '../core/prune/synthetic';
import { corpusPath, HAS_CORPUS, WEIGHTS_MODELS } from '../test/helpers/corpus';
import { repoRoot } from '../test/helpers/root';
import { median, printTable, writeResult, type Row } from './util';

if (!HAS_CORPUS) {
  console.log('corpus not found (../shared/corpus): nothing to benchmark');
  process.exit(0);
}

const RUNS = Number(process.env.RUNS ?? 5);
const tmp = join(repoRoot(), 'bench', '.tmp');
mkdirSync(tmp, { recursive: true });
const cfgPath = corpusPath('cfg/alexeyab/yolov3.cfg');
const cfgText = readFileSync(cfgPath, 'utf8');
const graph = analyzeCfg(cfgText);
const weightsPath = join(tmp, 'yolov3-prune-synthetic.weights');
const expected = 248007048;
if (!existsSync(weightsPath) || statSync(weightsPath).size !== expected) {
  console.log('generating synthetic yolov3 weights (seed 1)…');
  writeFileSync(weightsPath, syntheticWeightsBytes(graph, { seed: 1 }));
}
const outDir = join(tmp, 'prune-out');
mkdirSync(outDir, { recursive: true });
const copyPath = join(tmp, 'yolov3-copy.weights');

interface Sample { readWrite: number; read: number; groups: number; plan: number; surgery: number; serialize: number; write: number; total: number; bytesOut: number }

function pipeline(strategy: PruneStrategy, percent: number): Sample {
  // baseline: the same bytes read and written unchanged
  let t = performance.now();
  const raw = readFileSync(weightsPath);
  const read = performance.now() - t;
  writeFileAtomic(copyPath, raw);
  const readWrite = performance.now() - t;

  t = performance.now();
  const bytes = readFileSync(weightsPath);
  const g = analyzeCfg(cfgText);
  const { weights } = readWeights(bytes, g);
  const tRead = performance.now() - t;
  t = performance.now();
  const groups = buildChannelGroups(g);
  const tGroups = performance.now() - t;
  t = performance.now();
  const plan = planPrune(groups, weights, { strategy, percent });
  const tPlan = performance.now() - t;
  t = performance.now();
  const res = applyPlan(g, weights, plan);
  const tSurgery = performance.now() - t;
  t = performance.now();
  const out = writeWeights(res.graph, res.weights!);
  const tSer = performance.now() - t;
  t = performance.now();
  const paths = defaultOutputPaths(cfgPath, { percent }, outDir);
  writePruneOutputs(paths, { cfg: res.text, weights: out, report: '{}' }, [cfgPath, weightsPath]);
  const tWrite = performance.now() - t;
  void tRead;
  return {
    readWrite, read, groups: tGroups, plan: tPlan, surgery: tSurgery, serialize: tSer, write: tWrite,
    total: tGroups + tPlan + tSurgery + tSer + tWrite, bytesOut: out.byteLength,
  };
}

const rows: Row[] = [];
const results: Record<string, unknown>[] = [];
for (const [strategy, percent] of [['slim', 0.5], ['shortcut', 0.5], ['normal', 0.7]] as [PruneStrategy, number][]) {
  pipeline(strategy, percent); // warm-up
  const samples: Sample[] = [];
  for (let r = 0; r < RUNS; r++) samples.push(pipeline(strategy, percent));
  const m = (k: keyof Sample) => median(samples.map((s) => s[k]));
  const ratio = median(samples.map((s) => s.total / s.readWrite));
  const row = {
    model: 'yolov3 (synthetic 248 MB)', strategy, percent,
    'groups ms': m('groups'), 'plan ms': m('plan'), 'surgery ms': m('surgery'), 'serialize ms': m('serialize'), 'write 3 files ms': m('write'),
    'plan+surgery+write ms': m('total'), 'read+write unchanged ms': m('readWrite'), ratio,
    'out MB': m('bytesOut') / 1e6, 'under 2 s': m('total') < 2000, 'under 3x': ratio < 3,
  };
  rows.push(row);
  results.push({ ...row, samples });
}
printTable(`prune: yolov3 plan + surgery + write (median of ${RUNS}), vs read + write of the same 248 MB unchanged`, rows);

// Whole runs (pruneModel, includes the report) on other models, for reference.
const other: Row[] = [];
for (const m of [{ cfg: corpusPath('cfg/alexeyab/yolov4.cfg') }, ...WEIGHTS_MODELS]) {
  const text = readFileSync(m.cfg, 'utf8');
  const g = analyzeCfg(text);
  const w = 'weights' in m ? readWeights(readFileSync(m.weights), g).weights : readWeights(syntheticWeightsBytes(g, { seed: 1 }), g).weights;
  const runs: number[] = [];
  let removed = 0;
  for (let r = 0; r < RUNS + 1; r++) {
    const t = performance.now();
    const run = pruneModel(g, w, { strategy: 'slim', percent: 0.3, layerKeep: 0.1 });
    writeWeights(run.result.graph, run.result.weights!);
    if (r > 0) runs.push(performance.now() - t);
    removed = run.plan.removedChannels;
  }
  other.push({ model: m.cfg.split('/').pop()!, weights: 'weights' in m ? 'trained' : 'synthetic', 'prune+serialize ms': median(runs), 'channels removed': removed });
}
printTable('pruneModel (slim 0.3, layer_keep 0.1) + serialize, median', other);

rmSync(copyPath, { force: true });
rmSync(outDir, { recursive: true, force: true });
writeResult('prune', { yolov3: results, models: other });
