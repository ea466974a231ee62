import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeCfg } from '../../core/darknet/graph';
import type { Diagnostic } from '../../core/darknet/types';

const NET = '[net]\nwidth=64\nheight=64\nchannels=3\nbatch=4\nsubdivisions=2\n';
const conv = (filters: number, extra = '') => `[convolutional]\nbatch_normalize=1\nfilters=${filters}\nsize=3\nstride=1\npad=1\nactivation=leaky\n${extra}`;

function diags(text: string, code?: Diagnostic['code']): Diagnostic[] {
  const all = analyzeCfg(text).diagnostics;
  return code ? all.filter((d) => d.code === code) : all;
}

function only(text: string, code: Diagnostic['code'], severity: Diagnostic['severity'] = 'error'): Diagnostic {
  const found = diags(text, code);
  assert.equal(found.length, 1, `one ${code} diagnostic, got ${JSON.stringify(diags(text).map((d) => d.message))}`);
  assert.equal(found[0].severity, severity);
  return found[0];
}

const line = (d: Diagnostic) => d.range.start.line + 1;

test('a clean small cfg has no diagnostics', () => {
  assert.deepEqual(diags(NET + conv(8) + conv(16)).map((d) => d.message), []);
});

test('unknown section, with did-you-mean', () => {
  const d = only(NET + conv(8) + '[convolutinal]\nfilters=3\n', 'unknown-section');
  assert.match(d.message, /Did you mean \[convolutional\]/);
  assert.equal(d.layer, 1);
  assert.equal(line(d), 14);
});

test('unknown key is a warning naming the section, with did-you-mean', () => {
  const d = only(NET + conv(8, 'filter=3\n'), 'unknown-key', 'warning');
  assert.match(d.message, /\[convolutional\] has no key "filter"/);
  assert.match(d.message, /Did you mean "filters"/);
});

test('bad value type and range', () => {
  assert.match(only(NET + conv(8).replace('size=3', 'size=three'), 'bad-value').message, /size=three is not a number/);
  assert.match(only(NET + conv(0), 'value-range').message, /filters=0 must be at least 1/);
});

test('numeric junk is a warning and the number is read as darknet reads it', () => {
  const g = analyzeCfg(NET + conv(8).replace('filters=8', 'filters=40\t#32'));
  assert.equal(g.layers[0].conv?.filters, 40);
  assert.equal(g.diagnostics.filter((d) => d.code === 'numeric-junk').length, 1);
});

test('route and shortcut references: out of range and forward', () => {
  assert.match(only(NET + conv(8) + '[route]\nlayers=-5\n', 'bad-reference').message, /layers=-5 in layer 1 points before the first layer/);
  assert.match(only(NET + conv(8) + '[route]\nlayers=3\n', 'forward-reference').message, /refers to layer 3, which is not before it/);
  assert.match(only(NET + conv(8) + conv(8) + '[shortcut]\nfrom=2\n', 'forward-reference').message, /from=2 in layer 2/);
});

test('route inputs with different spatial sizes', () => {
  const text = NET + conv(8) + '[maxpool]\nsize=2\nstride=2\n' + '[route]\nlayers=-1,-2\n';
  const d = only(text, 'route-spatial-mismatch');
  assert.match(d.message, /layer 1 is 32×32×8 but layer 0 is 64×64×8/);
});

test('groups that do not divide the channels (conv and route)', () => {
  assert.match(only(NET + conv(8) + conv(6, 'groups=4\n'), 'conv-groups').message, /groups=4 does not divide the 8 input channels|does not divide filters=6/);
  assert.match(only(NET + conv(9) + '[route]\nlayers=-1\ngroups=2\ngroup_id=1\n', 'route-groups').message, /groups=2 does not divide the 9 channels/);
});

test('shortcut spatial mismatch', () => {
  const text = NET + conv(8) + '[convolutional]\nfilters=8\nsize=3\nstride=3\npad=1\nactivation=leaky\n' + '[shortcut]\nfrom=-2\n';
  assert.match(only(text, 'shortcut-mismatch').message, /their widths and heights must match/);
});

const HEAD = (filters: number, classes: number, mask = '0,1,2', num = 3, anchors = '10,13, 16,30, 33,23') =>
  `[convolutional]\nsize=1\nstride=1\npad=1\nfilters=${filters}\nactivation=linear\n\n[yolo]\nmask = ${mask}\nanchors = ${anchors}\nclasses=${classes}\nnum=${num}\n`;

test('the conv before [yolo] must have (classes+5)*len(mask) filters: error on its filters= line', () => {
  const text = NET + conv(8) + HEAD(255, 3);
  const d = only(text, 'head-filters');
  assert.equal(text.split('\n')[d.range.start.line], 'filters=255');
  assert.equal(d.data?.expected, 24);
  assert.match(d.message, /needs \(classes \+ 5\) \* len\(mask\) = \(3 \+ 5\) \* 3 = 24/);
  assert.deepEqual(diags(NET + conv(8) + HEAD(24, 3)).filter((x) => x.severity === 'error'), []);
});

test('[region] filters = (classes + coords + 1) * num', () => {
  const text = NET + conv(8) + '[convolutional]\nsize=1\nfilters=100\nactivation=linear\n[region]\nanchors=1,1,2,2\nclasses=20\ncoords=4\nnum=2\n';
  assert.equal(only(text, 'head-filters').data?.expected, 50);
});

test('mask index beyond num, anchors count, classes differing between heads', () => {
  assert.match(only(NET + conv(8) + HEAD(24, 3, '0,1,5', 3), 'mask-range').message, /mask index 5 in layer 2 is outside the 3 anchors/);
  assert.match(only(NET + conv(8) + HEAD(24, 3, '0,1,2', 3, '10,13, 16,30'), 'anchors-count', 'warning').message, /needs 6 anchor values.*has 4/);
  const two = NET + conv(8) + HEAD(24, 3) + '[route]\nlayers=-3\n' + HEAD(21, 2);
  assert.match(only(two, 'classes-mismatch').message, /classes=2 in layer 5 differs from classes=3 in layer 2/);
});

test('non-positive output size', () => {
  const text = '[net]\nwidth=4\nheight=4\nchannels=3\n' + '[convolutional]\nfilters=4\nsize=7\nstride=1\nactivation=leaky\n';
  assert.match(only(text, 'non-positive-size').message, /would output -2×-2×4/);
});

test('width/height not a multiple of 32 for a detector is a warning', () => {
  const text = NET.replace('width=64', 'width=100') + conv(8) + HEAD(24, 3);
  assert.match(only(text, 'size-multiple-32', 'warning').message, /width=100 and height=64 should both be multiples of 32/);
});

test('batch not divisible by subdivisions, and steps/scales length mismatch', () => {
  assert.equal(only(NET.replace('batch=4', 'batch=5') + conv(8), 'batch-subdivisions', 'warning').severity, 'warning');
  const text = NET + 'policy=steps\nsteps=100,200\nscales=.1\n' + conv(8);
  assert.match(only(text, 'steps-scales').message, /steps= has 2 values but scales= has 1/);
});

test('[net] must come first; keys before any section', () => {
  assert.ok(diags(conv(8) + NET).some((d) => d.code === 'missing-net'));
  assert.ok(diags('width=3\n' + NET).some((d) => d.code === 'key-outside-section'));
});

test('diagnostics carry layer indices and ranges on the offending text', () => {
  const text = NET + conv(8) + conv(8, 'activaton=leaky\n');
  const d = only(text, 'unknown-key', 'warning');
  assert.equal(d.layer, 1);
  const l = text.split('\n')[d.range.start.line];
  assert.equal(l.slice(d.range.start.character, d.range.end.character), 'activaton');
});
