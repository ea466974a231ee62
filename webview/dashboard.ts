// Training dashboard: live loss parts, learning rate and mAP curves (uPlot), and the |γ|
// histogram per epoch (canvas), the picture that tells whether sparsity training has worked:
// a good run moves the mass of |γ| towards 0 while mAP holds.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { TaskEvent } from '../core/pipeline/events';
import { applyEvents, describeGamma, emptyDashboard, formatEta, lossKeys, type DashboardModel } from './dashboardModel';
import type { DashboardFromWebview, DashboardRun, DashboardToWebview } from './protocol';
import { fitCanvas, onThemeChange, readTheme, type ThemeColors } from './theme';
import { $, vscodeApi } from './vscode';

interface SavedState { run?: DashboardRun; model: DashboardModel }

const vscode = vscodeApi<SavedState, DashboardFromWebview>();

document.body.innerHTML = `
<header class="bar"><h1 id="title">Training dashboard</h1><span id="subtitle" class="muted"></span></header>
<div id="status" class="status" role="status">Waiting for a training run (Darkslim: Sparsity-train… or Fine-tune…).</div>
<div class="progress"><div id="progress-fill" class="progress-fill"></div></div>
<div class="grid">
  <section class="card"><h2>Loss</h2><div id="loss" class="chart"></div></section>
  <section class="card"><h2>Learning rate</h2><div id="lr" class="chart"></div></section>
  <section class="card"><h2>mAP@0.5</h2><div id="map" class="chart"></div></section>
  <section class="card"><h2>|γ| histogram per epoch</h2><canvas id="gamma"></canvas><div id="gamma-note" class="muted"></div></section>
</div>
<section class="card"><h2>Run</h2><dl id="info" class="info"></dl></section>`;

let theme = readTheme();
let run: DashboardRun | undefined = vscode.getState()?.run;
let model: DashboardModel = vscode.getState()?.model ?? emptyDashboard();
const plots: Record<string, uPlot | undefined> = {};
let renderScheduled = false;

function axes(): uPlot.Axis[] {
  const ax = { stroke: theme.muted, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid, width: 1 }, font: '11px sans-serif' };
  return [{ ...ax }, { ...ax, size: 56 }];
}

function chart(id: string, label: string, names: string[], xs: number[], ys: number[][], opts: { log?: boolean; points?: boolean } = {}): void {
  const el = $(id);
  const width = Math.max(240, el.clientWidth);
  const height = 200;
  const key = `${id}:${names.join(',')}:${theme.foreground}`;
  const existing = plots[id];
  if (existing && (existing as unknown as { _key?: string })._key === key) {
    existing.setData([xs, ...ys]);
    if (Math.abs(existing.width - width) > 2) existing.setSize({ width, height });
    return;
  }
  existing?.destroy();
  el.replaceChildren();
  const series: uPlot.Series[] = [{ label }];
  names.forEach((n, i) => series.push({
    label: n, stroke: theme.series[i % theme.series.length], width: 1.5, spanGaps: true,
    points: { show: opts.points ?? false, size: 5 },
  }));
  const p = new uPlot({
    width, height, series, axes: axes(), legend: { show: true },
    scales: { x: { time: false }, y: opts.log ? { distr: 3 } : {} },
    cursor: { drag: { x: true, y: false } },
  }, [xs, ...ys], el);
  (p as unknown as { _key?: string })._key = key;
  plots[id] = p;
}

function drawGamma(): void {
  const canvas = $('gamma') as HTMLCanvasElement;
  const width = Math.max(240, (canvas.parentElement as HTMLElement).clientWidth - 24);
  const snaps = model.gamma;
  const rowH = snaps.length ? Math.max(4, Math.min(18, Math.floor(110 / snaps.length))) : 12;
  const barsH = 90;
  const height = barsH + 28 + rowH * Math.max(1, snaps.length);
  const ctx = fitCanvas(canvas, width, height);
  const t = theme;
  ctx.fillStyle = t.background;
  ctx.fillRect(0, 0, width, height);
  if (!snaps.length) {
    ctx.fillStyle = t.muted;
    ctx.font = '12px sans-serif';
    ctx.fillText('No γ histogram yet (one per epoch).', 8, 20);
    $('gamma-note').textContent = '';
    return;
  }
  const last = snaps[snaps.length - 1];
  const first = snaps[0];
  const bins = last.counts.length;
  const left = 48, right = width - 8;
  const bw = (right - left) / bins;
  // bars: the latest epoch, with the first epoch's outline for comparison
  const frac = (s: typeof last, b: number) => (s.count ? s.counts[b] / s.count : 0);
  let maxF = 0.01;
  for (let b = 0; b < bins; b++) maxF = Math.max(maxF, frac(last, b), frac(first, b));
  for (let b = 0; b < bins; b++) {
    const h = (frac(last, b) / maxF) * (barsH - 14);
    ctx.fillStyle = b < 3 ? t.removed : t.series[0];
    ctx.fillRect(left + b * bw + 1, barsH - h, bw - 2, h);
    const h0 = (frac(first, b) / maxF) * (barsH - 14);
    ctx.strokeStyle = t.muted;
    ctx.strokeRect(left + b * bw + 1.5, barsH - h0 + 0.5, bw - 3, h0);
  }
  ctx.font = '10px sans-serif';
  ctx.fillStyle = t.muted;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let b = 0; b < bins; b++) {
    const lo = last.edges[b], hi = last.edges[b + 1];
    ctx.fillText(b === bins - 1 ? `≥${lo}` : `<${hi}`, left + (b + 0.5) * bw, barsH + 2);
  }
  // rows: every snapshot, the share of each bin as intensity
  const top = barsH + 16;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  snaps.forEach((s, r) => {
    for (let b = 0; b < bins; b++) {
      ctx.globalAlpha = Math.min(1, Math.sqrt(frac(s, b)) * 1.4);
      ctx.fillStyle = b < 3 ? t.removed : t.series[0];
      ctx.fillRect(left + b * bw, top + r * rowH, bw - 1, rowH - 1);
    }
    ctx.globalAlpha = 1;
    if (rowH >= 9 || r === snaps.length - 1 || r === 0) {
      ctx.fillStyle = t.muted;
      ctx.fillText(s.epoch !== undefined ? `ep ${s.epoch.toFixed(1)}` : `it ${s.step}`, left - 4, top + r * rowH + rowH / 2);
    }
  });
  $('gamma-note').textContent = `${describeGamma(last)}; first: ${(first.sparsity * 100).toFixed(1)}%. Red bins: |γ| < 0.01 (prunable).`;
}

function render(): void {
  renderScheduled = false;
  $('title').textContent = run ? run.label : 'Training dashboard';
  $('subtitle').textContent = model.task ? `${model.task} · ${model.state}` : '';
  const p = model.progress;
  const status: string[] = [];
  if (model.state === 'failed') status.push(`Failed: ${model.error ?? ''}`);
  else if (p) {
    status.push(`iteration ${p.done}/${p.total}`);
    if (p.epoch !== undefined) status.push(`epoch ${p.epoch.toFixed(2)}`);
    if (p.rate) status.push(`${p.rate.toFixed(1)} img/s`);
    if (p.eta !== undefined && model.state === 'running') status.push(`eta ${formatEta(p.eta)}`);
    if (model.state === 'done') status.push(`done in ${formatEta(model.seconds)}`);
    if (model.state === 'cancelled') status.push('cancelled');
  }
  const best = model.evals.reduce((b, e) => Math.max(b, e.map), -1);
  if (best >= 0) status.push(`best mAP ${(best * 100).toFixed(2)}%`);
  if (status.length) {
    $('status').textContent = status.join(' · ');
    $('status').classList.toggle('error', model.state === 'failed');
  }
  ($('progress-fill') as HTMLElement).style.width = p && p.total ? `${Math.min(100, (100 * p.done) / p.total).toFixed(1)}%` : '0%';

  const keys = lossKeys(model);
  if (model.steps.length) {
    chart('loss', 'iteration', keys, model.steps, keys.map((k) => model.series[k] ?? []));
    if (model.series.lr) chart('lr', 'iteration', ['lr'], model.steps, [model.series.lr]);
  }
  if (model.evals.length) {
    chart('map', model.evals.some((e) => e.epoch !== undefined) ? 'epoch' : 'iteration', ['mAP@0.5'],
      model.evals.map((e) => e.epoch ?? e.step), [model.evals.map((e) => e.map * 100)], { points: true });
  }
  drawGamma();
  const info = $('info');
  const rows: [string, string][] = Object.entries(model.info).map(([k, v]) => [k, String(v)]);
  for (const [k, v] of Object.entries(model.summary ?? {})) rows.push([`result ${k}`, String(v)]);
  for (const c of model.checkpoints.filter((c) => c.kind !== 'last').slice(-4)) rows.push([`${c.kind} weights`, c.path]);
  info.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
  document.body.dataset.points = String(model.steps.length);
  document.body.dataset.state = model.state;
}

function schedule(): void {
  if (renderScheduled) return;
  renderScheduled = true;
  requestAnimationFrame(render);
}

let saveTimer: ReturnType<typeof setTimeout> | undefined;
function save(): void {
  if (saveTimer) return;
  saveTimer = setTimeout(() => { saveTimer = undefined; vscode.setState({ run, model }); }, 1000);
}

function receive(events: TaskEvent[]): void {
  applyEvents(model, events);
  schedule();
  save();
}

window.addEventListener('message', (e: MessageEvent<DashboardToWebview>) => {
  const m = e.data;
  if (m.type === 'run') {
    run = m.run;
    model = emptyDashboard(m.run.label, m.run.task);
    for (const p of Object.values(plots)) p?.destroy();
    for (const k of Object.keys(plots)) delete plots[k];
    for (const id of ['loss', 'lr', 'map']) $(id).replaceChildren();
    receive(m.events);
  } else if (m.type === 'events' && (!run || m.runId === run.id)) {
    receive(m.events);
  }
});
window.addEventListener('resize', schedule);
onThemeChange(() => { theme = readTheme(); for (const k of Object.keys(plots)) { plots[k]?.destroy(); delete plots[k]; } schedule(); });

schedule();
vscode.postMessage({ type: 'ready' });

export type { ThemeColors };
