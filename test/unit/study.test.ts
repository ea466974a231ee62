// `darkslim study`: the yaml schema (errors name their line), a whole study on a synthetic dataset
// with the default model (every stage type, report files readable by the report panel,
// resumability), and the two shipped studies in --smoke mode on the corpus (4 images, 1 iteration
// per training stage; skipped without ../shared/corpus).
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCfg, loadWeightsFile, writeFileAtomic } from '../../core/darknet/files';
import { writeWeights } from '../../core/darknet/weights';
import { generateSyntheticDataset } from '../../core/data/synthetic';
import { initWeights } from '../../core/engine/model';
import { DEMO_MODEL_CFG } from '../../core/pipeline/demo';
import type { TaskEvent } from '../../core/pipeline/events';
import { analyzeCfg } from '../../core/darknet/graph';
import { bestCandidate, changeClassesText, DONE_MARKER, loadStudy, parseStudy, runStudy, StudyError, transferWeights, type StudyReport, type StudyRow } from '../../core/study';
import { reportModel } from '../../webview/reportModel';
import { HAS_CORPUS, NO_CORPUS } from '../helpers/corpus';
import { repoRoot } from '../helpers/root';

const MINIMAL = `study: t
data:
  train: train.txt
  eval: valid.txt
stages:
  - name: base
    type: model
    cfg: a.cfg
    weights: a.weights
`;

function errorOf(text: string): StudyError {
  try {
    parseStudy(text, '/tmp/x/study.yaml');
  } catch (e) {
    assert.ok(e instanceof StudyError, `expected a StudyError, got ${e}`);
    return e;
  }
  assert.fail('the study parsed');
}

describe('study yaml', () => {
  test('a minimal study parses; paths are relative to root', () => {
    const s = parseStudy(MINIMAL + 'root: ..\n', '/tmp/x/study.yaml');
    assert.equal(s.name, 't');
    assert.deepEqual(s.data.train, { kind: 'path', path: '/tmp/train.txt' });
    assert.equal(s.stages[0].type, 'model');
    assert.equal(s.stages[0].line, 6);
  });

  test('a sparsity stage takes its schedule, top-k and switch point', () => {
    const s = parseStudy(MINIMAL + '  - name: sp\n    type: sparsity\n    from: base\n    epochs: 2\n    lambda: 0.2\n    schedule: topk\n    topk: 0.4\n    switch_at: 0\n    layer_keep: 0.1\n', '/tmp/x/study.yaml');
    const sp = s.stages[1];
    assert.ok(sp.type === 'sparsity');
    assert.deepEqual([sp.lambda, sp.schedule, sp.topk, sp.switchAt, sp.layerKeep], [0.2, 'topk', 0.4, 0, 0.1]);
    const e = errorOf(MINIMAL + '  - name: sp\n    type: sparsity\n    from: base\n    epochs: 2\n    lambda: 0.2\n    switch_at: 1.5\n');
    assert.equal(e.line, 15);
    assert.match(e.message, /switch_at/);
  });

  test('a distill stage takes method, lambda and gt_first', () => {
    const s = parseStudy(MINIMAL + '  - name: d\n    type: distill\n    from: base\n    teacher: base\n    epochs: 2\n    lambda: 0.5\n    gt_first: true\n', '/tmp/x/study.yaml');
    const d = s.stages[1];
    assert.ok(d.type === 'distill');
    assert.deepEqual([d.method, d.lambda, d.gtFirst], ['objectness', 0.5, true]);
    const e = errorOf(MINIMAL + '  - name: d\n    type: distill\n    from: base\n    teacher: base\n    epochs: 2\n    gt_first: 3\n');
    assert.equal(e.line, 15);
    assert.match(e.message, /gt_first/);
  });

  test('errors name the line', () => {
    let e = errorOf(MINIMAL + '  - name: ft\n    type: finetune\n    from: base\n    epochs: 2\n    epohcs: 3\n');
    assert.equal(e.line, 14);
    assert.match(e.message, /^\/tmp\/x\/study\.yaml:14: unknown key "epohcs"/);
    e = errorOf(MINIMAL + '  - name: ft\n    type: finetune\n    from: nothere\n    epochs: 2\n');
    assert.equal(e.line, 12);
    assert.match(e.message, /`from` "nothere" names no earlier stage \(known: base\)/);
    e = errorOf(MINIMAL + '  - name: ft\n    type: finetune\n    from: base\n    epochs: -1\n');
    assert.equal(e.line, 13);
    assert.match(e.message, /`epochs` must be > 0/);
    e = errorOf(MINIMAL + '  - name: q\n    type: quantize\n    from: base\n    method: fast\n');
    assert.equal(e.line, 13);
    assert.match(e.message, /`method` must be one of kl, minmax, percentile/);
    e = errorOf(MINIMAL + '  - name: base\n    type: evaluate\n    from: base\n');
    assert.equal(e.line, 10);
    assert.match(e.message, /already defined at line 6/);
    e = errorOf(MINIMAL.replace('  eval: valid.txt\n', '  eval: [valid.txt\n'));
    assert.match(e.message, /invalid YAML/);
    assert.ok(e.line >= 4 && e.line <= 6, `line ${e.line}`);
    e = errorOf(MINIMAL + '  - name: p\n    type: prune\n    from: base\n    percent: 0.5\n    sweep: [0.5]\n');
    assert.equal(e.line, 10);
    assert.match(e.message, /exactly one of `percent:`, `search:` or `sweep:`/);
  });

  test('the shipped studies parse', { skip: !existsSync(join(repoRoot(), 'bench', 'studies')) && 'no bench/studies' }, () => {
    for (const name of ['raccoon', 'coco128']) {
      const s = loadStudy(join(repoRoot(), 'bench', 'studies', `${name}.yaml`));
      assert.equal(s.name, name);
      assert.equal(s.root, repoRoot());
      assert.ok(s.report.startsWith(join(repoRoot(), 'bench', 'results', 'studies')));
      assert.ok(s.work.startsWith(join(repoRoot(), '.darkslim-studies')), 'models outside the committed folders');
    }
  });
});

test('the candidate kept when no percent holds (and in a sweep): best mAP after fine-tuning, ties to the larger percent', () => {
  const row = (map: number | null) => ({ map } as StudyRow);
  const results = new Map([
    [0, { percent: 0.7, pruned: row(0), finetuned: row(0.25) }],
    [1, { percent: 0.6, pruned: row(0), finetuned: row(0.53) }],
    [2, { percent: 0.5, pruned: row(0.03), finetuned: row(0.48) }],
    [3, { percent: 0.4, error: 'out of memory' }],
  ]);
  assert.equal(bestCandidate(results), 1);
  results.set(0, { percent: 0.7, pruned: row(0), finetuned: row(0.53) });
  assert.equal(bestCandidate(results), 0, 'a tie goes to the smaller model');
  // not fine-tuned: the pruned model's mAP
  assert.equal(bestCandidate(new Map([[0, { percent: 0.3, pruned: row(0.2) }], [1, { percent: 0.2, pruned: row(0.4) }]])), 1);
  assert.equal(bestCandidate(new Map([[0, { percent: 0.3, error: 'x' }]])), undefined);
});

test('classes changed with the quick fix: every layer that fits is copied, head convs re-initialised', () => {
  const text = readFileSync(DEMO_MODEL_CFG, 'utf8');
  const src = analyzeCfg(text);
  const srcW = initWeights(src, 5);
  const { text: text2, edits } = changeClassesText(text, 2);
  assert.ok(edits >= 2, 'classes= and filters= edited');
  const dst = analyzeCfg(text2);
  const heads = dst.layers.filter((l) => l.type === 'yolo').map((l) => l.inputs[0]);
  for (const mode of ['boxes', 'fresh'] as const) {
    const r = transferWeights(src, srcW, dst, { head: mode, seed: 9 });
    assert.deepEqual(r.heads, heads);
    assert.equal(r.copied.length + r.heads.length, [...srcW.layers.keys()].length);
    // a complete file for the new cfg
    const bytes = writeWeights(dst, r.weights);
    assert.equal(bytes.length, 20 + dst.totals.weightFloats * 4);
    for (const i of r.copied) assert.equal(r.weights.layers.get(i), srcW.layers.get(i));
    const h = heads[0], sl = srcW.layers.get(h)!, dl = r.weights.layers.get(h)!;
    const per = sl.weights.length / sl.biases.length;
    const anchors = dst.layers.find((l) => l.type === 'yolo')!.yolo!.mask.length;
    const sPer = sl.biases.length / anchors, dPer = dl.biases.length / anchors;
    assert.equal(dPer, 5 + 2);
    for (let a = 0; a < anchors; a++) {
      const same = (from: number, to: number) => sl.biases[from] === dl.biases[to]
        && sl.weights.subarray(from * per, (from + 1) * per).every((v, k) => v === dl.weights[to * per + k]);
      // box + objectness rows kept with 'boxes', fresh otherwise (objectness prior -4.6)
      assert.equal([0, 1, 2, 3].every((r0) => same(a * sPer + r0, a * dPer + r0)), mode === 'boxes', `anchor ${a} box rows (${mode})`);
      if (mode === 'fresh') assert.equal(dl.biases[a * dPer + 4], Math.fround(-4.6));
    }
  }
  assert.throws(() => transferWeights(src, srcW, analyzeCfg(text2 + '\n[dropout]\nprobability=0.1\n')), /the source model has \d+ layers, the new cfg \d+/);
});

function checkReportFiles(dir: string, report: StudyReport): void {
  for (const f of ['report.json', 'report.md', 'map.svg', 'size-latency.svg']) assert.ok(existsSync(join(dir, f)), `${f} written`);
  const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as StudyReport;
  assert.equal(json.kind, 'darkslim-report');
  assert.equal(json.stages.length, report.stages.length);
  for (const r of json.stages) {
    assert.ok(r.params > 0 && r.bflops > 0 && r.sizeBytes > 0, `${r.name}: params, BFLOPs, size`);
    assert.ok(r.latencyMs !== null && r.latencyMs > 0, `${r.name}: latency`);
    assert.ok(r.map !== null && r.map >= 0 && r.map <= 1, `${r.name}: mAP`);
  }
  assert.ok(json.machine.cores > 0 && json.machine.cpu && json.date && json.totalSeconds > 0);
  // the extension's report panel reads the same file
  const model = reportModel(json, join(dir, 'report.json'));
  assert.deepEqual(model.stages.map((s) => s.name), json.stages.map((s) => s.name));
  assert.deepEqual(model.columns.map((c) => c.key), ['params', 'sizeBytes', 'bflops', 'latencyMs', 'map']);
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  for (const r of json.stages) assert.ok(md.includes(`| ${r.name.replace(/\|/g, '\\|')} |`), `report.md has the row ${r.name}`);
  for (const f of Object.values(json.plots)) assert.match(readFileSync(join(dir, f), 'utf8'), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<rect[^]*<\/svg>\n$/);
}

describe('a study on the synthetic dataset (every stage type)', () => {
  let dir = '';
  let yaml = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'darkslim-study-'));
    const net = loadCfg(DEMO_MODEL_CFG).net;
    const ds = await generateSyntheticDataset({ outDir: join(dir, 'data'), seed: 3, train: 6, valid: 4, width: net.width, height: net.height });
    const g = loadCfg(DEMO_MODEL_CFG);
    writeFileAtomic(join(dir, 'init.weights'), writeWeights(g, initWeights(g, 2)));
    yaml = join(dir, 'tiny.yaml');
    writeFileSync(yaml, `study: tiny
root: .
work: models
report: report
backend: wasm
latency_runs: 3
data:
  train: ${ds.dataFile}
  eval: ${ds.dataFile}
checks:
  - { stage: pruned, metric: bflops, vs: trained, max_ratio: 1 }
  - { stage: int8, metric: size, vs: from, max_ratio: 0.9 }
stages:
  - { name: base, type: model, cfg: ${DEMO_MODEL_CFG}, weights: init.weights }
  - { name: trained, type: train, from: base, iterations: 4, batch: 3, burn_in: 0 }
  - { name: sparse, type: sparsity, from: trained, iterations: 1, batch: 3, lambda: 0.1, schedule: constant }
  - name: pruned
    type: prune
    from: sparse
    layer_keep: 0.1
    search: { percents: [0.8, 0.5, 0.3], reference: trained, tolerance: 1 }
    finetune: { iterations: 1, batch: 3, eval_every: 1 }
  - { name: distilled, type: distill, from: pruned, teacher: trained, iterations: 4, batch: 3, method: hinton, eval_every: 1 }
  - { name: int8, type: quantize, from: [pruned.finetuned, distilled], images: 4 }
  - { name: final, type: evaluate, from: int8 }
`);
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  test('runs every stage, writes the report, and resumes', { timeout: 180_000 }, async () => {
    const spec = loadStudy(yaml);
    // stopped after the first epoch's checkpoint (iteration 2 of 4): a half-done training stage
    const stop = new AbortController();
    await assert.rejects(runStudy(spec, {
      signal: stop.signal, onEvent: (e) => { if (e.task === 'train' && e.type === 'checkpoint') stop.abort(); },
    }), /cancelled/);
    assert.ok(existsSync(join(dir, 'models', 'base', DONE_MARKER)) && !existsSync(join(dir, 'models', 'trained', DONE_MARKER)));
    const events: TaskEvent[] = [];
    const r1 = await runStudy(spec, { onEvent: (e) => events.push(e) });
    const resumed = events.find((e) => e.task === 'train' && e.type === 'start');
    assert.ok(resumed && resumed.type === 'start' && resumed.info.resumedAt === 2, 'the training stage continued from its checkpoint at iteration 2');
    assert.deepEqual(r1.ran, ['trained', 'sparse', 'pruned', 'distilled', 'int8', 'final']);
    assert.deepEqual(r1.skipped, ['base']);
    checkReportFiles(join(dir, 'report'), r1);
    assert.ok(existsSync(join(dir, 'report', 'gamma.svg')), 'γ histogram plot');
    // search with tolerance 1 holds at once: the largest percent is chosen, with its fine-tuned model
    const pr = r1.details.pruned.info as { chosen: { percent: number }; candidates: { percent: number; holds?: boolean }[] };
    assert.equal(pr.chosen.percent, 0.8);
    assert.ok(pr.candidates.find((c) => c.percent === 0.8)?.holds);
    const rows = Object.fromEntries(r1.stages.map((s) => [s.stage, s]));
    assert.ok(rows.pruned.bflops < rows.trained.bflops && rows.pruned.params < rows.trained.params, 'pruning shrank the model');
    assert.equal(rows.distilled.params, rows.pruned.params);
    assert.ok(rows.int8.file.endsWith('-int8.onnx') && rows.int8.sizeBytes < rows.distilled.sizeBytes * 2);
    assert.equal(rows.final.map, rows.int8.map, 'the evaluate stage measures the int8 model again');
    // eval_every: the stage's mAP after each epoch (and at its end) in the report
    const trail = (r1.details.distilled.info.training as { mapTrail?: { epoch: number; map: number }[] }).mapTrail;
    assert.deepEqual(trail?.map((p) => p.epoch), [1, 2]);
    assert.ok((r1.details.pruned.info as { candidates: { mapTrail?: unknown[] }[] }).candidates.every((c) => c.mapTrail?.length === 1));
    const md = readFileSync(join(dir, 'report', 'report.md'), 'utf8');
    assert.match(md, /mAP after epoch 1: \d\.\d{3}, 2: \d\.\d{3}/);
    assert.match(md, /mAP of the 80% candidate during its fine-tune, after epoch 0\.\d+: \d\.\d{3}\./);
    assert.equal(r1.checks.length, 2);
    assert.ok(r1.checks[0].met, 'pruned BFLOPs ≤ trained BFLOPs');
    // stage events: study progress, training events, per-stage logs
    assert.ok(events.some((e) => e.task === 'study' && e.type === 'progress'));
    assert.ok(events.some((e) => e.task === 'sparsity' && e.type === 'gamma'));
    assert.ok(events.some((e) => e.task === 'distill' && e.type === 'done'));
    assert.ok(readFileSync(join(dir, 'models', 'trained', 'events.jsonl'), 'utf8').includes('"type":"checkpoint"'));
    const trainedW = readFileSync(join(dir, 'models', 'trained', 'darkslim-tiny_final.weights'));

    // rerun: everything finished is skipped
    const r2 = await runStudy(spec);
    assert.deepEqual(r2.ran, []);
    assert.equal(r2.skipped.length, 7);
    assert.deepEqual(r2.stages.map((s) => s.map), r1.stages.map((s) => s.map));

    // --remeasure: nothing trains; each model's latency is measured once more; mAP and sizes kept
    const marker = () => JSON.parse(readFileSync(join(dir, 'models', 'int8', DONE_MARKER), 'utf8'));
    const keyBefore = marker().key;
    const evRm: TaskEvent[] = [];
    const rm = await runStudy(spec, { remeasure: true, onEvent: (e) => evRm.push(e) });
    assert.deepEqual(rm.ran, []);
    assert.ok(rm.remeasuredAt && marker().remeasuredAt && marker().remeasuredAt <= rm.remeasuredAt && marker().key === keyBefore);
    assert.deepEqual(rm.stages.map((s) => [s.map, s.sizeBytes, s.seconds]), r1.stages.map((s) => [s.map, s.sizeBytes, s.seconds]));
    const files = new Set([...rm.stages.map((s) => s.file), ...(rm.details.pruned.info as { candidates: { pruned?: { file: string }; finetuned?: { file: string } }[] }).candidates.flatMap((c) => [c.pruned?.file, c.finetuned?.file]).filter(Boolean)]);
    const measuredLogs = evRm.filter((e) => e.task === 'study' && e.type === 'log' && / ms \(load /.test(e.message));
    assert.equal(measuredLogs.length, files.size, 'every model measured once');
    assert.ok(rm.stages.every((s) => s.latencyMs !== null && s.latencyMs > 0));
    assert.match(readFileSync(join(dir, 'report', 'report.md'), 'utf8'), /Latency measured again on .*--remeasure/);

    // a stage whose done-marker is missing runs again (and only it, when it is the last)
    rmSync(join(dir, 'models', 'final', DONE_MARKER));
    const r3 = await runStudy(spec);
    assert.deepEqual(r3.ran, ['final']);

    // a finished training stage without its marker continues from its checkpoint (iteration 4 of 4:
    // no new training), and the stages after it run again since their input was rebuilt
    rmSync(join(dir, 'models', 'trained', DONE_MARKER));
    const ev4: TaskEvent[] = [];
    const r4 = await runStudy(spec, { onEvent: (e) => ev4.push(e) });
    assert.deepEqual(r4.ran, ['trained', 'sparse', 'pruned', 'distilled', 'int8', 'final']);
    const start = ev4.find((e) => e.task === 'train' && e.type === 'start');
    assert.ok(start && start.type === 'start' && start.info.resumedAt === 4, 'resumed from the checkpoint at iteration 4');
    assert.ok(Buffer.compare(readFileSync(join(dir, 'models', 'trained', 'darkslim-tiny_final.weights')).subarray(20), trainedW.subarray(20)) === 0, 'same weights after resuming a finished run');
  });

  test('a changed stage starts over; a missing corpus path is a clear error', { timeout: 60_000 }, async () => {
    const spec = loadStudy(yaml);
    const text = readFileSync(yaml, 'utf8').replace('images: 4 }', 'images: 3 }');
    const spec2 = parseStudy(text, yaml);
    await assert.rejects(runStudy(spec2, { remeasure: true }), /stage "int8" \(line \d+\) has not finished with these settings: run the study without --remeasure first/);
    const r = await runStudy(spec2);
    assert.deepEqual(r.ran, ['int8', 'final']);
    assert.ok(spec.stages.length === spec2.stages.length);
    const bad = parseStudy(text.replace(`weights: init.weights`, 'weights: ../nowhere/x.weights'), yaml);
    await assert.rejects(runStudy(bad), /the study's inputs are missing[^]*stage "base" \(line 14\) weights: .*nowhere\/x\.weights/);
  });
});

describe('the shipped studies, --smoke (4 images, 1 iteration per training stage)', { skip: NO_CORPUS }, () => {
  for (const name of ['raccoon', 'coco128']) {
    test(name, { timeout: 300_000, skip: !HAS_CORPUS }, async () => {
      const out = mkdtempSync(join(tmpdir(), `darkslim-study-${name}-`));
      try {
        const spec = loadStudy(join(repoRoot(), 'bench', 'studies', `${name}.yaml`));
        const report = await runStudy(spec, { smoke: true, outDir: out });
        assert.equal(report.smoke, true);
        assert.equal(report.data.train.images, 4);
        assert.equal(report.data.eval.images, 4);
        checkReportFiles(out, report);
        assert.ok(report.stages.some((s) => s.file.endsWith('-int8.onnx')), 'an int8 row');
        for (const d of Object.values(report.details)) {
          const tr = d.info.training as { iterations?: number } | undefined;
          if (tr) assert.equal(tr.iterations, 1, 'one iteration per training stage');
        }
        if (name === 'raccoon') {
          assert.deepEqual(report.stages.map((s) => s.stage), ['baseline', 'finetuned', 'sparse', 'pruned', 'pruned-ft', 'distilled', 'int8']);
          const base = loadCfg(join(out, 'models', 'baseline', 'yolo-fastest-1.1-1class.cfg'));
          assert.equal(base.layers.find((l) => l.type === 'yolo')?.yolo?.classes, 1);
          assert.ok(loadWeightsFile(join(out, 'models', 'baseline', 'yolo-fastest-1.1-1class.weights'), base).check.ok, 'transferred weights fit the 1-class cfg');
          assert.ok(existsSync(join(out, 'gamma.svg')));
        } else {
          assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Train set = evaluation set/);
          assert.equal(report.stages.filter((s) => s.stage === 'sweep').length, 4, 'two candidates, pruned and fine-tuned');
        }
        assert.ok(statSync(join(out, 'report.json')).size > 0);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }
});
