import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';
import { repoRoot } from '../helpers/root';

function darkslim(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot(), 'cli', 'main.ts'), ...args], { encoding: 'utf8', cwd: repoRoot() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('inspect --json with the weights beside the cfg', { skip: NO_CORPUS }, () => {
  const cfg = corpusPath('weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.cfg');
  const r = darkslim('inspect', cfg, '--json');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.deepEqual(report.input, { width: 320, height: 320, channels: 3 });
  assert.equal(report.totals.avgOutputs, 62893);
  assert.equal(report.totals.bflops.toFixed(3), '0.252');
  assert.deepEqual(Object.keys(report.layers[0]), ['index', 'type', 'line', 'input', 'output', 'params', 'bflops']);
  assert.equal(report.weights.ok, true);
  assert.equal(report.weights.bytes, report.weights.expectedBytes);
  assert.deepEqual([report.weights.major, report.weights.minor, report.weights.revision], [0, 2, 5]);
  assert.ok(report.weights.gamma.layers.length > 50);
  assert.ok(report.weights.gamma.percentLimit > 0 && report.weights.gamma.percentLimit < 1);
  for (const k of ['index', 'count', 'min', 'median', 'mean', 'max', 'below001', 'below01']) assert.ok(k in report.weights.gamma.layers[0], k);
});

test('inspect text output and exit code 1 on errors', { skip: NO_CORPUS }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'darkslim-inspect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'broken.cfg');
  writeFileSync(cfg, readFileSync(corpusPath('cfg/alexeyab/yolov3-tiny.cfg'), 'utf8').replace(/classes=80/g, 'classes=3'));
  const r = darkslim('inspect', cfg, '--size', '608x608');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /Total BFLOPS/);
  assert.match(r.stdout, /608x608x3 input/);
  assert.match(r.stdout, /2 error\(s\)/);
  assert.match(r.stdout, /broken\.cfg:\d+: error: filters=255 in layer \d+ does not fit/);
});

test('inspect reports a weights file that no longer fits its cfg', { skip: NO_CORPUS }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'darkslim-inspect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'model.cfg');
  writeFileSync(cfg, readFileSync(corpusPath('weights/yoloface-500k-v2/yoloface-500k-v2.cfg'), 'utf8').replace('filters=18', 'filters=24'));
  copyFileSync(corpusPath('weights/yoloface-500k-v2/yoloface-500k-v2.weights'), join(dir, 'model.weights'));
  const r = darkslim('inspect', cfg, '--json');
  const report = JSON.parse(r.stdout);
  assert.equal(r.code, 1);
  assert.equal(report.weights.ok, false);
  assert.match(report.weights.message, /The first layer that does not fit is layer \d+ \[convolutional\]/);
});

test('bad arguments give usage, missing files a clear message', () => {
  const a = darkslim('inspect');
  assert.equal(a.code, 2);
  assert.match(a.stderr, /missing <cfg>/);
  const b = darkslim('inspect', '/nonexistent/model.cfg');
  assert.equal(b.code, 1);
  assert.match(b.stderr, /cannot read cfg \/nonexistent\/model\.cfg: ENOENT/);
  const c = darkslim('inspect', 'x.cfg', '--frobnicate');
  assert.match(c.stderr, /unknown option --frobnicate/);
});
