// Typed, silent access to a section's values with darknet's defaults and C number parsing.
// Validation of the text itself (junk, ranges, unknown keys) lives in validate.ts.
import { cAtof, cAtoi, findEntry, splitCList, stripAll } from './parser';
import type { CfgEntry, CfgSection } from './types';

export class SectionOptions {
  constructor(readonly section: CfgSection) {}

  entry(key: string): CfgEntry | undefined {
    return findEntry(this.section, key);
  }

  has(key: string): boolean {
    return this.entry(key) !== undefined;
  }

  int(key: string, fallback: number): number {
    const e = this.entry(key);
    return e ? cAtoi(stripAll(e.value)).value : fallback;
  }

  float(key: string, fallback: number): number {
    const e = this.entry(key);
    return e ? cAtof(stripAll(e.value)).value : fallback;
  }

  str(key: string, fallback: string): string;
  str(key: string, fallback?: string): string | undefined;
  str(key: string, fallback?: string): string | undefined {
    const e = this.entry(key);
    return e ? stripAll(e.value) : fallback;
  }

  bool(key: string, fallback = false): boolean {
    return this.int(key, fallback ? 1 : 0) !== 0;
  }

  /** Comma list read item by item with atoi, as darknet's route/shortcut/mask parsers do. */
  ints(key: string): number[] | undefined {
    const e = this.entry(key);
    if (!e) return undefined;
    return splitCList(e.value).map((s) => cAtoi(s).value);
  }

  floats(key: string): number[] | undefined {
    const e = this.entry(key);
    if (!e) return undefined;
    return splitCList(e.value).filter((s) => s !== '').map((s) => cAtof(s).value);
  }
}
