// One task in a worker process (dist/worker.js, forked), speaking JSON lines over stdio: the
// request goes to its stdin, task events come back on its stdout. Cancelling sends a cancel line,
// then SIGTERM after a grace period, then SIGKILL. No vscode import (tested with node:test).
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';
import type { DoneEvent, TaskEvent } from '../../core/pipeline/events';
import type { TaskRequest } from '../../core/pipeline/tasks';
import { LineSplitter, parseWorkerLine } from './lines';

export interface WorkerOptions {
  /** The worker script (dist/worker.js). */
  workerPath: string;
  /** Node flags for the worker (tests run the TypeScript source with ['--import', 'tsx']). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** After a cancel line, how long to wait before SIGTERM. Default 5 s. */
  graceMs?: number;
  /** After SIGTERM, how long to wait before SIGKILL. Default 3 s. */
  killMs?: number;
  /** Keep at most this much of stderr (for failure messages). Default 64 KiB. */
  stderrLimit?: number;
}

export interface WorkerOutcome {
  status: 'done' | 'cancelled' | 'failed';
  done?: DoneEvent;
  /** The task's error message (the core's), or why the worker died. */
  error?: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export class WorkerProcess {
  private child: ChildProcess | undefined;
  private cancelRequested = false;
  private timers: ReturnType<typeof setTimeout>[] = [];
  private readonly eventListeners: ((e: TaskEvent) => void)[] = [];
  private readonly textListeners: ((line: string, stream: 'stdout' | 'stderr') => void)[] = [];

  constructor(readonly request: TaskRequest, private readonly opts: WorkerOptions) {}

  onEvent(listener: (e: TaskEvent) => void): void {
    this.eventListeners.push(listener);
  }

  /** Lines that are not events (stdout) and every stderr line. */
  onText(listener: (line: string, stream: 'stdout' | 'stderr') => void): void {
    this.textListeners.push(listener);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(signal?: AbortSignal): Promise<WorkerOutcome> {
    return new Promise<WorkerOutcome>((resolve) => {
      const options: ForkOptions = {
        stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
        execArgv: this.opts.execArgv ?? [],
        cwd: this.opts.cwd,
        // VS Code's extension host runs on Electron: the child must run as plain node
        env: { ...process.env, ...this.opts.env, ELECTRON_RUN_AS_NODE: '1' },
      };
      let child: ChildProcess;
      try {
        child = fork(this.opts.workerPath, [], options);
      } catch (e) {
        resolve({ status: 'failed', error: `cannot start the task worker: ${(e as Error).message}`, exitCode: null, signal: null, stderr: '' });
        return;
      }
      this.child = child;
      let done: DoneEvent | undefined;
      let error: string | undefined;
      let stderr = '';
      const limit = this.opts.stderrLimit ?? 64 * 1024;
      const out = new LineSplitter();
      const err = new LineSplitter();
      const handleOut = (line: string) => {
        const parsed = parseWorkerLine(line);
        if (!parsed) return;
        if ('event' in parsed) {
          const e = parsed.event;
          if (e.type === 'done') done = e;
          if (e.type === 'error' && error === undefined) error = e.message;
          for (const l of this.eventListeners) l(e);
        } else {
          for (const l of this.textListeners) l(parsed.text, 'stdout');
        }
      };
      const handleErr = (line: string) => {
        stderr = (stderr + line + '\n').slice(-limit);
        for (const l of this.textListeners) l(line, 'stderr');
      };
      child.stdout!.setEncoding('utf8');
      child.stderr!.setEncoding('utf8');
      child.stdout!.on('data', (d: string) => out.push(d).forEach(handleOut));
      child.stderr!.on('data', (d: string) => err.push(d).forEach(handleErr));
      child.stdin!.on('error', () => { /* the worker exited first; the exit handler reports it */ });
      child.on('error', (e) => { if (error === undefined) error = `task worker: ${e.message}`; });
      let settled = false;
      const onAbort = () => this.cancel();
      child.on('close', (code, sig) => {
        if (settled) return;
        settled = true;
        out.flush().forEach(handleOut);
        err.flush().forEach(handleErr);
        for (const t of this.timers) clearTimeout(t);
        this.timers = [];
        signal?.removeEventListener('abort', onAbort);
        let status: WorkerOutcome['status'];
        if (error !== undefined) status = 'failed';
        else if (done) status = done.cancelled ? 'cancelled' : 'done';
        else if (this.cancelRequested) status = 'cancelled';
        else {
          status = 'failed';
          const last = stderr.trim().split('\n').filter((l) => l.trim()).slice(-3).join('\n');
          error = `the task worker ended without a result (${sig ? `signal ${sig}` : `exit code ${code}`})${last ? `: ${last}` : ''}`;
        }
        resolve({ status, done, error, exitCode: code, signal: sig, stderr });
      });
      child.stdin!.write(JSON.stringify(this.request) + '\n');
      if (signal) {
        if (signal.aborted) this.cancel();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  /** Asks the task to stop; escalates to SIGTERM, then SIGKILL. */
  cancel(): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || this.cancelRequested) return;
    this.cancelRequested = true;
    try { child.stdin?.write('{"type":"cancel"}\n'); } catch { /* closed */ }
    const grace = this.opts.graceMs ?? 5000;
    const kill = this.opts.killMs ?? 3000;
    this.timers.push(setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      this.timers.push(setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, kill));
    }, grace));
  }
}
