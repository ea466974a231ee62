// Runs tasks in worker processes, never in the extension host: a queue (one task at a time by
// default), a cancellable progress notification per task, the "Darkslim Tasks" Output channel,
// and a status bar item while anything runs or waits. Failures show the core's message.
import * as vscode from 'vscode';
import type { TaskEvent } from '../core/pipeline/events';
import type { TaskRequest } from '../core/pipeline/tasks';
import { eventLogLine, progressMessage, statusBarText } from './tasks/format';
import { TaskQueue, type TaskEntry } from './tasks/queue';
import { needsTrust, taskKey, taskTitle } from './tasks/requests';
import { WorkerProcess, type WorkerOutcome } from './tasks/workerProcess';

export interface RunOptions {
  /** Called with every event of the task (the training dashboard listens). */
  onEvent?: (e: TaskEvent) => void;
  /** Called when the task starts running (after waiting in the queue). */
  onStart?: (entry: TaskEntry) => void;
  /** Show the progress notification (default true). */
  notify?: boolean;
}

export type TaskOutcome = WorkerOutcome | { status: 'cancelled'; done?: undefined; error?: undefined };

export class TaskRunner implements vscode.Disposable {
  readonly queue = new TaskQueue<WorkerOutcome>();
  private readonly status = vscode.window.createStatusBarItem('darkslim.tasks', vscode.StatusBarAlignment.Left, 99);
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly workerPath: string, readonly output: vscode.OutputChannel, concurrency = 1) {
    this.queue.setConcurrency(concurrency);
    this.status.name = 'Darkslim tasks';
    this.status.command = 'darkslim.showTasks';
    this.disposables.push(this.status, { dispose: this.queue.onDidChange(() => this.refreshStatus()).dispose });
  }

  setConcurrency(n: number): void {
    this.queue.setConcurrency(n);
  }

  private refreshStatus(): void {
    const entries = this.queue.list();
    const text = statusBarText(entries);
    if (!text) { this.status.hide(); return; }
    this.status.text = text;
    this.status.tooltip = entries.map((e) => `${e.state === 'running' ? '▶' : '…'} ${e.label}${e.message ? `: ${e.message}` : ''}`).join('\n') + '\n\nClick to see or cancel tasks.';
    this.status.show();
  }

  private log(label: string, line: string): void {
    const time = new Date().toLocaleTimeString();
    for (const l of line.split('\n')) this.output.appendLine(`[${time}] ${label}: ${l}`);
  }

  /** Runs a task through the queue; resolves when it ends (undefined when it was refused). */
  async run(req: TaskRequest, opts: RunOptions = {}): Promise<TaskOutcome | undefined> {
    const title = taskTitle(req);
    if (needsTrust(req.kind) && !vscode.workspace.isTrusted) {
      const manage = 'Manage Workspace Trust';
      const pick = await vscode.window.showWarningMessage(`Darkslim: "${title}" writes files or trains, which needs a trusted workspace. Validation and previews work without trust.`, manage);
      if (pick === manage) void vscode.commands.executeCommand('workbench.trust.manage');
      return undefined;
    }
    const key = taskKey(req);
    const existing = this.queue.find(key);
    if (existing) {
      void vscode.window.showInformationMessage(`Darkslim: "${title}" is already ${existing.state === 'running' ? 'running' : 'queued'}.`);
      return undefined;
    }
    let worker: WorkerProcess | undefined;
    let progressReport: ((m: string, increment?: number) => void) | undefined;
    let lastFraction = 0;
    let lastProgressLog = 0;
    const { entry, outcome } = this.queue.enqueue(title, key, async (signal, e) => {
      this.log(title, `running in a worker process${this.queue.size > 1 ? ` (${this.queue.size - 1} more waiting)` : ''}`);
      opts.onStart?.(e);
      const w = new WorkerProcess(req, { workerPath: this.workerPath, graceMs: req.kind === 'train' || req.kind === 'finetune' || req.kind === 'distill' ? 15000 : 4000 });
      worker = w;
      w.onEvent((ev) => {
        opts.onEvent?.(ev);
        if (ev.type === 'progress') {
          const fraction = ev.total > 0 ? Math.min(1, ev.done / ev.total) : undefined;
          const message = progressMessage(ev);
          this.queue.report(e.id, { message, fraction });
          if (progressReport) {
            const inc = fraction !== undefined ? Math.max(0, (fraction - lastFraction) * 100) : undefined;
            if (fraction !== undefined) lastFraction = fraction;
            progressReport(message ?? '', inc);
          }
          // progress lines: every message change, at most one per 5 s otherwise
          const now = Date.now();
          if (ev.message && (ev.total <= 10 || now - lastProgressLog > 5000)) {
            lastProgressLog = now;
            const line = eventLogLine(ev);
            if (line) this.log(title, line);
          }
          return;
        }
        const line = eventLogLine(ev);
        if (line) this.log(title, line);
      });
      w.onText((line, stream) => { if (line.trim()) this.log(title, `${stream === 'stderr' ? '(stderr) ' : ''}${line}`); });
      return w.run(signal);
    }, (r) => r.status);

    if (opts.notify !== false) {
      void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Darkslim: ${title}`, cancellable: true }, (progress, token) => {
        progressReport = (message, increment) => progress.report({ message, increment });
        if (entry.state === 'queued') progress.report({ message: 'waiting for the running task to finish…' });
        token.onCancellationRequested(() => {
          this.log(title, 'cancelling…');
          this.queue.cancel(entry.id);
        });
        return outcome;
      });
    }
    const o = await outcome;
    void worker;
    if (o.state === 'cancelled' && !o.result) {
      this.log(title, 'cancelled');
      return { status: 'cancelled' };
    }
    if (o.error !== undefined || !o.result) {
      const message = o.error instanceof Error ? o.error.message : String(o.error ?? 'no result');
      this.log(title, `error: ${message}`);
      void this.showFailure(title, message);
      return { status: 'failed', error: message, exitCode: null, signal: null, stderr: '' };
    }
    const r = o.result;
    if (r.status === 'failed') void this.showFailure(title, r.error ?? 'the task failed');
    else if (r.status === 'cancelled') this.log(title, 'cancelled');
    return r;
  }

  private async showFailure(title: string, message: string): Promise<void> {
    const show = 'Show Log';
    const pick = await vscode.window.showErrorMessage(`Darkslim: ${title} failed: ${message}`, show);
    if (pick === show) this.output.show(true);
  }

  /** A quick pick of running and waiting tasks; picking one offers to cancel it. */
  async showTasks(): Promise<void> {
    const entries = this.queue.list();
    if (!entries.length) {
      const log = 'Show Log';
      if (await vscode.window.showInformationMessage('Darkslim: no task is running.', log) === log) this.output.show(true);
      return;
    }
    type Item = vscode.QuickPickItem & { entry?: TaskEntry; all?: boolean; log?: boolean };
    const items: Item[] = entries.map((e) => ({
      label: `${e.state === 'running' ? '$(sync~spin)' : '$(clock)'} ${e.label}`,
      description: e.state === 'running' ? (e.fraction !== undefined ? `${Math.round(e.fraction * 100)}%` : 'running') : 'queued',
      detail: e.message,
      entry: e,
    }));
    items.push({ label: '$(close-all) Cancel all tasks', all: true }, { label: '$(output) Show the task log', log: true });
    const pick = await vscode.window.showQuickPick(items, { title: 'Darkslim tasks', placeHolder: 'Pick a task to cancel it' });
    if (!pick) return;
    if (pick.log) { this.output.show(true); return; }
    if (pick.all) { this.queue.cancelAll(); return; }
    if (pick.entry) {
      const yes = 'Cancel Task';
      if (await vscode.window.showWarningMessage(`Cancel "${pick.entry.label}"?`, { modal: true }, yes) === yes) this.queue.cancel(pick.entry.id);
    }
  }

  dispose(): void {
    this.queue.cancelAll();
    for (const d of this.disposables) d.dispose();
  }
}
