// Training augmentation (core/engine/data.ts): the crop, letter_box and flip on a drawn image whose
// pixels and box are known.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { TrainLoader, type AugmentConfig } from '../../core/engine/data';

const dir = mkdtempSync(join(tmpdir(), 'darkslim-augment-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const NONE: AugmentConfig = { jitter: 0, flip: false, hue: 0, saturation: 1, exposure: 1, letterBox: false };

/** An 80x40 black PNG with a white 20x20 square at (10..30, 10..30): the box x .25 y .5 w .25 h .5. */
async function wideImage(): Promise<string> {
  const w = 80, h = 40;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 10; y < 30; y++) for (let x = 10; x < 30; x++) px.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const path = join(dir, 'wide.png');
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
  return path;
}

const truth = { classId: 0, x: 0.25, y: 0.5, w: 0.25, h: 0.5 };
const pixel = (x: Float32Array, W: number, X: number, Y: number) => x[(Y * W + X) * 3];

test('without letter_box the image is stretched to the network', async () => {
  const image = await wideImage();
  const b = await new TrainLoader([{ image, truths: [truth] }], 32, 32, NONE, 1).batch([0]);
  const [t] = b.truths[0];
  assert.ok(Math.abs(t.x - 0.25) < 1e-6 && Math.abs(t.y - 0.5) < 1e-6 && Math.abs(t.w - 0.25) < 1e-6 && Math.abs(t.h - 0.5) < 1e-6, JSON.stringify(t));
  assert.equal(pixel(b.x, 32, 16, 0), 0, 'black top row: the image fills the network');
  assert.ok(pixel(b.x, 32, 8, 16) > 0.99, 'inside the square');
});

test('letter_box keeps the aspect: grey bars above and below, the box squeezed vertically', async () => {
  const image = await wideImage();
  const b = await new TrainLoader([{ image, truths: [truth] }], 32, 32, { ...NONE, letterBox: true }, 1).batch([0]);
  const [t] = b.truths[0];
  // the 80x40 image covers rows 8..24 of the 32x32 network
  assert.ok(Math.abs(t.x - 0.25) < 1e-6, `x ${t.x}`);
  assert.ok(Math.abs(t.y - 0.5) < 1e-6, `y ${t.y}`);
  assert.ok(Math.abs(t.w - 0.25) < 1e-6, `w ${t.w}`);
  assert.ok(Math.abs(t.h - 0.25) < 1e-6, `h ${t.h}: half of the stretched height`);
  assert.equal(pixel(b.x, 32, 16, 2), 0.5, 'grey bar at the top');
  assert.equal(pixel(b.x, 32, 16, 29), 0.5, 'grey bar at the bottom');
  assert.equal(pixel(b.x, 32, 20, 16), 0, 'the image in the middle');
  assert.ok(pixel(b.x, 32, 8, 16) > 0.99, 'the square in the middle');
  // the box in pixels is square, as in the image
  assert.ok(Math.abs(t.w * 32 - t.h * 32) < 1e-6);
});

test('a tall image letterboxes with bars left and right; flip mirrors the box', async () => {
  const w = 20, h = 40;
  const px = Buffer.alloc(w * h * 3, 255);
  const image = join(dir, 'tall.png');
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(image);
  const box = { classId: 1, x: 0.25, y: 0.5, w: 0.5, h: 1 };
  const loader = new TrainLoader([{ image, truths: [box] }], 32, 32, { ...NONE, letterBox: true, flip: true }, 3);
  const seen = new Set<string>();
  for (let k = 0; k < 12; k++) {
    const b = await loader.batch([0]);
    const [t] = b.truths[0];
    assert.equal(pixel(b.x, 32, 2, 16), 0.5, 'grey bar at the left');
    assert.equal(pixel(b.x, 32, 29, 16), 0.5, 'grey bar at the right');
    assert.ok(pixel(b.x, 32, 16, 16) > 0.99, 'the white image in the middle');
    assert.ok(Math.abs(t.w - 0.25) < 1e-6 && Math.abs(t.h - 1) < 1e-6, JSON.stringify(t));
    seen.add(t.x.toFixed(4));
  }
  assert.deepEqual([...seen].sort(), ['0.3750', '0.6250'], 'the box at its place and mirrored');
});
