import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { analyzeCfg } from '../../core/darknet/graph';
import { cAtof, cAtoi, parseCfg } from '../../core/darknet/parser';
import { editCfg, plainSections, serializeCfg } from '../../core/darknet/writer';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';

test('sections, keys and values keep their ranges; comments are skipped', () => {
  const text = '# a model\n[net]\n  width = 416 \n; note\n\n[convolutional]\nfilters=32\t# was 16\n';
  const doc = parseCfg(text);
  assert.equal(doc.sections.length, 2);
  const [net, conv] = doc.sections;
  assert.equal(net.index, -1);
  assert.equal(conv.index, 0);
  assert.deepEqual(net.headerRange, { start: { line: 1, character: 0 }, end: { line: 1, character: 5 } });
  const w = net.entries[0];
  assert.equal(w.key, 'width');
  assert.equal(w.value, '416');
  assert.deepEqual(w.keyRange, { start: { line: 2, character: 2 }, end: { line: 2, character: 7 } });
  assert.deepEqual(w.valueRange, { start: { line: 2, character: 10 }, end: { line: 2, character: 13 } });
  assert.equal(conv.entries[0].value, '32\t# was 16');
  assert.equal(conv.range.end.line, 6);
  assert.deepEqual(doc.diagnostics, []);
});

test('CRLF line endings and a missing final newline', () => {
  const doc = parseCfg('[net]\r\nwidth=8\r\n[maxpool]\r\nsize=2');
  assert.equal(doc.sections[1].entries[0].value, '2');
  assert.equal(doc.sections[0].entries[0].range.end.character, 7);
});

test('C number parsing: atoi/atof prefixes with the junk reported', () => {
  assert.deepEqual(cAtoi('40\t#32'), { value: 40, junk: '#32', empty: false });
  assert.deepEqual(cAtoi('-1'), { value: -1, junk: '', empty: false });
  assert.equal(cAtoi('abc').empty, true);
  assert.equal(cAtoi('2.5').value, 2);
  assert.equal(cAtof('.5').value, 0.5);
  assert.equal(cAtof('1e-3x').value, 0.001);
  assert.equal(cAtof('1e-3x').junk, 'x');
});

test('syntax problems become diagnostics, not exceptions', () => {
  const doc = parseCfg('[net\nnot a key value\n=5\n[conv] # trailing\n');
  const codes = doc.diagnostics.map((d) => d.code);
  assert.deepEqual(codes, ['syntax', 'syntax', 'syntax', 'syntax']);
  assert.match(doc.diagnostics[0].message, /missing its closing "\]"/);
  assert.match(doc.diagnostics[3].message, /darknet reads the whole line/);
});

test('route layers with an inline comment resolve as darknet reads them', () => {
  const g = analyzeCfg('[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[route]\nlayers = -1, 0 ###P3\n');
  assert.deepEqual(g.layers[2].inputs, [1, 0]);
  assert.deepEqual(g.layers[2].output, [32, 32, 8]);
});

test('cfg writer: edits keep comments, order, spacing and line endings', () => {
  const text = '[net]\r\nwidth=416 # input\r\n\r\n[convolutional]\r\nfilters=255\t#coco\r\nsize=1\r\n\r\n# head\r\n[yolo]\r\nclasses=80\r\n';
  const doc = parseCfg(text);
  const out = editCfg(doc, [
    { kind: 'set', section: 1, key: 'filters', value: '24' },
    { kind: 'set', section: 2, key: 'classes', value: '3' },
    { kind: 'set', section: 1, key: 'activation', value: 'linear' },
  ]);
  assert.equal(out, '[net]\r\nwidth=416 # input\r\n\r\n[convolutional]\r\nfilters=24\t#coco\r\nsize=1\r\nactivation=linear\r\n\r\n# head\r\n[yolo]\r\nclasses=3\r\n');
  const removed = editCfg(doc, [{ kind: 'remove-section', section: 1 }]);
  assert.equal(removed, '[net]\r\nwidth=416 # input\r\n\r\n[yolo]\r\nclasses=80\r\n');
  const unset = editCfg(doc, [{ kind: 'unset', section: 1, key: 'size' }]);
  assert.ok(!unset.includes('size=1'));
});

test('cfg writer: a fresh serialisation of a corpus cfg builds the same graph', { skip: NO_CORPUS }, () => {
  const text = readFileSync(corpusPath('cfg/alexeyab/yolov4.cfg'), 'utf8');
  const before = analyzeCfg(text);
  const fresh = serializeCfg(plainSections(before.doc));
  const after = analyzeCfg(fresh);
  assert.deepEqual(after.layers.map((l) => l.output), before.layers.map((l) => l.output));
  assert.equal(after.totals.bflops, before.totals.bflops);
});
