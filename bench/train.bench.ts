// Training throughput (images/s at batch 8) of the tfjs engine on the wasm and cpu backends, for
// Darkslim's default model and yolo-fastest-1.1 (320x320), beside PyTorch (CPU, 2 threads) training
// the same network built from the same cfg (bench/torch_train.py; skipped when python3-torch is
// missing). One training step = forward (BN in training mode), darknet's [yolo] loss, backward,
// SGD with momentum. Writes bench/results/train.json.
//   npm run bench:train -- [--iters N] [--backends wasm,cpu] [--models default,fastest]
// (run through tsx: tfjs-core registers its gradients from ESM files that Node cannot require)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { loadCfg } from '../core/darknet/files';
import { selectBackend, type BackendName } from '../core/engine/backend';
import { headLossConfigs, yoloLoss, type TrainTruth } from '../core/engine/loss';
import { DarknetModel, rng } from '../core/engine/model';
import { Sgd } from '../core/engine/optimizer';

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

async function tfjsRate(cfg: string, backend: BackendName, iters: number): Promise<number> {
  await selectBackend(backend);
  const graph = loadCfg(cfg);
  const model = DarknetModel.create(graph);
  const cfgs = headLossConfigs(graph, model.spec.heads);
  const vars = model.variables();
  const sgd = new Sgd(0.9, 0.0005, new Set([...model.convs.values()].map((p) => p.kernel)));
  const r = rng(1);
  const { width: w, height: h } = graph.net;
  const x = tf.tensor4d(Float32Array.from({ length: BATCH * w * h * 3 }, () => r()), [BATCH, h, w, 3]);
  const truths: TrainTruth[][] = Array.from({ length: BATCH }, () => [
    { classId: 0, x: 0.3 + 0.4 * r(), y: 0.3 + 0.4 * r(), w: 0.2 + 0.3 * r(), h: 0.2 + 0.3 * r() },
    { classId: 1, x: 0.3 + 0.4 * r(), y: 0.3 + 0.4 * r(), w: 0.05 + 0.1 * r(), h: 0.05 + 0.1 * r() },
  ]);
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
  step();
  const t = Date.now();
  for (let i = 0; i < iters; i++) step();
  const rate = (BATCH * iters) / ((Date.now() - t) / 1000);
  sgd.dispose();
  model.dispose();
  x.dispose();
  return rate;
}

function torchRate(cfg: string, iters: number): { imagesPerSecond: number; torch: string } | string {
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
  const iters = Number(arg('iters', '5'));
  const backends = arg('backends', 'wasm,cpu').split(',') as BackendName[];
  const models = arg('models', 'default,fastest').split(',');
  const rows: Record<string, unknown>[] = [];
  for (const name of models) {
    const cfg = MODELS[name];
    if (!existsSync(cfg)) { console.log(`${name}: ${cfg} not found, skipped`); continue; }
    const g = loadCfg(cfg);
    const row: Record<string, unknown> = { model: name, input: `${g.net.width}x${g.net.height}`, cfg, batch: BATCH };
    const torch = torchRate(cfg, iters);
    row.torch = typeof torch === 'string' ? `unavailable: ${torch}` : torch.imagesPerSecond;
    for (const b of backends) row[b] = await tfjsRate(cfg, b, b === 'cpu' ? Math.max(1, Math.ceil(iters / 5)) : iters);
    if (typeof row.torch === 'number' && typeof row.wasm === 'number') row.wasmVsTorch = (row.wasm as number) / (row.torch as number);
    rows.push(row);
  }
  console.log(`training images/s, batch ${BATCH} (forward + [yolo] loss + backward + SGD); load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  console.log(table(rows, ['model', 'input', 'torch', ...backends, 'wasmVsTorch']));
  mkdirSync(join(repo, 'bench', 'results'), { recursive: true });
  writeFileSync(join(repo, 'bench', 'results', 'train.json'), JSON.stringify({ date: new Date().toISOString(), unit: 'images/s, batch 8, training step', loadAverage: os.loadavg(), cores: os.cpus().length, rows }, null, 2) + '\n');
})();
