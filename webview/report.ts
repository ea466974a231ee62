// Compression report panel: the stage table (params, size, BFLOPs, latency, mAP) with a bar in
// every cell and the change against the first stage, from a report.json.
import type { ReportFromWebview, ReportToWebview } from './protocol';
import { barFraction, changeText, formatCell, reportModel, type ReportModel } from './reportModel';
import { $, vscodeApi } from './vscode';

interface SavedState { path: string }
const vscode = vscodeApi<SavedState, ReportFromWebview>();

document.body.innerHTML = `
<header class="bar"><h1 id="title">Compression report</h1><span id="subtitle" class="muted"></span></header>
<div id="status" class="status" role="status">Loading…</div>
<table id="stages" class="report" hidden><thead></thead><tbody></tbody></table>
<ul id="notes" class="notes"></ul>
<div id="files" class="files"></div>
<details id="layers-box" hidden><summary>Pruned layers</summary><table id="layers" class="layers"><thead><tr><th>layer</th><th>channels</th></tr></thead><tbody></tbody></table></details>`;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function render(path: string, m: ReportModel): void {
  $('title').textContent = m.title;
  $('subtitle').textContent = path;
  $('status').hidden = true;
  const table = $('stages') as HTMLTableElement;
  table.hidden = false;
  const head = el('tr');
  head.append(el('th', 'stage'), ...m.columns.map((c) => el('th', c.label)));
  table.tHead!.replaceChildren(head);
  table.tBodies[0].replaceChildren(...m.stages.map((s) => {
    const tr = el('tr');
    tr.append(el('th', s.name));
    for (const c of m.columns) {
      const td = el('td', undefined, 'cell');
      const bar = el('div', undefined, `cellbar ${c.better}`);
      bar.style.width = `${(barFraction(m, s, c.key) * 100).toFixed(1)}%`;
      const value = el('span', formatCell(c.key, s[c.key]), 'value');
      td.append(bar, value);
      const ch = changeText(m, s, c.key);
      if (ch) {
        const good = c.better === 'lower' ? ch.startsWith('−') : ch.startsWith('+');
        td.append(el('span', ch, `change ${good ? 'good' : 'bad'}`));
      }
      tr.append(td);
    }
    return tr;
  }));
  $('notes').replaceChildren(...m.notes.map((n) => el('li', n)));
  $('files').replaceChildren(...m.files.map((f) => {
    const a = el('a', `${f.label}: ${f.path}`);
    a.href = '#';
    a.addEventListener('click', (e) => { e.preventDefault(); vscode.postMessage({ type: 'open', path: f.path }); });
    return a;
  }));
  const box = $('layers-box') as HTMLDetailsElement;
  if (m.layers?.length) {
    box.hidden = false;
    ($('layers') as HTMLTableElement).tBodies[0].replaceChildren(...m.layers.map((l) => {
      const tr = el('tr');
      tr.append(el('td', `L${l.index}`), el('td', l.removed ? `${l.before} → removed` : `${l.before} → ${l.after}`));
      return tr;
    }));
  } else box.hidden = true;
  document.body.dataset.stages = String(m.stages.length);
}

window.addEventListener('message', (e: MessageEvent<ReportToWebview>) => {
  const msg = e.data;
  vscode.setState({ path: msg.path });
  if (msg.type === 'error') {
    $('status').hidden = false;
    $('status').textContent = msg.message;
    $('status').classList.add('error');
    return;
  }
  try {
    render(msg.path, reportModel(msg.json, msg.path));
  } catch (err) {
    $('status').hidden = false;
    $('status').textContent = (err as Error).message;
    $('status').classList.add('error');
  }
});
vscode.postMessage({ type: 'ready' });
