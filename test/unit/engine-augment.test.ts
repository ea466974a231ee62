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

// mosaic=1: four images per sample, cut at a random point; boxes must follow their pixels.
const RED = [255, 0, 0];
const BACKGROUNDS = [[0, 51, 204], [0, 204, 51], [40, 40, 40], [120, 0, 200]];

/** An image of one background colour with red squares; returns its dataset item. */
async function objectImage(k: number, w: number, h: number, squares: number[][]): Promise<{ image: string; truths: { classId: number; x: number; y: number; w: number; h: number }[] }> {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set(BACKGROUNDS[k], i * 3);
  const truths = [];
  for (const [x0, y0, s] of squares) {
    for (let y = y0; y < y0 + s; y++) for (let x = x0; x < x0 + s; x++) px.set(RED, (y * w + x) * 3);
    truths.push({ classId: k, x: (x0 + s / 2) / w, y: (y0 + s / 2) / h, w: s / w, h: s / h });
  }
  const image = join(dir, `object-${k}.png`);
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(image);
  return { image, truths };
}

const isRed = (x: Float32Array, i: number) => x[i * 3] > 0.9 && x[i * 3 + 1] < 0.1 && x[i * 3 + 2] < 0.1;

/** Background colours covering more than 20 pixels of a sample: 1 for a plain image, up to 4 for a mosaic. */
function backgroundsOf(x: Float32Array, n: number): number {
  let count = 0;
  for (const bg of BACKGROUNDS) {
    let hits = 0;
    for (let i = 0; i < n; i++) if (bg.every((v, c) => Math.abs(x[i * 3 + c] - v / 255) < 0.02)) hits++;
    if (hits > 20) count++;
  }
  return count;
}

async function objectItems() {
  return [
    await objectImage(0, 64, 48, [[8, 8, 14], [40, 24, 16]]),
    await objectImage(1, 50, 70, [[20, 30, 18]]),
    await objectImage(2, 80, 40, [[4, 20, 12], [50, 4, 20]]),
    await objectImage(3, 40, 40, [[10, 10, 20]]),
  ];
}

test('mosaic: half the batches are 4-image mosaics; every box covers its red square, inside its quadrant with mosaic_bound', async () => {
  const items = await objectItems();
  const W = 64, H = 64;
  for (const mosaicBound of [true, false]) {
    const loader = new TrainLoader(items, W, H, { ...NONE, jitter: 0.3, flip: true, mosaic: true, mosaicBound }, 5);
    let mosaics = 0, boxes = 0;
    const batches = 40;
    for (let k = 0; k < batches; k++) {
      const b = await loader.batch([k % 4, (k + 1) % 4]);
      for (let s = 0; s < b.n; s++) {
        const x = b.x.subarray(s * W * H * 3, (s + 1) * W * H * 3);
        const truths = b.truths[s];
        boxes += truths.length;
        if (backgroundsOf(x, W * H) > 1) mosaics++;
        for (const t of truths) {
          assert.ok(t.x - t.w / 2 >= -1e-9 && t.x + t.w / 2 <= 1 + 1e-9 && t.y - t.h / 2 >= -1e-9 && t.y + t.h / 2 <= 1 + 1e-9, `box inside the image: ${JSON.stringify(t)}`);
          if (!mosaicBound) continue;
          // clipped to its quadrant: the box's interior (2 px in from each edge) is red
          const x0 = Math.ceil((t.x - t.w / 2) * W) + 2, x1 = Math.floor((t.x + t.w / 2) * W) - 2;
          const y0 = Math.ceil((t.y - t.h / 2) * H) + 2, y1 = Math.floor((t.y + t.h / 2) * H) - 2;
          for (let Y = y0; Y < y1; Y++) for (let X = x0; X < x1; X++) assert.ok(isRed(x, Y * W + X), `batch ${k}: pixel (${X},${Y}) inside ${JSON.stringify(t)} is not red`);
        }
        // every red pixel well inside a red area (its 3x3 neighbourhood red) lies in a box
        for (let Y = 1; Y < H - 1; Y++)
          for (let X = 1; X < W - 1; X++) {
            let interior = true;
            for (let dy = -1; dy <= 1 && interior; dy++) for (let dx = -1; dx <= 1; dx++) if (!isRed(x, (Y + dy) * W + X + dx)) { interior = false; break; }
            if (!interior) continue;
            const covered = truths.some((t) => Math.abs((X + 0.5) / W - t.x) <= t.w / 2 + 1.5 / W && Math.abs((Y + 0.5) / H - t.y) <= t.h / 2 + 1.5 / H);
            assert.ok(covered, `batch ${k} sample ${s}: red pixel (${X},${Y}) outside every box ${JSON.stringify(truths)}`);
          }
      }
    }
    assert.ok(mosaics >= batches * 2 * 0.25 && mosaics <= batches * 2 * 0.75, `${mosaics} mosaic samples of ${batches * 2}: expected about half`);
    assert.ok(boxes > batches, `${boxes} boxes`);
  }
});

test('mosaic: each quadrant shows the matching corner of its image, cut between 20% and 80%', async () => {
  // a 64x64 image at the network size (an identity resize): R encodes x, G encodes y
  const px = Buffer.alloc(64 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) px.set([x * 4, y * 4, 0], (y * 64 + x) * 3);
  const image = join(dir, 'ramp.png');
  await sharp(px, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(image);
  const loader = new TrainLoader([{ image, truths: [{ classId: 0, x: 0.5, y: 0.5, w: 0.25, h: 0.25 }] }], 64, 64, { ...NONE, mosaic: true, mosaicBound: true }, 2);
  const cuts = new Set<string>();
  for (let k = 0; k < 16; k++) {
    const b = await loader.batch([0]);
    const at = (X: number, Y: number) => [Math.round(b.x[(Y * 64 + X) * 3] * 255 / 4), Math.round(b.x[(Y * 64 + X) * 3 + 1] * 255 / 4)];
    const [r0, g0] = at(0, 0);
    if (r0 === 0 && g0 === 0) continue; // a plain batch: the image itself
    const cutX = 64 - r0, cutY = 64 - g0;
    assert.ok(cutX >= 12 && cutX <= 51 && cutY >= 12 && cutY <= 51, `cut ${cutX},${cutY}`);
    cuts.add(`${cutX},${cutY}`);
    for (let Y = 0; Y < 64; Y++)
      for (let X = 0; X < 64; X++) {
        const sx = X < cutX ? X + 64 - cutX : X - cutX, sy = Y < cutY ? Y + 64 - cutY : Y - cutY;
        assert.deepEqual(at(X, Y), [sx, sy], `pixel (${X},${Y}) with the cut at ${cutX},${cutY}`);
      }
    // the centred box appears in each quadrant, clipped to it, where over a pixel of it shows
    for (const t of b.truths[0]) {
      const l = (t.x - t.w / 2) * 64, r = (t.x + t.w / 2) * 64, tp = (t.y - t.h / 2) * 64, bt = (t.y + t.h / 2) * 64;
      assert.ok((r <= cutX || l >= cutX) && (bt <= cutY || tp >= cutY), `box crosses the cut: ${[l, r, tp, bt]} cut ${cutX},${cutY}`);
    }
    assert.ok(b.truths[0].length >= 1 && b.truths[0].length <= 4);
  }
  assert.ok(cuts.size >= 3, `mosaic batches with distinct cuts: ${cuts.size}`);
});

test('mosaic=0 never mixes images; the [net] keys mosaic and mosaic_bound are read', async () => {
  const items = await objectItems();
  const loader = new TrainLoader(items, 32, 32, { ...NONE, jitter: 0.2, mosaic: false }, 7);
  for (let k = 0; k < 10; k++) {
    const b = await loader.batch([k % 4]);
    assert.equal(backgroundsOf(b.x, 32 * 32), 1);
  }
  const { parseCfg } = await import('../../core/darknet/parser');
  const { buildGraph } = await import('../../core/darknet/graph');
  const { augmentConfig } = await import('../../core/engine/data');
  const cfg = '[net]\nwidth=32\nheight=32\nchannels=3\nmosaic=1\nmosaic_bound=1\n[convolutional]\nfilters=18\nsize=1\nstride=1\nactivation=linear\n[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n';
  const aug = augmentConfig(buildGraph(parseCfg(cfg)));
  assert.equal(aug.mosaic, true);
  assert.equal(aug.mosaicBound, true);
  assert.equal(augmentConfig(buildGraph(parseCfg(cfg.replace('mosaic=1\nmosaic_bound=1\n', '')))).mosaic, false);
});
