// Issue "Darknet model core": parse + build + diagnostics speed, and reading/validating/γ-statistics
// of a yolov3-sized weights file against a plain fs.readFileSync of the same file (same run).
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeCfg } from '../core/darknet/graph';
import { expectedWeightsBytes, gammaStats, readWeights } from '../core/darknet/weights';
import { corpusCfgs, corpusPath, HAS_CORPUS } from '../test/helpers/corpus';
import { repoRoot } from '../test/helpers/root';
import { median, printTable, timeRuns, writeResult } from './util';

if (!HAS_CORPUS) {
  console.log('corpus not found (../shared/corpus): nothing to benchmark');
  process.exit(0);
}

const yolov4 = readFileSync(corpusPath('cfg/alexeyab/yolov4.cfg'), 'utf8');
const v4 = timeRuns(200, () => analyzeCfg(yolov4), 50);
const texts = corpusCfgs().map((f) => readFileSync(f, 'utf8'));
const corpus = timeRuns(20, () => { for (const t of texts) analyzeCfg(t); }, 5);

// A yolov3-sized weights file (248,007,048 bytes), generated once from yolov3.cfg.
const graph = analyzeCfg(readFileSync(corpusPath('cfg/alexeyab/yolov3.cfg'), 'utf8'));
const tmp = join(repoRoot(), 'bench', '.tmp');
mkdirSync(tmp, { recursive: true });
const weightsPath = join(tmp, 'yolov3-synthetic.weights');
const size = expectedWeightsBytes(graph);
if (!existsSync(weightsPath) || statSync(weightsPath).size !== size) {
  const buf = Buffer.alloc(size);
  buf.writeInt32LE(0, 0); buf.writeInt32LE(2, 4); buf.writeInt32LE(5, 8);
  const f = new Float32Array(buf.buffer, buf.byteOffset + 20, (size - 20) / 4);
  let s = 12345;
  for (let i = 0; i < f.length; i++) { s = (s * 1103515245 + 12345) >>> 0; f[i] = (s / 4294967296) * 0.2 + 0.01; } // positive: valid variances
  writeFileSync(weightsPath, buf);
}
const plain: number[] = [];
const full: number[] = [];
for (let r = 0; r < 7; r++) {
  // interleave the two so both see the same page-cache and machine state
  let t0 = performance.now();
  readFileSync(weightsPath);
  plain.push(performance.now() - t0);
  t0 = performance.now();
  const { weights, check } = readWeights(readFileSync(weightsPath), graph);
  if (!check.ok) throw new Error(check.message);
  gammaStats(graph, weights);
  full.push(performance.now() - t0);
}

const rows = [
  { measure: 'yolov4.cfg parse+build+diagnostics (median of 200)', ms: median(v4), target: '< 2 ms', ok: median(v4) < 2 },
  { measure: `whole corpus, ${texts.length} cfgs (median of 20)`, ms: median(corpus), target: '< 100 ms', ok: median(corpus) < 100 },
  { measure: 'fs.readFileSync of 248,007,048 bytes (median of 7)', ms: median(plain), target: 'reference', ok: true },
  { measure: 'read + validate + γ statistics (median of 7)', ms: median(full), target: '≤ 1.5× reference', ok: median(full) <= 1.5 * median(plain) },
];
printTable('Model core', rows);
console.log(`ratio weights/readFileSync: ${(median(full) / median(plain)).toFixed(2)}×`);
writeResult('core', { rows, ratio: median(full) / median(plain), bytes: size });
