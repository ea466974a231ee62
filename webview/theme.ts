// Colours for canvas drawing, from VS Code's theme variables (re-read when the theme changes),
// and the viridis colour map for |γ|.

export interface ThemeColors {
  background: string;
  foreground: string;
  muted: string;
  border: string;
  accent: string;
  removed: string;
  limit: string;
  kept: string;
  grid: string;
  series: string[];
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

export function readTheme(): ThemeColors {
  return {
    background: cssVar('--vscode-editor-background', '#1e1e1e'),
    foreground: cssVar('--vscode-editor-foreground', '#cccccc'),
    muted: cssVar('--vscode-descriptionForeground', '#9d9d9d'),
    border: cssVar('--vscode-panel-border', '#454545'),
    accent: cssVar('--vscode-focusBorder', '#007fd4'),
    removed: cssVar('--vscode-charts-red', '#f14c4c'),
    limit: cssVar('--vscode-charts-orange', '#d18616'),
    kept: cssVar('--vscode-charts-green', '#89d185'),
    grid: cssVar('--vscode-editorIndentGuide-background1', cssVar('--vscode-editorIndentGuide-background', '#404040')),
    series: [
      cssVar('--vscode-charts-blue', '#3794ff'), cssVar('--vscode-charts-orange', '#d18616'), cssVar('--vscode-charts-green', '#89d185'),
      cssVar('--vscode-charts-purple', '#b180d7'), cssVar('--vscode-charts-red', '#f14c4c'), cssVar('--vscode-charts-yellow', '#cca700'),
    ],
  };
}

/** Calls `f` when VS Code switches the theme (it changes the body's class and variables). */
export function onThemeChange(f: () => void): void {
  new MutationObserver(f).observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
}

/** Parses #rgb, #rrggbb, #rrggbbaa or rgb()/rgba() into [r, g, b]. */
export function parseColor(c: string): [number, number, number] {
  const s = c.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(s);
  if (m) return [0, 1, 2].map((i) => parseInt(m![1][i] + m![1][i], 16)) as [number, number, number];
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)) as [number, number, number];
  m = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/i.exec(s);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return [128, 128, 128];
}

// viridis, 9 control points, interpolated to a 256-entry table
const VIRIDIS: [number, number, number][] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

/** 256 colours as little-endian RGBA words (for a Uint32Array view of ImageData). */
export function viridisTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (VIRIDIS.length - 1);
    const k = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - k;
    const [r, g, b] = [0, 1, 2].map((j) => Math.round(VIRIDIS[k][j] * (1 - f) + VIRIDIS[k + 1][j] * f));
    t[i] = rgbaWord(r, g, b);
  }
  return t;
}

export function rgbaWord(r: number, g: number, b: number, a = 255): number {
  return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** A removed channel's colour: the kept colour darkened and pulled towards red. */
export function dimWord(word: number): number {
  const r = word & 255, g = (word >>> 8) & 255, b = (word >>> 16) & 255;
  const y = 0.299 * r + 0.587 * g + 0.114 * b;
  return rgbaWord(Math.min(255, Math.round(y * 0.3 + 70)), Math.round(y * 0.18), Math.round(y * 0.18));
}

export function cssHex(rgb: [number, number, number]): string {
  return '#' + rgb.map((v) => v.toString(16).padStart(2, '0')).join('');
}

/** Canvas sized to its CSS box at the device pixel ratio; returns the 2D context scaled to CSS pixels. */
export function fitCanvas(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

export function fmtCount(n: number): string {
  if (Math.abs(n) >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (Math.abs(n) >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(Math.round(n));
}

export function fmtBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
