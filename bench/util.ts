// Small helpers shared by the benchmarks: timing, medians, a printed table and a JSON record.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { median, percentile as sortedPercentile } from '../core/onnx/bench';
import { repoRoot } from '../test/helpers/root';

export { median };

/** The p-th percentile (0-100) of unsorted values: the nearest-rank value, as `darkslim bench`'s p90. */
export function percentile(xs: number[], p: number): number {
  return sortedPercentile([...xs].sort((a, b) => a - b), p / 100);
}

export function timeRuns(runs: number, fn: () => void, warmup = Math.min(20, runs)): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export interface Row {
  [column: string]: string | number | boolean;
}

export function printTable(title: string, rows: Row[]): void {
  if (!rows.length) return;
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => '| ' + vals.map((v, i) => v.padEnd(widths[i])).join(' | ') + ' |';
  console.log(`\n${title}`);
  console.log(line(cols));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

export function machine(): Record<string, string | number> {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, node: process.version, date: new Date().toISOString() };
}

export function writeResult(name: string, data: unknown): string {
  const path = join(repoRoot(), 'bench', 'results', `${name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ machine: machine(), ...(data as object) }, null, 2) + '\n');
  console.log(`\nwrote ${path}`);
  return path;
}
