// Channel dependency groups (DepGraph-style, Fang et al. CVPR 2023) built from the layer graph alone.
//
// Every output channel of every conv is an element; elements that must share one keep/remove
// decision are joined (union-find):
//   - shortcut: channel i of every added tensor (elementwise sum) — "shortcut" coupling;
//   - scale_channels / sam: channel i of both multiplied tensors — "scale" coupling;
//   - route groups=G group_id=g: channel j of each of the G slices (the kept slice must stay the
//     same channels after pruning, so the producer's mask is made symmetric between slices) — "slice";
//   - depthwise conv (groups = channels = filters): its output channel i carries its input channel i
//     (removing the input channel removes the depthwise filter) — "carried".
// route concatenates channel lists; upsample, maxpool, avgpool, local_avgpool, dropout and
// [activation] pass them through. Elements are fixed (never removed) when they reach a layer whose
// channel count cannot change: detection heads, [connected], grouped convs, reorg, the model's
// output, ... and every channel of a conv without batch norm (no γ to rank it by).
import { isHead } from '../darknet/graph';
import { SectionOptions } from '../darknet/options';
import type { Layer, ModelGraph } from '../darknet/types';
import { isElementwiseActivation } from './activations';

export type ChannelRole =
  /** A BN conv's own channel: its |γ| takes part in the keep decision. */
  | 'decider'
  /** A depthwise conv's channel: it follows its input channel's decision. */
  | 'carried';

export interface GroupMember {
  layer: number;
  channel: number;
  role: ChannelRole;
}

export interface GroupCoupling {
  /** Joined by a [shortcut] (elementwise sum). */
  shortcut: boolean;
  /** Joined by [scale_channels] or [sam] (elementwise product). */
  scale: boolean;
  /** Joined by a route's groups/group_id slicing. */
  slice: boolean;
  /** Contains depthwise channels that follow their input. */
  carried: boolean;
}

export interface ChannelGroup {
  id: number;
  /** Conv channels in the group, by layer then channel. Empty for groups of non-conv channels. */
  members: GroupMember[];
  prunable: boolean;
  /** Why the group is not prunable (the first reason found). */
  reason?: string;
  /** The layer whose channel carries the reason (-1 for the network input). */
  reasonLayer?: number;
  coupling: GroupCoupling;
}

export interface ChannelGroups {
  graph: ModelGraph;
  groups: ChannelGroup[];
  /** For every layer (by index), the group id of each of its output channels. */
  layerChannels: Int32Array[];
  /** Group ids of the network input's channels. */
  inputChannels: Int32Array;
  /** Conv layers with at least one prunable output channel, ascending. */
  prunableLayers: number[];
  /** Conv layers none of whose channels can be removed, with the reason. */
  notPrunable: Map<number, string>;
  /** Depthwise convs (groups = input channels = filters). */
  depthwise: Set<number>;
}

const F_SHORTCUT = 1;
const F_SCALE = 2;
const F_SLICE = 4;
const F_CARRIED = 8;

/** Layers that map channel i of their input to channel i of their output, unchanged in count. */
const PASS_THROUGH = new Set(['upsample', 'maxpool', 'avgpool', 'local_avgpool', 'dropout', 'activation']);

export function isDepthwise(layer: Layer): boolean {
  const c = layer.conv;
  return !!c && c.groups > 1 && c.groups === layer.input[2] && c.filters === layer.input[2];
}

export function buildChannelGroups(graph: ModelGraph): ChannelGroups {
  const parent: number[] = [];
  const flags: number[] = [];
  const reason: (string | undefined)[] = [];
  const ownerLayer: number[] = [];
  const ownerChannel: number[] = [];
  const role: (ChannelRole | undefined)[] = [];

  const newElement = (layer: number, channel: number, r?: ChannelRole): number => {
    const id = parent.length;
    parent.push(id); flags.push(0); reason.push(undefined);
    ownerLayer.push(layer); ownerChannel.push(channel); role.push(r);
    return id;
  };
  const find = (x: number): number => {
    let r = x;
    while (parent[r] !== r) r = parent[r];
    while (parent[x] !== r) { const n = parent[x]; parent[x] = r; x = n; }
    return r;
  };
  const union = (a: number, b: number, flag: number) => {
    flags[a] |= flag; flags[b] |= flag;
    const ra = find(a), rb = find(b);
    if (ra !== rb) {
      if (ra < rb) parent[rb] = ra; else parent[ra] = rb;
    }
  };
  const fix = (el: number, why: string) => { if (reason[el] === undefined) reason[el] = why; };
  const fixAll = (els: ArrayLike<number>, why: string) => { for (let i = 0; i < els.length; i++) fix(els[i], why); };
  const fresh = (layer: number, n: number, why?: string): Int32Array => {
    const out = new Int32Array(Math.max(0, n));
    for (let i = 0; i < out.length; i++) { out[i] = newElement(layer, i); if (why) fix(out[i], why); }
    return out;
  };

  const layers = graph.layers;
  const input = fresh(-1, graph.net.channels, 'it is the network input');
  const out: Int32Array[] = [];
  const depthwise = new Set<number>();
  const consumers: number[][] = layers.map(() => []);
  for (const l of layers) for (const i of l.inputs) if (i >= 0 && i < layers.length) consumers[i].push(l.index);
  const outOf = (i: number): Int32Array => (i < 0 ? input : out[i]);
  const name = (l: Layer) => `[${l.section.name}] layer ${l.index}`;

  for (const l of layers) {
    const ins = l.inputs.map(outOf);
    const first = ins[0] ?? input;
    switch (l.type) {
      case 'convolutional': {
        const conv = l.conv!;
        if (first.length !== l.input[2]) {
          throw new Error(`layer ${l.index}: the graph gives ${l.input[2]} input channels but its input has ${first.length}; fix the cfg's errors first.`);
        }
        let why: string | undefined;
        if (!conv.batchNormalize) why = `conv layer ${l.index} has no batch norm, so no γ ranks its channels`;
        else if (conv.shareIndex !== undefined) why = `conv layer ${l.index} shares the weights of layer ${conv.shareIndex} (share_index)`;
        else if (!isElementwiseActivation(conv.activation)) why = `conv layer ${l.index} uses activation=${conv.activation}, which mixes channels`;
        else if (new SectionOptions(l.section).int('antialiasing', 0)) why = `conv layer ${l.index} uses antialiasing`;
        if (isDepthwise(l) && !why) {
          depthwise.add(l.index);
          const o = new Int32Array(conv.filters);
          for (let c = 0; c < o.length; c++) {
            o[c] = newElement(l.index, c, 'carried');
            union(o[c], first[c], F_CARRIED);
          }
          out.push(o);
          break;
        }
        if (conv.groups > 1 || (isDepthwise(l) && why)) {
          fixAll(first, `conv layer ${l.index} is a grouped convolution (groups=${conv.groups}) that reads these channels`);
        }
        const o = new Int32Array(conv.filters);
        for (let c = 0; c < o.length; c++) {
          o[c] = newElement(l.index, c, 'decider');
          if (why) fix(o[c], why);
          else if (conv.groups > 1) fix(o[c], `conv layer ${l.index} is a grouped convolution (groups=${conv.groups})`);
        }
        out.push(o);
        break;
      }
      case 'route': {
        let total = 0;
        for (const a of ins) total += a.length;
        const cat = new Int32Array(total);
        let k = 0;
        for (const a of ins) { cat.set(a, k); k += a.length; }
        const g = l.groups ?? 1;
        const gid = l.groupId ?? 0;
        if (g <= 1) { out.push(cat); break; }
        if (total % g !== 0 || gid < 0 || gid >= g) {
          fixAll(cat, `route layer ${l.index} cannot slice ${total} channels into groups=${g}`);
          out.push(fresh(l.index, l.output[2], `route layer ${l.index} has an invalid groups/group_id`));
          break;
        }
        const s = total / g;
        for (let j = 0; j < s; j++) for (let q = 1; q < g; q++) union(cat[j], cat[q * s + j], F_SLICE);
        out.push(cat.slice(gid * s, (gid + 1) * s));
        break;
      }
      case 'shortcut': {
        const o = new SectionOptions(l.section);
        const wt = o.str('weights_type', 'none');
        const n = first.length;
        if (wt !== 'none' || ins.some((a) => a.length !== n)) {
          const why = wt !== 'none'
            ? `shortcut layer ${l.index} has weights_type=${wt} (per-input weights)`
            : `shortcut layer ${l.index} adds tensors with different channel counts`;
          for (const a of ins) fixAll(a, why);
          out.push(first);
          break;
        }
        for (let q = 1; q < ins.length; q++) for (let c = 0; c < n; c++) union(first[c], ins[q][c], F_SHORTCUT);
        out.push(first);
        break;
      }
      case 'scale_channels':
      case 'sam': {
        const scales = ins[0];
        const from = ins[1] ?? input;
        const scaleWh = l.type === 'scale_channels' && new SectionOptions(l.section).bool('scale_wh');
        if (scaleWh || scales.length !== from.length) {
          const why = `${name(l)} multiplies tensors whose channels do not align one to one`;
          fixAll(scales, why); fixAll(from, why);
        } else {
          for (let c = 0; c < from.length; c++) union(scales[c], from[c], F_SCALE);
        }
        out.push(from);
        break;
      }
      default: {
        if (PASS_THROUGH.has(l.type) && !(l.type === 'maxpool' && new SectionOptions(l.section).int('maxpool_depth', 0))
          && !(l.type === 'activation' && !isElementwiseActivation(l.activation ?? 'linear'))
          && first.length === l.output[2]) {
          out.push(first);
          break;
        }
        const why = isHead(l.type)
          ? `its output feeds the ${name(l)} detection head`
          : `its output is read by ${name(l)}, whose channel count cannot change`;
        for (const a of ins) fixAll(a, why);
        out.push(fresh(l.index, l.output[2], `it is the output of ${name(l)}`));
      }
    }
  }
  // Outputs of the model (layers nobody reads, other than heads) keep their width.
  for (const l of layers) {
    if (consumers[l.index].length === 0 && !isHead(l.type)) fixAll(out[l.index], `it is an output of the model (${name(l)})`);
  }

  // Components → groups, numbered in order of first appearance.
  const n = parent.length;
  const groupOfRoot = new Int32Array(n).fill(-1);
  const groups: ChannelGroup[] = [];
  const groupOf = new Int32Array(n);
  const rootFlags = new Int32Array(n);
  for (let e = 0; e < n; e++) {
    const r = find(e);
    rootFlags[r] |= flags[e];
  }
  for (let e = 0; e < n; e++) {
    const r = find(e);
    let g = groupOfRoot[r];
    if (g < 0) {
      g = groups.length;
      groupOfRoot[r] = g;
      const f = rootFlags[r];
      groups.push({
        id: g, members: [], prunable: true,
        coupling: { shortcut: !!(f & F_SHORTCUT), scale: !!(f & F_SCALE), slice: !!(f & F_SLICE), carried: !!(f & F_CARRIED) },
      });
    }
    groupOf[e] = g;
    const grp = groups[g];
    const r2 = role[e];
    if (r2) grp.members.push({ layer: ownerLayer[e], channel: ownerChannel[e], role: r2 });
    if (reason[e] !== undefined && grp.prunable) { grp.prunable = false; grp.reason = reason[e]; grp.reasonLayer = ownerLayer[e]; }
  }
  for (const g of groups) {
    if (g.prunable && !g.members.some((m) => m.role === 'decider')) { g.prunable = false; g.reason = 'no conv with batch norm decides it'; }
    g.members.sort((a, b) => a.layer - b.layer || a.channel - b.channel);
  }
  const map = (a: Int32Array) => { const r = new Int32Array(a.length); for (let i = 0; i < a.length; i++) r[i] = groupOf[a[i]]; return r; };
  const layerChannels = out.map(map);
  const prunableLayers: number[] = [];
  const notPrunable = new Map<number, string>();
  for (const l of layers) {
    if (l.type !== 'convolutional') continue;
    const chans = layerChannels[l.index];
    let any = false;
    for (let c = 0; c < chans.length; c++) if (groups[chans[c]].prunable) { any = true; break; }
    if (any) prunableLayers.push(l.index);
    else notPrunable.set(l.index, chans.length ? explain(groups[chans[0]], l.index) : 'it has no channels');
  }
  return { graph, groups, layerChannels, inputChannels: map(input), prunableLayers, notPrunable, depthwise };
}

function explain(g: ChannelGroup, layer: number): string {
  const why = g.reason ?? 'its channels cannot be removed';
  if (g.reasonLayer === undefined || g.reasonLayer === layer) return why;
  const how = [g.coupling.shortcut && 'a shortcut', g.coupling.scale && 'scale_channels', g.coupling.slice && 'a grouped route',
    g.coupling.carried && 'a depthwise conv'].filter(Boolean).join(', ');
  return `its channels are coupled${how ? ` through ${how}` : ''} with channels that cannot be removed (${why})`;
}

/** Conv layers grouped by coupling: layers that share at least one channel group. */
export function coupledLayerSets(groups: ChannelGroups): number[][] {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  for (const l of groups.prunableLayers) parent.set(l, l);
  for (const g of groups.groups) {
    if (!g.prunable || g.members.length < 2) continue;
    for (const m of g.members.slice(1)) {
      const a = find(g.members[0].layer);
      const b = find(m.layer);
      if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
    }
  }
  const sets = new Map<number, number[]>();
  for (const l of groups.prunableLayers) {
    const r = find(l);
    if (!sets.has(r)) sets.set(r, []);
    sets.get(r)!.push(l);
  }
  return [...sets.values()];
}
