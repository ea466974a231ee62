// Does distillation recover an extremely pruned model better than fine-tuning? (issue #9, METHOD.md §3)
// On the demo's synthetic dataset (same generator, seed and size as `darkslim demo`): train the default
// model (darkslim-tiny) once as the baseline / teacher (cached under /tmp), prune it extremely (slim,
// global percent: the smallest candidate whose mAP falls below half of the baseline's), then recover
// the pruned model for the same epochs and seed with (a) fine-tuning, (b) Hinton distillation,
// (c) objectness-scaled distillation (Mehta & Ozturk), over 3 seeds. mAP@0.5 on the validation split
// with the engine's evaluator. Also the time of one distillation step (teacher forward included)
// relative to a plain training step of the student, from the same runs' per-iteration times.
// Writes bench/results/distill.json.
// The step-time figure comes from short interleaved runs (plain, hinton, objectness, repeated) so that
// a changing machine load hits all three alike; --timing-only measures just that and updates the
// JSON written by an earlier full run.
//   npm run bench:distill -- [--epochs 6] [--seeds 1,2,3] [--percent P] [--base-epochs 22] [--backend wasm] [--cache DIR] [--timing-only]
//     [--methods finetune,hinton,objectness,objectness-gt] [--name distill]   (a subset of the recovery
//     methods, no step timing, written to bench/results/<name>.json; objectness-gt: with gtFirst)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadCfg, loadWeightsFile } from '../core/darknet/files';
import type { ModelGraph, ModelWeights } from '../core/darknet/types';
import { loadDataset } from '../core/data/dataset';
import { generateSyntheticDataset } from '../core/data/synthetic';
import { selectBackend, type BackendChoice } from '../core/engine/backend';
import { loadEvalSamples, type EvalSample } from '../core/engine/data';
import { evaluateSamples } from '../core/engine/evaluate';
import { DarknetModel } from '../core/engine/model';
import { distill, train, type TrainOptions, type TrainResult } from '../core/engine/trainer';
import type { TaskEvent } from '../core/pipeline/events';
import { DEMO_MODEL_CFG } from '../core/pipeline/demo';
import { prunedWeightsBytes, pruneModel } from '../core/prune';
import { median, printTable, writeResult, type Row } from './util';
import { repoRoot } from '../test/helpers/root';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const EPOCHS = Number(arg('epochs', '6'));
const SEEDS = arg('seeds', '1,2,3').split(',').map(Number);
const BASE_EPOCHS = Number(arg('base-epochs', '22'));
const BACKEND = arg('backend', 'wasm') as BackendChoice;
const CACHE = arg('cache', '/tmp/darkslim-distill-bench');
const TIMING_ONLY = process.argv.includes('--timing-only');
const FIXED_PERCENT = process.argv.includes('--percent') ? Number(arg('percent', '0.9')) : undefined;
// the demo's dataset: seed 1, 800 / 200 images at the model's input size
const DATA_SEED = 1, TRAIN_IMAGES = 800, VALID_IMAGES = 200;

function mustLoad(path: string, graph: ModelGraph): ModelWeights {
  const r = loadWeightsFile(path, graph);
  if (!r.check.ok) throw new Error(`${path}: ${r.check.message}`);
  return r.weights;
}

function mapOf(graph: ModelGraph, weights: ModelWeights, samples: EvalSample[], names: string[]): number {
  const m = DarknetModel.create(graph, weights);
  try { return evaluateSamples(m, samples, { names }).mAP; } finally { m.dispose(); }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => { const m = mean(xs); return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1)); };

async function main(): Promise<void> {
  const t0 = Date.now();
  const load0 = loadavg();
  await selectBackend(BACKEND);
  mkdirSync(CACHE, { recursive: true });
  const net = loadCfg(DEMO_MODEL_CFG).net;
  const dsDir = join(CACHE, 'dataset');
  const dataFile = join(dsDir, 'shapes.data');
  if (!existsSync(dataFile)) {
    await generateSyntheticDataset({ outDir: dsDir, seed: DATA_SEED, train: TRAIN_IMAGES, valid: VALID_IMAGES, width: net.width, height: net.height, overwrite: true });
  }
  const valid = await loadDataset(dataFile, { split: 'valid' });
  const names = valid.names ?? [];
  const samples = await loadEvalSamples(valid.items, net.width, net.height, net.letterBox);
  const quiet = { checkpoints: false, evalEvery: 0, backend: BACKEND } as const;

  // 1. baseline = teacher (trained once, cached)
  const baseDir = join(CACHE, `baseline-e${BASE_EPOCHS}`);
  const baseCfg = join(baseDir, 'darkslim-tiny.cfg');
  const baseW = join(baseDir, 'darkslim-tiny_final.weights');
  let baseSeconds = 0;
  if (!existsSync(baseW)) {
    console.log(`training the baseline (${BASE_EPOCHS} epochs) into ${baseDir} ...`);
    const r = await train({ ...quiet, cfg: DEMO_MODEL_CFG, data: dataFile, outDir: baseDir, epochs: BASE_EPOCHS, seed: DATA_SEED, evalLimit: 0 });
    baseSeconds = r.seconds;
  }
  const baseGraph = loadCfg(baseCfg);
  const baseWeights = mustLoad(baseW, baseGraph);
  const baseMap = mapOf(baseGraph, baseWeights, samples, names);
  console.log(`baseline mAP@0.5 ${baseMap.toFixed(4)} (${baseGraph.totals.params} params)`);

  // 2. extreme prune: the smallest candidate percent whose mAP is below half of the baseline's
  const candidates = FIXED_PERCENT !== undefined ? [FIXED_PERCENT] : [0.5, 0.6, 0.7, 0.8, 0.9];
  const tried: { percent: number; map: number; params: number }[] = [];
  let chosen: { percent: number; run: ReturnType<typeof pruneModel>; map: number } | undefined;
  for (const percent of candidates) {
    const run = pruneModel(baseGraph, baseWeights, { strategy: 'slim', percent, layerKeep: 0.05 }, { cfgPath: baseCfg });
    const map = mapOf(run.result.graph, run.result.weights!, samples, names);
    tried.push({ percent, map, params: run.result.graph.totals.params });
    console.log(`  slim ${percent}: mAP ${map.toFixed(4)}, ${run.result.graph.totals.params} params`);
    chosen = { percent, run, map };
    if (map < baseMap / 2) break;
  }
  const pr = chosen!.run;
  const prunedDir = join(CACHE, `pruned-${chosen!.percent}`);
  mkdirSync(prunedDir, { recursive: true });
  const prunedCfg = join(prunedDir, 'darkslim-tiny-pruned.cfg');
  const prunedW = join(prunedDir, 'darkslim-tiny-pruned.weights');
  writeFileSync(prunedCfg, pr.result.text);
  writeFileSync(prunedW, prunedWeightsBytes(pr));
  const prunedGraph = loadCfg(prunedCfg);
  console.log(`pruned: slim ${chosen!.percent}, mAP ${chosen!.map.toFixed(4)} (baseline ${baseMap.toFixed(4)}), ${prunedGraph.totals.params} params (${(100 * prunedGraph.totals.params / baseGraph.totals.params).toFixed(1)}% of the baseline's)`);

  type Method = 'finetune' | 'hinton' | 'objectness' | 'objectness-gt';
  const timedMethods: ('finetune' | 'hinton' | 'objectness')[] = ['finetune', 'hinton', 'objectness'];
  const methods = arg('methods', 'finetune,hinton,objectness,objectness-gt').split(',') as Method[];
  for (const m of methods) if (!['finetune', 'hinton', 'objectness', 'objectness-gt'].includes(m)) throw new Error(`--methods: unknown method ${m}`);
  const subset = process.argv.includes('--methods');

  // step time: short runs, interleaved, the median per-iteration time of each method
  const stepTiming = async (rounds = 4, iters = 12) => {
    const ms: Record<(typeof timedMethods)[number], number[]> = { finetune: [], hinton: [], objectness: [] };
    for (let k = 0; k < rounds; k++) {
      for (const method of timedMethods) {
        const got: number[] = [];
        const common: TrainOptions & { weights: string } = {
          ...quiet, cfg: prunedCfg, weights: prunedW, data: dataFile, outDir: join(CACHE, 'timing', method), maxBatches: iters, evalLimit: 0, burnIn: 0,
          onEvent: (e) => { if (e.type === 'metrics') got.push(e.values.ms); },
        };
        if (method === 'finetune') await train({ ...common, task: 'finetune' });
        else await distill({ ...common, teacher: { cfg: baseCfg, weights: baseW }, method });
        ms[method].push(...got.slice(2));
      }
    }
    const m = Object.fromEntries(timedMethods.map((k) => [k, median(ms[k])])) as Record<(typeof timedMethods)[number], number>;
    const r = { msPerStep: m, ratio: { hinton: m.hinton / m.finetune, objectness: m.objectness / m.finetune }, rounds, iters, loadAverage: loadavg() };
    console.log(`\nstep time (median of ${rounds}×${iters - 2} interleaved iterations, batch 16): plain ${m.finetune.toFixed(0)} ms, hinton ${m.hinton.toFixed(0)} ms (${r.ratio.hinton.toFixed(2)}x), objectness ${m.objectness.toFixed(0)} ms (${r.ratio.objectness.toFixed(2)}x); target ≤ 1.6x; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    return r;
  };
  if (TIMING_ONLY) {
    const path = join(repoRoot(), 'bench', 'results', 'distill.json');
    const prev = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
    writeFileSync(path, JSON.stringify({ ...prev, stepTiming: await stepTiming() }, null, 2) + '\n');
    console.log(`updated ${path}`);
    return;
  }

  // 3. recover: the same epochs, seed and schedule for each method
  const runs: { method: Method; seed: number; map: number; seconds: number; msPerStep: number; firstLoss: number; lastLoss: number; lastDistill?: number }[] = [];
  for (const seed of SEEDS) {
    for (const method of methods) {
      const ms: number[] = [];
      const losses: number[] = [];
      const onEvent = (e: TaskEvent) => { if (e.type === 'metrics') { ms.push(e.values.ms); losses.push(e.values.loss); } };
      const common: TrainOptions & { weights: string } = {
        ...quiet, cfg: prunedCfg, weights: prunedW, data: dataFile, outDir: join(CACHE, 'runs', `${method}-s${seed}`), epochs: EPOCHS, seed, burnIn: 0, onEvent,
      };
      const r: TrainResult = method === 'finetune'
        ? await train({ ...common, task: 'finetune' })
        : await distill({
          ...common, teacher: { cfg: baseCfg, weights: baseW }, method: method === 'hinton' ? 'hinton' : 'objectness',
          ...(method === 'hinton' ? { T: 3, alpha: 0.5 } : { lambda: 1, gtFirst: method === 'objectness-gt' }),
        });
      // per-iteration time without the first few (allocation warm-up)
      const steady = ms.slice(3);
      const row = { method, seed, map: r.map ?? 0, seconds: r.seconds, msPerStep: mean(steady), firstLoss: losses[0], lastLoss: mean(losses.slice(-10)), lastDistill: r.lastDistill?.total };
      runs.push(row);
      console.log(`  ${method} seed ${seed}: mAP ${row.map.toFixed(4)} in ${row.seconds.toFixed(0)} s, ${row.msPerStep.toFixed(0)} ms/step, loss ${row.firstLoss.toFixed(3)} → ${row.lastLoss.toFixed(3)} (load ${loadavg()[0].toFixed(2)})`);
    }
  }

  // 4. table
  const summary: Row[] = methods.map((m) => {
    const rs = runs.filter((r) => r.method === m);
    const maps = rs.map((r) => r.map);
    return {
      method: m, 'mAP mean': mean(maps), 'mAP std': std(maps), 'mAP min': Math.min(...maps), 'mAP max': Math.max(...maps),
      'vs fine-tune': mean(maps) - mean(runs.filter((r) => r.method === 'finetune').map((r) => r.map)),
      'ms/step': mean(rs.map((r) => r.msPerStep)),
    };
  });
  const timing = subset ? undefined : await stepTiming();
  printTable(`Recovery of darkslim-tiny pruned slim ${chosen!.percent} (baseline mAP ${baseMap.toFixed(4)}, pruned ${chosen!.map.toFixed(4)}); ${EPOCHS} epochs, seeds ${SEEDS.join(',')}`, summary);
  if (timing) console.log(`\ndistillation step / plain student step: hinton ${timing.ratio.hinton.toFixed(2)}x, objectness ${timing.ratio.objectness.toFixed(2)}x (target ≤ 1.6x)`);
  writeResult(arg('name', 'distill'), {
    backend: BACKEND, loadAverageStart: load0, loadAverageEnd: loadavg(), seconds: (Date.now() - t0) / 1000,
    dataset: { generator: 'core/data/synthetic.ts', seed: DATA_SEED, train: TRAIN_IMAGES, valid: VALID_IMAGES, size: `${net.width}x${net.height}` },
    baseline: { cfg: 'core/engine/models/darkslim-tiny.cfg', epochs: BASE_EPOCHS, map: baseMap, params: baseGraph.totals.params, trainSeconds: baseSeconds || undefined },
    pruned: { strategy: 'slim', percent: chosen!.percent, layerKeep: 0.05, map: chosen!.map, params: prunedGraph.totals.params, bflops: prunedGraph.totals.bflops, tried },
    recovery: { epochs: EPOCHS, seeds: SEEDS, methods, hinton: { T: 3, alpha: 0.5 }, objectness: { lambda: 1, fmNmsRadius: 1 }, objectnessGt: { lambda: 1, gtFirst: true }, burnIn: 0 },
    summary, stepTiming: timing, runs,
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
