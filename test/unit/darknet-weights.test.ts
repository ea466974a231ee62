import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { analyzeCfg } from '../../core/darknet/graph';
import { gammaStats, readWeights, writeWeights } from '../../core/darknet/weights';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';

test('every corpus .weights reads, fits its cfg exactly and round-trips byte for byte', { skip: NO_CORPUS }, () => {
  for (const m of WEIGHTS_MODELS) {
    const graph = analyzeCfg(readFileSync(m.cfg, 'utf8'));
    const bytes = readFileSync(m.weights);
    const { weights, check } = readWeights(bytes, graph);
    assert.ok(check.ok && !check.partial, `${m.weights}: ${check.message}`);
    assert.equal(check.bytes, check.expectedBytes);
    assert.deepEqual([weights.header.major, weights.header.minor, weights.header.revision, weights.header.headerBytes], [0, 2, 5, 20]);
    const again = writeWeights(graph, weights);
    assert.ok(Buffer.from(again).equals(bytes), `${m.weights} round trip`);
  }
});

test('arrays are views into the file, not copies', { skip: NO_CORPUS }, () => {
  const m = WEIGHTS_MODELS[0];
  const bytes = readFileSync(m.weights);
  const { weights } = readWeights(bytes, analyzeCfg(readFileSync(m.cfg, 'utf8')));
  const first = weights.layers.get(0)!;
  assert.equal(first.biases.buffer, bytes.buffer);
  assert.equal(first.biases.byteOffset, bytes.byteOffset + 20);
});

test('the partial .57 backbone file reads with its cutoff', { skip: NO_CORPUS }, () => {
  const graph = analyzeCfg(readFileSync(corpusPath('weights/MobileNetV2-YOLOv3-Nano-VOC/MobileNetV2-YOLOv3-Nano-voc.cfg'), 'utf8'));
  const bytes = readFileSync(corpusPath('weights/MobileNetV2-YOLOv3-Nano-VOC/MobileNetV2-Nano.57'));
  const { weights, check } = readWeights(bytes, graph);
  assert.ok(check.partial, check.message);
  assert.equal(check.loadedLayers, 57);
  assert.match(check.message, /layers 0–56/);
  assert.ok(weights.layers.has(56) || [...weights.layers.keys()].every((k) => k < 57));
  assert.ok(![...weights.layers.keys()].some((k) => k >= 57));
  assert.ok(Buffer.from(writeWeights(graph, weights)).equals(bytes), 'partial file round trip');
});

test('a truncated copy names the layer it ends in, with the byte counts', { skip: NO_CORPUS }, () => {
  const m = WEIGHTS_MODELS[0];
  const graph = analyzeCfg(readFileSync(m.cfg, 'utf8'));
  const bytes = readFileSync(m.weights);
  // end the file in the middle of the last layer's weights
  const last = graph.layers.filter((l) => l.weightFloats > 0).at(-1)!;
  const cut = bytes.subarray(0, bytes.length - 100);
  const { check } = readWeights(cut, graph);
  assert.equal(check.ok, false);
  assert.equal(check.layer, last.index);
  assert.match(check.message, new RegExp(`the file has ${cut.length} bytes but the cfg needs ${bytes.length}`));
  assert.match(check.message, new RegExp(`layer ${last.index} \\[convolutional\\]`));
});

test('an over-long copy reports the left-over bytes', { skip: NO_CORPUS }, () => {
  const m = WEIGHTS_MODELS[0];
  const graph = analyzeCfg(readFileSync(m.cfg, 'utf8'));
  const bytes = readFileSync(m.weights);
  const longer = Buffer.concat([bytes, Buffer.alloc(64)]);
  const { check } = readWeights(longer, graph);
  assert.equal(check.ok, false);
  assert.match(check.message, /64 bytes are left over after the last layer/);
  assert.match(check.message, new RegExp(`needs ${bytes.length}`));
});

test('after editing filters= the first layer that no longer fits is named', { skip: NO_CORPUS }, () => {
  const m = WEIGHTS_MODELS[0];
  const text = readFileSync(m.cfg, 'utf8');
  const bytes = readFileSync(m.weights);
  const graph = analyzeCfg(text);
  // change the filters of a batch-normalised conv in the middle of the backbone
  const target = graph.layers.find((l) => l.index > 20 && l.conv?.batchNormalize && l.conv.groups === 1)!;
  const line = target.section.entries.find((e) => e.key === 'filters')!.line;
  const lines = text.split('\n');
  lines[line] = `filters=${target.conv!.filters + 8}`;
  const edited = analyzeCfg(lines.join('\n'));
  const { check } = readWeights(bytes, edited);
  assert.equal(check.ok, false);
  assert.equal(check.layer, target.index, check.message);
  // and the head conv before [yolo], which has no batch norm to check it by
  const head = graph.layers.find((l) => l.type === 'yolo')!;
  const conv = graph.layers[head.index - 1];
  const hl = conv.section.entries.find((e) => e.key === 'filters')!.line;
  const lines2 = text.split('\n');
  lines2[hl] = 'filters=18';
  const { check: c2 } = readWeights(bytes, analyzeCfg(lines2.join('\n')));
  assert.equal(c2.layer, conv.index, c2.message);
});

test('old 16-byte headers (32-bit seen) read and write back identically', () => {
  const cfg = '[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nsize=1\nbatch_normalize=1\nactivation=leaky\n';
  const graph = analyzeCfg(cfg);
  const floats = 2 + 3 * 2 + 2 * 3;
  const buf = Buffer.alloc(16 + floats * 4);
  buf.writeInt32LE(0, 0); buf.writeInt32LE(1, 4); buf.writeInt32LE(0, 8); buf.writeUInt32LE(12345, 12);
  for (let i = 0; i < floats; i++) buf.writeFloatLE(0.5 + i, 16 + 4 * i);
  const { weights, check } = readWeights(buf, graph);
  assert.ok(check.ok, check.message);
  assert.equal(weights.header.headerBytes, 16);
  assert.equal(weights.header.seen, 12345n);
  assert.deepEqual([...weights.layers.get(0)!.scales!], [2.5, 3.5]);
  assert.ok(Buffer.from(writeWeights(graph, weights)).equals(buf));
});

test('γ statistics and percent_limit follow the study\'s definition', () => {
  const cfg = '[net]\nwidth=8\nheight=8\nchannels=1\n'
    + '[convolutional]\nfilters=4\nsize=1\nbatch_normalize=1\nactivation=leaky\n'
    + '[convolutional]\nfilters=2\nsize=1\nbatch_normalize=1\nactivation=leaky\n'
    + '[convolutional]\nfilters=1\nsize=1\nactivation=linear\n';
  const graph = analyzeCfg(cfg);
  const gammas = [[0.001, -0.5, 0.2, 0.05], [0.3, -0.004]];
  const floats: number[] = [];
  gammas.forEach((g, li) => {
    const n = g.length;
    const cin = li === 0 ? 1 : 4;
    floats.push(...Array(n).fill(0.1), ...g, ...Array(n).fill(0), ...Array(n).fill(1), ...Array(n * cin).fill(0.01));
  });
  floats.push(0, 0.1, 0.1);
  const buf = Buffer.alloc(20 + floats.length * 4);
  buf.writeInt32LE(0, 0); buf.writeInt32LE(2, 4); buf.writeInt32LE(5, 8);
  floats.forEach((f, i) => buf.writeFloatLE(f, 20 + 4 * i));
  const { weights, check } = readWeights(buf, graph);
  assert.ok(check.ok, check.message);
  const stats = gammaStats(graph, weights);
  assert.deepEqual(stats.layers.map((l) => l.index), [0, 1]); // layer 2 has no BN
  assert.equal(stats.layers[0].count, 4);
  assert.ok(Math.abs(stats.layers[0].median - (0.05 + 0.2) / 2) < 1e-6);
  assert.equal(stats.layers[0].below001, 0.25);
  assert.equal(stats.layers[1].below001, 0.5);
  // highest_thre = min(0.5, 0.3) = 0.3; sorted |γ| = .001 .004 .05 .2 .3 .5 → rank 4 of 6
  assert.ok(Math.abs(stats.highestThreshold - 0.3) < 1e-6);
  assert.equal(stats.percentLimit, 4 / 6);
  assert.equal(stats.sparsity, 2 / 6);
});
