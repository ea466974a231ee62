// The client's argument handling without VS Code: answers typed into input boxes, the weights and
// datasets offered first, the output folder setting, task titles/keys, completion messages, the
// per-model memory, event text for the Output channel and the status bar, and the webview CSP.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { contentSecurityPolicy, makeNonce, webviewShell } from '../../client/panels/csp';
import { eventLogLine, progressMessage, statusBarText } from '../../client/tasks/format';
import type { TaskEntry } from '../../client/tasks/queue';
import {
  AnswerMemory, completionMessage, datasetCandidates, displayPath, distillMethodArgs, folderDescription, needsTrust, parseLambda, parseNumber, parsePercent,
  prunedFrom, resolveOutputFolder, taskKey, taskTitle, teacherCandidates, weightsCandidates,
} from '../../client/tasks/requests';

describe('answers', () => {
  test('percent: 50%, 50 and 0.5 are half; 0 and 100% are refused', () => {
    assert.equal(parsePercent('50%').value, 0.5);
    assert.equal(parsePercent(' 50 ').value, 0.5);
    assert.equal(parsePercent('0.5').value, 0.5);
    assert.equal(parsePercent('0,25').value, 0.25);
    assert.equal(parsePercent('12.5 %').value, 0.125);
    assert.match(parsePercent('0').error!, /above 0/);
    assert.match(parsePercent('100%').error!, /below 100%/);
    assert.match(parsePercent('abc').error!, /not a number/);
    assert.match(parsePercent('').error!, /Enter a percent/);
    assert.match(parsePercent('150').error!, /below 100%/);
  });
  test('numbers and λ', () => {
    assert.equal(parseNumber('10', 'epochs', { min: 1, integer: true }).value, 10);
    assert.match(parseNumber('1.5', 'epochs', { integer: true }).error!, /whole number/);
    assert.match(parseNumber('0', 'epochs', { min: 1 }).error!, /at least 1/);
    assert.equal(parseLambda('0.001').value, 0.001);
    assert.match(parseLambda('0').error!, /above 0/);
    assert.match(parseLambda('2').error!, /at most 1/);
  });
});

describe('defaults', () => {
  const cfg = '/w/models/yolo.cfg';
  test('weights: remembered, beside, training outputs (_last, _best, _final), then the rest (same folder first)', () => {
    const found = ['/w/other/z.weights', '/w/models/a.weights', '/w/models/backup/yolo_last.weights', '/w/models/yolo.weights', '/w/models/yolo_best.weights'];
    assert.deepEqual(weightsCandidates(cfg, found), [
      '/w/models/yolo.weights', '/w/models/backup/yolo_last.weights', '/w/models/yolo_best.weights', '/w/models/a.weights', '/w/other/z.weights',
    ]);
    assert.equal(weightsCandidates(cfg, found, '/w/other/z.weights')[0], '/w/other/z.weights');
    // a remembered file that is gone is not offered first
    assert.equal(weightsCandidates(cfg, found, '/w/gone.weights')[0], '/w/models/yolo.weights');
  });
  test('datasets: remembered, last used, setting, then found', () => {
    assert.deepEqual(datasetCandidates(['/d/b.data', '/d/a.data', '/d/c.data'], { remembered: '/d/c.data', last: '/d/b.data', setting: '/d/x.data' }),
      ['/d/c.data', '/d/b.data', '/d/x.data', '/d/a.data']);
    assert.deepEqual(datasetCandidates([]), []);
  });
  test('teachers: remembered, the prune report\'s original, ancestors by name (nearest first), same folder, the rest; never the student', () => {
    const student = '/w/m/yolo-fast-pruned-50.cfg';
    const found = ['/w/z/other.cfg', '/w/m/yolo.cfg', '/w/m/yolo-fast.cfg', '/w/m/neighbour.cfg', student, '/w/m/yolo-fastest.cfg', '/w/n/yolo-fast.cfg'];
    assert.deepEqual(teacherCandidates(student, found), [
      // yolo-fast is the nearest ancestor (two of them: same folder by name order), then yolo
      '/w/m/yolo-fast.cfg', '/w/n/yolo-fast.cfg', '/w/m/yolo.cfg', '/w/m/neighbour.cfg', '/w/m/yolo-fastest.cfg', '/w/z/other.cfg',
    ]);
    assert.equal(teacherCandidates(student, found, '/w/z/other.cfg')[0], '/w/z/other.cfg');
    assert.equal(teacherCandidates(student, found, '/w/gone.cfg')[0], '/w/m/yolo-fast.cfg', 'a remembered teacher no longer there is not first');
    assert.deepEqual(teacherCandidates(student, found, undefined, '/elsewhere/orig.cfg').slice(0, 2), ['/elsewhere/orig.cfg', '/w/m/yolo-fast.cfg']);
    assert.deepEqual(teacherCandidates(student, found, '/w/z/other.cfg', '/w/m/yolo.cfg').slice(0, 3), ['/w/z/other.cfg', '/w/m/yolo.cfg', '/w/m/yolo-fast.cfg']);
    assert.ok(!teacherCandidates(student, found, student).includes(student));
  });
  test('a pruned model\'s original comes from its prune report', () => {
    const d = mkdtempSync(join(tmpdir(), 'darkslim-teacher-'));
    try {
      writeFileSync(join(d, 'yolo.cfg'), '[net]\n');
      writeFileSync(join(d, 'yolo-pruned-50.report.json'), JSON.stringify({ inputs: { cfg: join(d, 'yolo.cfg'), weights: join(d, 'yolo.weights') } }));
      assert.equal(prunedFrom(join(d, 'yolo-pruned-50.cfg')), join(d, 'yolo.cfg'));
      assert.equal(prunedFrom(join(d, 'yolo.cfg')), undefined, 'no report');
      writeFileSync(join(d, 'moved.report.json'), JSON.stringify({ inputs: { cfg: join(d, 'gone.cfg') } }));
      assert.equal(prunedFrom(join(d, 'moved.cfg')), undefined, 'the original is gone');
      writeFileSync(join(d, 'bad.report.json'), '{');
      assert.equal(prunedFrom(join(d, 'bad.cfg')), undefined);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
  test('distillation methods offered → task arguments', () => {
    assert.deepEqual(distillMethodArgs('objectness-gt'), { method: 'objectness', gtFirst: true });
    assert.deepEqual(distillMethodArgs('objectness'), { method: 'objectness' });
    assert.deepEqual(distillMethodArgs('hinton'), { method: 'hinton' });
  });
  test('output folder setting', () => {
    assert.equal(resolveOutputFolder('', cfg, '/w'), undefined);
    assert.equal(resolveOutputFolder('out', cfg, '/w'), '/w/out');
    assert.equal(resolveOutputFolder('${cfgDir}/pruned', cfg, '/w'), '/w/models/pruned');
    assert.equal(resolveOutputFolder('/abs/${cfgName}', cfg, '/w'), '/abs/yolo');
    assert.equal(resolveOutputFolder('${workspaceFolder}/x', cfg, '/w'), '/w/x');
    assert.equal(resolveOutputFolder('rel', cfg), '/w/models/rel');
  });
  test('display paths are workspace-relative inside the workspace', () => {
    assert.equal(displayPath('/w/models/a.cfg', '/w'), join('models', 'a.cfg'));
    assert.equal(displayPath('/elsewhere/a.cfg', '/w'), '/elsewhere/a.cfg');
    // quick pick descriptions: the folder, nothing for the workspace root (not its absolute path)
    assert.equal(folderDescription('/w/models/a.cfg', '/w'), 'models');
    assert.equal(folderDescription('/w/a.cfg', '/w'), '');
    assert.equal(folderDescription('/elsewhere/a.cfg', '/w'), '/elsewhere');
    assert.equal(folderDescription('/elsewhere/a.cfg'), '/elsewhere');
  });
});

describe('tasks', () => {
  test('titles and keys', () => {
    assert.equal(taskTitle({ kind: 'prune', args: { cfg: '/w/yolov4.cfg', strategy: 'slim', percent: 0.5 } }), 'Prune yolov4.cfg (slim, 50%)');
    assert.equal(taskTitle({ kind: 'train', args: { cfg: '/w/a.cfg', data: '/d/x.data', lambda: 0.001, epochs: 5 } }), 'Sparsity-train a.cfg (λ 0.001, 5 epochs)');
    assert.equal(taskTitle({ kind: 'export', args: { cfg: '/w/a.cfg' } }), 'Export to ONNX a.cfg');
    assert.equal(taskTitle({ kind: 'map', args: { cfg: '/w/a.cfg', data: '/d/coco.data' } }), 'Evaluate mAP a.cfg (coco.data)');
    assert.equal(taskTitle({ kind: 'distill', args: { cfg: '/w/a-pruned-50.cfg', teacherCfg: '/w/a.cfg', data: '/d/x.data', epochs: 10 } }), 'Distill a-pruned-50.cfg (from a.cfg, 10 epochs)');
    assert.equal(taskTitle({ kind: 'finetune', args: { cfg: '/w/a.cfg', data: '/d/x.data', epochs: 1 } }), 'Fine-tune a.cfg (1 epoch)');
    const k1 = taskKey({ kind: 'prune', args: { cfg: 'a', percent: 0.5 } });
    const k2 = taskKey({ kind: 'prune', args: { percent: 0.5, cfg: 'a' } });
    assert.equal(k1, k2);
    assert.notEqual(k1, taskKey({ kind: 'prune', args: { cfg: 'a', percent: 0.6 } }));
  });
  test('trust: writing and training need it; reading tasks do not', () => {
    for (const k of ['prune', 'export', 'quantize', 'detect', 'train', 'finetune', 'distill'] as const) assert.equal(needsTrust(k), true, k);
    for (const k of ['redundancy', 'map', 'bench'] as const) assert.equal(needsTrust(k), false, k);
  });
  test('completion messages say where files went', () => {
    const m = completionMessage({ kind: 'prune', args: { cfg: '/w/m/a.cfg', percent: 0.5 } }, {
      type: 'done', task: 'prune', time: 0, cancelled: false, seconds: 1,
      outputs: { cfg: '/w/m/a-pruned-0.5.cfg', weights: '/w/m/a-pruned-0.5.weights', report: '/w/m/a-pruned-0.5.report.json', original: '/w/m/a.cfg' },
      summary: { paramsBefore: 2_000_000, paramsAfter: 500_000, bflopsBefore: 1.5, bflopsAfter: 0.5 },
    }, '/w');
    assert.match(m, /params 2\.00 M → 500\.0 K/);
    assert.match(m, /Wrote m\/a-pruned-0\.5\.cfg, a-pruned-0\.5\.weights and a-pruned-0\.5\.report\.json/);
    const b = completionMessage({ kind: 'bench', args: { cfg: '/w/a.cfg' } }, { type: 'done', task: 'bench', time: 0, cancelled: false, seconds: 1, outputs: {}, summary: { median_ms: 6.1, p90_ms: 7, runs: 50, threads: 2, input: '1x3x320x320' } });
    assert.match(b, /median 6.1 ms/);
    const d = completionMessage({ kind: 'distill', args: { cfg: '/w/s.cfg', teacherCfg: '/w/t.cfg', data: '/d/x.data', epochs: 2 } }, {
      type: 'done', task: 'distill', time: 0, cancelled: false, seconds: 1, outputs: { final: '/w/s-distill/s_final.weights' }, summary: { iterations: 40, map: 0.5 },
    }, '/w');
    assert.equal(d, 'Finished Distill s.cfg (from t.cfg, 2 epochs) after 40 iterations, mAP@0.5 50.00%. Weights: s-distill/s_final.weights.');
  });
});

describe('memory', () => {
  test('answers are remembered per model, and the last dataset globally', async () => {
    const store = new Map<string, unknown>();
    const kv = { get: <T>(k: string) => store.get(k) as T | undefined, update: (k: string, v: unknown) => { store.set(k, v); } };
    const mem = new AnswerMemory(kv);
    assert.deepEqual(mem.forModel('/w/a.cfg'), {});
    await mem.remember('/w/a.cfg', { percent: 0.4, strategy: 'slim' });
    await mem.remember('/w/a.cfg', { dataset: '/d/x.data' });
    await mem.remember('/w/b.cfg', { percent: 0.7 });
    assert.deepEqual(mem.forModel('/w/a.cfg'), { percent: 0.4, strategy: 'slim', dataset: '/d/x.data' });
    assert.deepEqual(mem.forModel('/w/b.cfg'), { percent: 0.7 });
    assert.equal(mem.lastDataset(), '/d/x.data');
    await mem.remember('/w/a.cfg', { layerKeep: undefined });
    assert.equal('layerKeep' in mem.forModel('/w/a.cfg'), false);
  });
});

describe('event text', () => {
  const base = { task: 'prune', time: 0 };
  test('Output channel lines', () => {
    assert.equal(eventLogLine({ ...base, type: 'error', message: 'boom' }), 'error: boom');
    assert.equal(eventLogLine({ ...base, type: 'metrics', step: 1, values: {} }), undefined);
    assert.equal(eventLogLine({ ...base, type: 'checkpoint', step: 1, kind: 'last', path: 'x' }), undefined);
    assert.equal(eventLogLine({ ...base, type: 'checkpoint', step: 1, kind: 'best', path: 'x' }), 'wrote best: x');
    assert.match(eventLogLine({ ...base, type: 'gamma', step: 1, epoch: 2, edges: [], counts: [], sparsity: 0.25, count: 100, lambda: 0.001 })!, /25\.0% of 100 below 0\.01 at epoch 2\.00 \(λ 0\.001\)/);
    assert.match(eventLogLine({ ...base, type: 'done', cancelled: false, seconds: 2, outputs: { cfg: 'a' }, summary: {} })!, /done in 2\.0 s; files: cfg a/);
  });
  test('progress and status bar', () => {
    assert.equal(progressMessage({ ...base, type: 'progress', done: 3, total: 10, epoch: 1.5, message: 'training', eta: 12.3 }), 'training · epoch 1.50 · 3/10 · 12 s left');
    const e = (state: TaskEntry['state'], label: string, fraction?: number): TaskEntry => ({ id: 1, label, key: label, state, queuedAt: 0, fraction });
    assert.equal(statusBarText([]), undefined);
    assert.equal(statusBarText([e('running', 'Prune a.cfg', 0.42), e('queued', 'Export a.cfg')]), '$(sync~spin) Prune a.cfg 42% (+1 queued)');
  });
});

describe('webview CSP', () => {
  test('nonce scripts only, no unsafe-inline or unsafe-eval', () => {
    const nonce = makeNonce();
    assert.match(nonce, /^[A-Za-z0-9]{16,}$/);
    assert.notEqual(nonce, makeNonce());
    const csp = contentSecurityPolicy('https://x.vscode-cdn.net', nonce);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, new RegExp(`script-src 'nonce-${nonce}'`));
    assert.doesNotMatch(csp, /unsafe/);
    const html = webviewShell({ title: 'T<', cspSource: 'src', nonce, scriptUri: 'https://s/a.js', styleUris: ['https://s/a.css'] });
    assert.match(html, new RegExp(`<script nonce="${nonce}" src="https://s/a.js"></script>`));
    assert.doesNotMatch(html, /style=|<style/);
    assert.match(html, /<title>T&lt;<\/title>/);
  });
});
