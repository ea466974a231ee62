import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

// Comparison helpers for the ONNX tests.

/** max |a-b| / max |b| (norm-relative error of a whole tensor). */
export function relativeError(a: Float32Array, b: Float32Array): { rel: number; maxDiff: number; maxAbs: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxDiff = 0;
  let maxAbs = 0;
  let at = -1;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= maxDiff)) { maxDiff = d; at = i; }
    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
  }
  return { rel: maxDiff / Math.max(maxAbs, 1e-6), maxDiff, maxAbs, at };
}

/**
 * Runs the darkslim CLI in a child process (node --import tsx cli/main.ts ...). A child, not an
 * in-process call: the test runner reports through this process's stdout.
 */
export function runCli(args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = resolve(__dirname, '..', '..');
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], {
      cwd: root, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' },
    }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}
