import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import { analyzeCfg } from '../../core/darknet/graph';
import { corpusCfgs, corpusPath, NO_CORPUS } from '../helpers/corpus';

// Printed by darknet itself (corpus README): Total BFLOPS and avg_outputs at the default size.
const DARKNET_FACTS: [string, string, number][] = [
  ['cfg/alexeyab/yolov3.cfg', '65.879', 532444],
  ['cfg/alexeyab/yolov3-tiny.cfg', '5.571', 341534],
  ['cfg/alexeyab/yolov4.cfg', '128.459', 1068395],
  ['cfg/alexeyab/yolov4-tiny.cfg', '6.910', 310203],
  ['weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.cfg', '0.252', 62893],
  ['weights/yolo-fastest-1.1_coco/yolo-fastest-1.1-xl.cfg', '0.725', 120982],
];

test('totals equal darknet\'s printed BFLOPs (3 decimals) and avg_outputs (exactly)', { skip: NO_CORPUS }, () => {
  for (const [path, bflops, avgOutputs] of DARKNET_FACTS) {
    const graph = analyzeCfg(readFileSync(corpusPath(path), 'utf8'));
    assert.equal(graph.totals.bflops.toFixed(3), bflops, `${path} BFLOPs`);
    assert.equal(graph.totals.avgOutputs, avgOutputs, `${path} avg_outputs`);
  }
});

test('every corpus network cfg builds without error diagnostics', { skip: NO_CORPUS }, () => {
  const files = corpusCfgs();
  assert.ok(files.length >= 90, `expected the whole corpus, found ${files.length} cfgs`);
  for (const file of files) {
    const graph = analyzeCfg(readFileSync(file, 'utf8'));
    const errors = graph.diagnostics.filter((d) => d.severity === 'error');
    assert.deepEqual(errors.map((d) => `${basename(file)}:${d.range.start.line + 1} ${d.message}`), [], basename(file));
    assert.ok(graph.layers.length > 0, `${basename(file)} has layers`);
    for (const l of graph.layers) {
      assert.ok(l.output.every((v) => Number.isInteger(v) && v >= 0), `${basename(file)} layer ${l.index} output ${l.output}`);
    }
  }
});

test('known shapes: yolov3 and yolov4-tiny heads and routes', { skip: NO_CORPUS }, () => {
  const v3 = analyzeCfg(readFileSync(corpusPath('cfg/alexeyab/yolov3.cfg'), 'utf8'));
  assert.equal(v3.layers.length, 107);
  assert.deepEqual(v3.layers[82].output, [13, 13, 255]);
  assert.equal(v3.layers[82].type, 'yolo');
  assert.deepEqual(v3.layers[86].inputs, [85, 61]);
  assert.deepEqual(v3.layers[86].output, [26, 26, 768]);
  assert.deepEqual(v3.layers[106].output, [52, 52, 255]);
  const tiny = analyzeCfg(readFileSync(corpusPath('cfg/alexeyab/yolov4-tiny.cfg'), 'utf8'));
  // route layers=-1 groups=2 group_id=1 keeps the second half of the channels
  assert.equal(tiny.layers[3].type, 'route');
  assert.deepEqual(tiny.layers[3].output, [104, 104, 32]);
  assert.deepEqual([tiny.layers[3].groups, tiny.layers[3].groupId], [2, 1]);
});

test('numbers with trailing comments read as darknet reads them, with a warning', { skip: NO_CORPUS }, () => {
  const graph = analyzeCfg(readFileSync(corpusPath('cfg/alexeyab/efficientnet-lite3.cfg'), 'utf8'));
  const junk = graph.diagnostics.filter((d) => d.code === 'numeric-junk');
  assert.ok(junk.some((d) => d.range.start.line === 45 && /filters=40/.test(d.message)), 'filters=40\t#32 on line 46');
  const layer = graph.layers.find((l) => l.section.headerRange.start.line < 45 && l.section.range.end.line >= 45);
  assert.equal(layer?.conv?.filters, 40);
});
