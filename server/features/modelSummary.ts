// The model at a glance (layers, params, BFLOPs, problems) for the client's status bar.
import type { Analysis } from '../analysis';
import type { ModelSummary } from '../protocol';
import type { WeightsInfo } from '../weights';
import { weightsDiagnostic } from './diagnostics';

export function modelSummary(a: Analysis, weights: WeightsInfo): ModelSummary {
  const { net, layers, totals, diagnostics } = a.graph;
  let errors = diagnostics.filter((d) => d.severity === 'error').length;
  let warnings = diagnostics.filter((d) => d.severity === 'warning').length;
  const w = weightsDiagnostic(a, weights);
  if (w?.severity === 1) errors++;
  else if (w?.severity === 2) warnings++;
  const summary: ModelSummary = {
    uri: a.uri,
    version: a.version,
    input: [net.width, net.height, net.channels],
    layers: layers.length,
    params: totals.params,
    bflops: totals.bflops,
    errors,
    warnings,
  };
  if (weights.kind === 'checked') {
    summary.weights = { path: weights.path, ok: weights.result.check.ok, message: weights.result.check.message };
  }
  return summary;
}
