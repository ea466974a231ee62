// The compression report panel: one per report.json, refreshed when the file changes, restored
// after a reload (the webview keeps the path in its state).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { ReportFromWebview, ReportToWebview } from '../../webview/protocol';
import { panelHtml, panelOptions } from './html';

export const REPORT_VIEW = 'darkslim.report';

export class ReportPanel {
  private static readonly panels = new Map<string, ReportPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  static show(extensionUri: vscode.Uri, path: string, column = vscode.ViewColumn.Beside): ReportPanel {
    const existing = ReportPanel.panels.get(path);
    if (existing) {
      existing.panel.reveal(column, true);
      void existing.load();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(REPORT_VIEW, `Report: ${basename(path)}`, { viewColumn: column, preserveFocus: true }, panelOptions(extensionUri));
    return new ReportPanel(panel, extensionUri, path);
  }

  static serializer(extensionUri: vscode.Uri): vscode.WebviewPanelSerializer<{ path?: string }> {
    return {
      async deserializeWebviewPanel(panel, state) {
        if (!state?.path) { panel.dispose(); return; }
        panel.webview.options = panelOptions(extensionUri);
        new ReportPanel(panel, extensionUri, state.path);
      },
    };
  }

  private constructor(readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, readonly path: string) {
    ReportPanel.panels.set(path, this);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'darkslim.svg');
    panel.webview.html = panelHtml(panel.webview, extensionUri, 'report', `Report ${basename(path)}`);
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path), '*'));
    const reload = () => void this.load();
    this.disposables.push(
      watcher, watcher.onDidChange(reload), watcher.onDidCreate(reload),
      panel.webview.onDidReceiveMessage((m: ReportFromWebview) => {
        if (m.type === 'ready') void this.load();
        else if (m.type === 'open') void vscode.commands.executeCommand('vscode.open', vscode.Uri.file(m.path));
      }),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  private post(m: ReportToWebview): void {
    void this.panel.webview.postMessage(m);
  }

  async load(): Promise<void> {
    try {
      const json = JSON.parse(await readFile(this.path, 'utf8')) as unknown;
      this.post({ type: 'report', path: this.path, json });
    } catch (e) {
      this.post({ type: 'error', path: this.path, message: `Cannot read ${this.path}: ${(e as Error).message}` });
    }
  }

  private dispose(): void {
    ReportPanel.panels.delete(this.path);
    for (const d of this.disposables) d.dispose();
  }
}
