// The webviews' pure models: the compression report table from report.json files, and the
// training dashboard's series folded from task events (bounded for long runs).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TaskEvent } from '../../core/pipeline/events';
import { applyEvents, describeGamma, emptyDashboard, formatEta, lossKeys, MAX_POINTS } from '../../webview/dashboardModel';
import { barFraction, changeText, formatCell, reportModel } from '../../webview/reportModel';

describe('report model', () => {
  test('a stage list: columns present, bars, changes', () => {
    const m = reportModel({
      model: '/w/yolov3.cfg',
      stages: [
        { name: 'baseline', params: 61.5e6, sizeBytes: 246.4e6, latencyMs: 15.0, map: 0.7692 },
        { name: 'pruned', params: 10.9e6, sizeBytes: 43.6e6, latency_ms: 7.7, mAP: 77.22 },
        { name: 'int8', sizeBytes: 1.7e6 },
      ],
    }, '/w/r.report.json');
    assert.deepEqual(m.columns.map((c) => c.key), ['params', 'sizeBytes', 'latencyMs', 'map']);
    assert.equal(m.title, 'yolov3.cfg');
    assert.equal(m.stages[1].map, 0.7722);
    assert.equal(m.stages[1].latencyMs, 7.7);
    assert.equal(barFraction(m, m.stages[0], 'params'), 1);
    assert.equal(changeText(m, m.stages[1], 'params'), '−82.3%');
    assert.equal(changeText(m, m.stages[1], 'map'), '+0.30 pt');
    assert.equal(changeText(m, m.stages[0], 'params'), undefined);
    assert.equal(formatCell('params', 10.9e6), '10.90 M');
    assert.equal(formatCell('sizeBytes', 43.6e6), '43.6 MB');
    assert.equal(formatCell('map', undefined), '—');
  });
  test('a prune report becomes baseline → pruned, with its notes and layers', () => {
    const m = reportModel({
      inputs: { cfg: '/w/a.cfg', weights: '/w/a.weights' },
      policy: { strategy: 'slim', percent: 0.5, shortcuts: 0 },
      percentLimit: 0.83, limitLayer: 12, threshold: 0.0123, removedChannels: 900, removedBlocks: [],
      before: { params: 1000, bflops: 2, weightsBytes: 4020, layers: 10 },
      after: { params: 400, bflops: 1, weightsBytes: 1620, layers: 10 },
      layers: [
        { index: 0, newIndex: 0, type: 'convolutional', before: 16, after: 8 },
        { index: 1, newIndex: 1, type: 'maxpool', before: 16, after: 8 },
        { index: 2, newIndex: 2, type: 'convolutional', before: 32, after: 32 },
      ],
      warnings: ['w1'],
    });
    assert.deepEqual(m.stages.map((s) => s.name), ['baseline', 'pruned (slim 50%)']);
    assert.equal(m.stages[1].sizeBytes, 1620);
    assert.equal(m.title, 'Pruning a.cfg');
    assert.ok(m.notes.some((n) => n.includes('percent_limit 83.00% (layer 12)')));
    assert.ok(m.notes.includes('warning: w1'));
    assert.deepEqual(m.layers, [{ index: 0, type: 'convolutional', before: 16, after: 8, removed: false }]);
    assert.deepEqual(m.files.map((f) => f.label), ['original cfg', 'original weights']);
  });
  test('unknown shapes are refused with a message', () => {
    assert.throws(() => reportModel({ hello: 1 }, '/x/h.json'), /h.json is not a report Darkslim knows/);
    assert.throws(() => reportModel(42), /expected a JSON object/);
    assert.throws(() => reportModel({ stages: [] }), /no stages/);
  });
});

describe('dashboard model', () => {
  const ev = (e: Record<string, unknown>) => ({ task: 'sparsity', time: 0, ...e }) as TaskEvent;
  test('events fold into series, evaluations, γ snapshots and state', () => {
    const m = emptyDashboard('Sparsity-train a.cfg', 'sparsity');
    applyEvents(m, [
      ev({ type: 'start', total: 100, info: { backend: 'wasm' } }),
      ev({ type: 'metrics', step: 1, values: { loss: 10, box: 4, obj: 5, cls: 1, lr: 0.001 } }),
      ev({ type: 'metrics', step: 2, values: { loss: 9, box: 3.5, obj: 4.5, cls: 1, lr: 0.002 } }),
      ev({ type: 'progress', done: 2, total: 100, epoch: 0.2, eta: 30 }),
      ev({ type: 'eval', step: 2, epoch: 1, map: 0.25, values: {}, best: true }),
      ev({ type: 'gamma', step: 2, epoch: 1, edges: [0, 0.01, 1], counts: [3, 7], sparsity: 0.3, count: 10, lambda: 0.001 }),
      ev({ type: 'checkpoint', step: 2, kind: 'best', path: '/o/best.weights' }),
      ev({ type: 'done', cancelled: false, seconds: 3, outputs: {}, summary: { map: 0.25 } }),
    ]);
    assert.deepEqual(m.steps, [1, 2]);
    assert.deepEqual(m.series.loss, [10, 9]);
    assert.deepEqual(lossKeys(m), ['loss', 'box', 'obj', 'cls']);
    // a distillation run also draws the ground-truth part and the distillation term (not its sub-parts)
    const d = emptyDashboard('Distill s.cfg', 'distill');
    applyEvents(d, [ev({ task: 'distill', type: 'metrics', step: 1, values: { loss: 5, box: 1, obj: 2, cls: 1, gtLoss: 4, distill: 1, distillCls: 0.5, distillBox: 0.2, distillObj: 0.3, lr: 0.001 } })]);
    assert.deepEqual(lossKeys(d), ['loss', 'box', 'obj', 'cls', 'gtLoss', 'distill']);
    assert.equal(m.evals[0].map, 0.25);
    assert.equal(m.gamma.length, 1);
    assert.equal(describeGamma(m.gamma[0]), '30.0% of 10 |γ| below 0.01 at epoch 1.0 (λ 0.001)');
    assert.equal(m.state, 'done');
    assert.equal(m.info.backend, 'wasm');
    assert.equal(m.progress?.epoch, 0.2);
  });
  test('a metric missing at some steps is NaN there', () => {
    const m = applyEvents(emptyDashboard(), [
      ev({ type: 'metrics', step: 1, values: { loss: 1 } }),
      ev({ type: 'metrics', step: 2, values: { loss: 2, map: 0.5 } }),
    ]);
    assert.ok(Number.isNaN(m.series.map[0]));
    assert.equal(m.series.map[1], 0.5);
  });
  test('long runs stay bounded and keep their shape', () => {
    const m = emptyDashboard();
    const n = MAX_POINTS * 5;
    const events = Array.from({ length: n }, (_, i) => ev({ type: 'metrics', step: i + 1, values: { loss: 100 - (i * 100) / n } }));
    applyEvents(m, events);
    assert.ok(m.steps.length <= MAX_POINTS, `${m.steps.length} points`);
    assert.ok(m.steps.length > MAX_POINTS / 4);
    assert.ok(m.series.loss[0] > 99);
    assert.ok(m.series.loss.at(-1)! < 2);
    for (let i = 1; i < m.steps.length; i++) assert.ok(m.steps[i] > m.steps[i - 1]);
    assert.equal(m.steps.at(-1), n);
  });
  test('a failure is the state', () => {
    const m = applyEvents(emptyDashboard(), [ev({ type: 'error', message: 'no images' })]);
    assert.equal(m.state, 'failed');
    assert.equal(m.error, 'no images');
  });
  test('eta text', () => {
    assert.equal(formatEta(5), '5s');
    assert.equal(formatEta(125), '2m 05s');
    assert.equal(formatEta(3700), '1h 01m');
    assert.equal(formatEta(undefined), '');
  });
});
