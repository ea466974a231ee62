// The training dashboard panel: one panel; the runner feeds it the events of the training task
// (batched, a few messages a second). It keeps the latest run's events so a panel opened or
// restored later draws the whole run.
import * as vscode from 'vscode';
import type { TaskEvent } from '../../core/pipeline/events';
import type { DashboardFromWebview, DashboardRun, DashboardToWebview } from '../../webview/protocol';
import { panelHtml, panelOptions } from './html';

export const DASHBOARD_VIEW = 'darkslim.dashboard';
const MAX_EVENTS = 20000;

export class DashboardHub {
  private panel: vscode.WebviewPanel | undefined;
  private run: DashboardRun | undefined;
  private events: TaskEvent[] = [];
  private pending: TaskEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ready = false;

  constructor(private readonly extensionUri: vscode.Uri) {}

  serializer(): vscode.WebviewPanelSerializer {
    return {
      deserializeWebviewPanel: async (panel) => {
        panel.webview.options = panelOptions(this.extensionUri);
        this.attach(panel);
      },
    };
  }

  show(preserveFocus = false): void {
    if (this.panel) { this.panel.reveal(undefined, preserveFocus); return; }
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW, 'Darkslim: training', { viewColumn: vscode.ViewColumn.Beside, preserveFocus }, panelOptions(this.extensionUri));
    this.attach(panel);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'darkslim.svg');
    panel.webview.html = panelHtml(panel.webview, this.extensionUri, 'dashboard', 'Darkslim training');
    panel.webview.onDidReceiveMessage((m: DashboardFromWebview) => {
      if (m.type === 'ready') {
        this.ready = true;
        // a restored panel keeps its own state unless this window saw a run
        if (this.run) this.post({ type: 'run', run: this.run, events: this.events });
      }
    });
    panel.onDidDispose(() => { if (this.panel === panel) { this.panel = undefined; this.ready = false; } });
  }

  private post(m: DashboardToWebview): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(m);
  }

  /** A new training run: the dashboard starts over. */
  startRun(run: DashboardRun): void {
    this.run = run;
    this.events = [];
    this.pending = [];
    this.post({ type: 'run', run, events: [] });
  }

  push(runId: string, e: TaskEvent): void {
    if (!this.run || this.run.id !== runId) return;
    this.events.push(e);
    if (this.events.length > MAX_EVENTS) {
      // keep everything but thin the per-iteration metrics of the older half
      const half = this.events.length >> 1;
      this.events = this.events.filter((ev, i) => i >= half || ev.type !== 'metrics' || i % 2 === 0);
    }
    this.pending.push(e);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        const batch = this.pending;
        this.pending = [];
        if (batch.length) this.post({ type: 'events', runId, events: batch });
      }, 250);
    }
  }
}
