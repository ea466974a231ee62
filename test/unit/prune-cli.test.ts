// `darkslim prune`: options, --json, --dry-run, --config, default names, refusals that write nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../cli/main';
import { writePruneOutputs } from '../../core/prune/prune';
import { syntheticWeightsBytes } from '../../core/prune/synthetic';
import { fixtureGraph, fixtureText } from '../fixtures/prune/helpers';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

let dir: string;
let cfg: string;
let weights: string;
let cfgBytes: Buffer;
let weightsBytes: Buffer;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'darkslim-prune-cli-'));
  cfg = join(dir, 'model.cfg');
  weights = join(dir, 'model.weights');
  writeFileSync(cfg, fixtureText('residual.cfg'));
  writeFileSync(weights, syntheticWeightsBytes(fixtureGraph('residual.cfg'), { seed: 5 }));
  cfgBytes = readFileSync(cfg);
  weightsBytes = readFileSync(weights);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function fresh(name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  return d;
}

describe('darkslim prune', () => {
  test('--json: outputs, before/after totals, percentLimit, per-layer channels; files written to --out', async () => {
    const out = fresh('json');
    const r = await cli(['prune', cfg, weights, '--percent', '0.5', '--strategy', 'shortcut', '--round-to', '2', '--out', out, '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.deepEqual(j.outputs, { cfg: join(out, 'model-pruned-0.5.cfg'), weights: join(out, 'model-pruned-0.5.weights'), report: join(out, 'model-pruned-0.5.report.json') });
    for (const k of ['cfg', 'weights', 'report'] as const) assert.ok(existsSync(j.outputs[k]));
    assert.ok(j.after.params < j.before.params && j.after.bflops < j.before.bflops);
    assert.equal(typeof j.percentLimit, 'number');
    assert.equal(j.layers.length, 22);
    assert.deepEqual(Object.keys(j.layers[0]).slice(0, 5), ['index', 'newIndex', 'type', 'before', 'after']);
    assert.equal(j.policy.strategy, 'shortcut');
    const report = JSON.parse(readFileSync(j.outputs.report, 'utf8'));
    assert.deepEqual(report.after, j.after);
    const inspect = await cli(['inspect', j.outputs.cfg, '--weights', j.outputs.weights, '--json']);
    assert.equal(inspect.code, 0, inspect.out);
    assert.equal(JSON.parse(inspect.out).weights.ok, true);
    assert.deepEqual(readdirSync(out).sort(), ['model-pruned-0.5.cfg', 'model-pruned-0.5.report.json', 'model-pruned-0.5.weights']);
  });

  test('default names beside the input; inputs untouched', async () => {
    const r = await cli(['prune', cfg, weights, '--percent', '0.25', '--exclude', '13,19', '--layer-keep', '0.5']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote .*model-pruned-0\.25\.cfg/);
    assert.ok(existsSync(join(dir, 'model-pruned-0.25.weights')));
    assert.deepEqual(readFileSync(cfg), cfgBytes);
    assert.deepEqual(readFileSync(weights), weightsBytes);
    const plan = r.out;
    assert.match(plan, /strategy slim, percent 0\.25, layer_keep 0\.5, exclude 13,19/);
    assert.match(plan, /^params {2}\d+ → \d+/m);
  });

  test('--dry-run prints the plan and writes nothing', async () => {
    const out = fresh('dry');
    const r = await cli(['prune', cfg, weights, '--percent', '0.4', '--shortcuts', '1', '--out', out, '--dry-run']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /layer +new +type +channels +params +BFLOPs/);
    assert.match(r.out, /removed residual blocks: \d+–\d+/);
    assert.match(r.out, /dry run: nothing written/);
    assert.deepEqual(readdirSync(out), []);
    const j = await cli(['prune', cfg, weights, '--percent', '0.4', '--out', out, '--dry-run', '--json']);
    assert.equal(JSON.parse(j.out).outputs, null);
    assert.deepEqual(readdirSync(out), []);
  });

  test('a percent above percent_limit is refused with the number and writes nothing', async () => {
    const out = fresh('limit');
    const r = await cli(['prune', cfg, weights, '--percent', '0.99', '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.err, /percent 0\.99 \(99\.00%\) is above this model's percent_limit 0\.\d{4} \(\d+\.\d{2}%\) for the slim strategy: the threshold would remove every channel of conv layer \d+/);
    assert.deepEqual(readdirSync(out), []);
    const ok = await cli(['prune', cfg, weights, '--percent', '0.99', '--layer-keep', '0.1', '--out', out]);
    assert.equal(ok.code, 0, ok.err);
  });

  test('--config x.prune.yaml, with flags overriding the file', async () => {
    const out = fresh('config');
    const f = join(dir, 'x.prune.yaml');
    writeFileSync(f, `model: model.cfg\nweights: model.weights\nstrategy: normal\npercent: 0.3\noutputs:\n  dir: config\n  report: config/r.json\n`);
    const r = await cli(['prune', '--config', f, '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.policy.strategy, 'normal');
    assert.deepEqual(j.outputs, { cfg: join(out, 'model-pruned-0.3.cfg'), weights: join(out, 'model-pruned-0.3.weights'), report: join(out, 'r.json') });
    const o = await cli(['prune', '--config', f, '--strategy', 'slim', '--percent', '0.2', '--dry-run', '--json']);
    assert.equal(JSON.parse(o.out).policy.strategy, 'slim');
    assert.equal(JSON.parse(o.out).policy.percent, 0.2);
    writeFileSync(f, `model: model.cfg\nweights: model.weights\npercent: 0.3\noutputs:\n  cfg: model.cfg\n`);
    const bad = await cli(['prune', '--config', f]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /x\.prune\.yaml:5:8: error: outputs\.cfg .* would overwrite an input/);
    assert.deepEqual(readFileSync(cfg), cfgBytes);
  });

  test('usage errors and refusals', async () => {
    const r80 = await cli(['prune', cfg, weights, '--percent', '80']);
    assert.equal(r80.code, 2);
    assert.match(r80.err, /--percent is a fraction between 0 and 1 \(write 0\.8 for 80%\)/);
    assert.equal((await cli(['prune', cfg, weights, '--percent', '0.5', '--strategy', 'bogus'])).code, 2);
    assert.match((await cli(['prune', cfg, weights])).err, /nothing to prune/);
    assert.match((await cli(['prune', cfg, weights, '--shortcuts', '-1'])).err, /--shortcuts expects a whole number ≥ 0/);
    const flat = join(dir, 'flat.cfg');
    writeFileSync(flat, fixtureText('grouped-route.cfg'));
    writeFileSync(join(dir, 'flat.weights'), syntheticWeightsBytes(fixtureGraph('grouped-route.cfg')));
    const nb = await cli(['prune', flat, '--shortcuts', '1']);
    assert.equal(nb.code, 1);
    assert.match(nb.err, /flat\.cfg has no residual blocks/);
    const mismatch = await cli(['prune', flat, weights, '--percent', '0.1']);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.err, /do not fit the cfg/);
  });

  test('writePruneOutputs never overwrites an input and leaves nothing half-written', () => {
    const out = fresh('atomic');
    const data = { cfg: 'x', weights: new Uint8Array(8), report: '{}' };
    assert.throws(() => writePruneOutputs({ cfg: cfg, weights: join(out, 'a.weights'), report: join(out, 'a.json') }, data, [cfg, weights]), /refusing to overwrite the input/);
    mkdirSync(join(out, 'b.weights'));
    writeFileSync(join(out, 'b.cfg'), 'old');
    assert.throws(() => writePruneOutputs({ cfg: join(out, 'b.cfg'), weights: join(out, 'b.weights'), report: join(out, 'b.json') }, data, []), /is a folder/);
    // the report's folder is replaced by a file after the checks: writing fails midway, the old cfg
    // stays and no temporary file is left
    const sub = join(out, 'sub');
    mkdirSync(sub);
    const paths = { cfg: join(out, 'b.cfg'), weights: join(out, 'c.weights'), report: join(sub, 'c.json') };
    assert.throws(() => writePruneOutputs(paths, { ...data, get report() { rmSync(sub, { recursive: true }); writeFileSync(sub, ''); return '{}'; } }, []));
    assert.equal(readFileSync(join(out, 'b.cfg'), 'utf8'), 'old');
    assert.deepEqual(readdirSync(out).sort(), ['b.cfg', 'b.weights', 'sub']);
    assert.deepEqual(readFileSync(cfg), cfgBytes);
  });
});
