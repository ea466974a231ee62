// The active model in the status bar: layers, params, BFLOPs and problems, from the server's
// analysis (darkslim/modelSummary), refreshed when the editor or its diagnostics change.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { MODEL_SUMMARY_REQUEST, type ModelSummary, type ModelSummaryParams } from '../server/protocol';

function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

export function statusText(s: ModelSummary): string {
  const problems = s.errors ? `$(error) ${s.errors}` : s.warnings ? `$(warning) ${s.warnings}` : '$(check)';
  return `$(layers) ${s.layers} layers · ${compact(s.params)} params · ${s.bflops.toFixed(3)} BFLOPs · ${problems}`;
}

export function statusTooltip(s: ModelSummary): string {
  const lines = [
    `Input ${s.input.join('×')}, ${s.layers} layers`,
    `${s.params.toLocaleString('en-US')} parameters, ${s.bflops.toFixed(3)} BFLOPs`,
    `${s.errors} error(s), ${s.warnings} warning(s)`,
  ];
  if (s.weights) lines.push(`Weights: ${s.weights.path} (${s.weights.ok ? 'fit' : 'MISMATCH'})`);
  return lines.join('\n');
}

export class ModelStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('darkslim.model', vscode.StatusBarAlignment.Left, 100);
  private readonly disposables: vscode.Disposable[] = [this.item];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Answers can come back out of order; only the latest refresh may update the item. */
  private generation = 0;

  constructor(private readonly client: LanguageClient) {
    this.item.name = 'Darkslim model';
    this.item.command = 'workbench.actions.view.problems';
    this.disposables.push(
      vscode.window.onDidChangeActiveTextEditor(() => this.schedule(0)),
      vscode.workspace.onDidOpenTextDocument(() => this.schedule(0)), // a language switch reopens the document
      vscode.languages.onDidChangeDiagnostics((e) => {
        const active = vscode.window.activeTextEditor?.document.uri.toString();
        if (active && e.uris.some((u) => u.toString() === active)) this.schedule(50);
      }),
    );
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), ms);
  }

  private async refresh(): Promise<void> {
    const generation = ++this.generation;
    const doc = vscode.window.activeTextEditor?.document;
    if (!doc || doc.languageId !== 'darknet') {
      this.item.hide();
      return;
    }
    const params: ModelSummaryParams = { uri: this.client.code2ProtocolConverter.asUri(doc.uri) };
    const summary = await this.client.sendRequest<ModelSummary | null>(MODEL_SUMMARY_REQUEST, params).catch(() => null);
    if (generation !== this.generation) return;
    if (!summary) {
      this.item.hide();
      return;
    }
    this.item.text = statusText(summary);
    this.item.tooltip = statusTooltip(summary);
    this.item.backgroundColor = summary.errors ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
