// *.prune.yaml: parsing with positions, validation (keys, types, ranges, files, layer indices,
// percent_limit), hover and completion — the pure functions the language server wires in — and the
// JSON schema shipped beside them.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CONFIG_KEYS, createModelLoader, listFilesFs, loadPruneConfigFile, parsePruneConfig, pruneConfigCompletions, pruneConfigHover,
  validatePruneConfig, type ConfigDiagnostic, type PruneConfigContext,
} from '../../core/prune/config';
import { buildChannelGroups } from '../../core/prune/groups';
import { percentLimit, STRATEGIES } from '../../core/prune/policy';
import { syntheticWeights, syntheticWeightsBytes } from '../../core/prune/synthetic';
import { repoRoot } from '../helpers/root';
import { fixtureGraph, fixtureText } from '../fixtures/prune/helpers';

let dir: string;
let ctx: PruneConfigContext;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'darkslim-prune-config-'));
  writeFileSync(join(dir, 'model.cfg'), fixtureText('residual.cfg'));
  writeFileSync(join(dir, 'model.weights'), syntheticWeightsBytes(fixtureGraph('residual.cfg'), { seed: 5 }));
  writeFileSync(join(dir, 'flat.cfg'), fixtureText('grouped-route.cfg'));
  ctx = { baseDir: dir, loadModel: createModelLoader(), listFiles: listFilesFs };
});
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = 'model: model.cfg\nweights: model.weights\n';
const codes = (ds: ConfigDiagnostic[]) => ds.map((d) => d.code);
const at = (d: ConfigDiagnostic) => [d.range.start.line, d.range.start.character, d.range.end.character];

describe('prune config: parsing and validation', () => {
  test('a valid config has no diagnostics and resolves to PruneOptions', () => {
    const text = `${BASE}strategy: shortcut\npercent: 0.3\nlayer_keep: 0.1\nround_to: 8\nexclude: [1, 4]\nthresholds:\n  7: 0.05\nshortcuts: 1\ncompensate: false\nper_layer: false\noutputs:\n  dir: .\n`;
    assert.deepEqual(validatePruneConfig(text, ctx), []);
    const p = parsePruneConfig(text);
    assert.deepEqual(p.values, {
      model: 'model.cfg', weights: 'model.weights', strategy: 'shortcut', percent: 0.3, layer_keep: 0.1, round_to: 8, exclude: [1, 4],
      thresholds: { 7: 0.05 }, shortcuts: 1, compensate: false, per_layer: false, outputs: { dir: '.' },
    });
    writeFileSync(join(dir, 'ok.prune.yaml'), text);
    const r = loadPruneConfigFile(join(dir, 'ok.prune.yaml'));
    assert.equal(r.cfgPath, join(dir, 'model.cfg'));
    assert.equal(r.weightsPath, join(dir, 'model.weights'));
    assert.equal(r.outputs.dir, dir);
    assert.deepEqual(r.options, { strategy: 'shortcut', percent: 0.3, layerKeep: 0.1, perLayer: false, thresholds: { 7: 0.05 }, roundTo: 8, exclude: [1, 4], shortcuts: 1, compensate: false });
  });

  test('syntax errors, unknown keys, types and ranges are reported at their positions', () => {
    const ds = validatePruneConfig(`${BASE}percnt: 0.5\nstrategy: slimm\npercent: 80\nlayer_keep: 0\nround_to: 0\nshortcuts: 1.5\nexclude: [1, x, -2]\ncompensate: yes please\noutputs:\n  folder: out\n`, ctx);
    const by = (c: string) => ds.filter((d) => d.code === c);
    const unknown = by('unknown-key');
    assert.equal(unknown.length, 2);
    assert.match(unknown[0].message, /Unknown key "percnt": did you mean "percent"\?/);
    assert.deepEqual(at(unknown[0]), [2, 0, 6]);
    assert.deepEqual(unknown[0].data, { replacement: 'percent' });
    assert.match(unknown[1].message, /Unknown key "folder" in outputs; use dir, cfg, weights, report\./);
    assert.deepEqual(at(unknown[1]), [11, 2, 8]);
    const strategy = ds.find((d) => /strategy must be one of/.test(d.message))!;
    assert.match(strategy.message, /did you mean "slim"\?/);
    assert.deepEqual(at(strategy), [3, 10, 15]);
    assert.ok(ds.some((d) => d.code === 'value-range' && /percent must be between 0 and 1; got 80 \(a fraction: write 0\.8 for 80%\)/.test(d.message) && d.range.start.line === 4));
    assert.ok(ds.some((d) => /layer_keep must be greater than 0 and at most 1/.test(d.message)));
    assert.ok(ds.some((d) => /round_to must be at least 1/.test(d.message)));
    assert.ok(ds.some((d) => /shortcuts expects a whole number; got 1.5/.test(d.message)));
    const items = ds.filter((d) => /exclude items are layer indices/.test(d.message));
    assert.deepEqual(items.map(at), [[8, 13, 14], [8, 16, 18]]);
    assert.ok(ds.some((d) => /compensate expects true or false; got "yes please"/.test(d.message)));
    const syntax = validatePruneConfig('model: [a\n', ctx);
    assert.equal(syntax[0].code, 'yaml-syntax');
    assert.deepEqual(codes(validatePruneConfig('- a\n- b\n', ctx)), ['not-a-mapping']);
  });

  test('missing keys, missing files, nothing to do, outputs that would overwrite an input', () => {
    const ds = validatePruneConfig('strategy: slim\n', ctx);
    assert.deepEqual(codes(ds), ['missing-key', 'missing-key', 'nothing-to-do']);
    assert.match(ds[0].message, /Missing "model:"/);
    const nf = validatePruneConfig('model: nope.cfg\nweights: model.weights\npercent: 0.1\n', ctx);
    assert.deepEqual(codes(nf), ['file-not-found']);
    assert.deepEqual(at(nf[0]), [0, 7, 15]);
    assert.match(nf[0].message, new RegExp(`file not found: ${join(dir, 'nope.cfg').replace(/[.]/g, '\\.')}`));
    const ow = validatePruneConfig(`${BASE}percent: 0.1\noutputs:\n  weights: model.weights\n`, ctx);
    assert.deepEqual(codes(ow), ['overwrites-input']);
    assert.deepEqual(at(ow[0]), [4, 11, 24]);
    // injected file access: nothing is touched on disk
    const virtual = validatePruneConfig(`${BASE}percent: 0.1\n`, { baseDir: '/nowhere', fileExists: (p) => p.startsWith('/nowhere/') });
    assert.deepEqual(virtual, []);
  });

  test('model checks: layer indices exist and are prunable; percent above percent_limit is an error naming it', () => {
    const ds = validatePruneConfig(`${BASE}percent: 0.2\nexclude: [3, 14, 99, 1]\nthresholds:\n  50: 0.1\n`, ctx);
    const msgs = ds.map((d) => `${d.severity} ${d.code} ${d.range.start.line}:${d.range.start.character} ${d.message}`);
    assert.deepEqual(msgs, [
      'warning not-prunable 3:10 layer 3 is a [shortcut] layer; exclude applies to conv layers.',
      'warning not-prunable 3:13 layer 14 is not prunable: conv layer 14 has no batch norm, so no γ ranks its channels.',
      'error unknown-layer 3:17 layer 99 does not exist: the model has layers 0–21.',
      'error unknown-layer 5:2 layer 50 does not exist: the model has layers 0–21.',
    ]);
    const graph = fixtureGraph('residual.cfg');
    const lim = percentLimit(buildChannelGroups(graph), syntheticWeights(graph, { seed: 5 }), 'normal');
    const over = Math.min(1, Math.round((lim.percentLimit + 0.02) * 100) / 100);
    const bad = validatePruneConfig(`${BASE}strategy: normal\npercent: ${over}\n`, ctx);
    assert.deepEqual(codes(bad), ['percent-limit']);
    assert.match(bad[0].message, new RegExp(`percent ${over} is above this model's percent_limit ${lim.percentLimit.toFixed(4)} \\(normal strategy\\): conv layer ${lim.layer} would lose every channel`));
    assert.deepEqual(at(bad[0]).slice(0, 2), [3, 9]);
    assert.deepEqual(validatePruneConfig(`${BASE}strategy: normal\npercent: ${over}\nlayer_keep: 0.1\n`, ctx), []);
    assert.deepEqual(validatePruneConfig(`${BASE}strategy: normal\npercent: ${over}\nper_layer: true\n`, ctx), []);
    // layer pruning
    assert.deepEqual(validatePruneConfig(`${BASE}shortcuts: 2\n`, ctx), []);
    const many = validatePruneConfig(`${BASE}shortcuts: 3\n`, ctx);
    assert.match(many[0].message, /shortcuts=3, but the model has 2 removable residual blocks/);
    const none = validatePruneConfig('model: flat.cfg\nweights: model.weights\nshortcuts: 1\n', ctx);
    assert.ok(none.some((d) => d.code === 'no-blocks' && /no residual blocks/.test(d.message)));
    // weights that do not fit the cfg
    assert.ok(none.some((d) => d.code === 'weights-mismatch' && d.range.start.line === 1));
  });

  test('a bad config is refused by loadPruneConfigFile with file:line:col messages', () => {
    const f = join(dir, 'bad.prune.yaml');
    writeFileSync(f, `${BASE}percent: 2\n`);
    assert.throws(() => loadPruneConfigFile(f), (e: Error) => e.message.includes(`${f}:3:10: error: percent must be between 0 and 1`));
  });

  test('the model loader re-reads a file only when it changes', () => {
    const load = createModelLoader();
    const a = load(join(dir, 'model.cfg'), join(dir, 'model.weights'));
    assert.equal(load(join(dir, 'model.cfg'), join(dir, 'model.weights')), a);
    const t = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'model.cfg'), t, t);
    const b = load(join(dir, 'model.cfg'), join(dir, 'model.weights'));
    assert.notEqual(b, a);
    assert.ok(b?.groups && b.weights && b.weightsCheck?.ok);
  });
});

describe('prune config: hover and completion', () => {
  const text = `${BASE}strategy: shortcut\npercent: 0.3\nexclude: [1, 14]\n`;
  test('hover: keys, strategy values, layer indices, percent with the model\'s percent_limit', () => {
    const k = pruneConfigHover(text, { line: 3, character: 2 }, ctx)!;
    assert.match(k.contents, /^\*\*percent\*\*\n\nFraction of the ranked BN scales/);
    assert.match(k.contents, /percent_limit of this model: normal 0\.\d{4}, shortcut 0\.\d{4}, slim 0\.\d{4}/);
    assert.deepEqual(k.range, { start: { line: 3, character: 0 }, end: { line: 3, character: 7 } });
    const s = pruneConfigHover(text, { line: 2, character: 12 }, ctx)!;
    assert.match(s.contents, /\*\*strategy: shortcut\*\*\n\nShortcut-coupled groups take the mask of their first member layer/);
    const l1 = pruneConfigHover(text, { line: 4, character: 10 }, ctx)!;
    assert.match(l1.contents, /^layer 1: conv 1×1\/1, 8 filters, leaky → 32×32×8\n\nprunable\n\n\|γ\|: mean/);
    const l14 = pruneConfigHover(text, { line: 4, character: 14 }, ctx)!;
    assert.match(l14.contents, /not prunable: conv layer 14 has no batch norm/);
    const m = pruneConfigHover(text, { line: 0, character: 9 }, ctx)!;
    assert.match(m.contents, /22 layers, \d+ params, [\d.]+ BFLOPs; 9 prunable conv layers/);
    assert.equal(pruneConfigHover(text, { line: 9, character: 0 }, ctx), undefined);
    // without a context: schema text only
    assert.match(pruneConfigHover('round_to: 8\n', { line: 0, character: 1 })!.contents, /multiple of this/);
  });

  test('completion: missing keys, strategy values, prunable layers, outputs keys, files, percent_limit', () => {
    const keys = pruneConfigCompletions(`${BASE}\n`, { line: 2, character: 0 }, ctx).map((c) => c.label);
    assert.deepEqual(keys, Object.keys(CONFIG_KEYS).filter((k) => k !== 'model' && k !== 'weights'));
    assert.equal(pruneConfigCompletions(`${BASE}\n`, { line: 2, character: 0 }, ctx)[0].insertText, 'strategy: ');
    assert.deepEqual(pruneConfigCompletions('strategy: ', { line: 0, character: 10 }, ctx).map((c) => c.label), [...STRATEGIES]);
    const flow = pruneConfigCompletions(`${BASE}exclude: [1, `, { line: 2, character: 13 }, ctx);
    assert.deepEqual(flow.map((c) => c.label), ['0', '2', '4', '5', '7', '11', '13', '19']);
    assert.equal(flow.find((c) => c.label === '5')!.detail, 'conv 3×3/1, 16 filters');
    const block = pruneConfigCompletions(`${BASE}exclude:\n  - 1\n  - `, { line: 4, character: 4 }, ctx);
    assert.deepEqual(block.map((c) => c.label), ['0', '2', '4', '5', '7', '11', '13', '19']);
    const thr = pruneConfigCompletions(`${BASE}thresholds:\n  `, { line: 3, character: 2 }, ctx);
    assert.equal(thr[0].insertText, '0: ');
    assert.deepEqual(pruneConfigCompletions('outputs:\n  ', { line: 1, character: 2 }, ctx).map((c) => c.label), ['dir', 'cfg', 'weights', 'report']);
    assert.deepEqual(pruneConfigCompletions('model: ', { line: 0, character: 7 }, ctx).map((c) => c.label), ['flat.cfg', 'model.cfg']);
    assert.deepEqual(pruneConfigCompletions('weights: ', { line: 0, character: 9 }, ctx).map((c) => c.label), ['model.weights']);
    const pct = pruneConfigCompletions(`${BASE}percent: `, { line: 2, character: 9 }, ctx);
    assert.match(pct[0].detail!, /^percent_limit \(slim\): layer \d+ is emptied above it$/);
  });
});

describe('prune config: JSON schema', () => {
  test('the schema and the validator describe the same keys, enums and ranges', () => {
    const schema = JSON.parse(readFileSync(join(repoRoot(), 'schemas', 'prune.schema.json'), 'utf8'));
    assert.deepEqual(Object.keys(schema.properties).sort(), Object.keys(CONFIG_KEYS).sort());
    assert.deepEqual(schema.properties.strategy.enum, [...STRATEGIES]);
    assert.deepEqual(schema.required, Object.entries(CONFIG_KEYS).filter(([, s]) => s.required).map(([k]) => k));
    for (const [k, spec] of Object.entries(CONFIG_KEYS)) {
      const p = schema.properties[k];
      assert.ok(typeof p.description === 'string' && p.description.length > 20, `${k} has a description`);
      if (spec.min !== undefined) assert.equal(spec.exclusiveMin ? p.exclusiveMinimum : p.minimum, spec.min, `${k} minimum`);
      if (spec.max !== undefined) assert.equal(p.maximum, spec.max, `${k} maximum`);
      const type = { path: 'string', enum: 'string', number: 'number', int: 'integer', bool: 'boolean', thresholds: 'object' }[spec.kind as string];
      if (type) assert.equal(p.type, type, `${k} type`);
    }
    assert.equal(schema.additionalProperties, false);
  });
});
