// The redundancy heatmap: one row per conv layer with batch norm, one column per channel, channels
// sorted by |γ| (largest left), coloured by log |γ| (viridis); channels the current preview removes
// are dimmed red. Drawn on a canvas from a one-pixel-per-channel image that is rebuilt per frame
// with a lookup per pixel (no per-channel canvas calls), so yolov4's ~30,000 channels stay smooth.
import { sortedChannelOrder, type PreviewModel, type PreviewResult } from '../core/pipeline/preview';
import { dimWord, fitCanvas, parseColor, rgbaWord, viridisTable, type ThemeColors } from './theme';

export interface HeatRow {
  layer: number;
  line: number;
  channels: number;
  /** Channel index at each sorted position. */
  order: Int32Array;
  gamma: number[];
  prunable: boolean;
  depthwise: boolean;
  reason?: string;
}

export interface HeatHit {
  row: HeatRow;
  /** Sorted position and the channel there (undefined when over the gutter or the kept bar). */
  position?: number;
  channel?: number;
}

const GUTTER = 96;
const BAR = 72;
const MIN_ROW = 3;
const MAX_ROW = 14;

export class Heatmap {
  readonly rows: HeatRow[];
  readonly maxChannels: number;
  /** |γ| colour scale: log between lo and hi. */
  readonly lo: number;
  readonly hi: number;
  private readonly image: ImageData;
  private readonly pixels: Uint32Array;
  private readonly base: Uint32Array;
  private readonly dim: Uint32Array;
  private readonly groupAt: Int32Array;
  private readonly offscreen: HTMLCanvasElement;
  private bg = 0;
  private rowH = 6;
  private width = 600;
  private result?: PreviewResult;
  hoverRow = -1;
  limitLayer = -1;
  /** Stretch every row to the full width (else one column per channel of the widest layer). */
  fit = false;

  constructor(private readonly canvas: HTMLCanvasElement, private readonly model: PreviewModel, private theme: ThemeColors) {
    this.rows = model.data.layers.filter((l) => l.gamma && l.type === 'convolutional').map((l) => ({
      layer: l.index, line: l.line, channels: l.groups.length, order: sortedChannelOrder(l.gamma!), gamma: l.gamma!,
      prunable: !!l.prunable, depthwise: !!l.depthwise, reason: l.reason,
    }));
    this.maxChannels = Math.max(1, ...this.rows.map((r) => r.channels));
    let hi = 0;
    for (const r of this.rows) for (const g of r.gamma) if (g > hi) hi = g;
    this.hi = hi > 0 ? hi : 1;
    this.lo = Math.max(this.hi * 1e-4, 1e-8);
    const n = this.maxChannels * Math.max(1, this.rows.length);
    this.image = new ImageData(this.maxChannels, Math.max(1, this.rows.length));
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.base = new Uint32Array(n);
    this.dim = new Uint32Array(n);
    this.groupAt = new Int32Array(n).fill(-1);
    this.offscreen = document.createElement('canvas');
    this.offscreen.width = this.maxChannels;
    this.offscreen.height = Math.max(1, this.rows.length);
    this.buildBase();
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    this.buildBase();
    this.draw();
  }

  /** t in [0, 1] of a |γ| on the colour scale. */
  scale(g: number): number {
    if (!(g > this.lo)) return 0;
    return Math.min(1, Math.log(g / this.lo) / Math.log(this.hi / this.lo));
  }

  private buildBase(): void {
    const lut = viridisTable();
    const [r, g, b] = parseColor(this.theme.background);
    this.bg = rgbaWord(r, g, b);
    const W = this.maxChannels;
    this.base.fill(this.bg);
    this.dim.fill(this.bg);
    this.groupAt.fill(-1);
    const layers = this.model.data.layers;
    this.rows.forEach((row, y) => {
      const groups = layers[row.layer].groups;
      for (let x = 0; x < row.channels; x++) {
        const c = row.order[x];
        const word = lut[Math.round(this.scale(row.gamma[c]) * 255)];
        const i = y * W + x;
        this.base[i] = word;
        this.dim[i] = dimWord(word);
        this.groupAt[i] = groups[c];
      }
    });
  }

  /** Lays the canvas out for a width (CSS px) and a height budget; returns the height used. */
  layout(width: number, height: number): number {
    this.width = Math.max(240, width);
    const n = Math.max(1, this.rows.length);
    this.rowH = Math.max(MIN_ROW, Math.min(MAX_ROW, Math.floor(height / n)));
    return this.rowH * n;
  }

  get rowHeight(): number {
    return this.rowH;
  }

  setResult(result: PreviewResult): void {
    this.result = result;
    this.limitLayer = result.limitLayer;
  }

  draw(): void {
    const n = Math.max(1, this.rows.length);
    const height = this.rowH * n;
    const ctx = fitCanvas(this.canvas, this.width, height);
    const keep = this.result?.keepGroup;
    const { pixels, base, dim, groupAt } = this;
    if (keep) {
      for (let i = 0; i < pixels.length; i++) {
        const g = groupAt[i];
        pixels[i] = g < 0 ? this.bg : keep[g] ? base[i] : dim[i];
      }
    } else {
      pixels.set(base);
    }
    this.offscreen.getContext('2d')!.putImageData(this.image, 0, 0);
    const t = this.theme;
    ctx.fillStyle = t.background;
    ctx.fillRect(0, 0, this.width, height);
    const heatW = this.width - GUTTER - BAR;
    ctx.imageSmoothingEnabled = false;
    if (this.fit) {
      for (let y = 0; y < this.rows.length; y++) {
        ctx.drawImage(this.offscreen, 0, y, Math.max(1, this.rows[y].channels), 1, GUTTER, y * this.rowH, heatW, this.rowH);
      }
    } else {
      ctx.drawImage(this.offscreen, 0, 0, this.maxChannels, n, GUTTER, 0, heatW, height);
    }

    // labels and kept bars
    const kept = this.result?.kept;
    const labelEvery = Math.max(1, Math.ceil(11 / this.rowH));
    ctx.font = `${Math.min(11, Math.max(8, this.rowH - 1))}px var(--vscode-editor-font-family, monospace)`;
    ctx.textBaseline = 'middle';
    const barX = GUTTER + heatW + 6;
    const barW = BAR - 10;
    for (let y = 0; y < this.rows.length; y++) {
      const row = this.rows[y];
      const top = y * this.rowH;
      const k = kept ? kept[row.layer] : row.channels;
      if (y % labelEvery === 0 || y === this.hoverRow) {
        ctx.fillStyle = row.prunable ? t.foreground : t.muted;
        ctx.textAlign = 'left';
        ctx.fillText(`L${row.layer}`, 4, top + this.rowH / 2);
        ctx.textAlign = 'right';
        ctx.fillText(`${k}/${row.channels}`, GUTTER - 6, top + this.rowH / 2);
      }
      const f = row.channels ? k / row.channels : 1;
      ctx.fillStyle = t.grid;
      ctx.fillRect(barX, top + 1, barW, Math.max(1, this.rowH - 2));
      ctx.fillStyle = !row.prunable ? t.muted : k === 0 ? t.removed : t.kept;
      ctx.fillRect(barX, top + 1, k === 0 && row.prunable ? barW : barW * f, Math.max(1, this.rowH - 2));
    }
    // the first layer to be emptied above percent_limit, and the hovered row
    const mark = (layer: number, colour: string) => {
      const y = this.rows.findIndex((r) => r.layer === layer);
      if (y < 0) return;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1;
      ctx.strokeRect(GUTTER - 0.5, y * this.rowH + 0.5, heatW + 1, this.rowH - 1);
    };
    if (this.limitLayer >= 0) mark(this.limitLayer, t.limit);
    if (this.hoverRow >= 0 && this.rows[this.hoverRow]) mark(this.rows[this.hoverRow].layer, t.accent);
  }

  hit(x: number, y: number): HeatHit | undefined {
    const r = Math.floor(y / this.rowH);
    const row = this.rows[r];
    if (!row) return undefined;
    const heatW = this.width - GUTTER - BAR;
    if (x < GUTTER || x >= GUTTER + heatW) return { row };
    const pos = Math.floor(((x - GUTTER) / heatW) * (this.fit ? row.channels : this.maxChannels));
    if (pos >= row.channels) return { row };
    return { row, position: pos, channel: row.order[pos] };
  }

  rowIndexOf(layer: number): number {
    return this.rows.findIndex((r) => r.layer === layer);
  }
}
