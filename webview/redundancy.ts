// Layer redundancy panel: the heatmap of |γ| (layers × channels), histograms, and the global
// percent slider whose preview (core/pipeline/preview.ts, bundled here) runs on every move:
// channels each policy removes, kept channels per layer, params and BFLOPs before → after.
import {
  PREVIEW_STRATEGIES, preparePreview, previewPrune, type PreviewModel, type PreviewResult, type PreviewSettings, type PreviewStrategy,
  type RedundancyData,
} from '../core/pipeline/preview';
import { Heatmap } from './heatmap';
import { drawHistogram, SortedBins } from './histogram';
import type { RedundancyFromWebview, RedundancyState, RedundancyToWebview } from './protocol';
import { fmtCount, onThemeChange, readTheme } from './theme';
import { $, vscodeApi } from './vscode';

const vscode = vscodeApi<RedundancyState, RedundancyFromWebview>();
const post = (m: RedundancyFromWebview) => vscode.postMessage(m);

document.body.innerHTML = `
<header class="bar">
  <h1 id="title">Layer redundancy</h1>
  <span id="subtitle" class="muted"></span>
</header>
<div id="status" class="status" role="status">Loading…</div>
<section id="controls" class="controls" hidden>
  <label class="field">Strategy
    <select id="strategy" title="normal: never prune shortcut-coupled channels; shortcut: coupled channels follow the first layer; slim: keep a coupled channel if any layer keeps it">
      <option value="slim">slim</option><option value="shortcut">shortcut</option><option value="normal">normal</option>
    </select>
  </label>
  <div class="slider">
    <label for="percent">Global percent</label>
    <div class="track">
      <input id="percent" type="range" min="0" max="1000" step="1" value="0" aria-describedby="percent-out">
      <div id="limit-mark" class="limit-mark" title="percent_limit"></div>
    </div>
    <output id="percent-out" for="percent">0.0%</output>
  </div>
  <label class="field">layer_keep
    <input id="layer-keep" type="number" min="0" max="1" step="0.05" placeholder="off" title="Keep at least this fraction of every layer (lifts the percent_limit guard)">
  </label>
  <label class="field">round_to
    <select id="round-to"><option value="">off</option><option value="2">2</option><option value="4">4</option><option value="8">8</option><option value="16">16</option><option value="32">32</option></select>
  </label>
  <label class="field" title="Stretch every layer's row to the full width"><input id="fit" type="checkbox"> fit rows</label>
  <button id="prune" class="primary" title="Run the prune task with these settings and save them as a .prune.yaml">Prune with these settings</button>
</section>
<section id="stats" class="stats" hidden>
  <div class="stat"><span class="label">params</span><span id="params"></span></div>
  <div class="stat"><span class="label">BFLOPs</span><span id="bflops"></span></div>
  <div class="stat"><span class="label">channels removed</span><span id="removed"></span></div>
  <div class="stat"><span class="label">|γ| threshold</span><span id="threshold"></span></div>
  <div class="stat"><span class="label">percent_limit</span><span id="limit"></span></div>
  <table id="policies" class="policies"><thead><tr><th>policy</th><th>params after</th><th>BFLOPs after</th><th>percent_limit</th></tr></thead><tbody></tbody></table>
</section>
<div id="warning" class="warning" hidden></div>
<main id="main" class="main" hidden>
  <div id="heat-wrap" class="heat-wrap"><canvas id="heatmap" aria-label="Heatmap of |γ| per layer and channel"></canvas></div>
  <aside class="side">
    <canvas id="hist-global"></canvas>
    <canvas id="hist-layer"></canvas>
    <div id="layer-info" class="layer-info muted">Hover a layer for its histogram; click to show it in the cfg.</div>
    <div class="legend"><span class="swatch viridis"></span> |γ| low → high (log) <span class="swatch removed"></span> removed</div>
  </aside>
</main>
<div id="tooltip" class="tooltip" hidden></div>
<footer id="perf" class="perf muted"></footer>`;

let model: PreviewModel | undefined;
let data: RedundancyData | undefined;
let heatmap: Heatmap | undefined;
let theme = readTheme();
let settings: PreviewSettings = { strategy: 'slim', percent: 0 };
let result: PreviewResult | undefined;
let selectedRow = -1;
let scheduled = false;
let inputAt = 0;
const frames: number[] = [];
let lastFrameMs = 0;

const slider = $('percent') as HTMLInputElement;
const strategySel = $('strategy') as HTMLSelectElement;
const layerKeepIn = $('layer-keep') as HTMLInputElement;
const roundToSel = $('round-to') as HTMLSelectElement;
const pruneBtn = $('prune') as HTMLButtonElement;
const tooltip = $('tooltip');
const fitIn = $('fit') as HTMLInputElement;
const heatCanvas = $('heatmap') as HTMLCanvasElement;

function pct(x: number, d = 1): string {
  return `${(x * 100).toFixed(d)}%`;
}

function change(before: number, after: number, fmt: (n: number) => string): string {
  const d = before ? (1 - after / before) * 100 : 0;
  return `${fmt(before)} → ${fmt(after)} (${d >= 0 ? '−' : '+'}${Math.abs(d).toFixed(1)}%)`;
}

function setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
  const s = $('status');
  s.textContent = text;
  s.hidden = !text;
  s.classList.toggle('error', kind === 'error');
}

function load(d: RedundancyData, s?: PreviewSettings): void {
  data = d;
  binsCache.clear();
  const t0 = performance.now();
  model = preparePreview(d);
  heatmap = new Heatmap(heatCanvas, model, theme);
  heatmap.fit = fitIn.checked;
  settings = sanitize(s ?? vscode.getState()?.settings ?? settings);
  $('title').textContent = `Layer redundancy: ${d.name}`;
  $('subtitle').textContent = `${heatmap.rows.length} conv layers with BN, ${heatmap.rows.reduce((n, r) => n + r.channels, 0).toLocaleString('en-US')} channels · ${d.weights.split(/[\\/]/).pop()}`;
  for (const id of ['controls', 'stats', 'main']) $(id).hidden = false;
  setStatus('');
  syncControls();
  layout();
  update();
  document.body.dataset.prepareMs = (performance.now() - t0).toFixed(1);
  document.body.dataset.ready = 'true';
  saveState();
}

function sanitize(s: PreviewSettings): PreviewSettings {
  const strategy = PREVIEW_STRATEGIES.includes(s.strategy) ? s.strategy : 'slim';
  const percent = Math.max(0, Math.min(1, Number(s.percent) || 0));
  const layerKeep = s.layerKeep !== undefined && s.layerKeep > 0 && s.layerKeep <= 1 ? s.layerKeep : undefined;
  const roundTo = s.roundTo && s.roundTo > 1 ? Math.floor(s.roundTo) : undefined;
  return { strategy, percent, ...(layerKeep !== undefined ? { layerKeep } : {}), ...(roundTo ? { roundTo } : {}) };
}

function syncControls(): void {
  slider.value = String(Math.round(settings.percent * 1000));
  strategySel.value = settings.strategy;
  layerKeepIn.value = settings.layerKeep !== undefined ? String(settings.layerKeep) : '';
  roundToSel.value = settings.roundTo ? String(settings.roundTo) : '';
}

function readControls(): void {
  const lk = layerKeepIn.value.trim() === '' ? undefined : Number(layerKeepIn.value);
  settings = sanitize({
    strategy: strategySel.value as PreviewStrategy,
    percent: Number(slider.value) / 1000,
    layerKeep: lk,
    roundTo: roundToSel.value ? Number(roundToSel.value) : undefined,
  });
}

let saveTimer: ReturnType<typeof setTimeout> | undefined;
function saveState(): void {
  if (!data) return;
  vscode.setState({ cfg: data.cfg, weights: data.weights, settings });
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = setTimeout(() => post({ type: 'settings', settings }), 400);
}

/** Runs the preview and redraws: the per-frame work while the slider moves. */
function update(): void {
  if (!model || !heatmap || !data) return;
  result = previewPrune(model, settings, result ? { keepGroup: result.keepGroup, kept: result.kept } : undefined);
  heatmap.setResult(result);
  heatmap.draw();
  const limit = result.percentLimit;
  $('percent-out').textContent = pct(settings.percent);
  $('params').textContent = change(data.totals.params, result.params, fmtCount);
  $('bflops').textContent = change(data.totals.bflops, result.bflops, (n) => n.toFixed(3));
  const total = heatmap.rows.reduce((n, r) => n + r.channels, 0);
  $('removed').textContent = `${result.removedChannels.toLocaleString('en-US')} (${pct(total ? result.removedChannels / total : 0)})`;
  $('threshold').textContent = Number.isFinite(result.threshold) ? result.threshold.toPrecision(4) : result.threshold > 0 ? 'all' : 'none';
  $('limit').textContent = `${pct(limit, 2)} (${settings.strategy}, layer ${result.limitLayer})`;
  const mark = $('limit-mark');
  mark.style.left = `calc(${(limit * 100).toFixed(3)}% - 1px)`;
  mark.title = `percent_limit ${pct(limit, 2)}: above it the ${settings.strategy} threshold would empty layer ${result.limitLayer}`;
  const warn = $('warning');
  if (result.refused) {
    warn.hidden = false;
    warn.textContent = `${pct(settings.percent)} is above this model's percent_limit ${pct(limit, 2)} for the ${settings.strategy} strategy: it would remove every channel of layer ${result.emptied.join(', ') || result.limitLayer}. Lower the percent or set layer_keep.`;
  } else if (result.emptied.length) {
    warn.hidden = false;
    warn.textContent = `These settings empty layer ${result.emptied.join(', ')}.`;
  } else {
    warn.hidden = true;
  }
  pruneBtn.disabled = result.refused || result.emptied.length > 0 || (settings.percent === 0);
  drawSide();
  updatePolicies();
}

let policiesTimer: ReturnType<typeof setTimeout> | undefined;
/** The other policies at the same percent (throttled: three previews are not needed every frame). */
function updatePolicies(): void {
  if (policiesTimer) return;
  policiesTimer = setTimeout(() => {
    policiesTimer = undefined;
    if (!model || !data) return;
    const body = ($('policies') as HTMLTableElement).tBodies[0];
    const rows = PREVIEW_STRATEGIES.map((s) => {
      const r = previewPrune(model!, { ...settings, strategy: s });
      const tr = document.createElement('tr');
      if (s === settings.strategy) tr.className = 'current';
      const cells = [s, r.refused ? 'refused' : fmtCount(r.params), r.refused ? '—' : r.bflops.toFixed(3), pct(r.percentLimit, 2)];
      for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.append(td); }
      return tr;
    });
    body.replaceChildren(...rows);
  }, 60);
}

const binsCache = new Map<string, SortedBins>();
function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

function drawSide(): void {
  if (!model || !heatmap || !result) return;
  const side = ($('hist-global').parentElement as HTMLElement);
  const w = Math.max(200, side.clientWidth - 4);
  const p = model.prep[settings.strategy];
  const thr = result.threshold;
  let bins = binsCache.get(settings.strategy);
  if (!bins) { bins = new SortedBins(p.sorted, heatmap.lo, heatmap.hi); binsCache.set(settings.strategy, bins); }
  drawHistogram($('hist-global') as HTMLCanvasElement, w, 150, {
    title: `all ranked |γ| (${settings.strategy}): ${p.sorted.length.toLocaleString('en-US')}`,
    counts: bins.split(lowerBound(p.sorted, thr)), lo: heatmap.lo, hi: heatmap.hi,
    threshold: Number.isFinite(thr) ? thr : undefined, limit: p.limit.highest,
  }, theme);
  const rowIdx = heatmap.hoverRow >= 0 ? heatmap.hoverRow : selectedRow >= 0 ? selectedRow : heatmap.rowIndexOf(result.limitLayer);
  const row = heatmap.rows[rowIdx];
  if (row) {
    const groups = model.data.layers[row.layer].groups;
    const keep = result.keepGroup;
    drawHistogram($('hist-layer') as HTMLCanvasElement, w, 130, {
      title: `layer ${row.layer}: ${result.kept[row.layer]}/${row.channels} kept`,
      values: row.gamma, removed: (c) => !keep[groups[c]], lo: heatmap.lo, hi: heatmap.hi,
      threshold: Number.isFinite(thr) ? thr : undefined,
    }, theme);
    const layer = model.data.layers[row.layer];
    $('layer-info').textContent = `layer ${row.layer} [${layer.type}] ${layer.output.join('×')}` + (row.depthwise ? ' · depthwise: follows its input' : '')
      + (row.prunable ? '' : ` · not prunable: ${row.reason ?? ''}`);
  }
}

function layout(): void {
  if (!heatmap) return;
  const wrap = $('heat-wrap');
  const avail = Math.max(240, window.innerHeight - wrap.getBoundingClientRect().top - 40);
  heatmap.layout(wrap.clientWidth - 2, avail);
}

function schedule(): void {
  if (!inputAt) inputAt = performance.now();
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const t0 = performance.now();
    update();
    const t1 = performance.now();
    lastFrameMs = t1 - t0;
    frames.push(lastFrameMs);
    if (frames.length > 2000) frames.splice(0, frames.length - 2000);
    inputAt = 0;
    showPerf();
  });
}

function showPerf(): void {
  if (!frames.length) return;
  const s = [...frames].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  $('perf').textContent = `preview + redraw: last ${lastFrameMs.toFixed(1)} ms · median ${q(0.5).toFixed(1)} ms · p95 ${q(0.95).toFixed(1)} ms over ${s.length} frames`;
  document.body.dataset.frames = String(s.length);
  document.body.dataset.frameMedian = q(0.5).toFixed(2);
  document.body.dataset.frameP95 = q(0.95).toFixed(2);
  document.body.dataset.frameMax = s[s.length - 1].toFixed(2);
}

slider.addEventListener('input', () => { readControls(); schedule(); });
slider.addEventListener('change', () => { readControls(); saveState(); post({ type: 'perf', frames: frames.slice(-500) }); });
for (const el of [strategySel, layerKeepIn, roundToSel]) {
  el.addEventListener('change', () => { readControls(); schedule(); saveState(); });
}
layerKeepIn.addEventListener('input', () => { readControls(); schedule(); });
fitIn.addEventListener('change', () => { if (heatmap) { heatmap.fit = fitIn.checked; heatmap.draw(); } });
pruneBtn.addEventListener('click', () => {
  readControls();
  pruneBtn.disabled = true;
  setStatus(`Pruning with ${settings.strategy} at ${pct(settings.percent)}…`);
  post({ type: 'prune', settings });
});

heatCanvas.addEventListener('mousemove', (e) => {
  if (!heatmap || !model || !result) return;
  const rect = heatCanvas.getBoundingClientRect();
  const hit = heatmap.hit(e.clientX - rect.left, e.clientY - rect.top);
  const rowIdx = hit ? heatmap.rows.indexOf(hit.row) : -1;
  if (rowIdx !== heatmap.hoverRow) {
    heatmap.hoverRow = rowIdx;
    heatmap.draw();
    drawSide();
  }
  if (!hit) { tooltip.hidden = true; return; }
  const layer = model.data.layers[hit.row.layer];
  const lines = [`layer ${hit.row.layer} [conv] ${layer.output.join('×')}: ${result.kept[hit.row.layer]}/${hit.row.channels} kept`];
  if (hit.channel !== undefined) {
    const g = layer.groups[hit.channel];
    const flags = model.data.groupFlags[g];
    const coupled = [flags & 2 && 'shortcut', flags & 4 && 'scale_channels', flags & 8 && 'grouped route', flags & 16 && 'depthwise'].filter(Boolean).join(', ');
    lines.push(`channel ${hit.channel} (rank ${hit.position! + 1}) · |γ| ${hit.row.gamma[hit.channel].toPrecision(4)}`);
    lines.push(`${result.keepGroup[g] ? 'kept' : 'removed'}${coupled ? ` · coupled through ${coupled}` : ''}${flags & 1 ? '' : ' · fixed'}`);
  }
  if (!hit.row.prunable) lines.push(`not prunable: ${hit.row.reason ?? ''}`);
  tooltip.textContent = lines.join('\n');
  tooltip.hidden = false;
  const x = Math.min(window.innerWidth - tooltip.offsetWidth - 8, e.clientX + 14);
  const y = Math.min(window.innerHeight - tooltip.offsetHeight - 8, e.clientY + 14);
  tooltip.style.left = `${x}px`;
  tooltip.style.top = `${y}px`;
});
heatCanvas.addEventListener('mouseleave', () => {
  tooltip.hidden = true;
  if (heatmap && heatmap.hoverRow !== -1) { heatmap.hoverRow = -1; heatmap.draw(); drawSide(); }
});
heatCanvas.addEventListener('click', (e) => {
  if (!heatmap) return;
  const rect = heatCanvas.getBoundingClientRect();
  const hit = heatmap.hit(e.clientX - rect.left, e.clientY - rect.top);
  if (!hit) return;
  selectedRow = heatmap.rows.indexOf(hit.row);
  post({ type: 'reveal', layer: hit.row.layer, line: hit.row.line });
});

let resizeTimer: ReturnType<typeof setTimeout> | undefined;
window.addEventListener('resize', () => {
  if (resizeTimer) clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { layout(); update(); }, 50);
});
onThemeChange(() => { theme = readTheme(); heatmap?.setTheme(theme); drawSide(); });

window.addEventListener('message', (e: MessageEvent<RedundancyToWebview>) => {
  const m = e.data;
  switch (m.type) {
    case 'data': load(m.data, m.settings); break;
    case 'busy': setStatus(m.message); break;
    case 'error': setStatus(m.message, 'error'); document.body.dataset.error = m.message; break;
    case 'pruned':
      setStatus(m.message, m.ok ? 'info' : 'error');
      if (result) pruneBtn.disabled = result.refused || result.emptied.length > 0 || settings.percent === 0;
      break;
  }
});

post({ type: 'ready' });
