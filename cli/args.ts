// A small, strict argument parser: positional arguments plus --flag, --flag value and --flag=value.
export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

export class UsageError extends Error {}

/** `booleans` lists the flags that take no value. Unknown flags are an error naming them. */
export function parseArgs(argv: string[], spec: { booleans?: string[]; values?: string[] }): ParsedArgs {
  const booleans = new Set(spec.booleans ?? []);
  const values = new Set(spec.values ?? []);
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { positional.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('--') || a === '-') { positional.push(a); continue; }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (booleans.has(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (values.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, v);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { positional, flags };
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagNumber(args: ParsedArgs, name: string, fallback: number): number {
  const v = flagString(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got "${v}"`);
  return n;
}

/** "416x416" or "416" → [w, h] */
export function parseSize(text: string): [number, number] {
  const m = /^(\d+)(?:[xX×,](\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`--size expects WxH (e.g. 416x416), got "${text}"`);
  const w = Number(m[1]);
  const h = m[2] ? Number(m[2]) : w;
  if (w <= 0 || h <= 0) throw new UsageError(`--size must be positive, got "${text}"`);
  return [w, h];
}
