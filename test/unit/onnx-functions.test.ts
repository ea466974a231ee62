// Model-local functions (core/onnx/functions.ts): a QDQ graph packed into functions is the same
// graph for onnxruntime (same fused int8 kernels, bit-identical outputs) in fewer bytes, and
// inlining the calls gives the flat graph back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { inlineFunctions, LOCAL_DOMAIN, packFunctions } from '../../core/onnx/functions';
import { AttrType, encodeModel, decodeModel, valueInfo, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from '../../core/onnx/proto';
import { optimizedOps } from '../../core/onnx/quantize/index';
import { cleanModel, DT, halfBits, rawTensor } from '../../core/onnx/quantize/qdq';

/** A deterministic pseudo-random generator (LCG), values in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/**
 * A small QDQ network: a stem conv (float) then `layers` int8 conv + LeakyRelu layers as the
 * quantizer writes them (weight DQ with float16 scales, Q/DQ after the conv and after the
 * activation), every other one depthwise (a `group` that differs), then a residual Add.
 */
function qdqModel(layers: number, channels = 8): ModelProto {
  const rnd = random(7);
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const node = (opType: string, input: string[], output: string[], attribute: AttributeProto[] = []) => nodes.push({ name: '', opType, input, output, attribute });
  const toFloat: AttributeProto[] = [{ name: 'to', type: AttrType.INT, i: DT.FLOAT }];
  const scalar = (name: string, v: number) => inits.push(rawTensor(name, [], DT.FLOAT, Float32Array.of(v)));
  inits.push(rawTensor('zp', [], DT.UINT8, Uint8Array.of(128)));
  const qdq = (x: string, tag: string, scale: number) => {
    scalar(`s_${tag}`, scale);
    node('QuantizeLinear', [x, `s_${tag}`, 'zp'], [`q_${tag}`]);
    node('DequantizeLinear', [`q_${tag}`, `s_${tag}`, 'zp'], [`d_${tag}`]);
    return `d_${tag}`;
  };
  // stem: float conv 3 → channels
  inits.push(rawTensor('w0', [channels, 3, 3, 3], DT.FLOAT, Float32Array.from({ length: channels * 27 }, () => rnd() - 0.5)));
  inits.push(rawTensor('b0', [channels], DT.FLOAT, Float32Array.from({ length: channels }, () => rnd() - 0.5)));
  node('Conv', ['input', 'w0', 'b0'], ['c0'], [{ name: 'pads', type: AttrType.INTS, ints: [1, 1, 1, 1] }]);
  let x = qdq('c0', 'c0', 0.02);
  const first = x;
  for (let l = 1; l <= layers; l++) {
    const depthwise = l % 2 === 0;
    const inC = depthwise ? 1 : channels;
    const k = depthwise ? 3 : 1;
    const n = channels * inC * k * k;
    inits.push(rawTensor(`w${l}`, [channels, inC, k, k], DT.INT8, Int8Array.from({ length: n }, () => Math.round(rnd() * 200 - 100))));
    inits.push(rawTensor(`ws${l}`, [channels], DT.FLOAT16, Uint16Array.from({ length: channels }, () => halfBits(0.002 + 0.003 * rnd()))));
    inits.push(rawTensor(`b${l}`, [channels], DT.FLOAT, Float32Array.from({ length: channels }, () => rnd() - 0.5)));
    node('Cast', [`ws${l}`], [`wsf${l}`], toFloat);
    node('DequantizeLinear', [`w${l}`, `wsf${l}`], [`wd${l}`], [{ name: 'axis', type: AttrType.INT, i: 0 }]);
    node('Conv', [x, `wd${l}`, `b${l}`], [`c${l}`], depthwise
      ? [{ name: 'pads', type: AttrType.INTS, ints: [1, 1, 1, 1] }, { name: 'group', type: AttrType.INT, i: channels }] : []);
    const y = qdq(`c${l}`, `c${l}`, 0.03);
    node('LeakyRelu', [y], [`a${l}`], [{ name: 'alpha', type: AttrType.FLOAT, f: 0.1 }]);
    x = qdq(`a${l}`, `a${l}`, 0.02);
  }
  node('Add', [x, first], ['sum']);
  const out = qdq('sum', 'sum', 0.04);
  node('Identity', [out], ['output']);
  return {
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }], producerName: 'test', producerVersion: '1', metadataProps: [],
    graph: { name: 'g', node: nodes, initializer: inits, input: [valueInfo('input', DT.FLOAT, [1, 3, 8, 8])], output: [valueInfo('output', DT.FLOAT, [1, channels, 8, 8])] },
  };
}

async function run(model: ModelProto, input: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
    return out.output.data as Float32Array;
  } finally {
    await session.release();
  }
}

function opCounts(nodes: NodeProto[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of nodes) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
}

describe('model-local functions', () => {
  const flat = qdqModel(6);
  const packed = packFunctions(flat);
  const rnd = random(3);
  const input = Float32Array.from({ length: 3 * 64 }, () => rnd() * 2 - 1);

  test('repeated layers become calls of two functions (1x1 and depthwise); smaller file; IR 8 and the local domain', () => {
    assert.equal(packed.functions!.length, 2, JSON.stringify(packed.functions!.map((f) => f.node.map((n) => n.opType))));
    const calls = packed.graph.node.filter((n) => n.domain === LOCAL_DOMAIN);
    assert.equal(calls.length, 6);
    assert.ok(packed.irVersion >= 8);
    assert.ok(packed.opsetImport.some((o) => o.domain === LOCAL_DOMAIN));
    // the stem (one of a kind), the Add and its Q/DQ, the Identity stay plain nodes
    assert.deepEqual(opCounts(packed.graph.node.filter((n) => n.domain !== LOCAL_DOMAIN)), { Conv: 1, QuantizeLinear: 2, DequantizeLinear: 2, Add: 1, Identity: 1 });
    const [flatBytes, packedBytes] = [encodeModel(flat).length, encodeModel(packed).length];
    assert.ok(packedBytes < flatBytes - 600, `${packedBytes} vs ${flatBytes}`);
    // the weight scale's Cast and the weight DQ went into the function with their conv
    const body = packed.functions!.map((f) => f.node.map((n) => n.opType).join(' '));
    assert.ok(body.every((b) => b === 'Cast DequantizeLinear Conv QuantizeLinear DequantizeLinear LeakyRelu QuantizeLinear DequantizeLinear'), body.join(' | '));
  });

  test('an attribute equal in every call stays in the body; one that differs is passed by the calls', () => {
    const dw = packed.functions!.find((f) => f.node.some((n) => n.opType === 'Conv' && n.attribute.some((a) => a.name === 'group')))!;
    const conv = dw.node.find((n) => n.opType === 'Conv')!;
    // every depthwise layer has the same pads and group here: both fixed in the body
    assert.deepEqual(conv.attribute.map((a) => [a.name, a.refAttrName ?? null]), [['pads', null], ['group', null]]);
    const leaky = dw.node.find((n) => n.opType === 'LeakyRelu')!;
    assert.equal(leaky.attribute[0].refAttrName, undefined);
    assert.ok(Math.abs(leaky.attribute[0].f! - 0.1) < 1e-7);
    // alpha differs in one layer: it becomes a parameter of that pattern, passed by each call
    const varied = qdqModel(6);
    varied.graph.node.find((n) => n.opType === 'LeakyRelu' && n.input[0] === 'd_c3')!.attribute[0].f = 0.2;
    const p = packFunctions(varied);
    const oneByOne = p.functions!.find((f) => !f.node.some((n) => n.attribute.some((a) => a.name === 'group')))!;
    assert.deepEqual(oneByOne.attribute.length, 1);
    const alphas = p.graph.node.filter((n) => n.opType === oneByOne.name).map((n) => Math.round(n.attribute[0].f! * 10) / 10);
    assert.deepEqual(alphas, [0.1, 0.2, 0.1]);
  });

  test('onnxruntime: the same fused int8 kernels and bit-identical outputs', async () => {
    const [a, b] = [await optimizedOps(encodeModel(flat)), await optimizedOps(encodeModel(packed))];
    assert.deepEqual(b, a);
    assert.ok((a.QLinearConv ?? 0) >= 6 && (a.QLinearLeakyRelu ?? 0) >= 6, JSON.stringify(a));
    const [x, y] = [await run(flat, input), await run(packed, input)];
    assert.deepEqual(y, x);
    assert.ok(x.some((v) => v !== 0));
  });

  test('the encoding survives a write and read; inlining gives the flat graph back', async () => {
    const reread = cleanModel(decodeModel(encodeModel(packed))); // cleanModel: the decoder's default fields out
    assert.equal(reread.functions!.length, 2);
    assert.deepEqual(await run(reread, input), await run(packed, input));
    const inlined = inlineFunctions(reread);
    assert.equal(inlined.functions, undefined);
    assert.deepEqual(opCounts(inlined.graph.node), opCounts(flat.graph.node));
    assert.ok(!inlined.opsetImport.some((o) => o.domain === LOCAL_DOMAIN));
    // topological: every node input is an initializer, the graph input or an earlier output
    const seen = new Set(['input', ...inlined.graph.initializer.map((t) => t.name)]);
    for (const n of inlined.graph.node) {
      for (const i of n.input) assert.ok(!i || seen.has(i), `${n.opType} reads ${i} before it is written`);
      n.output.forEach((o) => seen.add(o));
    }
    assert.deepEqual(await run(inlined, input), await run(flat, input));
  });

  test('a graph without repeated patterns is left as it is', () => {
    const single = qdqModel(1);
    assert.equal(packFunctions(single), single);
  });
});
