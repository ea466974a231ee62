// The edit helpers behind the quick fixes (core/darknet/edits.ts): values changed in place,
// missing keys inserted, and "change classes" right for every kind of head darknet has.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyEdits, changeClassesEdits, leadingNumberRange, setIntEdit } from '../../core/darknet/edits';
import { analyzeCfg } from '../../core/darknet/graph';
import { NEEDS_CORPUS, corpusCfg, fixture } from './lsp-harness';

const headErrors = (text: string) => analyzeCfg(text).diagnostics
  .filter((d) => d.severity === 'error' && (d.code === 'head-filters' || d.code === 'classes-mismatch'));

describe('cfg edits', () => {
  test('applyEdits: any order, CRLF kept, a character past the end of a line means its end', () => {
    const text = 'a=1\r\nb=22\r\nc=3';
    const edits = [
      { range: { start: { line: 2, character: 2 }, end: { line: 2, character: 3 } }, newText: '30' },
      { range: { start: { line: 0, character: 2 }, end: { line: 0, character: 3 } }, newText: '10' },
      { range: { start: { line: 1, character: 99 }, end: { line: 1, character: 99 } }, newText: ' # end' },
    ];
    assert.equal(applyEdits(text, edits), 'a=10\r\nb=22 # end\r\nc=30');
  });

  test('setIntEdit replaces only the number darknet reads, keeping a comment after it', () => {
    const text = '[net]\nwidth=416\n[convolutional]\nfilters=255\t# 3*(80+5)\nsize=1\n';
    const graph = analyzeCfg(text);
    const conv = graph.doc.sections[1];
    const entry = conv.entries[0];
    assert.deepEqual(leadingNumberRange(graph.doc, entry), { start: { line: 3, character: 8 }, end: { line: 3, character: 11 } });
    assert.equal(applyEdits(text, [setIntEdit(graph.doc, conv, 'filters', 24)]), text.replace('filters=255', 'filters=24'));
    // a missing key goes right under the header, with the file's own line ending
    const crlf = text.replace(/\n/g, '\r\n');
    const g2 = analyzeCfg(crlf);
    assert.equal(applyEdits(crlf, [setIntEdit(g2.doc, g2.doc.sections[1], 'groups', 2)]),
      crlf.replace('[convolutional]\r\n', '[convolutional]\r\ngroups=2\r\n'));
  });

  test('changeClassesEdits on the fixture: every [yolo] and the conv before it', () => {
    const text = fixture('tiny-heads.cfg');
    assert.deepEqual(changeClassesEdits(analyzeCfg(text), 80), [], 'already 80: nothing to do');
    const edits = changeClassesEdits(analyzeCfg(text), 1);
    assert.equal(edits.length, 4);
    const out = applyEdits(text, edits);
    assert.deepEqual(headErrors(out), []);
    assert.equal(out.match(/^filters=18$/gm)?.length, 2, '(1 + 5) * 3');
  });

  for (const [name, classes, filters] of [
    ['yolov2.cfg', 3, 40], // [region]: num * (classes + coords + 1) = 5 * (3 + 4 + 1)
    ['Gaussian_yolov3_BDD.cfg', 3, 36], // [Gaussian_yolo]: (classes + 9) * len(mask) = 12 * 3
    ['yolov4.cfg', 1, 18],
    ['yolov4-tiny.cfg', 20, 75],
  ] as const) {
    test(`changeClassesEdits on ${name}: classes=${classes} leaves no head error`, { skip: NEEDS_CORPUS }, () => {
      const text = corpusCfg(name);
      const out = applyEdits(text, changeClassesEdits(analyzeCfg(text), classes));
      assert.deepEqual(headErrors(out).map((d) => d.message), []);
      const g = analyzeCfg(out);
      for (const head of g.layers.filter((l) => l.yolo)) {
        assert.equal(head.yolo?.classes, classes);
        assert.equal(g.layers[head.index - 1].conv?.filters, filters);
      }
    });
  }
});
