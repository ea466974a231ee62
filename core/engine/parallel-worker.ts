// Worker thread of DataParallel (parallel.ts): its own tfjs engine and backend, a model replica
// built from the cfg text; per message: load the parameters, forward + [yolo] loss + backward on the
// shard, send back the mean gradient, the BN batch statistics and the loss parts.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { analyzeCfg } from '../darknet/graph';
import { selectBackend, type BackendChoice } from './backend';
import { headLossConfigs, yoloLoss, type TrainTruth, type LossParts } from './loss';
import { DarknetModel, variableKey, type ForwardResult } from './model';

interface Job { id: number; params: Record<string, Float32Array>; x: Float32Array; shape: [number, number, number, number]; truths: TrainTruth[][] }

async function main(): Promise<void> {
  const port = parentPort!;
  const { cfgText, backend } = workerData as { cfgText: string; backend: BackendChoice };
  const info = await selectBackend(backend);
  const graph = analyzeCfg(cfgText);
  const model = DarknetModel.create(graph);
  model.checkTrainable();
  const cfgs = headLossConfigs(graph, model.spec.heads);
  const vars = model.variables();
  port.on('message', (job: Job) => {
    try {
      for (const v of vars) {
        const p = job.params[variableKey(v)];
        if (!p) throw new Error(`no parameters for ${variableKey(v)}`);
        tf.tidy(() => v.assign(tf.tensor(p, v.shape)));
      }
      const x = tf.tensor4d(job.x, job.shape);
      let stats: ForwardResult['bnStats'] = [];
      let parts: LossParts | undefined;
      const { grads, value } = tf.variableGrads(() => {
        const out = model.forward(x, { training: true });
        stats = out.bnStats.map((s) => ({ index: s.index, mean: tf.keep(s.mean), variance: tf.keep(s.variance) }));
        const l = yoloLoss(out.heads, cfgs, job.truths);
        parts = l.parts;
        return l.loss;
      }, vars);
      const g: Record<string, Float32Array> = {};
      const transfer: ArrayBuffer[] = [];
      for (const v of vars) {
        const a = Float32Array.from(grads[v.name].dataSync() as Float32Array);
        g[variableKey(v)] = a;
        transfer.push(a.buffer);
      }
      const n = job.shape[0];
      const statCounts: Record<number, number> = {};
      const st = stats.map((s) => {
        const o = graph.layers[s.index].output;
        statCounts[s.index] = n * o[0] * o[1];
        return { index: s.index, mean: Float32Array.from(s.mean.dataSync()), variance: Float32Array.from(s.variance.dataSync()) };
      });
      tf.dispose([x, value, ...Object.values(grads), ...stats.flatMap((s) => [s.mean, s.variance])]);
      port.postMessage({ id: job.id, grads: g, stats: st, parts, n, statCounts }, transfer);
    } catch (e) {
      port.postMessage({ id: job.id, error: (e as Error).message });
    }
  });
  port.postMessage({ ready: true, backend: info.name });
}

main().catch((e: Error) => parentPort?.postMessage({ error: e.message }));
