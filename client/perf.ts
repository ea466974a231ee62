// Performance marks for the issue's figures: activation time, time from opening a cfg to its
// first diagnostics, and the heatmap's frame times. Logged to the "Darkslim Tasks" channel, and
// appended as JSON lines to $DARKSLIM_PERF_LOG when set (the end-to-end tests read it).
import { appendFileSync } from 'node:fs';
import * as vscode from 'vscode';

export class PerfLog implements vscode.Disposable {
  private readonly opened = new Map<string, number>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly output: vscode.OutputChannel) {}

  record(event: string, data: Record<string, unknown>): void {
    const line = { event, time: Date.now(), ...data };
    const file = process.env.DARKSLIM_PERF_LOG;
    if (file) {
      try { appendFileSync(file, JSON.stringify(line) + '\n'); } catch { /* not worth failing for */ }
    }
    this.output.appendLine(`[perf] ${event} ${Object.entries(data).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 100) / 100 : v}`).join(' ')}`);
  }

  /** Times each .cfg from its first open to its first published diagnostics. */
  watchDiagnostics(): void {
    const now = () => performance.now();
    const onOpen = (doc: vscode.TextDocument) => {
      if (!/\.cfg$/i.test(doc.fileName) || doc.uri.scheme !== 'file') return;
      const key = doc.uri.toString();
      if (!this.opened.has(key)) this.opened.set(key, now());
    };
    vscode.workspace.textDocuments.forEach(onOpen);
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument(onOpen),
      vscode.languages.onDidChangeDiagnostics((e) => {
        for (const uri of e.uris) {
          const key = uri.toString();
          const t = this.opened.get(key);
          if (t === undefined || t < 0) continue;
          this.opened.set(key, -1);
          this.record('firstDiagnostics', { file: uri.fsPath, ms: now() - t, count: vscode.languages.getDiagnostics(uri).length });
        }
      }),
    );
  }

  frames(cfg: string, frames: number[]): void {
    if (!frames.length) return;
    const s = [...frames].sort((a, b) => a - b);
    const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
    this.record('heatmapFrames', { file: cfg, frames: s.length, medianMs: q(0.5), p95Ms: q(0.95), maxMs: s[s.length - 1] });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
