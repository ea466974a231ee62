// Channel dependency groups: which conv output channels share one keep/remove decision, derived from
// the graph alone (no hard-coded layer indices), on hand-written fixtures and on real cfgs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadCfg } from '../../core/darknet/files';
import { analyzeCfg } from '../../core/darknet/graph';
import { buildChannelGroups, coupledLayerSets, type ChannelGroups } from '../../core/prune/groups';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';
import { fixtureGraph } from '../fixtures/prune/helpers';

/** The group ids of a layer's channels. */
const ids = (g: ChannelGroups, layer: number) => [...g.layerChannels[layer]];
const group = (g: ChannelGroups, layer: number, ch: number) => g.groups[g.layerChannels[layer][ch]];

describe('prune groups: fixtures', () => {
  test('shortcuts couple their members channel by channel; routes concatenate; pass-through layers keep ids', () => {
    const graph = fixtureGraph('residual.cfg');
    const g = buildChannelGroups(graph);
    // shortcut 3 adds 0 and 2; shortcut 6 adds 3 and 5: convs 0, 2, 5 share every channel's group
    assert.deepEqual(ids(g, 0), ids(g, 2));
    assert.deepEqual(ids(g, 2), ids(g, 5));
    assert.deepEqual(ids(g, 3), ids(g, 0));
    for (let c = 0; c < 16; c++) {
      const grp = group(g, 0, c);
      assert.equal(grp.coupling.shortcut, true);
      assert.deepEqual(grp.members.map((m) => m.layer), [0, 2, 5]);
      assert.ok(grp.prunable);
    }
    // the bottlenecks inside the blocks are independent
    assert.equal(group(g, 1, 0).members.length, 1);
    assert.equal(group(g, 1, 0).coupling.shortcut, false);
    // maxpool 8 and dropout 9 pass layer 7's channels through; route 12 = [9, 11]
    assert.deepEqual(ids(g, 8), ids(g, 7));
    assert.deepEqual(ids(g, 9), ids(g, 7));
    assert.deepEqual(ids(g, 12), [...ids(g, 9), ...ids(g, 11)]);
    // route 18 = [upsample 17 (= route 16 = 12), 6]
    assert.deepEqual(ids(g, 18), [...ids(g, 12), ...ids(g, 6)]);
    // convs feeding [yolo] have no BN and are not prunable; everything else is
    assert.deepEqual(g.prunableLayers, [0, 1, 2, 4, 5, 7, 11, 13, 19]);
    assert.match(g.notPrunable.get(14)!, /no batch norm/);
    assert.match(g.notPrunable.get(20)!, /no batch norm/);
    assert.deepEqual(coupledLayerSets(g), [[0, 2, 5], [1], [4], [7], [11], [13], [19]]);
  });

  test('a grouped route couples the halves it slices (the producer mask is symmetric)', () => {
    const graph = fixtureGraph('grouped-route.cfg');
    const g = buildChannelGroups(graph);
    const l1 = ids(g, 1);
    for (let c = 0; c < 8; c++) {
      assert.equal(l1[c], l1[c + 8], `channel ${c} and ${c + 8} of layer 1 share a group`);
      const grp = group(g, 1, c);
      assert.equal(grp.coupling.slice, true);
      assert.deepEqual(grp.members.map((m) => [m.layer, m.channel]), [[1, c], [1, c + 8]]);
    }
    // the route outputs the second half
    assert.deepEqual(ids(g, 2), l1.slice(8));
    // route 7 = [1, 6]
    assert.deepEqual(ids(g, 7), [...l1, ...ids(g, 6)]);
    assert.deepEqual(g.prunableLayers, [0, 1, 3, 4, 6, 9]);
  });

  test('depthwise convs carry their input channel; SE scale_channels couples with convs without BN', () => {
    const graph = fixtureGraph('depthwise.cfg');
    const g = buildChannelGroups(graph);
    assert.deepEqual([...g.depthwise].sort((a, b) => a - b), [3, 12]);
    // expand 2 → depthwise 3: one group per channel, the depthwise channel "carried"
    for (let c = 0; c < 24; c++) {
      const grp = group(g, 2, c);
      assert.deepEqual(grp.members, [{ layer: 2, channel: c, role: 'decider' }, { layer: 3, channel: c, role: 'carried' }]);
      assert.equal(grp.coupling.carried, true);
      assert.equal(grp.coupling.shortcut, false);
    }
    // project 4 + dropout 5 + shortcut 6 from 1: convs 1 and 4 coupled through the dropout
    assert.deepEqual(ids(g, 4), ids(g, 1));
    assert.deepEqual(ids(g, 5), ids(g, 4));
    assert.equal(group(g, 1, 0).coupling.shortcut, true);
    // conv 7 is multiplied by conv 10 (no BN, logistic) in scale_channels 11: not prunable; nor is
    // depthwise 12, which carries those channels
    assert.match(g.notPrunable.get(7)!, /coupled through scale_channels.*cannot be removed.*conv layer 10 has no batch norm/);
    assert.match(g.notPrunable.get(12)!, /cannot be removed/);
    assert.deepEqual(g.prunableLayers, [0, 1, 2, 3, 4, 13]);
  });

  test('grouped convs that are not depthwise fix their inputs and outputs', () => {
    const text = `[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\npad=1\nactivation=leaky\n`
      + `[convolutional]\nbatch_normalize=1\nfilters=8\ngroups=2\nsize=3\npad=1\nactivation=leaky\n`
      + `[convolutional]\nbatch_normalize=1\nfilters=8\nsize=1\nactivation=leaky\n[convolutional]\nfilters=18\nsize=1\nactivation=linear\n`
      + `[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n`;
    const g = buildChannelGroups(analyzeCfg(text));
    assert.match(g.notPrunable.get(0)!, /grouped convolution \(groups=2\) that reads these channels/);
    assert.match(g.notPrunable.get(1)!, /grouped convolution/);
    assert.deepEqual(g.prunableLayers, [2]);
  });
});

describe('prune groups: real cfgs', { skip: NO_CORPUS }, () => {
  test('yolov3: the 23 residual blocks couple 5 stage groups; the convs before [yolo] are fixed', () => {
    const graph = loadCfg(corpusPath('cfg/alexeyab/yolov3.cfg'));
    const g = buildChannelGroups(graph);
    const sets = coupledLayerSets(g).filter((s) => s.length > 1);
    // darknet53 stages: the stride-2 conv and the second conv of each residual block
    assert.deepEqual(sets.map((s) => s.length), [2, 3, 9, 9, 5]);
    assert.deepEqual(sets[0], [1, 3]);
    for (const i of [81, 93, 105]) assert.match(g.notPrunable.get(i)!, /no batch norm/);
    assert.equal(g.prunableLayers.length, 72);
  });

  test('yolov4-tiny: grouped routes couple halves; yolov4: CSP shortcuts and SPP maxpools', () => {
    const tiny = buildChannelGroups(loadCfg(corpusPath('cfg/alexeyab/yolov4-tiny.cfg')));
    for (const producer of [2, 10, 18]) {
      const ch = tiny.layerChannels[producer];
      const half = ch.length / 2;
      for (let c = 0; c < half; c++) assert.equal(ch[c], ch[c + half]);
      assert.equal(tiny.groups[ch[0]].coupling.slice, true);
    }
    const v4 = buildChannelGroups(loadCfg(corpusPath('cfg/alexeyab/yolov4.cfg')));
    assert.ok(v4.prunableLayers.length > 90);
    // SPP: maxpools 108, 110, 112 and the route 113 concatenate layer 107's channels four times
    const r = [...v4.layerChannels[113]];
    const c107 = [...v4.layerChannels[107]];
    assert.deepEqual(r, [...c107, ...c107, ...c107, ...c107]);
  });

  test('the corpus models with weights: depthwise chains, shortcuts through dropout, SE blocks', () => {
    for (const m of WEIGHTS_MODELS) {
      const graph = loadCfg(m.cfg);
      const g = buildChannelGroups(graph);
      assert.ok(g.depthwise.size > 10, `${m.cfg}: depthwise convs found`);
      assert.ok(g.prunableLayers.length > 20, `${m.cfg}: prunable layers`);
      for (const l of graph.layers) {
        if (l.type === 'yolo') assert.ok(g.notPrunable.has(l.inputs[0]), `${m.cfg}: conv ${l.inputs[0]} before [yolo] is fixed`);
      }
      for (const d of g.depthwise) {
        if (g.notPrunable.has(d)) continue;
        const grp = g.groups[g.layerChannels[d][0]];
        assert.ok(grp.members.some((x) => x.layer === d && x.role === 'carried'));
        assert.ok(grp.members.some((x) => x.role === 'decider'));
      }
    }
    // yolo-fastest: shortcut 8 adds dropout 7 (conv 6) and conv 3
    const yf = buildChannelGroups(loadCfg(WEIGHTS_MODELS[0].cfg));
    assert.deepEqual([...yf.layerChannels[6]], [...yf.layerChannels[3]]);
    // yoloface: SE-gated convs (63, 75, 87) are not prunable
    const face = buildChannelGroups(loadCfg(WEIGHTS_MODELS[3].cfg));
    for (const i of [63, 75, 87]) assert.match(face.notPrunable.get(i)!, /scale_channels/);
  });
});
