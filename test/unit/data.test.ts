import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  letterboxImage,
  loadImage,
  prepareInput,
  resizeImage,
  rgbFromInterleaved,
  rgbToInterleaved,
  type RgbImage,
} from '../../core/data/image';
import {
  labelPathCandidates,
  labelPathFor,
  loadCsvSplit,
  loadDataset,
  namesFrom,
  parseDataFile,
  parseVocXml,
  parseYoloLabels,
  readList,
  readVocXml,
  readYoloLabels,
  splitDifficult,
  vocBoxToYolo,
} from '../../core/data/dataset';

const ROOT = path.resolve(__dirname, '../..');
const FIX = path.join(ROOT, 'test/fixtures/data');
const CORPUS = path.resolve(ROOT, '../shared/corpus');
const HAS_CORPUS = fs.existsSync(path.join(CORPUS, 'datasets'));
const NO_CORPUS = HAS_CORPUS ? false : `reference corpus not found at ${CORPUS} (../shared/corpus): skipped`;

let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'darkslim-data-'));
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** 3-channel image from per-channel row-major arrays. */
function img3(width: number, height: number, r: number[], g = r, b = r): RgbImage {
  return { width, height, data: Float32Array.from([...r, ...g, ...b]) };
}

function channel(im: RgbImage, k: number): number[] {
  const n = im.width * im.height;
  return Array.from(im.data.subarray(k * n, (k + 1) * n));
}

/** Literal port of darknet resize_image() (full w x im.h intermediate), used as an oracle. */
function referenceResize(im: RgbImage, w: number, h: number): Float32Array {
  const f = Math.fround;
  const c3 = im.data.length / (im.width * im.height);
  const part = new Float32Array(w * im.height * c3);
  const out = new Float32Array(w * h * c3);
  const get = (d: Float32Array, W: number, H: number, x: number, y: number, k: number) => d[k * W * H + y * W + x];
  const wScale = f((im.width - 1) / (w - 1));
  const hScale = f((im.height - 1) / (h - 1));
  for (let k = 0; k < c3; ++k)
    for (let r = 0; r < im.height; ++r)
      for (let c = 0; c < w; ++c) {
        let val: number;
        if (c === w - 1 || im.width === 1) val = get(im.data, im.width, im.height, im.width - 1, r, k);
        else {
          const sx = f(c * wScale);
          const ix = Math.trunc(sx);
          const dx = f(sx - ix);
          val = f(f(f(1 - dx) * get(im.data, im.width, im.height, ix, r, k)) + f(dx * get(im.data, im.width, im.height, ix + 1, r, k)));
        }
        part[k * w * im.height + r * w + c] = val;
      }
  for (let k = 0; k < c3; ++k)
    for (let r = 0; r < h; ++r) {
      const sy = f(r * hScale);
      const iy = Math.trunc(sy);
      const dy = f(sy - iy);
      for (let c = 0; c < w; ++c) out[k * w * h + r * w + c] = f(f(1 - dy) * get(part, w, im.height, c, iy, k));
      if (r === h - 1 || im.height === 1) continue;
      for (let c = 0; c < w; ++c) {
        const i = k * w * h + r * w + c;
        out[i] = f(out[i] + f(dy * get(part, w, im.height, c, iy + 1, k)));
      }
    }
  return out;
}

describe('resizeImage (darknet resize_image)', () => {
  test('2x2 → 3x3 by hand: corners kept, midpoints averaged', () => {
    // w_scale = h_scale = (2-1)/(3-1) = 0.5
    // horizontal: [a, (a+b)/2, b] per row; vertical likewise
    const im = img3(2, 2, [0, 1, 0.5, 0.25], [1, 1, 1, 1], [0.25, 0.75, 0.5, 0]);
    const out = resizeImage(im, 3, 3);
    assert.equal(out.width, 3);
    assert.equal(out.height, 3);
    assert.deepEqual(channel(out, 0), [0, 0.5, 1, 0.25, 0.4375, 0.625, 0.5, 0.375, 0.25]);
    assert.deepEqual(channel(out, 1), [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(channel(out, 2), [0.25, 0.5, 0.75, 0.375, 0.375, 0.375, 0.5, 0.25, 0]);
  });

  test('4x4 → 3x3 downscale: sample positions 0, 1.5, last', () => {
    // w_scale = 3/2: columns sample x = 0, 1.5 (ix 1, dx .5), and the last column copies x = 3
    const v = [0, 0.25, 0.5, 1, 0, 0.25, 0.5, 1, 0, 0.25, 0.5, 1, 0, 0.25, 0.5, 1];
    const out = resizeImage(img3(4, 4, v), 3, 3);
    assert.deepEqual(channel(out, 0), [0, 0.375, 1, 0, 0.375, 1, 0, 0.375, 1]);
  });

  test('same size returns an equal copy', () => {
    const im = img3(2, 1, [0.1, 0.2]);
    const out = resizeImage(im, 2, 1);
    assert.deepEqual(out.data, im.data);
    assert.notEqual(out.data, im.data);
  });

  test('darknet quirk kept: last row takes only (1-dy) of its source row', () => {
    // 1x14 → 1x12: (12-1)*float(13/11) rounds to 12.999999, so darknet's last row is
    // (1-dy)*row[12] with dy ≈ 0.999999, i.e. nearly black.
    const im = img3(1, 14, new Array(14).fill(1));
    const out = resizeImage(im, 1, 12);
    const last = channel(out, 0)[11];
    assert.ok(last > 0 && last < 1e-5, `last row ${last}`);
    assert.equal(channel(out, 0)[0], 1);
  });

  test('bit-identical to a literal port of darknet on random images and sizes', () => {
    let seed = 1;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const sizes: [number, number, number, number][] = [
      [7, 5, 13, 11],
      [13, 11, 7, 5],
      [31, 17, 16, 16],
      [1, 9, 5, 4],
      [9, 1, 4, 5],
      [14, 24, 12, 8],
      [4, 4, 38, 38],
      [40, 30, 41, 29],
    ];
    for (const [iw, ih, w, h] of sizes) {
      const n = iw * ih * 3;
      const im: RgbImage = { width: iw, height: ih, data: Float32Array.from({ length: n }, () => Math.round(rnd() * 255) / 255) };
      const got = resizeImage(im, w, h).data;
      const want = referenceResize(im, w, h);
      assert.deepEqual(got, want, `${iw}x${ih} → ${w}x${h}`);
    }
  });

  test('768x576 → 416x416 is fast', () => {
    const im: RgbImage = { width: 768, height: 576, data: new Float32Array(768 * 576 * 3).fill(0.5) };
    for (let i = 0; i < 3; ++i) resizeImage(im, 416, 416); // warm up
    // the fastest of several runs: a loaded machine slows the mean, rarely every run
    let ms = Infinity;
    for (let i = 0; i < 7; ++i) {
      const t0 = performance.now();
      resizeImage(im, 416, 416);
      ms = Math.min(ms, performance.now() - t0);
    }
    assert.ok(ms < 60, `resize took ${ms.toFixed(1)} ms at best of 7`);
  });

  test('rejects bad sizes', () => {
    assert.throws(() => resizeImage(img3(1, 1, [0]), 0, 3), /positive integers/);
    assert.throws(() => resizeImage(img3(1, 1, [0]), 2.5, 3), /positive integers/);
  });
});

describe('letterboxImage (darknet letterbox_image)', () => {
  test('wide image: full width, centred vertically on 0.5', () => {
    const im = img3(4, 2, [0, 0.25, 0.5, 0.75, 1, 1, 1, 1]);
    const lb = letterboxImage(im, 4, 4);
    assert.deepEqual({ nw: lb.newWidth, nh: lb.newHeight, dx: lb.dx, dy: lb.dy }, { nw: 4, nh: 2, dx: 0, dy: 1 });
    assert.deepEqual(channel(lb.image, 0), [0.5, 0.5, 0.5, 0.5, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5]);
  });

  test('tall image: full height, centred horizontally', () => {
    const im = img3(2, 4, [0, 1, 0, 1, 0, 1, 0, 1]);
    const lb = letterboxImage(im, 4, 4);
    assert.deepEqual({ nw: lb.newWidth, nh: lb.newHeight, dx: lb.dx, dy: lb.dy }, { nw: 2, nh: 4, dx: 1, dy: 0 });
    assert.deepEqual(channel(lb.image, 0), [0.5, 0, 1, 0.5, 0.5, 0, 1, 0.5, 0.5, 0, 1, 0.5, 0.5, 0, 1, 0.5]);
  });

  test('integer division and centring: 3x2 → 5x5 gives a 5x3 picture at dy = 1', () => {
    const im = img3(3, 2, [0, 0.5, 1, 1, 0.5, 0], [0.2, 0.2, 0.2, 0.2, 0.2, 0.2], [1, 1, 1, 0, 0, 0]);
    const lb = letterboxImage(im, 5, 5);
    assert.deepEqual({ nw: lb.newWidth, nh: lb.newHeight, dx: lb.dx, dy: lb.dy }, { nw: 5, nh: 3, dx: 0, dy: 1 });
    const inner = resizeImage(im, 5, 3);
    for (let k = 0; k < 3; ++k) {
      const ch = channel(lb.image, k);
      assert.deepEqual(ch.slice(0, 5), [0.5, 0.5, 0.5, 0.5, 0.5]);
      assert.deepEqual(ch.slice(20, 25), [0.5, 0.5, 0.5, 0.5, 0.5]);
      assert.deepEqual(ch.slice(5, 20), channel(inner, k));
    }
  });

  test('prepareInput: stretch or letterbox into a 1x3xHxW tensor', () => {
    const im = img3(4, 2, [0, 0.25, 0.5, 0.75, 1, 1, 1, 1]);
    const s = prepareInput(im, 6, 4, false);
    assert.equal(s.tensor.length, 3 * 6 * 4);
    assert.deepEqual(s.tensor, resizeImage(im, 6, 4).data);
    assert.deepEqual({ lb: s.letterBox, w: s.netW, h: s.netH, iw: s.imageW, ih: s.imageH }, { lb: false, w: 6, h: 4, iw: 4, ih: 2 });
    const l = prepareInput(im, 4, 4, true);
    assert.equal(l.letterBox, true);
    assert.deepEqual(l.tensor, letterboxImage(im, 4, 4).image.data);
  });
});

describe('loadImage', () => {
  test('decodes to planar RGB / 255 (interleaved helpers round-trip)', async () => {
    const raw = Buffer.from([255, 0, 0, 0, 128, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const file = path.join(tmp, 'px.png');
    await sharp(raw, { raw: { width: 3, height: 2, channels: 3 } }).png().toFile(file);
    const im = await loadImage(file);
    assert.deepEqual({ w: im.width, h: im.height }, { w: 3, h: 2 });
    const want = rgbFromInterleaved(raw, 3, 2);
    assert.deepEqual(im.data, want.data);
    assert.equal(im.data[0], Math.fround(1)); // R of pixel 0
    assert.equal(im.data[6 + 1], Math.fround(128 / 255)); // G plane, pixel 1
    assert.equal(im.data[12 + 2], Math.fround(255 / 255)); // B plane, pixel 2
    assert.deepEqual(Buffer.from(rgbToInterleaved(im)), raw);
  });

  test('grey is replicated, alpha dropped', async () => {
    const grey = path.join(tmp, 'grey.png');
    await sharp(Buffer.from([0, 51, 102, 255]), { raw: { width: 2, height: 2, channels: 1 } }).png().toFile(grey);
    const g = await loadImage(grey);
    assert.deepEqual(channel(g, 0), channel(g, 2));
    assert.deepEqual(channel(g, 1), [0, 51, 102, 255].map((v) => Math.fround(v / 255)));
    const rgba = path.join(tmp, 'rgba.png');
    await sharp(Buffer.from([10, 20, 30, 0, 40, 50, 60, 128]), { raw: { width: 2, height: 1, channels: 4 } }).png().toFile(rgba);
    const a = await loadImage(rgba);
    assert.equal(a.data.length, 6);
    assert.deepEqual(Array.from(a.data).map((v) => Math.round(v * 255)), [10, 40, 20, 50, 30, 60]);
  });

  test('EXIF orientation is applied (as OpenCV imread), unless disabled', async () => {
    const file = path.join(tmp, 'rot.jpg');
    await sharp(Buffer.alloc(8 * 4 * 3, 100), { raw: { width: 8, height: 4, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toFile(file);
    const im = await loadImage(file);
    assert.deepEqual({ w: im.width, h: im.height }, { w: 4, h: 8 });
    const raw = await loadImage(file, { autoOrient: false });
    assert.deepEqual({ w: raw.width, h: raw.height }, { w: 8, h: 4 });
  });

  test('a corrupt or missing file gives an error naming it', async () => {
    const bad = path.join(tmp, 'corrupt.jpg');
    fs.writeFileSync(bad, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('this is not a jpeg')]));
    await assert.rejects(loadImage(bad), (err: Error) => {
      assert.ok(err.message.startsWith(`cannot decode image: ${bad}: `), err.message);
      return true;
    });
    const missing = path.join(tmp, 'nope.png');
    await assert.rejects(loadImage(missing), new RegExp(`cannot decode image: ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});

describe('label paths (AlexeyAB replace_image_to_label)', () => {
  test('folder rules, first occurrence only', () => {
    assert.equal(labelPathFor('/d/coco/images/train2017/000001.jpg'), '/d/coco/labels/train2017/000001.txt');
    assert.equal(labelPathFor('/d/coco/images/val2014/x.jpg'), '/d/coco/labels/val2014/x.txt');
    assert.equal(labelPathFor('/voc/VOC2007/JPEGImages/000005.jpg'), '/voc/VOC2007/labels/000005.txt');
    assert.equal(labelPathFor('C:\\d\\images\\val2017\\x.JPG'), 'C:\\d\\labels\\val2017\\x.txt');
    assert.equal(labelPathFor('/x/JPEGImages/JPEGImages/a.jpg'), '/x/labels/JPEGImages/a.txt');
    // AlexeyAB has no generic images → labels rule: labels sit beside the images
    assert.equal(labelPathFor('/d/images/x.png'), '/d/images/x.txt');
  });

  test('extensions: only a trailing known one is replaced; trimmed', () => {
    for (const ext of ['.jpg', '.JPG', '.jpeg', '.JPEG', '.png', '.PNG', '.bmp', '.BMP', '.ppm', '.PPM', '.tiff', '.TIFF']) {
      assert.equal(labelPathFor(`/a/b${ext}`), '/a/b.txt', ext);
    }
    assert.equal(labelPathFor('/a/x.jpg.jpg'), '/a/x.jpg.txt');
    assert.equal(labelPathFor('/a/x.webp'), '/a/x.webp');
    assert.equal(labelPathFor('/a/x.Jpg'), '/a/x.Jpg');
    assert.equal(labelPathFor(' \t/a/b.jpg  '), '/a/b.txt');
  });

  test('lenient candidates add the images → labels folder rule and the sibling .txt', () => {
    assert.deepEqual(labelPathCandidates('/d/images/x.png'), ['/d/images/x.txt', '/d/labels/x.txt']);
    assert.deepEqual(labelPathCandidates('/d/images/sub/x.webp'), ['/d/labels/sub/x.txt', '/d/images/sub/x.txt']);
    assert.deepEqual(labelPathCandidates('/d/coco/images/train2017/a.jpg'), ['/d/coco/labels/train2017/a.txt', '/d/coco/images/train2017/a.txt']);
  });
});

describe('YOLO and VOC annotations', () => {
  test('YOLO labels: float32 values, blank lines and CRLF, missing file = null', () => {
    const t = readYoloLabels(path.join(FIX, 'tiny/images/a.txt'));
    assert.deepEqual(t, [
      { classId: 0, x: 0.5, y: 0.5, w: 0.25, h: 0.5 },
      { classId: 1, x: 0.125, y: 0.25, w: Math.fround(0.2), h: Math.fround(0.1) },
    ]);
    assert.deepEqual(readYoloLabels(path.join(FIX, 'tiny/images/b.txt')), []);
    assert.equal(readYoloLabels(path.join(FIX, 'tiny/images/c.txt')), null);
    assert.deepEqual(parseYoloLabels('2.0 0.1 0.2 0.3 0.4'), [{ classId: 2, x: Math.fround(0.1), y: Math.fround(0.2), w: Math.fround(0.3), h: Math.fround(0.4) }]);
  });

  test('YOLO labels: a bad line is an error naming file and line', () => {
    const file = path.join(tmp, 'bad.txt');
    fs.writeFileSync(file, '0 0.5 0.5 0.1 0.1\n1 0.5 oops 0.1 0.1\n');
    assert.throws(() => readYoloLabels(file), new RegExp(`bad label line: .*bad\\.txt:2: expected "class x y w h", got "1 0.5 oops 0.1 0.1"`));
    assert.throws(() => parseYoloLabels('0 0.5 0.5 0.1', 'f.txt'), /f\.txt:1/);
    assert.throws(() => parseYoloLabels('\n-1 0.5 0.5 0.1 0.1', 'f.txt'), /f\.txt:2/);
    assert.throws(() => parseYoloLabels('0.5 0.5 0.5 0.1 0.1', 'f.txt'), /f\.txt:1/);
  });

  test('VOC box conversion follows darknet voc_label.py (1-based pixels)', () => {
    // raccoon-1.xml: 650x417, (81,88)-(522,408)
    const b = vocBoxToYolo(650, 417, 81, 88, 522, 408);
    assert.deepEqual(b, {
      x: Math.fround(((81 + 522) / 2 - 1) / 650),
      y: Math.fround(((88 + 408) / 2 - 1) / 417),
      w: Math.fround(441 / 650),
      h: Math.fround(320 / 417),
    });
  });

  test('VOC xml: size, difficult flag, parts ignored, unknown classes', () => {
    const file = path.join(FIX, 'voc/annotations/v1.xml');
    const names = ['cat', 'person'];
    const t = readVocXml(file, names);
    assert.deepEqual(t, [
      { classId: 0, ...vocBoxToYolo(8, 6, 1, 1, 5, 4) },
      { classId: 1, ...vocBoxToYolo(8, 6, 2, 2, 8, 6), difficult: true },
    ]);
    assert.deepEqual(readVocXml(file, ['person']), [{ classId: 0, ...vocBoxToYolo(8, 6, 2, 2, 8, 6), difficult: true }]);
    const grow = ['person'];
    assert.equal(readVocXml(file, grow, { unknown: 'add' }).length, 2);
    assert.deepEqual(grow, ['person', 'cat']);
    assert.throws(() => readVocXml(file, ['person'], { unknown: 'error' }), /unknown class "cat" in .*v1\.xml/);
    const ann = parseVocXml(fs.readFileSync(file, 'utf8'));
    assert.equal(ann.filename, 'v1.png');
    assert.equal(ann.objects.length, 2);
  });

  test('VOC xml without a size needs the image size', () => {
    const file = path.join(FIX, 'voc/annotations/v2.xml');
    assert.throws(() => readVocXml(file, []), /no usable <size>: .*v2\.xml/);
    const t = readVocXml(file, ['dog & co'], { imageSize: { width: 8, height: 6 } });
    assert.deepEqual(t, [{ classId: 0, ...vocBoxToYolo(8, 6, 5, 1, 9, 7) }]);
  });

  test('splitDifficult gives computeMap truths and the difficult list', () => {
    const s = splitDifficult(readVocXml(path.join(FIX, 'voc/annotations/v1.xml'), ['cat', 'person']));
    assert.equal(s.truths.length, 1);
    assert.equal(s.difficult?.length, 2);
    assert.equal(splitDifficult([{ classId: 0, x: 0.5, y: 0.5, w: 0.1, h: 0.1 }]).difficult, undefined);
  });
});

describe('.data, .names and lists', () => {
  test('parseDataFile: trimmed key = value, first occurrence wins, paths resolved', () => {
    const d = parseDataFile(path.join(FIX, 'tiny/tiny.data'));
    assert.equal(d.classes, 2);
    assert.equal(d.valid, path.join(FIX, 'tiny/valid.txt'));
    assert.equal(d.train, path.join(FIX, 'tiny/train.txt'));
    assert.equal(d.names, path.join(FIX, 'tiny/tiny.names'));
    assert.equal(d.eval, 'coco');
    assert.equal(d.options.valid, 'valid.txt');
    assert.equal(d.options['not a key value line'], undefined);
    assert.throws(() => parseDataFile(path.join(tmp, 'missing.data')), /cannot read \.data file: .*missing\.data/);
  });

  test('parseDataFile: classes read like atoi; relative to cwd first', () => {
    const file = path.join(tmp, 'x.data');
    fs.writeFileSync(file, `classes= 80#comment\nnames = ${path.relative(process.cwd(), path.join(FIX, 'tiny/tiny.names'))}\n`);
    const d = parseDataFile(file);
    assert.equal(d.classes, 80);
    assert.equal(d.names, path.join(FIX, 'tiny/tiny.names'));
  });

  test('namesFrom drops trailing blank lines and CR', () => {
    assert.deepEqual(namesFrom(path.join(FIX, 'tiny/tiny.names')), ['cat', 'dog']);
    const file = path.join(tmp, 'crlf.names');
    fs.writeFileSync(file, 'a b\r\n\r\nc\r\n\r\n');
    assert.deepEqual(namesFrom(file), ['a b', '', 'c']);
  });

  test('readList resolves relative, prefixed and trimmed entries; skips blanks', () => {
    const list = readList(path.join(FIX, 'tiny/valid.txt'));
    assert.deepEqual(list, ['a.png', 'b.png', 'c.png'].map((n) => path.join(FIX, 'tiny/images', n)));
    const file = path.join(tmp, 'abs.txt');
    fs.writeFileSync(file, `${path.join(FIX, 'tiny/images/a.png')}\n/nowhere/else/zzz.jpg\n`);
    assert.deepEqual(readList(file), [path.join(FIX, 'tiny/images/a.png'), '/nowhere/else/zzz.jpg']);
  });
});

describe('loadDataset', () => {
  test('.data spec: valid list, names, missing label counted', async () => {
    const ds = await loadDataset(path.join(FIX, 'tiny/tiny.data'));
    assert.equal(ds.kind, 'data');
    assert.deepEqual(ds.names, ['cat', 'dog']);
    assert.deepEqual(ds.summary, { images: 3, withLabels: 2, missingLabels: 1, boxes: 2, difficult: 0, missingImages: 0 });
    assert.equal(ds.items[0].labelPath, path.join(FIX, 'tiny/images/a.txt'));
    assert.equal(ds.items[2].labelPath, undefined);
    assert.deepEqual(ds.items[2].truths, []);
    const train = await loadDataset(path.join(FIX, 'tiny/tiny.data'), { split: 'train' });
    assert.equal(train.summary.images, 1);
  });

  test('list spec with a missing image and an out-of-range class id', async () => {
    const dir = path.join(tmp, 'ds1');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(FIX, 'tiny/images/a.png'), path.join(dir, 'a.png'));
    fs.writeFileSync(path.join(dir, 'a.txt'), '5 0.5 0.5 0.1 0.1\n');
    fs.writeFileSync(path.join(dir, 'list.txt'), 'a.png\ngone.png\n');
    const ds = await loadDataset(path.join(dir, 'list.txt'), { names: ['only'] });
    assert.equal(ds.kind, 'list');
    assert.deepEqual(ds.summary, { images: 2, withLabels: 1, missingLabels: 1, boxes: 1, difficult: 0, missingImages: 1 });
    assert.ok(ds.warnings.some((w) => w.includes('gone.png')));
    assert.ok(ds.warnings.some((w) => w.includes('class id 5')));
  });

  test('folder spec with VOC annotations beside the images folder', async () => {
    const ds = await loadDataset(path.join(FIX, 'voc'));
    assert.equal(ds.kind, 'folder');
    assert.deepEqual(ds.names, ['cat', 'person', 'dog & co']);
    assert.deepEqual(ds.summary, { images: 2, withLabels: 2, missingLabels: 0, boxes: 3, difficult: 1, missingImages: 0 });
    // v2.xml has size 0: the image's own size (8x6) is used
    assert.deepEqual(ds.items[1].truths, [{ classId: 2, ...vocBoxToYolo(8, 6, 5, 1, 9, 7) }]);
    const named = await loadDataset(path.join(FIX, 'voc/images'), { names: ['person'] });
    assert.equal(named.summary.boxes, 1);
  });

  test('errors name the spec', async () => {
    await assert.rejects(loadDataset(path.join(tmp, 'no-such-dir')), /dataset not found: .*no-such-dir/);
  });

  test('coco128 via train.txt (data/ prefix) and as a folder', { skip: NO_CORPUS }, async () => {
    const root = path.join(CORPUS, 'datasets/coco128');
    const ds = await loadDataset(path.join(root, 'train.txt'));
    assert.equal(ds.kind, 'list');
    assert.equal(ds.names?.length, 80);
    assert.equal(ds.names?.[0], 'person');
    assert.equal(ds.items[0].image, path.join(root, 'images/train2017/000000000009.jpg'));
    assert.equal(ds.items[0].labelPath, path.join(root, 'labels/train2017/000000000009.txt'));
    // 128 images; two of them (250, 508) have no label file. The README's 941 boxes count all 128
    // label files, two of which (656, 659) belong to images not in the folder.
    assert.deepEqual(ds.summary, { images: 128, withLabels: 126, missingLabels: 2, boxes: 929, difficult: 0, missingImages: 0 });
    const missing = ds.items.filter((i) => !i.labelPath).map((i) => path.basename(i.image));
    assert.deepEqual(missing, ['000000000250.jpg', '000000000508.jpg']);
    let all = 0;
    for (const f of fs.readdirSync(path.join(root, 'labels/train2017'))) {
      all += readYoloLabels(path.join(root, 'labels/train2017', f))!.length;
    }
    assert.equal(all, 941);
    const folder = await loadDataset(root);
    assert.deepEqual(folder.summary, ds.summary);
    assert.deepEqual(folder.items.map((i) => i.image), ds.items.map((i) => i.image));
  });

  test('coco128 through a .data file', { skip: NO_CORPUS }, async () => {
    const root = path.join(CORPUS, 'datasets/coco128');
    const file = path.join(tmp, 'coco128.data');
    fs.writeFileSync(file, `classes = 80\ntrain = ${path.join(root, 'train.txt')}\nnames = ${path.join(root, 'coco128.names')}\n`);
    const ds = await loadDataset(file);
    assert.equal(ds.kind, 'data');
    assert.equal(ds.summary.boxes, 929);
  });

  test('raccoon: VOC folder and csv splits agree', { skip: NO_CORPUS }, async () => {
    const root = path.join(CORPUS, 'datasets/raccoon');
    const voc = await loadDataset(root);
    assert.deepEqual(voc.names, ['raccoon']);
    assert.deepEqual(voc.summary, { images: 200, withLabels: 200, missingLabels: 0, boxes: 217, difficult: 0, missingImages: 0 });
    const train = loadCsvSplit(path.join(root, 'train_labels.csv'), path.join(root, 'images'));
    const testSplit = loadCsvSplit(path.join(root, 'test_labels.csv'), path.join(root, 'images'));
    assert.equal(train.kind, 'csv');
    assert.deepEqual(train.names, ['raccoon']);
    assert.deepEqual(train.summary, { images: 160, withLabels: 160, missingLabels: 0, boxes: 173, difficult: 0, missingImages: 0 });
    assert.deepEqual(testSplit.summary, { images: 40, withLabels: 40, missingLabels: 0, boxes: 44, difficult: 0, missingImages: 0 });
    const byImage = new Map(voc.items.map((i) => [i.image, i.truths]));
    const seen = new Set<string>();
    for (const item of [...train.items, ...testSplit.items]) {
      assert.ok(!seen.has(item.image), `${item.image} in both splits`);
      seen.add(item.image);
      const sortKey = (t: { x: number; y: number }) => t.x * 10 + t.y;
      const a = [...item.truths].sort((p, q) => sortKey(p) - sortKey(q));
      const b = [...(byImage.get(item.image) ?? [])].sort((p, q) => sortKey(p) - sortKey(q));
      assert.deepEqual(a, b, item.image);
    }
    assert.equal(seen.size, 200);
  });

  test('csv rows are validated', () => {
    const file = path.join(tmp, 'bad.csv');
    fs.writeFileSync(file, 'filename,width,height,class,xmin,ymin,xmax,ymax\na.jpg,100,100,x,1,2,3\n');
    assert.throws(() => loadCsvSplit(file, tmp), /bad csv row: .*bad\.csv:2/);
  });
});
