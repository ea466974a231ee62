// Training throughput (images/s at batch 8) of the tfjs engine on the wasm and cpu backends, for
// Darkslim's default model and yolo-fastest-1.1 (320x320), beside PyTorch (CPU, 2 threads) training
// the same network built from the same cfg (bench/torch_train.py; skipped when python3-torch is
// missing), and wasm data-parallel over worker threads (core/engine/parallel.ts, `wasmxN`). One
// training step = forward (BN in training mode), darknet's [yolo] loss, backward, SGD with momentum.
// `wasmPlain` is the wasm backend without Darkslim's SIMD kernels (DARKSLIM_TRAIN_SIMD=0), same run.
// Besides wall-clock images/s, each engine's CPU time per image (all its threads): on a machine
// shared with other jobs, wall time measures the neighbours too. Writes bench/results/train.json.
//   npm run bench:train -- [--iters N (default: 40 default model, 5 yolo-fastest)] [--backends wasm,cpu] [--models default,fastest] [--parallel 2] [--cpu-iters N] [--cpu-models default]
// (run through tsx: tfjs-core registers its gradients from ESM files that Node cannot require)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { loadCfg } from '../core/darknet/files';
import { selectBackend, type BackendName } from '../core/engine/backend';
import { headLossConfigs, yoloLoss, type TrainTruth } from '../core/engine/loss';
import { readFileSync } from 'node:fs';
import { DarknetModel, rng } from '../core/engine/model';
import { Sgd } from '../core/engine/optimizer';
import { DataParallel, gradTensors, statTensors } from '../core/engine/parallel';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const root = resolve(__dirname, '..', '..').endsWith('bench') ? resolve(__dirname, '..', '..', '..') : resolve(__dirname, '..', '..');
const repo = existsSync(join(process.cwd(), 'core')) ? process.cwd() : root;
const corpus = resolve(repo, '..', 'shared', 'corpus');
const MODELS: Record<string, string> = {
  default: join(repo, 'core', 'engine', 'models', 'darkslim-tiny.cfg'),
  fastest: join(corpus, 'weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1.cfg'),
};
const BATCH = 8;

interface Rate { imagesPerSecond: number; cpuMsPerImage: number; iters: number }

function fixtures(cfg: string) {
  const graph = loadCfg(cfg);
  const r = rng(1);
  const { width: w, height: h } = graph.net;
  const x = Float32Array.from({ length: BATCH * w * h * 3 }, () => r());
  const truths: TrainTruth[][] = Array.from({ length: BATCH }, () => [
    { classId: 0, x: 0.3 + 0.4 * r(), y: 0.3 + 0.4 * r(), w: 0.2 + 0.3 * r(), h: 0.2 + 0.3 * r() },
    { classId: 1, x: 0.3 + 0.4 * r(), y: 0.3 + 0.4 * r(), w: 0.05 + 0.1 * r(), h: 0.05 + 0.1 * r() },
  ]);
  return { graph, x, truths };
}

async function timeSteps(iters: number, step: () => void | Promise<void>, warmup = true): Promise<Rate> {
  // kernels, operator caches, heap growth (two steps, as torch_train.py's warm-up)
  if (warmup) for (let i = 0; i < 2; i++) await step();
  const t = performance.now();
  const c = process.cpuUsage();
  for (let i = 0; i < iters; i++) await step();
  const u = process.cpuUsage(c);
  const wall = (performance.now() - t) / 1000;
  return { imagesPerSecond: (BATCH * iters) / wall, cpuMsPerImage: (u.user + u.system) / 1000 / (BATCH * iters), iters };
}

async function tfjsRate(cfg: string, backend: BackendName, iters: number): Promise<Rate> {
  await selectBackend(backend);
  const { graph, x: xData, truths } = fixtures(cfg);
  const model = DarknetModel.create(graph);
  const cfgs = headLossConfigs(graph, model.spec.heads);
  const vars = model.variables();
  const sgd = new Sgd(0.9, 0.0005, new Set([...model.convs.values()].map((p) => p.kernel)));
  const { width: w, height: h } = graph.net;
  const x = tf.tensor4d(xData, [BATCH, h, w, 3]);
  const step = () => {
    let stats: ReturnType<DarknetModel['forward']>['bnStats'] = [];
    const { grads, value } = tf.variableGrads(() => {
      const out = model.forward(x, { training: true });
      stats = out.bnStats.map((s) => ({ index: s.index, mean: tf.keep(s.mean), variance: tf.keep(s.variance) }));
      return yoloLoss(out.heads, cfgs, truths).loss;
    }, vars);
    model.updateRollingStats(stats);
    const m = new Map(vars.map((v) => [v, grads[v.name]]));
    sgd.apply(m, 1e-5);
    value.dispose();
    tf.dispose(grads);
  };
  // the cpu backend: no warm-up step (one step of yolo-fastest takes minutes there)
  const rate = await timeSteps(iters, step, backend !== 'cpu');
  sgd.dispose();
  model.dispose();
  x.dispose();
  return rate;
}

/** The same step with the gradients from DataParallel workers (wasm each); SGD in this thread. */
async function parallelRate(cfg: string, workers: number, iters: number): Promise<Rate> {
  await selectBackend('wasm');
  const { graph, x, truths } = fixtures(cfg);
  const model = DarknetModel.create(graph);
  const sgd = new Sgd(0.9, 0.0005, new Set([...model.convs.values()].map((p) => p.kernel)));
  const par = await DataParallel.create({ cfgText: readFileSync(cfg, 'utf8'), workers, backend: 'wasm' });
  try {
    return await timeSteps(iters, async () => {
      const r = await par.gradients(model, x, BATCH, truths);
      const g = gradTensors(model, r.grads);
      model.updateRollingStats(statTensors(r.bnStats));
      sgd.apply(g, 1e-5);
      tf.dispose([...g.values()]);
    });
  } finally {
    await par.close();
    sgd.dispose();
    model.dispose();
  }
}

function torchRate(cfg: string, iters: number): { imagesPerSecond: number; cpuMsPerImage: number; torch: string } | string {
  const r = spawnSync(process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'), [join(repo, 'bench', 'torch_train.py'), cfg, '--batch', String(BATCH), '--iters', String(iters)], { encoding: 'utf8' });
  if (r.status !== 0) return (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() ?? 'failed';
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cell = (v: unknown) => (typeof v === 'number' ? v.toFixed(2) : v === undefined ? '–' : String(v));
  const body = rows.map((r) => cols.map((c) => cell(r[c])));
  const w = cols.map((c, i) => Math.max(c.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(cols), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

(async () => {
  // steps per measurement: enough for a few seconds of each engine (5 steps of the 64x64 default
  // model last half a second, mostly JIT and heap warm-up); --iters N sets every model's
  const DEFAULT_ITERS: Record<string, number> = { default: 40, fastest: 5 };
  const itersFor = (model: string) => Number(arg('iters', String(DEFAULT_ITERS[model] ?? 5)));
  const cpuIters = Number(arg('cpu-iters', '1'));
  const workers = Number(arg('parallel', '2'));
  const backends = arg('backends', 'wasm,cpu').split(',') as BackendName[];
  const models = arg('models', 'default,fastest').split(',');
  // models the cpu backend runs on (one step of yolo-fastest there takes well over 7 CPU-minutes)
  const cpuModels = arg('cpu-models', 'default').split(',');
  const loadBefore = os.loadavg();
  const rows: Record<string, unknown>[] = [];
  for (const name of models) {
    const cfg = MODELS[name];
    if (!existsSync(cfg)) { console.log(`${name}: ${cfg} not found, skipped`); continue; }
    const g = loadCfg(cfg);
    const iters = itersFor(name);
    const row: Record<string, unknown> = { model: name, input: `${g.net.width}x${g.net.height}`, cfg, batch: BATCH, iters };
    const torch = torchRate(cfg, iters);
    if (typeof torch === 'string') row.torch = `unavailable: ${torch}`;
    else { row.torch = torch.imagesPerSecond; row.torchCpuMsPerImage = torch.cpuMsPerImage; row.torchVersion = torch.torch; }
    for (const b of backends) {
      if (b === 'cpu' && !cpuModels.includes(name)) { row.cpu = 'skipped (--cpu-models)'; continue; }
      // the cpu backend is far too slow for more than a step or two on the larger models
      const r = await tfjsRate(cfg, b, b === 'cpu' ? cpuIters : iters);
      row[b] = r.imagesPerSecond; row[`${b}CpuMsPerImage`] = r.cpuMsPerImage; row[`${b}Iters`] = r.iters;
      if (b === 'wasm') {
        // the same without the SIMD kernels (train-kernels.wat): the plain loops and tfjs ops they replace
        process.env.DARKSLIM_TRAIN_SIMD = '0';
        try {
          const p = await tfjsRate(cfg, 'wasm', iters);
          row.wasmPlain = p.imagesPerSecond; row.wasmPlainCpuMsPerImage = p.cpuMsPerImage;
        } finally {
          delete process.env.DARKSLIM_TRAIN_SIMD;
        }
      }
    }
    if (workers > 1 && backends.includes('wasm')) {
      const r = await parallelRate(cfg, workers, iters);
      row[`wasmx${workers}`] = r.imagesPerSecond; row[`wasmx${workers}CpuMsPerImage`] = r.cpuMsPerImage;
    }
    if (typeof row.torch === 'number') {
      if (typeof row.wasm === 'number') row.wasmVsTorch = (row.wasm as number) / (row.torch as number);
      if (typeof row[`wasmx${workers}`] === 'number') row[`wasmx${workers}VsTorch`] = (row[`wasmx${workers}`] as number) / (row.torch as number);
      // CPU time per image: the comparison that the machine's other load distorts least
      if (typeof row.wasmCpuMsPerImage === 'number') row.wasmVsTorchCpu = (row.torchCpuMsPerImage as number) / (row.wasmCpuMsPerImage as number);
    }
    rows.push(row);
  }
  const loadAfter = os.loadavg();
  const fmtLoad = (l: number[]) => l.map((v) => v.toFixed(1)).join(' ');
  console.log(`training images/s, batch ${BATCH} (forward + [yolo] loss + backward + SGD); load average ${fmtLoad(loadBefore)} before, ${fmtLoad(loadAfter)} after, on ${os.cpus().length} cores; cpu backend: ${cpuIters} step(s), no warm-up`);
  const par = workers > 1 && backends.includes('wasm') ? [`wasmx${workers}`] : [];
  const plain = backends.includes('wasm') ? ['wasmPlain'] : [];
  console.log(table(rows, ['model', 'input', 'torch', ...backends, ...plain, ...par, 'wasmVsTorch', ...par.map((p) => `${p}VsTorch`)]));
  console.log('\nCPU ms per image (all threads of each engine; lower is better)');
  console.log(table(rows, ['model', 'torchCpuMsPerImage', ...backends.map((b) => `${b}CpuMsPerImage`), ...par.map((p) => `${p}CpuMsPerImage`), 'wasmVsTorchCpu']));
  mkdirSync(join(repo, 'bench', 'results'), { recursive: true });
  writeFileSync(join(repo, 'bench', 'results', 'train.json'), JSON.stringify({
    date: new Date().toISOString(), unit: 'images/s, batch 8, training step; *CpuMsPerImage: CPU ms per image over all threads',
    loadAverage: loadBefore, loadAverageAfter: loadAfter, cores: os.cpus().length, cpuBackendIters: cpuIters, parallelWorkers: workers, rows,
  }, null, 2) + '\n');
})();
