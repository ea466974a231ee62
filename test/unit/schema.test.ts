import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { LayerType } from '../../core/darknet/types';
import {
  ACTIVATIONS,
  SECTION_SCHEMAS,
  allSectionNames,
  didYouMean,
  findKey,
  findSection,
  keysOf,
} from '../../core/darknet/schema';

const ALL_LAYER_TYPES = [
  'convolutional',
  'connected',
  'maxpool',
  'avgpool',
  'local_avgpool',
  'route',
  'shortcut',
  'upsample',
  'yolo',
  'Gaussian_yolo',
  'region',
  'detection',
  'reorg',
  'reorg3d',
  'dropout',
  'softmax',
  'cost',
  'crop',
  'local',
  'batchnorm',
  'activation',
  'scale_channels',
  'sam',
  'implicit',
  'empty',
  'contrastive',
  'normalization',
  'rnn',
  'gru',
  'lstm',
  'crnn',
  'conv_lstm',
  'history',
] as const satisfies readonly LayerType[];

// Compile-time check that the list above covers the whole LayerType union.
type Missing = Exclude<LayerType, (typeof ALL_LAYER_TYPES)[number]>;
const covered: [Missing] extends [never] ? true : false = true;
void covered;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CORPUS = resolve(REPO_ROOT, '..', 'shared', 'corpus');

/** Keys that appear in real cfgs but that darknet never reads: they must stay unknown. */
const IGNORED_BY_DARKNET: Record<string, readonly string[]> = {
  net: ['seen', 'max_epochs'],
  yolo: ['beta1', 'uc_normalizer'],
};

test('every LayerType and [net] has exactly one schema', () => {
  const types = SECTION_SCHEMAS.map((s) => s.type);
  assert.equal(new Set(types).size, types.length, 'duplicate schema types');
  for (const t of [...ALL_LAYER_TYPES, 'net' as const]) {
    assert.ok(types.includes(t), `no schema for ${t}`);
  }
  assert.equal(types.length, ALL_LAYER_TYPES.length + 1);
});

test('aliases resolve like darknet, case-sensitively', () => {
  const cases: [string, LayerType | 'net'][] = [
    ['net', 'net'],
    ['network', 'net'],
    ['conv', 'convolutional'],
    ['convolutional', 'convolutional'],
    ['conn', 'connected'],
    ['max', 'maxpool'],
    ['avg', 'avgpool'],
    ['local_avg', 'local_avgpool'],
    ['lrn', 'normalization'],
    ['soft', 'softmax'],
    ['silence', 'empty'],
    ['reorg3d', 'reorg3d'],
    ['reorg', 'reorg'],
    ['[Gaussian_yolo]', 'Gaussian_yolo'],
    ['[yolo]', 'yolo'],
    [' [ route ] ', 'route'],
  ];
  for (const [name, type] of cases) assert.equal(findSection(name)?.type, type, name);
  assert.equal(findSection('gaussian_yolo'), undefined);
  assert.equal(findSection('YOLO'), undefined);
  assert.equal(findSection('[Net]'), undefined);
  assert.equal(findSection('pool'), undefined);
  for (const s of SECTION_SCHEMAS) assert.equal(s.names[0], s.type, 'canonical name first');
  const names = allSectionNames();
  assert.equal(new Set(names).size, names.length);
  assert.ok(names.includes('silence') && names.includes('Gaussian_yolo') && names.includes('network'));
});

test('key schemas are self-consistent', () => {
  for (const s of SECTION_SCHEMAS) {
    assert.ok(s.description.length > 0 && !s.description.includes('\n'), `${s.type} description`);
    for (const [name, k] of Object.entries(keysOf(s))) {
      const where = `[${s.type}] ${name}`;
      assert.equal(k.key, name, where);
      assert.ok(k.description.length > 0 && !k.description.includes('\n'), `${where} description`);
      if (k.kind === 'enum') {
        assert.ok(k.values && k.values.length > 0, `${where} values`);
        if (k.default !== undefined) assert.ok(k.values.includes(String(k.default)), `${where} default in values`);
      } else {
        assert.equal(k.values, undefined, `${where} values only for enums`);
      }
      if (k.required) assert.equal(k.default, undefined, `${where} required has no default`);
      if (typeof k.default === 'number') {
        assert.ok(['int', 'float', 'bool'].includes(k.kind), `${where} numeric default kind`);
        if (k.kind === 'int' || k.kind === 'bool') assert.ok(Number.isInteger(k.default), `${where} integer default`);
        if (k.kind === 'bool') assert.ok(k.default === 0 || k.default === 1, `${where} bool default`);
        if (k.min !== undefined) assert.ok(k.default >= k.min, `${where} default >= min`);
        if (k.max !== undefined) assert.ok(k.default <= k.max, `${where} default <= max`);
      }
      if (k.min !== undefined && k.max !== undefined) assert.ok(k.min <= k.max, where);
    }
  }
});

test('spot checks against darknet', () => {
  const net = findSection('net')!;
  const conv = findSection('convolutional')!;
  const yolo = findSection('yolo')!;
  assert.equal(findKey(net, 'learning_rate')?.default, 0.001);
  assert.equal(findKey(net, 'policy')?.default, 'constant');
  assert.equal(findKey(net, 'steps')?.kind, 'intList');
  assert.equal(findKey(net, 'scales')?.kind, 'floatList');
  assert.equal(findKey(net, 'seq_scales')?.kind, 'floatList');
  assert.equal(findKey(net, 'flip')?.default, 1);
  assert.equal(findKey(net, 'clip'), undefined, '[net] has no per-layer keys');
  assert.equal(findKey(net, 'jitter'), undefined);
  assert.equal(findKey(conv, 'learning_rate')?.default, 1, 'per-layer learning-rate scale');
  assert.equal(findKey(conv, 'stopbackward')?.kind, 'bool');
  assert.equal(findKey(conv, 'activation')?.default, 'logistic');
  assert.equal(findKey(conv, 'batch_normalize')?.kind, 'bool');
  assert.equal(findKey(conv, 'filters')?.min, 1);
  assert.equal(findKey(conv, 'Filters'), undefined, 'case-sensitive');
  assert.equal(findKey(conv, 'toString'), undefined);
  assert.equal(findKey(findSection('route')!, 'layers')?.kind, 'layerRefs');
  assert.equal(findKey(findSection('route')!, 'layers')?.required, true);
  assert.equal(findKey(findSection('shortcut')!, 'from')?.kind, 'layerRefs');
  assert.equal(findKey(findSection('shortcut')!, 'activation')?.default, 'linear');
  assert.equal(findKey(findSection('scale_channels')!, 'from')?.kind, 'layerRefs');
  assert.equal(findKey(findSection('sam')!, 'from')?.kind, 'layerRefs');
  assert.equal(findKey(yolo, 'mask')?.kind, 'intList');
  assert.equal(findKey(yolo, 'anchors')?.kind, 'floatList');
  assert.equal(findKey(yolo, 'counters_per_class')?.kind, 'intList');
  assert.equal(findKey(yolo, 'ignore_thresh')?.max, 1);
  assert.equal(findKey(yolo, 'iou_normalizer')?.default, 0.75);
  assert.deepEqual(findKey(yolo, 'nms_kind')?.values, ['default', 'greedynms', 'diounms']);
  assert.ok(findKey(findSection('Gaussian_yolo')!, 'nms_kind')?.values?.includes('cornersnms'));
  assert.equal(findKey(findSection('region')!, 'tree')?.kind, 'path');
  assert.equal(findKey(findSection('upsample')!, 'stride')?.default, 2);
  assert.equal(findKey(findSection('maxpool')!, 'size')?.default, undefined, 'defaults to stride');
  for (const a of ['leaky', 'mish', 'swish', 'relu6', 'linear', 'logistic', 'hard_mish', 'normalize_channels_softmax_maxval', 'gelu']) {
    assert.ok(ACTIVATIONS.includes(a), a);
  }
  assert.equal(new Set(ACTIVATIONS).size, ACTIVATIONS.length);
});

test('didYouMean', () => {
  const convKeys = Object.keys(keysOf(findSection('convolutional')!));
  assert.equal(didYouMean('filter', convKeys), 'filters');
  assert.equal(didYouMean('batch_normalise', convKeys), 'batch_normalize');
  assert.equal(didYouMean('convolutinal', allSectionNames()), 'convolutional');
  assert.equal(didYouMean('covnolutional', allSectionNames()), 'convolutional', 'transposition');
  assert.equal(didYouMean('xyz', allSectionNames()), undefined);
  assert.equal(didYouMean('xyz', convKeys), undefined);
  assert.equal(didYouMean('b1', Object.keys(findSection('net')!.keys)), 'B1');
  assert.equal(didYouMean('', []), undefined);
});

/** Darknet's view of a cfg: it strips all whitespace from each line, skips blank/#/; lines. */
function scanCfg(text: string): { section: string; key: string }[] {
  const out: { section: string; key: string }[] = [];
  let section = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+/g, '');
    if (line === '' || line[0] === '#' || line[0] === ';') continue;
    if (line[0] === '[') {
      section = line;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.push({ section, key: line.slice(0, eq) });
  }
  return out;
}

function corpusCfgs(): string[] {
  const files: string[] = [];
  const alexeyab = join(CORPUS, 'cfg', 'alexeyab');
  if (existsSync(alexeyab)) {
    for (const f of readdirSync(alexeyab)) if (f.endsWith('.cfg')) files.push(join(alexeyab, f));
  }
  const weights = join(CORPUS, 'weights');
  if (existsSync(weights)) {
    for (const d of readdirSync(weights, { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      for (const f of readdirSync(join(weights, d.name))) {
        if (f.endsWith('.cfg')) files.push(join(weights, d.name, f));
      }
    }
  }
  return files.sort();
}

test('every key darknet reads in the corpus cfgs is known', (t) => {
  if (!existsSync(CORPUS)) {
    t.skip('corpus missing');
    return;
  }
  const files = corpusCfgs();
  assert.ok(files.length > 50, `expected the corpus cfgs, found ${files.length}`);
  const unknownSections = new Map<string, string>();
  const unknownKeys = new Map<string, Set<string>>(); // "type" -> keys
  let entries = 0;
  for (const file of files) {
    for (const { section, key } of scanCfg(readFileSync(file, 'utf8'))) {
      entries++;
      const schema = findSection(section);
      if (!schema) {
        unknownSections.set(section, file);
        continue;
      }
      if (!findKey(schema, key)) {
        let set = unknownKeys.get(schema.type);
        if (!set) unknownKeys.set(schema.type, (set = new Set()));
        set.add(key);
      }
    }
  }
  assert.ok(entries > 10000, `scanned ${entries} entries`);
  assert.deepEqual([...unknownSections.keys()], [], `unknown sections: ${[...unknownSections].join(', ')}`);
  const report = [...unknownKeys].map(([type, keys]) => `[${type}] ${[...keys].sort().join(', ')}`);
  t.diagnostic(`unknown keys (darknet ignores them): ${report.join('; ') || 'none'}`);
  for (const [type, keys] of unknownKeys) {
    const allowed = IGNORED_BY_DARKNET[type] ?? [];
    const bad = [...keys].filter((k) => !allowed.includes(k));
    assert.deepEqual(bad, [], `[${type}] keys unknown to the schema: ${bad.join(', ')}`);
  }
});

test('keys darknet ignores stay unknown', () => {
  for (const [type, keys] of Object.entries(IGNORED_BY_DARKNET)) {
    const schema = findSection(type)!;
    for (const k of keys) assert.equal(findKey(schema, k), undefined, `[${type}] ${k}`);
  }
});
