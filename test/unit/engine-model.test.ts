// The tfjs model (core/engine/model.ts) against the ONNX export run by onnxruntime-node, on real
// corpus models and images; and the .weights round trip through the model's variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import { writeWeights, readWeights } from '../../core/darknet/weights';
import { analyzeCfg } from '../../core/darknet/graph';
import { loadImage, prepareInput } from '../../core/data/image';
import { exportOnnx } from '../../core/onnx/export';
import { selectBackend } from '../../core/engine/backend';
import { DarknetModel, chwToNhwc, initWeights } from '../../core/engine/model';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';

const MODELS = [
  { cfg: 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.cfg', weights: 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.weights', image: 'images/dog.jpg' },
  { cfg: 'weights/yoloface-500k-v2/yoloface-500k-v2.cfg', weights: 'weights/yoloface-500k-v2/yoloface-500k-v2.weights', image: 'images/person.jpg' },
  { cfg: 'weights/MobileNetV2-YOLOv3-Nano-VOC/MobileNetV2-YOLOv3-Nano-voc.cfg', weights: 'weights/MobileNetV2-YOLOv3-Nano-VOC/MobileNetV2-YOLOv3-Nano-voc.weights', image: 'images/horses.jpg' },
];

test('forward pass equals the ONNX model on real images (within 1e-4 relative)', { skip: NO_CORPUS }, async () => {
  await selectBackend('wasm');
  for (const m of MODELS) {
    const graph = loadCfg(corpusPath(m.cfg));
    const { weights, check } = loadWeightsFile(corpusPath(m.weights), graph);
    assert.ok(check.ok, check.message);
    const img = await loadImage(corpusPath(m.image));
    const input = prepareInput(img, graph.net.width, graph.net.height, graph.net.letterBox);
    const onnx = exportOnnx(graph, weights);
    const session = await ort.InferenceSession.create(onnx.bytes);
    const feeds = { input: new ort.Tensor('float32', input.tensor, [1, 3, graph.net.height, graph.net.width]) };
    const ref = await session.run(feeds);
    const model = DarknetModel.create(graph, weights);
    const decoded = tf.tidy(() => {
      const x = tf.tensor4d(chwToNhwc([input.tensor], graph.net.width, graph.net.height), [1, graph.net.height, graph.net.width, 3]);
      return model.decode(model.forward(x).heads);
    });
    model.dispose();
    assert.equal(decoded.length, onnx.metadata.heads.length);
    decoded.forEach((d, h) => {
      const r = ref[onnx.metadata.heads[h].output].data as Float32Array;
      assert.equal(d.data.length, r.length);
      let scale = 0, err = 0;
      for (let i = 0; i < r.length; i++) { scale = Math.max(scale, Math.abs(r[i])); err = Math.max(err, Math.abs(r[i] - d.data[i])); }
      assert.ok(err / scale < 1e-4, `${m.cfg} head ${h}: max relative difference ${err / scale}`);
    });
    await session.release();
  }
});

test('weights round trip: darknet → variables → darknet is exact', { skip: NO_CORPUS }, async () => {
  await selectBackend('wasm');
  const m = MODELS[0];
  const graph = loadCfg(corpusPath(m.cfg));
  const bytes = new Uint8Array(require('node:fs').readFileSync(corpusPath(m.weights)));
  const { weights } = readWeights(bytes, graph);
  const model = DarknetModel.create(graph, weights);
  const out = writeWeights(graph, model.toWeights(weights.header.seen));
  model.dispose();
  assert.equal(out.length, bytes.length);
  assert.ok(Buffer.from(out).equals(Buffer.from(bytes)), 'bytes differ');
});

test('fresh weights of a grouped-conv model write a file of the right size', async () => {
  await selectBackend('wasm');
  const cfg = `[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\ngroups=2\nstride=2\npad=1\nactivation=mish\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\ngroups=8\nstride=1\npad=1\nactivation=swish\n[convolutional]\nfilters=18\nsize=1\nstride=1\nactivation=linear\n[yolo]\nmask=0,1,2\nanchors=4,4,8,8,16,16\nclasses=1\nnum=3\n`;
  const graph = analyzeCfg(cfg);
  const model = DarknetModel.create(graph, initWeights(graph, 3));
  const bytes = writeWeights(graph, model.toWeights(123n));
  const back = readWeights(bytes, graph);
  assert.ok(back.check.ok, back.check.message);
  assert.equal(back.weights.header.seen, 123n);
  model.dispose();
});
