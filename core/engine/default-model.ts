// Darkslim's own small detector (darkslim-tiny: 64x64, 4 classes), used by `darkslim train default`
// and the demo. Found from the sources (core/engine/), beside a bundle in dist/, or from the cwd.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const FROM_SOURCES = resolve(__dirname, 'models', 'darkslim-tiny.cfg');

export const DEFAULT_MODEL_CFG = [
  FROM_SOURCES,
  resolve(__dirname, '..', 'core', 'engine', 'models', 'darkslim-tiny.cfg'),
  resolve(process.cwd(), 'core', 'engine', 'models', 'darkslim-tiny.cfg'),
].find((p) => existsSync(p)) ?? FROM_SOURCES;
