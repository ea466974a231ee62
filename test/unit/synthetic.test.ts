// The synthetic shapes dataset: deterministic by seed, a valid darknet dataset that core/data loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../../core/data/dataset';
import { generateSyntheticDataset, renderSyntheticImage } from '../../core/data/synthetic';

test('same seed, same dataset; a darknet .data that core/data loads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'darkslim-synth-'));
  try {
    const a = await generateSyntheticDataset({ outDir: join(dir, 'a'), seed: 9, train: 12, valid: 4, width: 48, height: 40 });
    const b = await generateSyntheticDataset({ outDir: join(dir, 'b'), seed: 9, train: 12, valid: 4, width: 48, height: 40 });
    const c = await generateSyntheticDataset({ outDir: join(dir, 'c'), seed: 10, train: 12, valid: 4, width: 48, height: 40 });
    for (const f of ['train.txt', 'valid.txt', 'shapes.names', 'shapes.data', 'labels/train_00003.txt', 'images/valid_00001.png']) {
      assert.ok(readFileSync(join(a.outDir, f)).equals(readFileSync(join(b.outDir, f))), `${f} differs between equal seeds`);
    }
    assert.ok(!readFileSync(join(a.outDir, 'labels/train_00003.txt')).equals(readFileSync(join(c.outDir, 'labels/train_00003.txt'))));
    assert.deepEqual(a.names, ['circle', 'square', 'triangle', 'cross']);
    const train = await loadDataset(a.dataFile, { split: 'train' });
    const valid = await loadDataset(a.dataFile, { split: 'valid' });
    assert.equal(train.items.length, 12);
    assert.equal(valid.items.length, 4);
    assert.deepEqual(train.names, a.names);
    assert.equal(train.summary.missingImages, 0);
    assert.equal(train.summary.boxes + valid.summary.boxes, a.objects);
    for (const item of [...train.items, ...valid.items]) {
      assert.ok(item.truths.length >= 1 && item.truths.length <= 4);
      for (const t of item.truths) {
        assert.ok(t.classId >= 0 && t.classId < 4);
        assert.ok(t.x - t.w / 2 >= -1e-6 && t.x + t.w / 2 <= 1 + 1e-6 && t.y - t.h / 2 >= -1e-6 && t.y + t.h / 2 <= 1 + 1e-6);
      }
    }
    // an existing dataset is never overwritten by accident, and nothing is left behind
    await assert.rejects(generateSyntheticDataset({ outDir: join(dir, 'a'), seed: 1, train: 1, valid: 1 }), /already exists/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('objects are painted inside their boxes and overlap at most maxOverlap', () => {
  const o = { minObjects: 3, maxObjects: 3, minSize: 0.2, maxSize: 0.3, maxOverlap: 0.1 };
  const { objects } = renderSyntheticImage(42, 64, 64, ['circle', 'square'], o);
  assert.equal(objects.length, 3);
  for (let i = 0; i < objects.length; i++) for (let j = i + 1; j < objects.length; j++) {
    const a = objects[i], b = objects[j];
    const w = Math.min(a.x + a.w / 2, b.x + b.w / 2) - Math.max(a.x - a.w / 2, b.x - b.w / 2);
    const h = Math.min(a.y + a.h / 2, b.y + b.h / 2) - Math.max(a.y - a.h / 2, b.y - b.h / 2);
    const inter = w > 0 && h > 0 ? w * h : 0;
    assert.ok(inter / (a.w * a.h + b.w * b.h - inter) <= 0.1 + 1e-9);
  }
});
