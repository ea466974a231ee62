// Hand-written SVG bar charts for the study report (no plotting dependency): grouped vertical bars,
// one group per category, a legend, value labels, an axis with round ticks.

export interface Series {
  name: string;
  color: string;
  values: (number | null)[];
}

export interface BarChartOptions {
  title: string;
  categories: string[];
  series: Series[];
  yLabel: string;
  /** Value label on each bar. */
  format?: (v: number) => string;
  width?: number;
  height?: number;
}

export const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];

export function esc(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick step for a range (1, 2, 5 × 10^k). */
export function niceStep(max: number, ticks = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** A chart as a group of width × height at (x, y). */
export function barChartGroup(o: BarChartOptions, x = 0, y = 0): string {
  const W = o.width ?? 640, H = o.height ?? 380;
  // room on the left for the first category's slanted label (about 6.5 px a character at 11 px in common renderers)
  const longest = Math.max(0, ...o.categories.map((c) => Math.min(c.length, 38)));
  const firstHalf = (W - 80) / Math.max(1, o.categories.length) / 2;
  const left = Math.round(Math.max(64, longest * 6.5 * 0.87 - firstHalf + 12)), right = 16, top = 40, bottom = 130;
  const pw = W - left - right, ph = H - top - bottom;
  const all = o.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const maxV = Math.max(0, ...all);
  const step = niceStep(maxV || 1);
  const top_ = Math.max(step, Math.ceil((maxV * 1.08) / step) * step);
  const sy = (v: number) => top + ph - (v / top_) * ph;
  const fmt = o.format ?? ((v: number) => num(v));
  const out: string[] = [`<g transform="translate(${x},${y})" font-family="sans-serif" font-size="11">`];
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  // axis and grid
  for (let v = 0; v <= top_ + 1e-12; v += step) {
    const yy = sy(v);
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${num(yy)}" y2="${num(yy)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${num(yy + 4)}" text-anchor="end">${esc(fmt(v))}</text>`);
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${left}" x2="${left + pw}" y1="${top + ph}" y2="${top + ph}" stroke="#333"/>`);
  out.push(`<text transform="translate(14,${top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  // bars
  const n = Math.max(1, o.categories.length);
  const gw = pw / n;
  const bw = Math.max(2, (gw * 0.8) / Math.max(1, o.series.length));
  o.categories.forEach((c, i) => {
    const gx = left + i * gw + gw * 0.1;
    o.series.forEach((s, k) => {
      const v = s.values[i];
      const bx = gx + k * bw;
      if (v === null || v === undefined || !Number.isFinite(v)) {
        out.push(`<text x="${num(bx + bw / 2)}" y="${top + ph - 4}" text-anchor="middle" fill="#999">–</text>`);
        return;
      }
      const yy = sy(Math.max(0, v));
      out.push(`<rect x="${num(bx)}" y="${num(yy)}" width="${num(bw - 1)}" height="${num(top + ph - yy)}" fill="${s.color}"><title>${esc(`${s.name}: ${c}: ${fmt(v)}`)}</title></rect>`);
      if (bw >= 14) out.push(`<text x="${num(bx + bw / 2)}" y="${num(yy - 3)}" text-anchor="middle" font-size="9">${esc(fmt(v))}</text>`);
    });
    const lx = left + i * gw + gw / 2;
    out.push(`<text transform="translate(${num(lx)},${top + ph + 12}) rotate(-30)" text-anchor="end">${esc(c.length > 38 ? c.slice(0, 37) + '…' : c)}</text>`);
  });
  // legend
  if (o.series.length > 1) {
    let lx = left;
    for (const s of o.series) {
      out.push(`<rect x="${lx}" y="26" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="35">${esc(s.name)}</text>`);
      lx += 24 + s.name.length * 6.5;
    }
  }
  out.push('</g>');
  return out.join('\n');
}

export function svgDocument(width: number, height: number, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n${body.join('\n')}\n</svg>\n`;
}

export function barChart(o: BarChartOptions): string {
  return svgDocument(o.width ?? 640, o.height ?? 380, [barChartGroup(o)]);
}
