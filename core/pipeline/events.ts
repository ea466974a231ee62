// Events of long-running tasks (train, sparsity-train, fine-tune, prune, quantize, evaluate), one JSON
// object per line on the wire (`--json`). The CLI draws a progress bar from them; the extension's
// dashboard plots them. Every event names its task and carries a wall-clock timestamp.

export type TaskKind = 'train' | 'sparsity' | 'finetune' | 'prune' | 'quantize' | 'distill' | 'evaluate' | 'export' | 'bench' | string;

interface EventBase {
  /** Task kind (what is running). */
  task: TaskKind;
  /** Milliseconds since the Unix epoch. */
  time: number;
}

/** The task started: what it runs on and how long it will be. */
export interface StartEvent extends EventBase {
  type: 'start';
  /** Units of work in all (iterations for training). */
  total: number;
  /** Free-form facts worth showing (backend, model, dataset sizes, batch, ...). */
  info: Record<string, string | number | boolean>;
}

/** Progress within the task; `total` units in all. */
export interface ProgressEvent extends EventBase {
  type: 'progress';
  done: number;
  total: number;
  /** Training: epoch (1-based, fractional within an epoch). */
  epoch?: number;
  /** Seconds left, estimated. */
  eta?: number;
  /** Throughput (images/s for training and evaluation). */
  rate?: number;
  message?: string;
}

/** Scalar measurements at one point (training: loss parts and learning rate at an iteration). */
export interface MetricsEvent extends EventBase {
  type: 'metrics';
  /** Iteration (or step) the values belong to. */
  step: number;
  epoch?: number;
  values: Record<string, number>;
}

/** Histogram of |γ| of the prunable BN scales (sparsity training watches it). */
export interface GammaEvent extends EventBase {
  type: 'gamma';
  step: number;
  epoch?: number;
  /** Bin edges (length bins+1) over |γ|, and counts per bin. */
  edges: number[];
  counts: number[];
  /** Fraction of |γ| below 0.01, and the count of γ. */
  sparsity: number;
  count: number;
  /** The λ in force (after the schedule). */
  lambda?: number;
}

/** An evaluation result (mAP@0.5 on the validation set, or other named metrics). */
export interface EvalEvent extends EventBase {
  type: 'eval';
  step: number;
  epoch?: number;
  /** mAP at IoU 0.5, 0..1. */
  map?: number;
  values: Record<string, number>;
  best?: boolean;
}

/** A file was written completely (renamed into place). */
export interface CheckpointEvent extends EventBase {
  type: 'checkpoint';
  step: number;
  epoch?: number;
  /** 'last', 'best', 'final', or another role. */
  kind: string;
  path: string;
}

/** Something worth telling the user that is not a failure. */
export interface LogEvent extends EventBase {
  type: 'log';
  level: 'info' | 'warning';
  message: string;
}

/** The task ended normally or was cancelled (nothing half-written is left either way). */
export interface DoneEvent extends EventBase {
  type: 'done';
  cancelled: boolean;
  /** Seconds the task ran. */
  seconds: number;
  /** Output files by role. */
  outputs: Record<string, string>;
  summary: Record<string, number | string | boolean>;
}

export interface ErrorEvent extends EventBase {
  type: 'error';
  message: string;
}

export type TaskEvent = StartEvent | ProgressEvent | MetricsEvent | GammaEvent | EvalEvent | CheckpointEvent | LogEvent | DoneEvent | ErrorEvent;

export type EventSink = (event: TaskEvent) => void;

type Distribute<T> = T extends TaskEvent ? Omit<T, 'task' | 'time'> : never;
export type EventPayload = Distribute<TaskEvent>;

/** An emitter bound to one task: fills in `task` and `time`. */
export function emitterFor(task: TaskKind, sink: EventSink | undefined): (e: EventPayload) => void {
  return (e) => {
    if (sink) sink({ task, time: Date.now(), ...e } as TaskEvent);
  };
}

/** One event as a JSON line (bigints as strings, non-finite numbers as null). */
export function eventToJsonLine(e: TaskEvent): string {
  return JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? v.toString() : typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n';
}

export function parseEventLine(line: string): TaskEvent | undefined {
  const s = line.trim();
  if (!s.startsWith('{')) return undefined;
  try {
    const e = JSON.parse(s) as TaskEvent;
    return typeof e === 'object' && e && typeof e.type === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}
