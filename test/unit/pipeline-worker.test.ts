// The task worker (core/pipeline/worker.ts + tasks.ts): requests in, task events out, files
// written; failures are one error event with the core's message; the stdio protocol end to end.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TaskEvent } from '../../core/pipeline/events';
import type { RedundancyData } from '../../core/pipeline/preview';
import { parseTaskRequest, runTask, taskLabel, type TaskRequest } from '../../core/pipeline/tasks';
import { WorkerProcess } from '../../client/tasks/workerProcess';
import { generateSyntheticDataset } from '../../core/data/synthetic';
import { writeFileSync } from 'node:fs';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';
import { repoRoot } from '../helpers/root';
import { tinyDetectorCfg } from '../helpers/tiny-cfg';
import { analyzeCfg } from '../../core/darknet/graph';
import { writeWeights } from '../../core/darknet/weights';
import { initWeights } from '../../core/engine/model';

const dir = mkdtempSync(join(tmpdir(), 'darkslim-worker-'));

const TINY = tinyDetectorCfg({
  net: { batch: 4, subdivisions: 1, learning_rate: 0.01, burn_in: 2, max_batches: 100, policy: 'constant' }, width: 64, height: 64,
  layers: [{ filters: 8, stride: 2 }, { filters: 16, stride: 2 }], classes: 2, anchors: [[16, 16], [24, 24], [32, 32]],
});
after(() => rmSync(dir, { recursive: true, force: true }));

function copyModel(): string {
  const cfg = join(dir, 'yolo-fastest-1.1.cfg');
  if (!existsSync(cfg)) {
    copyFileSync(corpusPath('weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1.cfg'), cfg);
    copyFileSync(corpusPath('weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1.weights'), join(dir, 'yolo-fastest-1.1.weights'));
  }
  return cfg;
}

async function run(req: TaskRequest, signal = new AbortController().signal): Promise<{ code: number; events: TaskEvent[] }> {
  const events: TaskEvent[] = [];
  const code = await runTask(req, { sink: (e) => events.push(e), signal });
  return { code, events };
}

describe('task requests', () => {
  test('are validated with clear messages', () => {
    assert.throws(() => parseTaskRequest({ kind: 'dance', args: {} }), /unknown task kind "dance"/);
    assert.throws(() => parseTaskRequest({ kind: 'prune' }), /args must be an object/);
    assert.throws(() => parseTaskRequest({ kind: 'map', args: { cfg: 'a.cfg' } }), /args.data is missing/);
    assert.throws(() => parseTaskRequest({ kind: 'export', args: {} }), /args.cfg/);
    assert.equal(parseTaskRequest({ kind: 'prune', args: { config: 'x.prune.yaml' } }).kind, 'prune');
  });
  test('sparsity training is labelled sparsity', () => {
    assert.equal(taskLabel({ kind: 'train', args: { cfg: 'a', data: 'b', lambda: 0.001 } }), 'sparsity');
    assert.equal(taskLabel({ kind: 'train', args: { cfg: 'a', data: 'b' } }), 'train');
    assert.equal(taskLabel({ kind: 'finetune', args: { cfg: 'a', data: 'b' } }), 'finetune');
    assert.equal(taskLabel({ kind: 'distill', args: { cfg: 'a', teacherCfg: 't', data: 'b' } }), 'distill');
  });
  test('distillation needs a teacher and a dataset', () => {
    assert.throws(() => parseTaskRequest({ kind: 'distill', args: { cfg: 's.cfg', data: 'd.data' } }), /args.teacherCfg is missing/);
    assert.throws(() => parseTaskRequest({ kind: 'distill', args: { cfg: 's.cfg', teacherCfg: 't.cfg' } }), /args.data is missing/);
  });
});

describe('distill task', () => {
  /** A cfg with freshly initialised weights beside it. */
  function tinyModel(name: string, seed: number): { cfg: string; weights: string } {
    const cfg = join(dir, `${name}.cfg`);
    const weights = join(dir, `${name}.weights`);
    writeFileSync(cfg, TINY);
    writeFileSync(weights, writeWeights(analyzeCfg(TINY), initWeights(analyzeCfg(TINY), seed)));
    return { cfg, weights };
  }
  test('distils a student from its teacher: distill events with the loss parts, the student\'s weights written', async () => {
    const ds = await generateSyntheticDataset({ outDir: join(dir, 'distill-shapes'), seed: 3, train: 8, valid: 4, width: 64, height: 64, classes: ['circle', 'square'], minObjects: 1, maxObjects: 1 });
    const teacher = tinyModel('teacher', 1);
    const student = tinyModel('student', 2);
    const outDir = join(dir, 'distill-run');
    const { code, events } = await run({
      kind: 'distill',
      args: { cfg: student.cfg, teacherCfg: teacher.cfg, data: ds.dataFile, method: 'objectness', gtFirst: true, epochs: 1, backend: 'wasm', outDir },
    });
    assert.equal(code, 0, JSON.stringify(events.filter((e) => e.type === 'error')));
    assert.ok(events.every((e) => e.task === 'distill'));
    const start = events.find((e) => e.type === 'start');
    assert.ok(start?.type === 'start' && start.info.distillMethod === 'objectness' && start.info.gtFirst === true, JSON.stringify(start));
    assert.ok(start.info.teacherWeights === teacher.weights || String(start.info.teacherWeights).endsWith('teacher.weights'), 'the teacher weights beside its cfg');
    const metrics = events.filter((e) => e.type === 'metrics');
    assert.ok(metrics.length > 0 && metrics.every((e) => e.type === 'metrics' && e.values.distill > 0), 'the distillation term is reported and nonzero');
    const done = events.at(-1)!;
    assert.ok(done.type === 'done' && !done.cancelled && existsSync(done.outputs.final), JSON.stringify(done));
    assert.ok(done.outputs.final.startsWith(outDir) && done.outputs.final.endsWith('student_final.weights'));
  });
  test('a teacher without weights beside it is named', async () => {
    const cfg = join(dir, 'lonely-teacher.cfg');
    writeFileSync(cfg, TINY);
    const student = tinyModel('student2', 2);
    const { code, events } = await run({ kind: 'distill', args: { cfg: student.cfg, teacherCfg: cfg, data: join(dir, 'none.data') } });
    assert.equal(code, 1);
    const err = events.at(-1)!;
    assert.ok(err.type === 'error' && /no weights for the teacher lonely-teacher\.cfg/.test(err.message), JSON.stringify(err));
  });
});

describe('tasks in process', { skip: NO_CORPUS }, () => {
  test('prune writes the pruned pair and the report, and says where', async () => {
    const cfg = copyModel();
    const { code, events } = await run({ kind: 'prune', args: { cfg, percent: 0.3, strategy: 'slim' } });
    assert.equal(code, 0, JSON.stringify(events.filter((e) => e.type === 'error')));
    assert.equal(events[0].type, 'start');
    assert.ok(events.some((e) => e.type === 'progress'));
    const done = events.at(-1)!;
    assert.equal(done.type, 'done');
    if (done.type !== 'done') return;
    assert.equal(done.task, 'prune');
    assert.equal(done.outputs.cfg, join(dir, 'yolo-fastest-1.1-pruned-0.3.cfg'));
    for (const k of ['cfg', 'weights', 'report']) assert.ok(existsSync(done.outputs[k]), k);
    assert.ok((done.summary.paramsAfter as number) < (done.summary.paramsBefore as number));
  });

  test('a percent above percent_limit fails with the core message, no stack', async () => {
    const cfg = copyModel();
    const { code, events } = await run({ kind: 'prune', args: { cfg, percent: 0.999 } });
    assert.equal(code, 1);
    const errors = events.filter((e) => e.type === 'error');
    assert.equal(errors.length, 1);
    const msg = errors[0].type === 'error' ? errors[0].message : '';
    assert.match(msg, /percent_limit/);
    assert.doesNotMatch(msg, /\n\s+at /);
  });

  test('missing weights are named', async () => {
    const cfg = join(dir, 'lonely.cfg');
    copyFileSync(corpusPath('weights', 'yolo-fastest-1.1_coco', 'yolo-fastest-1.1.cfg'), cfg);
    const { code, events } = await run({ kind: 'export', args: { cfg } });
    assert.equal(code, 1);
    assert.match(events.find((e) => e.type === 'error')?.type === 'error' ? (events.find((e) => e.type === 'error') as { message: string }).message : '', /no weights for lonely.cfg/);
  });

  test('redundancy writes the view data', async () => {
    const cfg = copyModel();
    const out = join(dir, 'red', 'data.json');
    const { code, events } = await run({ kind: 'redundancy', args: { cfg, out } });
    assert.equal(code, 0, JSON.stringify(events.filter((e) => e.type === 'error')));
    const data = JSON.parse(readFileSync(out, 'utf8')) as RedundancyData;
    assert.equal(data.version, 1);
    assert.equal(data.name, 'yolo-fastest-1.1.cfg');
    assert.ok(data.layers.some((l) => l.gamma && l.prunable));
  });

  test('quantize writes the int8 model and a float-vs-int8 stage report', async () => {
    const cfg = copyModel();
    const { code, events } = await run({ kind: 'quantize', args: { cfg, calib: corpusPath('images'), images: 2, latencyRuns: 0 } });
    assert.equal(code, 0, JSON.stringify(events.filter((e) => e.type === 'error')));
    const done = events.at(-1)!;
    assert.ok(done.type === 'done' && existsSync(done.outputs.onnx) && existsSync(done.outputs.report));
    if (done.type !== 'done') return;
    const report = JSON.parse(readFileSync(done.outputs.report, 'utf8')) as { stages: { name: string; sizeBytes: number }[] };
    assert.equal(report.stages.length, 2);
    assert.ok(report.stages[1].sizeBytes < report.stages[0].sizeBytes);
  });

  test('map evaluates a labelled folder', async () => {
    const cfg = copyModel();
    const { code, events } = await run({ kind: 'map', args: { cfg, data: corpusPath('datasets', 'coco128', 'images'), limit: 4 } });
    assert.equal(code, 0, JSON.stringify(events.filter((e) => e.type === 'error')));
    const done = events.at(-1)!;
    assert.ok(done.type === 'done' && typeof done.summary.mAP === 'number' && done.summary.images === 4);
  });

  test('export writes an ONNX model', async () => {
    const cfg = copyModel();
    const { code, events } = await run({ kind: 'export', args: { cfg } });
    assert.equal(code, 0, JSON.stringify(events.filter((e) => e.type === 'error')));
    const done = events.at(-1)!;
    assert.ok(done.type === 'done' && existsSync(done.outputs.onnx));
  });
});

describe('worker process (stdio JSON lines)', { skip: NO_CORPUS }, () => {
  const workerPath = join(repoRoot(), 'core', 'pipeline', 'worker.ts');
  test('runs a prune in a forked worker', async () => {
    const cfg = copyModel();
    const w = new WorkerProcess({ kind: 'prune', args: { cfg, percent: 0.2, outDir: join(dir, 'forked') } }, { workerPath, execArgv: ['--import', 'tsx'] });
    const events: TaskEvent[] = [];
    w.onEvent((e) => events.push(e));
    const outcome = await w.run();
    assert.equal(outcome.status, 'done', outcome.error);
    assert.equal(outcome.exitCode, 0);
    assert.ok(outcome.done && existsSync(outcome.done.outputs.weights));
    assert.ok(events.some((e) => e.type === 'start'));
  });

  test('a training run stops on cancel (after its current iteration) and says it was cancelled', async () => {
    const ds = await generateSyntheticDataset({ outDir: join(dir, 'shapes'), seed: 2, train: 16, valid: 4, width: 64, height: 64, classes: ['circle', 'square'], minObjects: 1, maxObjects: 1 });
    const cfg = join(dir, 'tiny.cfg');
    writeFileSync(cfg, TINY);
    const w = new WorkerProcess({ kind: 'train', args: { cfg, data: ds.dataFile, epochs: 50, lambda: 0.001, outDir: join(dir, 'run'), backend: 'wasm' } },
      { workerPath, execArgv: ['--import', 'tsx'], graceMs: 20_000 });
    const c = new AbortController();
    const types: string[] = [];
    w.onEvent((e) => { types.push(e.type); if (e.type === 'metrics' && !c.signal.aborted) c.abort(); });
    const outcome = await w.run(c.signal);
    assert.equal(outcome.status, 'cancelled', outcome.error ?? outcome.stderr);
    assert.equal(outcome.done?.cancelled, true);
    assert.equal(outcome.done?.task, 'sparsity');
    assert.ok(types.includes('start'));
  });

  test('a failing task comes back as failed with the message', async () => {
    const w = new WorkerProcess({ kind: 'prune', args: { cfg: join(dir, 'nope.cfg'), weights: join(dir, 'nope.weights'), percent: 0.2 } }, { workerPath, execArgv: ['--import', 'tsx'] });
    const outcome = await w.run();
    assert.equal(outcome.status, 'failed');
    assert.match(outcome.error ?? '', /cannot read cfg .*nope.cfg: ENOENT/);
    assert.equal(outcome.exitCode, 1);
  });
});
