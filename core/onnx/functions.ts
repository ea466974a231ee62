// Model-local functions (ONNX IR 8): a compact encoding of graphs that repeat a few node patterns.
//
// A QDQ graph spells out the same handful of patterns once per layer (weight DequantizeLinear and
// its scale's Cast, Conv, QuantizeLinear, DequantizeLinear; LeakyRelu, Q, DQ; ...). For a model of
// under 100k weights those node records are a fifth of the file. packFunctions writes each pattern
// that occurs more than once as one FunctionProto and every occurrence as a single call node.
// onnxruntime inlines model-local functions when it loads a model, before its graph optimisations,
// so the optimised graph (int8 kernels included) and the outputs are the flat graph's (tested).
// inlineFunctions expands the calls again, for readers that walk the nodes.
import type { AttributeProto, FunctionProto, ModelProto, NodeProto } from './proto';

/** The domain of the functions packFunctions writes (short: every call node repeats it). */
export const LOCAL_DOMAIN = 'ds';

/** Activations: they join the group of the node they alone read from (Conv + LeakyRelu, ...). */
const ACTIVATIONS = new Set(['LeakyRelu', 'Relu', 'Sigmoid', 'Tanh', 'Clip', 'HardSigmoid', 'Softplus', 'Elu', 'Selu']);

/**
 * Groups the nodes into patterns: a QuantizeLinear / DequantizeLinear or an activation joins the
 * node whose output it alone reads, and a node fed only by initializers (weight preparation: Cast,
 * DequantizeLinear of a weight) joins the group that reads it when a single group does. Groups
 * list their nodes in node order.
 */
function groupNodes(nodes: NodeProto[], initializers: Set<string>, readers: Map<string, number[]>): number[][] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  const constant: boolean[] = [];
  nodes.forEach((n, i) => {
    constant[i] = n.input.every((x) => !x || initializers.has(x) || (producer.has(x) && constant[producer.get(x)!]));
  });
  const parent = nodes.map((_, i) => i);
  const root = (i: number): number => (parent[i] === i ? i : (parent[i] = root(parent[i])));
  nodes.forEach((n, i) => {
    if (constant[i] || (n.opType !== 'QuantizeLinear' && n.opType !== 'DequantizeLinear' && !ACTIVATIONS.has(n.opType))) return;
    const p = producer.get(n.input[0]);
    if (p !== undefined && !constant[p] && readers.get(n.input[0])!.length === 1) parent[i] = root(p);
  });
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!constant[i]) continue;
    const groupsReading = new Set(nodes[i].output.flatMap((o) => readers.get(o) ?? []).map(root));
    if (groupsReading.size === 1) parent[i] = [...groupsReading][0];
  }
  const groups = new Map<number, number[]>();
  nodes.forEach((_, i) => {
    const r = root(i);
    groups.set(r, [...(groups.get(r) ?? []), i]);
  });
  return [...groups.values()];
}

interface Pattern {
  key: string;
  body: NodeProto[];
  inputs: string[];
  outputs: string[];
  /** Attribute values passed by the call, named as the body references them. */
  args: AttributeProto[];
}

function patternOf(group: NodeProto[], readOutside: (name: string) => boolean): Pattern {
  const produced = new Set(group.flatMap((n) => n.output));
  const inputs: string[] = [];
  for (const n of group) for (const x of n.input) if (x && !produced.has(x) && !inputs.includes(x)) inputs.push(x);
  const outputs = group.flatMap((n) => n.output).filter((o) => o && readOutside(o));
  const local = new Map<string, string>();
  inputs.forEach((x, k) => local.set(x, `i${k}`));
  outputs.forEach((x, k) => local.set(x, `o${k}`));
  let temp = 0;
  const args: AttributeProto[] = [];
  const body = group.map((n): NodeProto => {
    for (const o of n.output) if (o && !local.has(o)) local.set(o, `t${temp++}`);
    const attribute = n.attribute.map((a) => {
      const ref = `a${args.length}`;
      args.push({ ...a, name: ref });
      return { name: a.name, type: a.type, refAttrName: ref };
    });
    return {
      name: '', opType: n.opType, ...(n.domain ? { domain: n.domain } : {}),
      input: n.input.map((x) => (x ? local.get(x)! : '')), output: n.output.map((o) => (o ? local.get(o)! : '')), attribute,
    };
  });
  const key = JSON.stringify([inputs.length, outputs.length, body]);
  return { key, body, inputs, outputs, args };
}

function sameAttribute(a: AttributeProto, b: AttributeProto): boolean {
  return a.type === b.type && a.i === b.i && a.f === b.f && JSON.stringify(a.ints ?? []) === JSON.stringify(b.ints ?? [])
    && JSON.stringify(a.floats ?? []) === JSON.stringify(b.floats ?? []) && a.s === undefined && b.s === undefined && !a.t && !b.t;
}

/** Kahn's algorithm, ties in the given order: the calls' order must stay topological. */
function topological(nodes: NodeProto[], available: Set<string>): NodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  const waiting = nodes.map((n) => new Set(n.input.filter((x) => x && !available.has(x) && producer.has(x)).map((x) => producer.get(x)!)).size);
  const dependents = nodes.map(() => [] as number[]);
  nodes.forEach((n, i) => {
    for (const p of new Set(n.input.filter((x) => x && !available.has(x) && producer.has(x)).map((x) => producer.get(x)!))) dependents[p].push(i);
  });
  const ready = nodes.map((_, i) => i).filter((i) => waiting[i] === 0);
  const out: NodeProto[] = [];
  while (ready.length) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    out.push(nodes[i]);
    for (const d of dependents[i]) if (--waiting[d] === 0) ready.push(d);
  }
  if (out.length !== nodes.length) throw new Error('internal: packing functions made a cycle');
  return out;
}

/**
 * The same model with every node pattern that occurs at least twice written once as a model-local
 * function (IR version 8, domain LOCAL_DOMAIN). Node groups: see groupNodes.
 */
export function packFunctions(model: ModelProto): ModelProto {
  const g = model.graph;
  if (model.functions?.length) throw new Error('internal: the model already has functions');
  const initializers = new Set(g.initializer.map((t) => t.name));
  const graphOutputs = new Set(g.output.map((o) => o.name));
  // the nodes reading each tensor
  const readers = new Map<string, number[]>();
  g.node.forEach((n, i) => n.input.forEach((x) => x && readers.set(x, [...(readers.get(x) ?? []), i])));
  const groups = groupNodes(g.node, initializers, readers);
  const patterns = groups.map((idx) => {
    const inside = new Set(idx);
    return patternOf(idx.map((i) => g.node[i]), (o) => graphOutputs.has(o) || (readers.get(o) ?? []).some((r) => !inside.has(r)));
  });
  const uses = new Map<string, Pattern[]>();
  patterns.forEach((p, k) => groups[k].length > 1 && uses.set(p.key, [...(uses.get(p.key) ?? []), p]));
  // An attribute with the same value in every occurrence (LeakyRelu's alpha, a Cast's type) is
  // written in the body; only those that differ are passed by the calls.
  for (const occurrences of uses.values()) {
    if (occurrences.length < 2) continue;
    const same = occurrences[0].args.map((a, j) => occurrences.every((p) => sameAttribute(p.args[j], a)));
    const fixed = new Map(occurrences[0].args.filter((_, j) => same[j]).map((a) => [a.name, a]));
    const body = occurrences[0].body.map((n) => ({
      ...n,
      attribute: n.attribute.map((a) => {
        const v = a.refAttrName ? fixed.get(a.refAttrName) : undefined;
        return v ? { ...v, name: a.name } : a;
      }),
    }));
    for (const p of occurrences) {
      p.body = body;
      p.args = p.args.filter((_, j) => !same[j]);
    }
  }
  const functions = new Map<string, FunctionProto>();
  const calls: NodeProto[] = [];
  // Groups in the order of their last node: each group's inputs are produced before it.
  const order = groups.map((_, k) => k).sort((a, b) => groups[a][groups[a].length - 1] - groups[b][groups[b].length - 1]);
  for (const k of order) {
    const p = patterns[k];
    if ((uses.get(p.key)?.length ?? 0) < 2) {
      calls.push(...groups[k].map((i) => g.node[i]));
      continue;
    }
    let f = functions.get(p.key);
    if (!f) {
      f = {
        name: functions.size.toString(36), domain: LOCAL_DOMAIN, input: p.inputs.map((_, j) => `i${j}`), output: p.outputs.map((_, j) => `o${j}`),
        attribute: p.args.map((a) => a.name), node: p.body, opsetImport: model.opsetImport.map((o) => ({ ...o })),
      };
      functions.set(p.key, f);
    }
    calls.push({ name: '', opType: f.name, domain: LOCAL_DOMAIN, input: p.inputs, output: p.outputs, attribute: p.args });
  }
  if (functions.size === 0) return model;
  const available = new Set([...initializers, ...g.input.map((i) => i.name)]);
  return {
    ...model,
    irVersion: Math.max(model.irVersion, 8),
    opsetImport: [...model.opsetImport, { domain: LOCAL_DOMAIN, version: 1 }],
    graph: { ...g, node: topological(calls, available) },
    functions: [...functions.values()],
  };
}

/** The model with every call of a model-local function replaced by the function's nodes. */
export function inlineFunctions(model: ModelProto): ModelProto {
  const functions = new Map((model.functions ?? []).map((f) => [`${f.domain}:${f.name}`, f]));
  if (functions.size === 0) return model;
  let call = 0;
  const expand = (n: NodeProto): NodeProto[] => {
    const f = functions.get(`${n.domain ?? ''}:${n.opType}`);
    if (!f) return [n];
    const prefix = `_f${call++}_`;
    const actual = new Map<string, string>();
    f.input.forEach((x, k) => actual.set(x, n.input[k] ?? ''));
    f.output.forEach((x, k) => actual.set(x, n.output[k] ?? ''));
    const rename = (x: string) => (x ? actual.get(x) ?? prefix + x : '');
    const args = new Map(n.attribute.map((a) => [a.name, a]));
    return f.node.flatMap((b) => expand({
      ...b,
      input: b.input.map(rename),
      output: b.output.map(rename),
      attribute: b.attribute.flatMap((a) => {
        if (!a.refAttrName) return [a];
        const v = args.get(a.refAttrName);
        return v ? [{ ...v, name: a.name }] : [];
      }),
    }));
  };
  const { functions: _dropped, ...rest } = model;
  const functionDomains = new Set([...functions.values()].map((f) => f.domain));
  return {
    ...rest,
    opsetImport: model.opsetImport.filter((o) => !functionDomains.has(o.domain)),
    graph: { ...model.graph, node: model.graph.node.flatMap(expand) },
  };
}
