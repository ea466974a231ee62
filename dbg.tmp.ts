import { train } from './core/engine/trainer';
import { readFileSync } from 'node:fs';
(async () => {
  const dir = process.argv[2];
  await train({ cfg: 'core/engine/models/darkslim-tiny.cfg', data: '/tmp/shapes/shapes.data', outDir: '/tmp/dbg', maxBatches: 6, evalEvery: 0, evalLimit: 2, backend: 'wasm', checkpoints: false, burnIn: 0, batch: 4,
    sparsity: { lambda: 1, schedule: 'constant' },
    onEvent: (e) => { if (e.type === 'gamma') console.log(JSON.stringify(e)); } });
})();
