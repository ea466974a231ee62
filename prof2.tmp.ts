import * as tf from '@tensorflow/tfjs-core';
import { train } from './core/engine/trainer';
(async () => {
  const r = await train({ cfg: 'core/engine/models/darkslim-tiny.cfg', data: '/tmp/shapes/shapes.data', outDir: '/tmp/tr3', maxBatches: 30, evalEvery: 0, evalLimit: 1, checkpoints: false, backend: 'wasm',
    onEvent: (e) => { if (e.type === 'metrics' && e.step % 5 === 0) console.log(e.step, e.values.ms, e.values.loss.toFixed(2)); } });
  console.log(r.imagesPerSecond);
})();
