// Per-document scheduling of diagnostics. An edit to a document that was quiet is analysed at once
// (on the next turn of the event loop); further edits that follow within `quietMs` are a burst (a
// paste, a macro, a client replaying changes) and are coalesced into one analysis once the burst
// pauses, with a ceiling so a never-ending stream still gets diagnostics now and then. Analysing
// yolov4.cfg takes ~2 ms, so the windows are small.
export interface DebounceOptions {
  /** A change this soon after the previous run, or after the previous change of a burst, waits. */
  quietMs: number;
  /** Never make the first change of a burst wait longer than this. */
  maxWaitMs: number;
}

export const DEFAULT_DEBOUNCE: DebounceOptions = { quietMs: 5, maxWaitMs: 100 };

interface Pending {
  first: number;
  last: number;
  cancel: () => void;
}

export class Debouncer {
  private readonly pending = new Map<string, Pending>();
  private readonly lastRun = new Map<string, number>();

  constructor(private readonly options: DebounceOptions, private readonly run: (key: string) => void) {}

  schedule(key: string): void {
    const now = performance.now();
    const p = this.pending.get(key);
    // Inside a burst only the time is noted: one timer per burst, not one per edit.
    if (p) {
      p.last = now;
      return;
    }
    const entry: Pending = { first: now, last: now, cancel: () => {} };
    this.pending.set(key, entry);
    if (now - (this.lastRun.get(key) ?? -Infinity) >= this.options.quietMs) {
      // Idle: run after the messages already queued, which then join this run.
      const immediate = setImmediate(() => this.finish(key));
      entry.cancel = () => clearImmediate(immediate);
    } else {
      this.arm(key, entry, this.options.quietMs);
    }
  }

  private arm(key: string, entry: Pending, ms: number): void {
    const timer = setTimeout(() => this.fire(key, entry), ms);
    entry.cancel = () => clearTimeout(timer);
  }

  private fire(key: string, entry: Pending): void {
    const due = Math.min(entry.last + this.options.quietMs, entry.first + this.options.maxWaitMs);
    const left = due - performance.now();
    if (left >= 1) this.arm(key, entry, Math.ceil(left));
    else this.finish(key);
  }

  private finish(key: string): void {
    this.pending.delete(key);
    this.lastRun.set(key, performance.now());
    this.run(key);
  }

  cancel(key: string): void {
    this.pending.get(key)?.cancel();
    this.pending.delete(key);
    this.lastRun.delete(key);
  }

  dispose(): void {
    for (const p of this.pending.values()) p.cancel();
    this.pending.clear();
    this.lastRun.clear();
  }
}
