// Loading what the inference commands take: a cfg with its weights (exported to ONNX in memory)
// or an exported .onnx file, plus the class names.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { loadCfg, loadWeightsFile } from '../darknet/files';
import type { ModelGraph, ModelWeights } from '../darknet/types';
import type { DetectorSource } from './detect';

export interface LoadedDarknet {
  graph: ModelGraph;
  weights: ModelWeights;
}

/** cfg + weights, checked: a weights file that does not fit the cfg (or only part of it) is an error. */
export function loadDarknet(cfgPath: string, weightsPath: string, size?: { width?: number; height?: number }): LoadedDarknet {
  const graph = loadCfg(cfgPath, size ?? {});
  const errors = graph.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) {
    const d = errors[0];
    throw new Error(`${cfgPath}:${d.range.start.line + 1}: ${d.message}${errors.length > 1 ? ` (and ${errors.length - 1} more errors)` : ''}`);
  }
  const { weights, check } = loadWeightsFile(weightsPath, graph);
  if (!check.ok) throw new Error(`${weightsPath}: ${check.message}`);
  if (check.partial) throw new Error(`${weightsPath}: ${check.message} A partial file cannot run the whole network.`);
  return { graph, weights };
}

export function isOnnxPath(p: string): boolean {
  return extname(p).toLowerCase() === '.onnx';
}

/** The model source for Detector.create: an .onnx path as is, else cfg + weights. */
export function detectorSource(cfgPath: string, modelPath: string, size?: { width?: number; height?: number }): DetectorSource {
  if (isOnnxPath(modelPath)) {
    if (size?.width || size?.height) throw new Error('--size cannot change an exported .onnx model: export it again with --size');
    return { onnx: modelPath };
  }
  return loadDarknet(cfgPath, modelPath, size);
}

function readNames(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines;
}

/**
 * Class names: the given file; else a `.names` file beside the cfg (or the model) with exactly
 * `classes` lines, when there is only one such file. Undefined when none fits.
 */
export function resolveNames(classes: number, explicit: string | undefined, near: string[]): string[] | undefined {
  if (explicit) return readNames(explicit);
  const seen = new Set<string>();
  const fits: string[] = [];
  for (const p of near) {
    const dir = resolve(dirname(p));
    if (seen.has(dir) || !existsSync(dir)) continue;
    seen.add(dir);
    for (const f of readdirSync(dir)) {
      if (!f.toLowerCase().endsWith('.names')) continue;
      const names = readNames(join(dir, f));
      if (names.length === classes) fits.push(join(dir, f));
    }
    if (fits.length) break;
  }
  return fits.length === 1 ? readNames(fits[0]) : undefined;
}
