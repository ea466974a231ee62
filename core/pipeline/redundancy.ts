// What the layer redundancy view needs, computed once from the graph, the weights and the channel
// dependency groups: per-layer |γ|, channel groups and coupling, the cost formulas, and the
// percent_limit of every strategy. The slider preview (preview.ts) then runs on this plain data.
import { basename } from 'node:path';
import type { Layer, ModelGraph, ModelWeights } from '../darknet/types';
import { buildChannelGroups, type ChannelGroups } from '../prune/groups';
import { percentLimit, PruneError } from '../prune/policy';
import { checkPrunable } from '../prune/prune';
import {
  G_CARRIED, G_PRUNABLE, G_SCALE, G_SHORTCUT, G_SLICE, PREVIEW_STRATEGIES,
  type LayerCost, type PreviewStrategy, type RedundancyData, type RedundancyLayer, type StrategyLimit,
} from './preview';

export type { RedundancyData, RedundancyLayer } from './preview';

function costOf(l: Layer, groups: ChannelGroups): LayerCost {
  const hw = l.output[0] * l.output[1];
  switch (l.type) {
    case 'convolutional': {
      const c = l.conv!;
      const xnor = /^\s*1/.test(l.section.entries.find((e) => e.key === 'xnor')?.value ?? '0');
      return { kind: 'conv', k2: c.size * c.size, hw, groups: c.groups, depthwise: groups.depthwise.has(l.index), bn: c.batchNormalize, xnor };
    }
    case 'maxpool':
    case 'local_avgpool':
      // maxpool_depth changes the channel count: its input is fixed by the groups, the cost is constant
      if (l.output[2] !== l.input[2]) return { kind: 'fixed', params: l.params, bflops: l.bflops };
      return { kind: 'pool', k2: (l.size ?? 1) * (l.size ?? 1), hw };
    case 'shortcut': {
      const n = Math.max(0, l.inputs.length - 1);
      return { kind: 'shortcut', hw: l.input[0] * l.input[1], n, params: l.params };
    }
    default:
      return { kind: 'fixed', params: l.params, bflops: l.bflops };
  }
}

/** The redundancy view's data. Throws the core's PruneError when the model cannot be analysed. */
export function buildRedundancy(graph: ModelGraph, weights: ModelWeights, files: { cfg: string; weights: string }): RedundancyData {
  checkPrunable(graph, weights);
  const groups = buildChannelGroups(graph);
  const groupFlags = groups.groups.map((g) => (g.prunable ? G_PRUNABLE : 0) | (g.coupling.shortcut ? G_SHORTCUT : 0)
    | (g.coupling.scale ? G_SCALE : 0) | (g.coupling.slice ? G_SLICE : 0) | (g.coupling.carried ? G_CARRIED : 0));
  const prunable = new Set(groups.prunableLayers);
  const layers: RedundancyLayer[] = graph.layers.map((l) => {
    const row: RedundancyLayer = {
      index: l.index,
      type: l.type,
      line: l.section.headerRange.start.line,
      inputs: l.inputs,
      output: [l.output[0], l.output[1], l.output[2]],
      groups: Array.from(groups.layerChannels[l.index]),
      cost: costOf(l, groups),
    };
    if (l.type === 'convolutional') {
      const s = weights.layers.get(l.index)?.scales;
      if (s && l.conv?.batchNormalize) row.gamma = Array.from(s, (x) => Math.abs(x));
      if (groups.depthwise.has(l.index)) row.depthwise = true;
      row.prunable = prunable.has(l.index);
      if (!row.prunable) row.reason = groups.notPrunable.get(l.index);
    }
    return row;
  });
  const limits = {} as Record<PreviewStrategy, StrategyLimit>;
  for (const s of PREVIEW_STRATEGIES) {
    try {
      const lim = percentLimit(groups, weights, s);
      limits[s] = {
        percentLimit: lim.percentLimit,
        highestThreshold: Number.isFinite(lim.highestThreshold) ? lim.highestThreshold : null,
        layer: lim.layer, count: lim.count,
      };
    } catch (e) {
      if (!(e instanceof PruneError)) throw e;
      limits[s] = { percentLimit: 0, highestThreshold: null, layer: -1, count: 0 };
    }
  }
  return {
    version: 1,
    name: basename(files.cfg),
    cfg: files.cfg,
    weights: files.weights,
    input: [graph.net.width, graph.net.height, graph.net.channels],
    totals: { params: graph.totals.params, bflops: graph.totals.bflops },
    groupFlags,
    inputGroups: Array.from(groups.inputChannels),
    layers,
    limits,
  };
}
