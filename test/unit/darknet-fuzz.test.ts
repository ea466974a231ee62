import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { analyzeCfg } from '../../core/darknet/graph';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';
// seeded, so a failing mutation can be replayed from its seed
import { rng as mulberry32 } from '../../core/random';

const SOURCES = ['cfg/alexeyab/yolov3-tiny.cfg', 'cfg/alexeyab/yolov4-tiny.cfg', 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.cfg',
  'cfg/alexeyab/yolov3.cfg', 'cfg/alexeyab/enet-coco.cfg', 'cfg/alexeyab/rnn.cfg', 'cfg/alexeyab/yolov2.cfg'];
const ALPHABET = '[]=#;,-0123456789 \t\nabcxyz.';

function mutate(lines: string[], rand: () => number): string[] {
  const out = lines.slice();
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const i = Math.floor(rand() * out.length);
    const j = Math.floor(rand() * out.length);
    switch (Math.floor(rand() * 4)) {
      case 0: out.splice(i, 1); break;
      case 1: out.splice(i, 0, out[j] ?? ''); break;
      case 2: [out[i], out[j]] = [out[j], out[i]]; break;
      default: {
        const l = out[i] ?? '';
        const k = Math.floor(rand() * (l.length + 1));
        out[i] = l.slice(0, k) + ALPHABET[Math.floor(rand() * ALPHABET.length)] + l.slice(k + 1);
      }
    }
  }
  return out;
}

test('10,000 seeded mutations of corpus cfgs never throw and always return diagnostics', { skip: NO_CORPUS }, () => {
  const sources = SOURCES.map((p) => readFileSync(corpusPath(p), 'utf8').split('\n'));
  let withDiagnostics = 0;
  for (let seed = 1; seed <= 10_000; seed++) {
    const rand = mulberry32(seed);
    const text = mutate(sources[seed % sources.length], rand).join('\n');
    let graph;
    try {
      graph = analyzeCfg(text);
    } catch (e) {
      assert.fail(`seed ${seed} threw: ${(e as Error).stack}`);
    }
    assert.ok(Array.isArray(graph.diagnostics), `seed ${seed}`);
    for (const d of graph.diagnostics) {
      assert.ok(d.range.start.line >= 0 && d.range.end.line >= d.range.start.line, `seed ${seed}: bad range`);
      assert.ok(d.message.length > 0);
    }
    if (graph.diagnostics.length) withDiagnostics++;
  }
  // most mutations break something darknet would notice
  assert.ok(withDiagnostics > 5_000, `${withDiagnostics} of 10,000 mutations reported something`);
});

test('arbitrary bytes never throw', () => {
  const rand = mulberry32(7);
  for (let i = 0; i < 500; i++) {
    const n = Math.floor(rand() * 200);
    let s = '';
    for (let k = 0; k < n; k++) s += String.fromCharCode(Math.floor(rand() * 128));
    assert.doesNotThrow(() => analyzeCfg(s));
  }
});
