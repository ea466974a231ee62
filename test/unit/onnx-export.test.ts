import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { analyzeCfg } from '../../core/darknet/graph';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import type { ModelGraph, ModelWeights } from '../../core/darknet/types';
import { loadImage, prepareInput } from '../../core/data/image';
import { exportOnnx, exportSpec, METADATA_KEY, OPSET, type OnnxMetadata } from '../../core/onnx/export';
import { networkSpec, UnsupportedLayerError, headRows } from '../../core/onnx/layers';
import { decodeModel } from '../../core/onnx/proto';
import { referenceForward } from '../../core/onnx/reference';
import { OnnxSession, readMetadata } from '../../core/onnx/runtime';
import { ALL_LAYERS_CFG } from '../helpers/all-layers-cfg';
import { corpusPath, NO_CORPUS, WEIGHTS_MODELS } from '../helpers/corpus';
import { relativeError } from '../helpers/onnx';
import { syntheticInput, syntheticWeights } from '../helpers/synthetic';

const TOLERANCE = 1e-4;

/** Exports, runs on onnxruntime and compares every head (and the listed layers) with the reference pass. */
async function checkParity(graph: ModelGraph, weights: ModelWeights, input: Float32Array, label: string, layers: number[] = []): Promise<void> {
  const spec = networkSpec(graph, weights);
  const { bytes } = exportSpec(spec, { batch: 1, extraOutputs: layers });
  const session = await OnnxSession.create(bytes, { threads: 2 });
  try {
    const [c, h, w] = spec.input;
    const out = await session.run(input, [1, c, h, w]);
    const ref = referenceForward(spec, input);
    assert.ok(spec.heads.length > 0, `${label}: no heads`);
    for (const head of spec.heads) {
      const got = out.get(`yolo_${head.index}`);
      assert.ok(got, `${label}: output yolo_${head.index}`);
      assert.deepEqual([...got.dims], [1, headRows(head), 5 + head.classes], `${label}: yolo_${head.index} shape`);
      const e = relativeError(got.data, ref.heads.get(head.index)!);
      assert.ok(e.rel <= TOLERANCE, `${label}: yolo_${head.index} differs from the reference by ${e.rel.toExponential(2)} (max |diff| ${e.maxDiff} at ${e.at})`);
    }
    for (const i of layers) {
      const e = relativeError(out.get(`layer_${i}`)!.data, ref.layers[i]);
      assert.ok(e.rel <= TOLERANCE, `${label}: layer ${i} (${spec.layers[i].kind}) differs by ${e.rel.toExponential(2)}`);
    }
  } finally {
    await session.dispose();
  }
}

test('every corpus model with weights: ONNX on onnxruntime equals the reference pass on dog.jpg (1e-4)', { skip: NO_CORPUS }, async () => {
  const img = await loadImage(corpusPath('images', 'dog.jpg'));
  for (const m of WEIGHTS_MODELS) {
    const graph = loadCfg(m.cfg);
    const { weights, check } = loadWeightsFile(m.weights, graph);
    assert.ok(check.ok && !check.partial, check.message);
    const input = prepareInput(img, graph.net.width, graph.net.height, graph.net.letterBox).tensor;
    await checkParity(graph, weights, input, m.cfg.split('/').pop()!);
  }
});

test('yolov3-tiny and yolov4-tiny with synthetic weights: ONNX equals the reference pass', { skip: NO_CORPUS }, async () => {
  for (const [name, seed] of [['yolov3-tiny.cfg', 11], ['yolov4-tiny.cfg', 12]] as const) {
    // 96x96 keeps the naive reference pass short; every layer and shape rule is the same.
    const graph = analyzeCfg(readFileSync(corpusPath('cfg', 'alexeyab', name), 'utf8'), { width: 96, height: 96 });
    const weights = syntheticWeights(graph, seed);
    await checkParity(graph, weights, syntheticInput(3 * 96 * 96, seed), name);
  }
});

test('all supported layer types and activations: every layer output equals the reference', async () => {
  const graph = analyzeCfg(ALL_LAYERS_CFG);
  assert.deepEqual(graph.diagnostics.filter((d) => d.severity === 'error'), []);
  const weights = syntheticWeights(graph, 3);
  const layers = graph.layers.filter((l) => l.type !== 'yolo').map((l) => l.index);
  for (const seed of [7, 8]) await checkParity(graph, weights, syntheticInput(3 * 48 * 64, seed), 'all-layers', layers);
});

test('the ONNX file: opset, input, one decoded output per head, optional concat, metadata', () => {
  const graph = analyzeCfg(ALL_LAYERS_CFG);
  const weights = syntheticWeights(graph, 3);
  const result = exportOnnx(graph, weights, { concat: true, names: ['a', 'b', 'c'] });
  const model = decodeModel(result.bytes);
  assert.equal(model.opsetImport[0].version, OPSET);
  assert.ok(OPSET >= 13);
  assert.equal(model.graph.input[0].name, 'input');
  const dims = model.graph.input[0].type.tensorType.shape.dim;
  assert.deepEqual(dims.map((d) => ('dimParam' in d && d.dimParam ? d.dimParam : (d as { dimValue: number }).dimValue)), ['N', 3, 48, 64]);
  assert.deepEqual(model.graph.output.map((o) => o.name), ['yolo_33', 'yolo_36', 'detections']);
  const meta = readMetadata(result.bytes) as OnnxMetadata;
  assert.ok(model.metadataProps.some((p) => p.key === METADATA_KEY));
  assert.equal(meta.netW, 64);
  assert.equal(meta.netH, 48);
  assert.equal(meta.classes, 3);
  assert.deepEqual(meta.heads.map((h) => [h.index, h.rows]), [[33, 4 * 3 * 3], [36, 16 * 12 * 3]]);
  assert.deepEqual(meta.nms, { kind: 'greedynms', beta: 0.6 });
  assert.deepEqual(meta.names, ['a', 'b', 'c']);
});

test('concatenated detections output equals the heads in layer order', async () => {
  const graph = analyzeCfg(ALL_LAYERS_CFG);
  const weights = syntheticWeights(graph, 4);
  const { bytes } = exportOnnx(graph, weights, { concat: true, batch: 2 });
  const session = await OnnxSession.create(bytes, { threads: 1 });
  const input = syntheticInput(2 * 3 * 48 * 64, 5);
  const out = await session.run(input, [2, 3, 48, 64]);
  const a = out.get('yolo_33')!;
  const b = out.get('yolo_36')!;
  const all = out.get('detections')!;
  assert.deepEqual([...all.dims], [2, 36 + 576, 8]);
  for (let n = 0; n < 2; n++) {
    const rowsA = a.data.subarray(n * 36 * 8, (n + 1) * 36 * 8);
    const rowsB = b.data.subarray(n * 576 * 8, (n + 1) * 576 * 8);
    const joined = all.data.subarray(n * 612 * 8, (n + 1) * 612 * 8);
    assert.deepEqual([...joined.subarray(0, 36 * 8)], [...rowsA]);
    assert.deepEqual([...joined.subarray(36 * 8)], [...rowsB]);
  }
  await session.dispose();
});

const BASE = '[net]\nwidth=32\nheight=32\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n';

test('an unsupported layer is a clear error naming it', () => {
  for (const [section, pattern] of [
    ['[reorg]\nstride=2\n', /layer 1 \[reorg\].*not supported/],
    ['[connected]\noutput=10\n', /layer 1 \[connected\].*not supported/],
    ['[shortcut]\nfrom=-1\nweights_type=per_feature\n', /layer 1 \[shortcut\].*weights_type=per_feature/],
    ['[maxpool]\nsize=2\nstride=2\nmaxpool_depth=1\nout_channels=4\n', /layer 1 \[maxpool\].*maxpool_depth/],
    ['[convolutional]\nfilters=8\nsize=3\nstride=1\npad=0\ndilation=2\nactivation=leaky\n', /layer 1 \[convolutional\].*dilation=2/],
  ] as const) {
    const graph = analyzeCfg(BASE + section);
    const weights = syntheticWeights(graph, 1);
    assert.throws(() => networkSpec(graph, weights), (e: Error) => {
      assert.ok(e instanceof UnsupportedLayerError, `${section}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

test('missing weights and cfg errors are reported, not exported', () => {
  const graph = analyzeCfg(BASE + '[convolutional]\nfilters=4\nsize=1\nactivation=linear\n');
  const weights = syntheticWeights(graph, 1);
  weights.layers.delete(1);
  assert.throws(() => networkSpec(graph, weights), /No weights for layer 1 \[convolutional\]/);
  const broken = analyzeCfg(BASE + '[route]\nlayers=5\n');
  assert.throws(() => networkSpec(broken, syntheticWeights(analyzeCfg(BASE), 1)), /error/);
});
