// The .weights file that goes with a cfg: found beside it (or named by a setting), read once per
// change on disk (keyed by mtime and size, re-stat'ed on every analysis, which costs microseconds)
// and checked against each analysed version of the cfg.
import { readFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWeights, type ReadWeightsResult } from '../core/darknet/weights';
import type { Analysis } from './analysis';
import type { Settings } from './settings';

export type WeightsInfo =
  /** No weights beside the cfg and none named by the setting (or the cfg is not a file). */
  | { kind: 'none' }
  /** The setting names a file that does not exist. */
  | { kind: 'missing'; path: string }
  | { kind: 'loading'; path: string }
  | { kind: 'unreadable'; path: string; message: string }
  | { kind: 'checked'; path: string; result: ReadWeightsResult };

export function uriToPath(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

/** Where the weights of `cfgPath` are: the setting when given, else `<name>.weights` beside the cfg. */
export function weightsPathFor(cfgPath: string, setting: string): string {
  const name = basename(cfgPath, extname(cfgPath));
  if (!setting) return join(dirname(cfgPath), `${name}.weights`);
  const p = setting.replaceAll('${cfgName}', name);
  return isAbsolute(p) ? p : resolve(dirname(cfgPath), p);
}

type FileState =
  | { state: 'absent' }
  | { state: 'loading' }
  | { state: 'ready'; bytes: Uint8Array }
  | { state: 'error'; message: string };

interface Entry {
  stamp: string;
  bytes?: Uint8Array;
  error?: string;
}

export class WeightsStore {
  private readonly files = new Map<string, Entry>();
  private readonly checks = new WeakMap<Analysis, { bytes: Uint8Array; result: ReadWeightsResult }>();

  /** `loaded` runs when a read finishes, so the documents using the file can be checked again. */
  constructor(private readonly loaded: (path: string) => void) {}

  private lookup(path: string): FileState {
    let stamp: string;
    try {
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st || !st.isFile()) {
        this.files.delete(path);
        return { state: 'absent' };
      }
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch (e) {
      return { state: 'error', message: (e as Error).message };
    }
    const known = this.files.get(path);
    if (known && known.stamp === stamp) {
      if (known.bytes) return { state: 'ready', bytes: known.bytes };
      if (known.error !== undefined) return { state: 'error', message: known.error };
      return { state: 'loading' };
    }
    // Read asynchronously: a 250 MB yolov4.weights must not hold up the diagnostics of the cfg.
    const entry: Entry = { stamp };
    this.files.set(path, entry);
    readFile(path).then(
      (buf) => {
        if (this.files.get(path) !== entry) return;
        entry.bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
        this.loaded(path);
      },
      (e: NodeJS.ErrnoException) => {
        if (this.files.get(path) !== entry) return;
        entry.error = e.code ?? e.message;
        this.loaded(path);
      },
    );
    return { state: 'loading' };
  }

  info(analysis: Analysis, settings: Settings): WeightsInfo {
    const cfgPath = uriToPath(analysis.uri);
    if (!cfgPath) return { kind: 'none' };
    const path = weightsPathFor(cfgPath, settings.weightsPath);
    const f = this.lookup(path);
    switch (f.state) {
      case 'absent':
        return settings.weightsPath ? { kind: 'missing', path } : { kind: 'none' };
      case 'loading':
        return { kind: 'loading', path };
      case 'error':
        return { kind: 'unreadable', path, message: f.message };
      case 'ready': {
        // readWeights is cheap (views, not copies) but is still done once per version and file
        const memo = this.checks.get(analysis);
        if (memo && memo.bytes === f.bytes) return { kind: 'checked', path, result: memo.result };
        const result = readWeights(f.bytes, analysis.graph);
        this.checks.set(analysis, { bytes: f.bytes, result });
        return { kind: 'checked', path, result };
      }
    }
  }

  /** Forget what we know of a file so the next analysis reads it again (it changed on disk). */
  invalidate(path: string): void {
    this.files.delete(path);
  }

  /** Drop the bytes of files no open document uses any more. */
  retain(paths: ReadonlySet<string>): void {
    for (const p of [...this.files.keys()]) if (!paths.has(p)) this.files.delete(p);
  }
}
