// `darkslim demo --quick`: every stage of the pipeline runs and leaves valid files (accuracy is not
// checked: the quick run trains for a few iterations only).
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCfg, loadWeightsFile } from '../../core/darknet/files';
import { demoTable, runDemo } from '../../core/pipeline/demo';
import type { TaskEvent } from '../../core/pipeline/events';

test('demo --quick runs every stage and writes a valid report', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'darkslim-demo-'));
  try {
    const events: TaskEvent[] = [];
    const report = await runDemo({ outDir: out, quick: true, backend: 'wasm', onEvent: (e) => events.push(e) });
    assert.deepEqual(report.rows.map((r) => r.stage), ['baseline', 'sparsity-trained', 'pruned', 'pruned + fine-tuned', 'int8 (pruned + fine-tuned)']);
    assert.equal(report.distill, null);
    for (const r of report.rows) {
      assert.ok(r.params > 0 && r.bflops > 0, `${r.stage}: params and BFLOPs`);
      assert.ok(r.file && existsSync(r.file) && statSync(r.file).size === r.bytes && r.bytes > 0, `${r.stage}: model file ${r.file}`);
      assert.ok(Number.isFinite(r.latencyMs) && r.latencyMs > 0, `${r.stage}: latency`);
      assert.ok(r.map >= 0 && r.map <= 1, `${r.stage}: mAP ${r.map}`);
    }
    const [base, , pruned, ft, int8] = report.rows;
    // pruning really shrank the model, fine-tuning kept its shape, int8 is a smaller file
    assert.ok(pruned.params < base.params && pruned.bflops < base.bflops);
    assert.equal(ft.params, pruned.params);
    assert.ok(int8.bytes < ft.bytes, 'int8 ONNX smaller than the float weights');
    assert.match(int8.note ?? '', /int8 kernels: \S+×\d+/);
    // the pruned cfg + weights load together; the fine-tuned weights fit the pruned cfg
    const g = loadCfg(report.files.prunedCfg);
    assert.ok(loadWeightsFile(report.files.pruned, g).check.ok);
    assert.ok(loadWeightsFile(report.files.finetuned, g).check.ok);
    // the report files
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(json.rows.length, 5);
    assert.equal(json.targets.length >= 5, true);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /\| baseline \|/);
    assert.match(md, /## Targets/);
    assert.match(demoTable(report), /pruned \+ fine-tuned/);
    // CPU time per training stage (the load-independent budget) and the load average of the run
    assert.deepEqual(report.training.map((t) => t.stage), ['baseline', 'sparsity', 'finetune']);
    for (const t of report.training) assert.ok(t.cpuSeconds! > 0 && t.imagesPerCpuSecond! > 0, `${t.stage}: CPU seconds`);
    assert.ok(report.cpuSeconds! >= report.training.reduce((a, t) => a + t.cpuSeconds!, 0) - 0.5);
    assert.ok(report.loadAverage!.start >= 0 && report.loadAverage!.end >= 0);
    assert.match(md, /CPU seconds/);
    // every training stage reported through the events
    for (const task of ['train', 'sparsity', 'finetune']) assert.ok(events.some((e) => e.task === task && e.type === 'done'), `${task} done event`);
    assert.ok(events.some((e) => e.task === 'demo' && e.type === 'done'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
