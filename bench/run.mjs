// Runs a benchmark the way the product runs: bundled by esbuild (as dist/ is), not through tsx,
// whose per-module getters would distort micro-benchmarks. Usage: node bench/run.mjs <name> [args]
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [name, ...args] = process.argv.slice(2);
if (!name) {
  console.error('usage: node bench/run.mjs <name> [args]   (bench/<name>.bench.ts)');
  process.exit(2);
}
const outdir = join(here, '.tmp');
mkdirSync(outdir, { recursive: true });
const outfile = join(outdir, `${name}.bench.js`);
await build({
  entryPoints: [join(here, `${name}.bench.ts`)],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'inline',
  external: ['onnxruntime-node', 'sharp', '@tensorflow/*', 'vscode'],
  logLevel: 'warning',
});
const r = spawnSync(process.execPath, ['--expose-gc', '--enable-source-maps', outfile, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
