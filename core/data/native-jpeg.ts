// The optional native JPEG decoder (native/jpeg, built by `npm install` where a C compiler and
// libjpeg-turbo's headers are present; see scripts/build-native.mjs). It decodes with the same
// library and settings as sharp's libvips (bit-identical RGB, checked by
// test/unit/native-jpeg.test.ts on every corpus image) at 50-65% of sharp's CPU time, which is what `map` waits
// for on a 2-core machine. Where it is not built, or for any file it declines (EXIF orientation,
// CMYK, libjpeg warnings, not a JPEG), callers decode with sharp as before.
// DARKSLIM_NATIVE_JPEG=0 turns it off (benchmarks compare both).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface NativeJpeg {
  decode(buffer: Buffer): Promise<{ data: Buffer; width: number; height: number } | null>;
  library: string;
}

const ADDON = join('native', 'jpeg', 'build', 'Release', 'darkslim_jpeg.node');

let loaded: NativeJpeg | null | undefined;

function load(): NativeJpeg | null {
  // read at each call, not cached: a benchmark switches between the two decoders in one run
  if (process.env.DARKSLIM_NATIVE_JPEG === '0') return null;
  if (loaded !== undefined) return loaded;
  loaded = null;
  // beside the bundles (dist/ → ../native) or the sources (core/data → ../../native)
  for (const root of [join(__dirname, '..'), join(__dirname, '..', '..')]) {
    const file = join(root, ADDON);
    if (!existsSync(file)) continue;
    try {
      loaded = createRequire(__filename)(file) as NativeJpeg;
    } catch {
      // built for another Node ABI or its libjpeg is gone: sharp decodes instead
    }
    break;
  }
  return loaded;
}

/** The native decoder's library ('libjpeg-turbo 2.1.5'), or null when it is not available. */
export function nativeJpegLibrary(): string | null {
  return load()?.library ?? null;
}

/**
 * Interleaved RGB of a JPEG file's bytes (decoded off the JS thread), exactly what sharp gives with autoOrient and ignoreIcc,
 * or null when the native decoder is unavailable or leaves this file to sharp.
 */
export async function decodeJpegNative(bytes: Buffer): Promise<{ data: Buffer; width: number; height: number } | null> {
  // JPEG files start with SOI (FF D8 FF)
  if (bytes.length < 3 || bytes[0] !== 0xff || bytes[1] !== 0xd8 || bytes[2] !== 0xff) return null;
  const addon = load();
  return addon ? addon.decode(bytes) : null;
}
