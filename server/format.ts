// Number and shape formatting shared by hover, inlay hints, code lens and symbols.
import type { Shape } from '../core/darknet/types';

export function shape(s: Readonly<Shape> | readonly number[]): string {
  return `${s[0]}×${s[1]}×${s[2]}`;
}

export function int(n: number): string {
  return n.toLocaleString('en-US');
}

/** 61949149 → "61.95 M", 4328 → "4.33 K" */
export function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

/** Three decimals like darknet's table; tiny layers (a shortcut's adds) keep two significant digits. */
export function bflops(x: number): string {
  if (x === 0) return '0';
  return x < 0.001 ? x.toPrecision(2) : x.toFixed(3);
}

export function layerLabel(index: number, name: string): string {
  return index < 0 ? `[${name}]` : `#${index} [${name}]`;
}
