// Hover: a section header shows the layer (index, shapes, params, BFLOPs, γ of its BN scales when
// weights are loaded); a key shows its documentation; layers=/from= show the layers they read.
import { basename } from 'node:path';
import { MarkupKind, type Hover, type Position } from 'vscode-languageserver/node';
import { findKey, findSection, type KeySchema } from '../../core/darknet/schema';
import type { CfgEntry, CfgSection, Layer } from '../../core/darknet/types';
import { gammaStats } from '../../core/darknet/weights';
import { contains, headerAt, isLayerRefKey, sectionAt, type Analysis } from '../analysis';
import * as fmt from '../format';
import type { WeightsInfo } from '../weights';

export function hover(a: Analysis, p: Position, weights: WeightsInfo): Hover | null {
  const header = headerAt(a, p);
  if (header) return markdown(sectionHover(a, header, weights), header.headerRange);
  const entry = a.entryAtLine[p.line];
  const section = sectionAt(a, p.line);
  if (!entry || !section || !contains(entry.range, p)) return null;
  if (section.index >= 0 && isLayerRefKey(section, entry.key) && contains(entry.valueRange, p)) {
    return markdown(refsHover(a, section, entry), entry.valueRange);
  }
  const schema = findSection(section.name);
  const key = schema && findKey(schema, entry.key);
  return key ? markdown(keyHover(key), entry.keyRange) : null;
}

function markdown(value: string, range: Hover['range']): Hover {
  return { contents: { kind: MarkupKind.Markdown, value }, range };
}

function sectionHover(a: Analysis, section: CfgSection, weights: WeightsInfo): string {
  const schema = findSection(section.name);
  const lines: string[] = [];
  if (section.index < 0) {
    const { net, totals, layers } = a.graph;
    lines.push(`**[${section.name}]** network input ${fmt.shape([net.width, net.height, net.channels])}`);
    if (schema) lines.push('', schema.description);
    lines.push('', '| layers | params | BFLOPs | avg_outputs |', '|---:|---:|---:|---:|',
      `| ${layers.length} | ${fmt.int(totals.params)} (${fmt.compact(totals.params)}) | ${fmt.bflops(totals.bflops)} | ${fmt.int(totals.avgOutputs)} |`);
    const w = weightsLine(weights);
    if (w) lines.push('', w);
    return lines.join('\n');
  }
  const layer = a.graph.layers[section.index];
  lines.push(`**[${section.name}]** layer ${section.index}${layer && section.type !== section.name ? ` (${layer.type})` : ''}`);
  if (schema) lines.push('', schema.description);
  else lines.push('', 'Unknown section type: darknet does not recognise it.');
  if (!layer) return lines.join('\n');
  lines.push('', '| input | output | params | BFLOPs |', '|---|---|---:|---:|',
    `| ${fmt.shape(layer.input)} | ${fmt.shape(layer.output)} | ${fmt.int(layer.params)} | ${fmt.bflops(layer.bflops)} |`);
  if (layer.type === 'route' || layer.type === 'shortcut' || layer.type === 'sam' || layer.type === 'scale_channels') {
    lines.push('', `Reads ${layer.inputs.map((i) => (i < 0 ? 'the network input' : `layer ${i}`)).join(', ')}.`);
  }
  const gamma = gammaLine(a, layer, weights);
  if (gamma) lines.push('', gamma);
  return lines.join('\n');
}

function weightsLine(weights: WeightsInfo): string | undefined {
  switch (weights.kind) {
    case 'checked': {
      const c = weights.result.check;
      return `Weights \`${basename(weights.path)}\`: ${c.ok ? (c.partial ? 'partial' : 'fit') : 'MISMATCH'}. ${c.message}`;
    }
    case 'loading':
      return `Weights \`${basename(weights.path)}\`: loading…`;
    case 'missing':
      return `Weights \`${weights.path}\` not found.`;
    case 'unreadable':
      return `Weights \`${weights.path}\` unreadable: ${weights.message}`;
    case 'none':
      return undefined;
  }
}

function gammaLine(a: Analysis, layer: Layer, weights: WeightsInfo): string | undefined {
  if (weights.kind !== 'checked' || !layer.conv?.batchNormalize) return undefined;
  // The core keeps only the layers before a mismatch, so whatever is here can be trusted.
  if (!weights.result.weights.layers.get(layer.index)?.scales) return undefined;
  const s = gammaStats(a.graph, weights.result.weights, [layer]).layers[0];
  if (!s) return undefined;
  const n = (x: number) => x.toPrecision(3);
  return `BN |γ| over ${s.count} channels (${basename(weights.path)}): min ${n(s.min)} · median ${n(s.median)} · mean ${n(s.mean)} · max ${n(s.max)}; `
    + `${(s.below001 * 100).toFixed(1)}% below 0.01, ${(s.below01 * 100).toFixed(1)}% below 0.1`;
}

function keyHover(key: KeySchema): string {
  const facts: string[] = [key.kind];
  if (key.required) facts.push('required');
  if (key.default !== undefined) facts.push(`default ${key.default}`);
  if (key.min !== undefined && key.max !== undefined) facts.push(`${key.min}…${key.max}`);
  else if (key.min !== undefined) facts.push(`≥ ${key.min}`);
  else if (key.max !== undefined) facts.push(`≤ ${key.max}`);
  const lines = [`**${key.key}** (${facts.join(', ')})`, '', key.description];
  if (key.values?.length) lines.push('', `Allowed values: ${key.values.map((v) => `\`${v}\``).join(', ')}`);
  return lines.join('\n');
}

function refsHover(a: Analysis, section: CfgSection, entry: CfgEntry): string {
  const schema = findSection(section.name);
  const key = schema && findKey(schema, entry.key);
  const lines = [`**${entry.key}** of layer ${section.index}${key ? `: ${key.description}` : ''}`, '',
    '| written | layer | type | output |', '|---:|---:|---|---|'];
  for (const r of a.refs) {
    if (r.layer !== section.index || r.key !== entry.key) continue;
    const t = r.valid ? a.graph.layers[r.target] : undefined;
    lines.push(t
      ? `| ${r.written} | ${t.index} | ${t.section.name} | ${fmt.shape(t.output)} |`
      : `| ${r.written} | ${r.target} | — | not an earlier layer |`);
  }
  const layer = a.graph.layers[section.index];
  if (layer && section.type === 'route') lines.push('', `Route output: ${fmt.shape(layer.output)}`);
  return lines.join('\n');
}
