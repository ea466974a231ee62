// The model summary that `darkslim inspect` prints and the language server shows: darknet's layer
// table, the totals, the diagnostics, and (with weights) the header, size check and γ table.
import { fmt } from './graph';
import type { Diagnostic, Layer, ModelGraph, ModelWeights } from './types';
import { gammaStats, type GammaStats, type WeightsCheck } from './weights';

export interface InspectReport {
  input: { width: number; height: number; channels: number };
  layers: { index: number; type: string; line: number; input: number[]; output: number[]; params: number; bflops: number }[];
  totals: { params: number; bflops: number; avgOutputs: number };
  diagnostics: { severity: Diagnostic['severity']; line: number; layer: number | null; message: string }[];
  weights?: {
    path: string; major: number; minor: number; revision: number; seen: number; bytes: number; expectedBytes: number; ok: boolean;
    partial: boolean; message: string;
    gamma: { layers: GammaStats['layers']; sparsity: number; percentLimit: number; highestThreshold: number };
  };
}

/** What the pruning planner knows better than the graph alone: which convs it may prune and the
 * percent_limit of its policy. Without it, candidatePrunableConvs and the per-layer limit are used. */
export interface PruneView {
  prunableLayers: Layer[];
  percentLimit: number;
  highestThreshold: number;
}

export function inspectReport(graph: ModelGraph, weights?: { path: string; weights: ModelWeights; check: WeightsCheck }, prune?: PruneView): InspectReport {
  const report: InspectReport = {
    input: { width: graph.net.width, height: graph.net.height, channels: graph.net.channels },
    layers: graph.layers.map((l) => ({
      index: l.index, type: l.type, line: l.section.headerRange.start.line + 1,
      input: [...l.input], output: [...l.output], params: l.params, bflops: round(l.bflops, 6),
    })),
    totals: { params: graph.totals.params, bflops: round(graph.totals.bflops, 6), avgOutputs: graph.totals.avgOutputs },
    diagnostics: graph.diagnostics.map((d) => ({
      severity: d.severity, line: d.range.start.line + 1, layer: d.layer ?? null, message: d.message,
    })),
  };
  if (weights) {
    const { header } = weights.weights;
    const g = gammaStats(graph, weights.weights, prune?.prunableLayers);
    if (prune) {
      g.percentLimit = prune.percentLimit;
      g.highestThreshold = prune.highestThreshold;
    }
    report.weights = {
      path: weights.path, major: header.major, minor: header.minor, revision: header.revision, seen: Number(header.seen),
      bytes: weights.check.bytes, expectedBytes: weights.check.expectedBytes, ok: weights.check.ok, partial: weights.check.partial,
      message: weights.check.message,
      gamma: { layers: g.layers, sparsity: g.sparsity, percentLimit: g.percentLimit, highestThreshold: g.highestThreshold },
    };
  }
  return report;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** One line per layer, in the spirit of darknet's own table. */
export function layerLine(l: Layer): string {
  const idx = String(l.index).padStart(4);
  const type = shortType(l).padEnd(6);
  let filters = '';
  let sizeStride = '';
  if (l.conv) {
    filters = String(l.conv.filters);
    sizeStride = `${l.conv.size} x${String(l.conv.size).padStart(2)}/${String(l.conv.strideX).padStart(2)}`;
    if (l.conv.groups > 1) sizeStride += ` g${l.conv.groups}`;
    if (l.conv.dilation > 1) sizeStride += ` d${l.conv.dilation}`;
  } else if (l.type === 'maxpool' || l.type === 'local_avgpool') {
    sizeStride = `${l.size}x${l.size}/${String(l.stride).padStart(2)}`;
  } else if (l.type === 'upsample') {
    sizeStride = `${l.stride}x`;
  } else if (l.type === 'route' || l.type === 'shortcut' || l.type === 'scale_channels' || l.type === 'sam') {
    const refs = l.type === 'route' ? l.inputs : l.inputs.slice(1);
    sizeStride = refs.join(',') + (l.groups && l.groups > 1 ? ` ${l.groupId}/${l.groups}` : '');
  }
  const shapes = `${fmtShape(l.input)} -> ${fmtShape(l.output)}`;
  const bf = l.bflops > 0 ? `${l.bflops.toFixed(3)} BF` : '';
  return `${idx} ${type} ${filters.padStart(5)}  ${sizeStride.padEnd(16)} ${shapes.padEnd(42)} ${bf}`.trimEnd();
}

function fmtShape(s: readonly number[]): string {
  return `${String(s[0]).padStart(4)} x${String(s[1]).padStart(4)} x${String(s[2]).padStart(5)}`;
}

function shortType(l: Layer): string {
  switch (l.type) {
    case 'convolutional': return 'conv';
    case 'maxpool': return 'max';
    case 'avgpool': return 'avg';
    case 'local_avgpool': return 'l_avg';
    case 'upsample': return 'upsamp';
    case 'shortcut': return 'short';
    case 'scale_channels': return 'scale';
    case 'Gaussian_yolo': return 'gyolo';
    case 'connected': return 'conn';
    case 'dropout': return 'drop';
    default: return l.type.slice(0, 6);
  }
}

export function formatReport(graph: ModelGraph, report: InspectReport, file: string): string {
  const out: string[] = [];
  out.push(`${file}: ${graph.net.width}x${graph.net.height}x${graph.net.channels} input, ${graph.layers.length} layers`);
  out.push('   layer   filters  size/strd(dil)   input                 output');
  for (const l of graph.layers) out.push(layerLine(l));
  out.push(`Total BFLOPS ${graph.totals.bflops.toFixed(3)}`);
  out.push(`avg_outputs = ${graph.totals.avgOutputs}`);
  out.push(`params = ${graph.totals.params.toLocaleString('en-US')} (${(graph.totals.params / 1e6).toFixed(2)} M)`);
  if (report.weights) {
    const w = report.weights;
    out.push('');
    out.push(`weights: ${w.path}`);
    out.push(`  header ${w.major}.${w.minor}.${w.revision}, seen ${w.seen} images, ${w.bytes} bytes (cfg needs ${w.expectedBytes})`);
    out.push(`  ${w.ok ? 'OK' : 'MISMATCH'}: ${w.message}`);
    if (w.gamma.layers.length) {
      out.push('');
      out.push('  BN γ of prunable convs (|γ|):');
      out.push('  layer  count      min   median     mean      max  <0.01   <0.1');
      for (const g of w.gamma.layers) {
        out.push(`  ${String(g.index).padStart(5)} ${String(g.count).padStart(6)} ${num(g.min)} ${num(g.median)} ${num(g.mean)} ${num(g.max)} ${pct(g.below001)} ${pct(g.below01)}`);
      }
      out.push(`  sparsity (|γ| < 0.01): ${(w.gamma.sparsity * 100).toFixed(1)}%; highest threshold ${w.gamma.highestThreshold.toFixed(4)} → percent_limit ${(w.gamma.percentLimit * 100).toFixed(1)}%`);
    }
  }
  const errors = graph.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = graph.diagnostics.filter((d) => d.severity === 'warning').length;
  out.push('');
  out.push(`${errors} error(s), ${warnings} warning(s)`);
  for (const d of report.diagnostics) {
    out.push(`${file}:${d.line}: ${d.severity}: ${d.message}`);
  }
  return out.join('\n');
}

function num(x: number): string {
  return x.toFixed(4).padStart(8);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`.padStart(6);
}

export { fmt };
