// File-level helpers: load a cfg (+ weights) from disk, find the weights beside a cfg, and write
// outputs atomically (temporary name, then rename) so nothing half-written is ever left behind.
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { analyzeCfg, type BuildOptions } from './graph';
import type { ModelGraph } from './types';
import { readWeights, type ReadWeightsResult } from './weights';

export function loadCfg(path: string, opts: BuildOptions = {}): ModelGraph {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read cfg ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return analyzeCfg(text, opts);
}

export function loadWeightsFile(path: string, graph: ModelGraph): ReadWeightsResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read weights ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return readWeights(bytes, graph);
}

/** `model.cfg` → `model.weights` in the same folder, when it exists. */
export function weightsBeside(cfgPath: string): string | undefined {
  const candidate = join(dirname(cfgPath), basename(cfgPath, extname(cfgPath)) + '.weights');
  return existsSync(candidate) && statSync(candidate).isFile() ? candidate : undefined;
}

/** Writes through a temporary file in the same folder and renames it into place. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
