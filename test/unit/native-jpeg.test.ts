// The optional native JPEG decoder (native/jpeg) must give sharp's pixels bit for bit, and leave
// to sharp every file where a plain libjpeg decode could differ (EXIF orientation, CMYK) or fails.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImageBytes } from '../../core/data/image';
import { decodeJpegNative, nativeJpegLibrary } from '../../core/data/native-jpeg';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';

const LIBRARY = nativeJpegLibrary();
// CI installs libjpeg's headers and sets DARKSLIM_REQUIRE_NATIVE=1: there a missing build fails.
const NOT_BUILT = LIBRARY ? false : 'native JPEG decoder not built (npm run build:native needs libjpeg62-turbo-dev): skipped';

async function sharpRgb(bytes: Buffer, autoOrient = true): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes, { autoOrient, ignoreIcc: true, failOn: 'error' })
    .removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** A w×h test picture with edges and colour gradients (chroma upsampling and IDCT both matter). */
function picture(w: number, h: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; ++y)
    for (let x = 0; x < w; ++x) {
      const i = (y * w + x) * 3;
      px[i] = (x * 7 + y * 3) & 255;
      px[i + 1] = ((x >> 2) ^ (y >> 2)) & 1 ? 230 : 20;
      px[i + 2] = (x * y) % 251;
    }
  return px;
}

function encode(w: number, h: number): sharp.Sharp {
  return sharp(picture(w, h), { raw: { width: w, height: h, channels: 3 } });
}

async function assertSameAsSharp(bytes: Buffer, what: string): Promise<void> {
  const native = await decodeJpegNative(bytes);
  assert.ok(native, `${what}: the native decoder declined it`);
  const ref = await sharpRgb(bytes);
  assert.equal(native.width, ref.width, what);
  assert.equal(native.height, ref.height, what);
  assert.ok(native.data.equals(ref.data), `${what}: pixels differ from sharp's`);
}

describe('native JPEG decoder', () => {
  it('is built where CI asks for it', (t) => {
    if (process.env.DARKSLIM_REQUIRE_NATIVE !== '1') return t.skip('DARKSLIM_REQUIRE_NATIVE is not set');
    assert.ok(LIBRARY, 'native/jpeg was not built: see the postinstall output of npm install');
    assert.match(LIBRARY, /libjpeg/);
  });

  it('equals sharp on every corpus JPEG (coco128, raccoon, images/)', { skip: NOT_BUILT || NO_CORPUS }, async () => {
    const dirs = [corpusPath('datasets', 'coco128', 'images', 'train2017'), corpusPath('datasets', 'raccoon', 'images'), corpusPath('images')];
    const files = dirs.flatMap((d) => readdirSync(d).filter((f) => /\.jpe?g$/i.test(f)).map((f) => join(d, f)));
    assert.ok(files.length > 300, `expected the corpus images, found ${files.length}`);
    let declined = 0;
    for (const file of files) {
      const bytes = readFileSync(file);
      const native = await decodeJpegNative(bytes);
      if (!native) {
        declined++;
        continue;
      }
      const ref = await sharpRgb(bytes);
      assert.deepEqual([native.width, native.height], [ref.width, ref.height], file);
      assert.ok(native.data.equals(ref.data), `${file}: pixels differ from sharp's`);
    }
    // the corpus images are plain JPEGs: declining many of them would lose the speed-up
    assert.ok(declined <= files.length / 20, `declined ${declined} of ${files.length}`);
  });

  it('equals sharp for baseline, progressive, every chroma subsampling, grey and odd sizes', { skip: NOT_BUILT }, async () => {
    for (const [w, h] of [[37, 23], [64, 48], [1, 9], [17, 1]]) {
      await assertSameAsSharp(await encode(w, h).jpeg({ quality: 85 }).toBuffer(), `${w}x${h} 4:2:0`);
      await assertSameAsSharp(await encode(w, h).jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer(), `${w}x${h} 4:4:4`);
      await assertSameAsSharp(await encode(w, h).jpeg({ progressive: true }).toBuffer(), `${w}x${h} progressive`);
      await assertSameAsSharp(await encode(w, h).toColourspace('b-w').jpeg().toBuffer(), `${w}x${h} grey`);
    }
  });

  it('leaves EXIF-rotated, CMYK, truncated and non-JPEG files to sharp', { skip: NOT_BUILT }, async () => {
    const rotated = await encode(40, 24).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    assert.equal(await decodeJpegNative(rotated), null);
    const upright = await encode(40, 24).jpeg().withMetadata({ orientation: 1 }).toBuffer();
    await assertSameAsSharp(upright, 'orientation 1');
    const cmyk = await encode(40, 24).toColourspace('cmyk').jpeg().toBuffer();
    assert.equal(await decodeJpegNative(cmyk), null);
    const whole = await encode(64, 64).jpeg().toBuffer();
    assert.equal(await decodeJpegNative(whole.subarray(0, whole.length >> 1)), null);
    assert.equal(await decodeJpegNative(await encode(8, 8).png().toBuffer()), null);
    assert.equal(await decodeJpegNative(Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2])), null);
  });

  describe('decodeImageBytes (loadImage, map and detect decode through it)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'darkslim-jpeg-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('applies EXIF orientation through sharp', async () => {
      const file = join(dir, 'rotated.jpg');
      writeFileSync(file, await encode(40, 24).jpeg().withMetadata({ orientation: 6 }).toBuffer());
      const got = await decodeImageBytes(file);
      assert.deepEqual([got.width, got.height], [24, 40]);
      assert.ok(got.data.equals((await sharpRgb(readFileSync(file))).data));
      const asStored = await decodeImageBytes(file, { autoOrient: false });
      assert.deepEqual([asStored.width, asStored.height], [40, 24]);
    });

    it('names the file of a corrupt or missing image', async () => {
      const file = join(dir, 'broken.jpg');
      writeFileSync(file, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3]));
      await assert.rejects(decodeImageBytes(file), (e: Error) => e.message.startsWith(`cannot decode image: ${file}: `));
      await assert.rejects(decodeImageBytes(join(dir, 'missing.jpg')), /cannot decode image: .*missing\.jpg/);
    });

    it('reads the corpus dog as sharp does', { skip: NO_CORPUS }, async () => {
      const file = corpusPath('images', 'dog.jpg');
      const got = await decodeImageBytes(file);
      assert.ok(got.data.equals((await sharpRgb(readFileSync(file))).data));
    });
  });
});
