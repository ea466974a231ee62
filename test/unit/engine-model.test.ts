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
import { DarknetModel, atrous, chwToNhwc, initWeights, rng } from '../../core/engine/model';
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

test('dilated convolutions (plain, grouped, depthwise; odd and even sizes) equal the ONNX model, and train', async () => {
  const conv = (f: number, k: number, d: number, groups = 1, act = 'leaky') =>
    `[convolutional]\nbatch_normalize=1\nfilters=${f}\nsize=${k}\nstride=1\npad=1\ndilation=${d}\ngroups=${groups}\nactivation=${act}\n`;
  // 19x13: sides that d does not divide, so the phases need the extra rows and columns
  const cfg = `[net]\nwidth=19\nheight=13\nchannels=3\n`
    + conv(8, 3, 2) + conv(8, 3, 3, 2, 'mish') + conv(8, 3, 2, 8) + conv(8, 5, 2, 1, 'swish')
    + `[convolutional]\nfilters=18\nsize=1\nstride=1\nactivation=linear\n[yolo]\nmask=0,1,2\nanchors=4,4,8,8,16,16\nclasses=1\nnum=3\n`;
  const graph = analyzeCfg(cfg);
  assert.deepEqual(graph.diagnostics.filter((d) => d.severity === 'error'), []);
  const weights = initWeights(graph, 5);
  const onnx = exportOnnx(graph, weights);
  const session = await ort.InferenceSession.create(onnx.bytes);
  const input = Float32Array.from({ length: 3 * 13 * 19 }, (_, i) => ((i * 7919) % 255) / 255);
  const ref = (await session.run({ input: new ort.Tensor('float32', input, [1, 3, 13, 19]) }))[onnx.metadata.heads[0].output].data as Float32Array;
  await session.release();
  for (const backend of ['cpu', 'wasm'] as const) {
    await selectBackend(backend);
    const model = DarknetModel.create(graph, weights);
    model.checkTrainable();
    const x = tf.tensor4d(chwToNhwc([input], 19, 13), [1, 13, 19, 3]);
    const got = tf.tidy(() => model.decode(model.forward(x).heads))[0].data;
    let scale = 0, err = 0;
    for (let i = 0; i < ref.length; i++) { scale = Math.max(scale, Math.abs(ref[i])); err = Math.max(err, Math.abs(ref[i] - got[i])); }
    assert.ok(err / scale < 1e-4, `${backend}: max relative difference ${err / scale}`);
    // differentiable: every kernel gets a gradient (tfjs's own dilated conv gradients throw)
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(model.forward(x, { training: true }).heads[0])) as tf.Scalar, model.variables());
    for (const [name, g] of Object.entries(grads)) assert.ok(Number.isFinite(g.sum().dataSync()[0]), `${backend}: gradient of ${name}`);
    tf.dispose([x, value, ...Object.values(grads)]);
    model.dispose();
  }
});

test('atrous: values and gradients equal a convolution with the zero-inserted kernel', async () => {
  // the reference: the k×k kernel spread over (k-1)·d+1 taps with zeros between (differentiable
  // through slice/pad/add), convolved without dilation
  const spread = (kernel: tf.Tensor4D, d: number): tf.Tensor4D => {
    const [k, , ci, co] = kernel.shape;
    let out: tf.Tensor4D | undefined;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
      const tap = tf.pad(tf.slice(kernel, [a, b, 0, 0], [1, 1, ci, co]), [[a * d, (k - 1 - a) * d], [b * d, (k - 1 - b) * d], [0, 0], [0, 0]]);
      out = out ? (tf.add(out, tap) as tf.Tensor4D) : tap;
    }
    return out!;
  };
  for (const backend of ['cpu', 'wasm'] as const) {
    await selectBackend(backend);
    for (const [h, w, c, k, d, depthwise] of [[9, 7, 3, 3, 2, false], [10, 11, 4, 3, 3, true], [8, 8, 2, 5, 2, false], [6, 13, 5, 3, 4, true]] as const) {
      const r = rng(h * 100 + w);
      const x = tf.tensor4d(Float32Array.from({ length: 2 * h * w * c }, () => r() - 0.5), [2, h, w, c]);
      const co = depthwise ? 1 : 6;
      const kernel = tf.tensor4d(Float32Array.from({ length: k * k * c * co }, () => r() - 0.5), [k, k, c, co]);
      const pad = (d * (k - 1)) / 2;
      const conv = (t: tf.Tensor4D, kk: tf.Tensor4D, p: 'valid' | number) => depthwise
        ? tf.depthwiseConv2d(t, kk, 1, p === 'valid' ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]])
        : tf.conv2d(t, kk, 1, p === 'valid' ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]]);
      const upstream = tf.tensor4d(Float32Array.from({ length: 2 * h * w * (depthwise ? c : co) }, () => r() - 0.5), [2, h, w, depthwise ? c : co]);
      const loss = (f: (xx: tf.Tensor4D, kk: tf.Tensor4D) => tf.Tensor4D) => (xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor4D, kk as tf.Tensor4D), upstream));
      const ours = tf.grads(loss((xx, kk) => atrous(xx, pad, d, k, (t) => conv(t, kk, 'valid'))));
      const want = tf.grads(loss((xx, kk) => conv(xx, spread(kk, d), pad)));
      const a = ours([x, kernel]);
      const b = want([x, kernel]);
      const ya = atrous(x, pad, d, k, (t) => conv(t, kernel, 'valid'));
      const yb = conv(x, spread(kernel, d), pad);
      assert.deepEqual(ya.shape, [2, h, w, depthwise ? c : co]);
      for (const [name, p, q] of [['output', ya, yb], ['input gradient', a[0], b[0]], ['kernel gradient', a[1], b[1]]] as const) {
        const pd = p.dataSync(), qd = q.dataSync();
        let err = 0;
        for (let i = 0; i < qd.length; i++) err = Math.max(err, Math.abs(pd[i] - qd[i]));
        assert.ok(err < 1e-4, `${backend} ${h}x${w} k${k} d${d}${depthwise ? ' depthwise' : ''}: ${name} differs by ${err}`);
      }
      tf.dispose([x, kernel, upstream, ya, yb, ...a, ...b]);
    }
  }
});
