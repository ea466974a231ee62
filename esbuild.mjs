// Bundles the extension, the language server and the CLI (and, as they arrive, the worker and the
// webviews) into dist/. Native and optional packages stay external: they ship their own binaries.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: production ? false : 'linked',
  minify: production,
  external: ['vscode', 'onnxruntime-node', 'sharp', '@tensorflow/tfjs-node'],
  logLevel: 'info',
};

const entries = [
  { in: 'client/extension.ts', out: 'dist/extension.js' },
  { in: 'server/server.ts', out: 'dist/server.js' },
  { in: 'cli/main.ts', out: 'dist/cli.js' },
  { in: 'core/pipeline/worker.ts', out: 'dist/worker.js' },
  // image decoding helper threads of core/onnx/prefetch.ts, loaded from beside the bundles
  { in: 'core/onnx/decode-worker.ts', out: 'dist/decode-worker.js' },
  // data-parallel training threads of core/engine/parallel.ts (train --workers N), likewise
  { in: 'core/engine/parallel-worker.ts', out: 'dist/parallel-worker.js' },
];

const browser = [
  // webview scripts run in VS Code's webview (a browser), one bundle per panel
  { in: 'webview/redundancy.ts', out: 'dist/webview/redundancy.js' },
  { in: 'webview/dashboard.ts', out: 'dist/webview/dashboard.js' },
  { in: 'webview/report.ts', out: 'dist/webview/report.js' },
];

const jobs = [];
for (const e of entries.filter((e) => existsSync(e.in))) {
  // the extension notes when its bundle starts loading (activation time includes the load)
  const ext = e.out === 'dist/extension.js';
  const banner = ext ? { js: 'globalThis.__darkslimLoadStart = Date.now();' } : undefined;
  const footer = ext ? { js: 'globalThis.__darkslimLoadEnd = Date.now();' } : undefined;
  jobs.push(build({ ...node, entryPoints: [e.in], outfile: e.out, banner, footer }));
}
for (const e of browser.filter((e) => existsSync(e.in))) {
  jobs.push(build({ bundle: true, platform: 'browser', format: 'iife', target: 'es2022', sourcemap: production ? false : 'linked', minify: production, entryPoints: [e.in], outfile: e.out, logLevel: 'info' }));
}
await Promise.all(jobs);
// The bundled tfjs wasm backend loads its .wasm files from beside the bundle (__dirname = dist/).
const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
if (existsSync(wasmDir)) {
  mkdirSync('dist', { recursive: true });
  for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir, f), join('dist', f));
}
if (existsSync('dist/cli.js')) chmodSync('dist/cli.js', 0o755);
if (watch) console.log('(watch mode is not supported by this script; rerun `npm run build`)');
