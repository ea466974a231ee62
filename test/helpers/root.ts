import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root (the folder of darkslim's package.json), found from this file upwards, so
 * the helpers work both from sources (tsx) and from bundled benchmarks. */
export function repoRoot(start = __dirname): string {
  let dir = start;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'darkslim') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find darkslim's package.json above ${start}`);
    dir = up;
  }
}
