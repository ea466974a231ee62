// A queue of long tasks: at most `concurrency` run at once (one by default, so two tasks never
// write the same files at the same time), the rest wait in order. A task can be cancelled while
// it waits (it never starts) or while it runs (its job sees the abort signal). Pure (no vscode).

export type TaskState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface TaskEntry {
  id: number;
  /** What the user sees ("Prune yolov4.cfg 50%"). */
  label: string;
  /** Identity of the work (kind + inputs): the same key twice is the same task. */
  key: string;
  state: TaskState;
  queuedAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Last progress message and fraction (0–1), for the status bar and the task list. */
  message?: string;
  fraction?: number;
}

export type Job<R> = (signal: AbortSignal, entry: TaskEntry) => Promise<R>;

export interface Outcome<R> {
  state: 'done' | 'failed' | 'cancelled';
  result?: R;
  error?: unknown;
}

interface Slot<R> {
  entry: TaskEntry;
  job: Job<R>;
  controller: AbortController;
  resolve: (o: Outcome<R>) => void;
  /** The job's result says whether it failed or was cancelled. */
  classify?: (r: R) => 'done' | 'failed' | 'cancelled';
}

export class TaskQueue<R = unknown> {
  private nextId = 1;
  private readonly waiting: Slot<R>[] = [];
  private readonly running = new Map<number, Slot<R>>();
  private readonly listeners = new Set<() => void>();

  constructor(private concurrency = 1) {}

  setConcurrency(n: number): void {
    this.concurrency = Math.max(1, Math.floor(n) || 1);
    this.pump();
  }

  /** Adds a task; the promise settles when it ends (never rejects: failures are outcomes). */
  enqueue(label: string, key: string, job: Job<R>, classify?: (r: R) => 'done' | 'failed' | 'cancelled'): { entry: TaskEntry; outcome: Promise<Outcome<R>> } {
    const entry: TaskEntry = { id: this.nextId++, label, key, state: 'queued', queuedAt: Date.now() };
    let resolve!: (o: Outcome<R>) => void;
    const outcome = new Promise<Outcome<R>>((r) => { resolve = r; });
    this.waiting.push({ entry, job, controller: new AbortController(), resolve, classify });
    this.changed();
    this.pump();
    return { entry, outcome };
  }

  /** The queued or running task with this key, if any. */
  find(key: string): TaskEntry | undefined {
    for (const s of this.running.values()) if (s.entry.key === key) return s.entry;
    return this.waiting.find((s) => s.entry.key === key)?.entry;
  }

  /** Cancels a waiting task (it never runs) or signals a running one. */
  cancel(id: number): boolean {
    const i = this.waiting.findIndex((s) => s.entry.id === id);
    if (i >= 0) {
      const [slot] = this.waiting.splice(i, 1);
      slot.entry.state = 'cancelled';
      slot.entry.endedAt = Date.now();
      slot.controller.abort();
      slot.resolve({ state: 'cancelled' });
      this.changed();
      return true;
    }
    const slot = this.running.get(id);
    if (!slot) return false;
    slot.controller.abort();
    return true;
  }

  cancelAll(): void {
    for (const s of [...this.waiting]) this.cancel(s.entry.id);
    for (const id of [...this.running.keys()]) this.cancel(id);
  }

  /** Running tasks first, then the waiting ones in order. */
  list(): TaskEntry[] {
    return [...[...this.running.values()].map((s) => s.entry), ...this.waiting.map((s) => s.entry)];
  }

  get size(): number {
    return this.running.size + this.waiting.length;
  }

  /** Progress of a running task (message and/or fraction). */
  report(id: number, update: { message?: string; fraction?: number }): void {
    const s = this.running.get(id);
    if (!s) return;
    if (update.message !== undefined) s.entry.message = update.message;
    if (update.fraction !== undefined) s.entry.fraction = update.fraction;
    this.changed();
  }

  onDidChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private changed(): void {
    for (const l of [...this.listeners]) {
      try { l(); } catch { /* a listener's failure is not the queue's */ }
    }
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.waiting.length) {
      const slot = this.waiting.shift()!;
      this.running.set(slot.entry.id, slot);
      slot.entry.state = 'running';
      slot.entry.startedAt = Date.now();
      this.changed();
      void this.execute(slot);
    }
  }

  private async execute(slot: Slot<R>): Promise<void> {
    let outcome: Outcome<R>;
    try {
      const result = await slot.job(slot.controller.signal, slot.entry);
      const state = slot.classify ? slot.classify(result) : slot.controller.signal.aborted ? 'cancelled' : 'done';
      outcome = { state, result };
    } catch (error) {
      outcome = { state: slot.controller.signal.aborted ? 'cancelled' : 'failed', error };
    }
    this.running.delete(slot.entry.id);
    slot.entry.state = outcome.state;
    slot.entry.endedAt = Date.now();
    slot.resolve(outcome);
    this.changed();
    this.pump();
  }
}
