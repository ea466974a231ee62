// The layer redundancy panel: one per model. Its data (per-layer |γ|, channel groups, costs) is
// computed by the worker (task "redundancy") into a cache file keyed by the cfg and weights; the
// slider preview then runs in the webview. "Prune with these settings" saves a .prune.yaml and
// runs the prune task from it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import * as vscode from 'vscode';
import { pruneYaml, type PreviewSettings, type RedundancyData } from '../../core/pipeline/preview';
import type { RedundancyFromWebview, RedundancyState, RedundancyToWebview } from '../../webview/protocol';
import type { TaskRunner } from '../taskRunner';
import type { AnswerMemory } from '../tasks/requests';
import { panelHtml, panelOptions } from './html';

export const REDUNDANCY_VIEW = 'darkslim.redundancy';

export interface RedundancyHost {
  extensionUri: vscode.Uri;
  storage: vscode.Uri;
  runner: TaskRunner;
  memory: AnswerMemory;
  /** Runs the prune task from a .prune.yaml and opens its results; resolves with a message. */
  pruneFromConfig(cfg: string, config: string): Promise<{ ok: boolean; message: string }>;
  /** Frame times reported by the webview (performance log). */
  onFrames?(cfg: string, frames: number[]): void;
}

function cacheKey(cfg: string, weights: string): string {
  const st = (p: string) => { try { const s = statSync(p); return `${s.size}:${s.mtimeMs}`; } catch { return 'missing'; } };
  return createHash('sha1').update(`${cfg}\n${weights}\n${st(cfg)}\n${st(weights)}\nv1`).digest('hex').slice(0, 20);
}

export class RedundancyPanel {
  private static readonly panels = new Map<string, RedundancyPanel>();
  private readonly disposables: vscode.Disposable[] = [];
  private data: RedundancyData | undefined;
  private ready = false;
  private loading: Promise<void> | undefined;

  static show(host: RedundancyHost, cfg: string, weights: string): RedundancyPanel {
    const existing = RedundancyPanel.panels.get(cfg);
    if (existing && existing.weights === weights) {
      existing.panel.reveal(undefined, false);
      void existing.load();
      return existing;
    }
    existing?.panel.dispose();
    const panel = vscode.window.createWebviewPanel(REDUNDANCY_VIEW, `Redundancy: ${basename(cfg)}`, vscode.ViewColumn.Beside, panelOptions(host.extensionUri));
    return new RedundancyPanel(panel, host, cfg, weights);
  }

  static serializer(host: RedundancyHost): vscode.WebviewPanelSerializer<RedundancyState> {
    return {
      async deserializeWebviewPanel(panel, state) {
        if (!state?.cfg || !state.weights || !existsSync(state.cfg) || !existsSync(state.weights)) { panel.dispose(); return; }
        panel.webview.options = panelOptions(host.extensionUri);
        new RedundancyPanel(panel, host, state.cfg, state.weights, state.settings);
      },
    };
  }

  private constructor(readonly panel: vscode.WebviewPanel, private readonly host: RedundancyHost, readonly cfg: string, readonly weights: string, private restored?: PreviewSettings) {
    RedundancyPanel.panels.set(cfg, this);
    panel.iconPath = vscode.Uri.joinPath(host.extensionUri, 'media', 'darkslim.svg');
    panel.webview.html = panelHtml(panel.webview, host.extensionUri, 'redundancy', `Redundancy ${basename(cfg)}`);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: RedundancyFromWebview) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
    );
    void this.load();
  }

  private post(m: RedundancyToWebview): void {
    if (this.ready) void this.panel.webview.postMessage(m);
  }

  private settingsFor(): PreviewSettings | undefined {
    if (this.restored) return this.restored;
    const a = this.host.memory.forModel(this.cfg);
    if (a.percent === undefined && a.strategy === undefined) return undefined;
    return { strategy: a.strategy ?? 'slim', percent: a.percent ?? 0, ...(a.layerKeep ? { layerKeep: a.layerKeep } : {}), ...(a.roundTo ? { roundTo: a.roundTo } : {}) };
  }

  /** Computes (or reads from the cache) the view's data and sends it. */
  load(): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = this.loadInner().finally(() => { this.loading = undefined; });
    return this.loading;
  }

  private async loadInner(): Promise<void> {
    const dir = join(this.host.storage.fsPath, 'redundancy');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${cacheKey(this.cfg, this.weights)}.json`);
    if (!existsSync(file)) {
      this.post({ type: 'busy', message: `Reading ${basename(this.weights)} and the channel groups of ${basename(this.cfg)}…` });
      const outcome = await this.host.runner.run({ kind: 'redundancy', args: { cfg: this.cfg, weights: this.weights, out: file } }, { notify: true });
      if (!outcome || outcome.status !== 'done') {
        const message = outcome?.status === 'cancelled' ? 'Cancelled.' : outcome?.error ?? 'The redundancy task did not run.';
        this.post({ type: 'error', message });
        return;
      }
    }
    try {
      this.data = JSON.parse(await readFile(file, 'utf8')) as RedundancyData;
    } catch (e) {
      this.post({ type: 'error', message: `Cannot read the redundancy data: ${(e as Error).message}` });
      return;
    }
    this.sendData();
  }

  private sendData(): void {
    if (this.data && this.ready) this.post({ type: 'data', data: this.data, settings: this.settingsFor() });
  }

  private async onMessage(m: RedundancyFromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.sendData();
        break;
      case 'reveal': {
        const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(this.cfg));
        const pos = new vscode.Position(m.line, 0);
        await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, selection: new vscode.Range(pos, pos), preserveFocus: false });
        break;
      }
      case 'settings':
        this.restored = m.settings;
        await this.host.memory.remember(this.cfg, { percent: m.settings.percent, strategy: m.settings.strategy, layerKeep: m.settings.layerKeep, roundTo: m.settings.roundTo });
        break;
      case 'perf':
        this.host.onFrames?.(this.cfg, m.frames);
        break;
      case 'prune': {
        const s = m.settings;
        if (!vscode.workspace.isTrusted) {
          this.post({ type: 'pruned', ok: false, message: 'Pruning writes files: trust this workspace first (the preview works without trust).' });
          return;
        }
        await this.host.memory.remember(this.cfg, { percent: s.percent, strategy: s.strategy, layerKeep: s.layerKeep, roundTo: s.roundTo, weights: this.weights });
        const yamlPath = join(dirname(this.cfg), `${basename(this.cfg, extname(this.cfg))}.prune.yaml`);
        const relTo = (p: string) => { const r = relative(dirname(yamlPath), p); return r.startsWith('..') ? p : r; };
        try {
          await writeFile(yamlPath, pruneYaml(s, { model: relTo(this.cfg), weights: relTo(this.weights) }));
        } catch (e) {
          this.post({ type: 'pruned', ok: false, message: `Cannot write ${yamlPath}: ${(e as Error).message}` });
          return;
        }
        const r = await this.host.pruneFromConfig(this.cfg, yamlPath);
        this.post({ type: 'pruned', ok: r.ok, message: r.ok ? `${r.message} Settings saved in ${basename(yamlPath)}.` : r.message });
        break;
      }
    }
  }

  private dispose(): void {
    if (RedundancyPanel.panels.get(this.cfg) === this) RedundancyPanel.panels.delete(this.cfg);
    for (const d of this.disposables) d.dispose();
  }
}
