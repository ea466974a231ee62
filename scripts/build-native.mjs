// postinstall: builds the optional native JPEG decoder (native/jpeg) with node-gyp, which npm
// bundles. It needs a C compiler and libjpeg-turbo's headers (Debian: libjpeg62-turbo-dev); where
// they are missing it says so and the install goes on: images are then decoded with sharp alone
// (same pixels, more CPU). DARKSLIM_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'jpeg');

if (process.env.DARKSLIM_SKIP_NATIVE === '1') {
  console.log('darkslim: native JPEG decoder skipped (DARKSLIM_SKIP_NATIVE=1); images decode with sharp');
  process.exit(0);
}

// npm passes its bundled node-gyp to lifecycle scripts; run by hand, look for npm's own copy.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && existsSync(p));
if (candidates.length === 0) {
  console.log('darkslim: node-gyp not found; native JPEG decoder not built (images decode with sharp)');
  process.exit(0);
}
const args = [candidates[0], 'rebuild'];
// npm's `nodedir` setting (Node's headers installed locally) reaches scripts as npm_config_nodedir
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
const run = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
if (run.status === 0) {
  console.log('darkslim: native JPEG decoder built (native/jpeg/build/Release/darkslim_jpeg.node)');
} else {
  const why = `${run.stdout ?? ''}${run.stderr ?? ''}`
    .split('\n')
    .filter((l) => /error|not found|No such file/i.test(l) && !/^gyp (WARN|ERR! (stack {3}at|System|command|cwd|node|not ok))/.test(l))
    .slice(0, 3)
    .join('\n  ');
  console.log(`darkslim: native JPEG decoder not built; images decode with sharp (same pixels, more CPU).\n  ${why || run.error?.message || 'node-gyp failed'}\n  (Debian/Ubuntu: apt-get install libjpeg62-turbo-dev, then npm run build:native)`);
  rmSync(join(dir, 'build'), { recursive: true, force: true });
}
