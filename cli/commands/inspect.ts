import { loadCfg, loadWeightsFile, weightsBeside } from '../../core/darknet/files';
import { formatReport, inspectReport, type PruneView } from '../../core/darknet/summary';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { buildChannelGroups, percentLimit } from '../../core/prune';
import { flagString, parseArgs, parseSize, UsageError } from '../args';
import type { Command } from '../command';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show a model\'s layers, shapes, BFLOPs, diagnostics and weights check',
  usage: 'Usage: darkslim inspect <cfg> [--weights W] [--size WxH] [--json]\n\n'
    + 'Prints darknet\'s network summary, the totals and the diagnostics. With weights (or a .weights\n'
    + 'with the same name beside the cfg) also the header, the exact size check and the BN γ table.\n'
    + 'Exit code 1 when there are errors.',
  async run(argv) {
    const args = parseArgs(argv, { booleans: ['json'], values: ['weights', 'size'] });
    const [cfgPath, ...extra] = args.positional;
    if (!cfgPath) throw new UsageError('missing <cfg>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const size = flagString(args, 'size');
    const [width, height] = size ? parseSize(size) : [undefined, undefined];
    const graph = loadCfg(cfgPath, { width, height });
    const weightsPath = flagString(args, 'weights') ?? weightsBeside(cfgPath);
    const weights = weightsPath ? { path: weightsPath, ...loadWeightsFile(weightsPath, graph) } : undefined;
    const usable = weights && weights.check.ok && !weights.check.partial && !graph.diagnostics.some((d) => d.severity === 'error');
    const report = inspectReport(graph, weights, usable ? pruneView(graph, weights.weights) : undefined);
    if (args.flags.has('json')) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else process.stdout.write(formatReport(graph, report, cfgPath) + '\n');
    const hasErrors = graph.diagnostics.some((d) => d.severity === 'error') || (weights !== undefined && !weights.check.ok);
    return hasErrors ? 1 : 0;
  },
};

/** The pruning planner's view (slim strategy), so inspect and prune report the same percent_limit. */
function pruneView(graph: ModelGraph, weights: ModelWeights): PruneView | undefined {
  try {
    const groups = buildChannelGroups(graph);
    const limit = percentLimit(groups, weights, 'slim');
    return { prunableLayers: groups.prunableLayers.map((i) => graph.layers[i]), percentLimit: limit.percentLimit, highestThreshold: limit.highestThreshold };
  } catch {
    return undefined; // models the planner cannot group still get the graph-only statistics
  }
}
