// Task events as text: lines for the Output channel, the progress notification's message, and
// the status bar item while tasks run. Pure (no vscode).
import type { TaskEvent } from '../../core/pipeline/events';
import type { TaskEntry } from './queue';

function num(v: number | string | boolean): string {
  return typeof v === 'number' ? String(Math.round(v * 1e4) / 1e4) : String(v);
}

/** A line (or lines) for the Output channel; undefined for events not worth a line. */
export function eventLogLine(e: TaskEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `started (${Object.entries(e.info).map(([k, v]) => `${k} ${num(v)}`).join(', ')})`;
    case 'progress':
      return e.message ? `${e.message}${e.total > 1 ? ` (${e.done}/${e.total})` : ''}` : undefined;
    case 'metrics':
      return undefined;
    case 'gamma':
      return `γ: ${(e.sparsity * 100).toFixed(1)}% of ${e.count} below 0.01${e.epoch !== undefined ? ` at epoch ${e.epoch.toFixed(2)}` : ''}${e.lambda !== undefined ? ` (λ ${e.lambda})` : ''}`;
    case 'eval':
      return `evaluation${e.epoch !== undefined ? ` at epoch ${e.epoch.toFixed(2)}` : ''}: ${e.map !== undefined ? `mAP@0.5 ${(e.map * 100).toFixed(2)}%` : ''}${e.best ? ' (best)' : ''}`;
    case 'checkpoint':
      return e.kind === 'last' ? undefined : `wrote ${e.kind}: ${e.path}`;
    case 'log':
      return e.level === 'warning' ? `warning: ${e.message}` : e.message;
    case 'done':
      return `${e.cancelled ? 'cancelled' : 'done'} in ${e.seconds.toFixed(1)} s${Object.keys(e.outputs).length ? `; files: ${Object.entries(e.outputs).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`;
    case 'error':
      return `error: ${e.message}`;
  }
}

/** The progress notification's message for a progress event. */
export function progressMessage(e: TaskEvent): string | undefined {
  if (e.type !== 'progress') return undefined;
  const parts: string[] = [];
  if (e.message) parts.push(e.message);
  if (e.epoch !== undefined) parts.push(`epoch ${e.epoch.toFixed(2)}`);
  if (e.total > 1) parts.push(`${e.done}/${e.total}`);
  if (e.rate) parts.push(`${e.rate.toFixed(1)}/s`);
  if (e.eta !== undefined && Number.isFinite(e.eta)) parts.push(`${Math.round(e.eta)} s left`);
  return parts.join(' · ');
}

/** The status bar's text while tasks run: the running task, its percent and how many wait. */
export function statusBarText(entries: readonly TaskEntry[]): string | undefined {
  const running = entries.filter((e) => e.state === 'running');
  const queued = entries.filter((e) => e.state === 'queued').length;
  if (!running.length && !queued) return undefined;
  const r = running[0];
  const pct = r?.fraction !== undefined ? ` ${Math.round(r.fraction * 100)}%` : '';
  const more = running.length > 1 ? ` +${running.length - 1} running` : '';
  const wait = queued ? ` (+${queued} queued)` : '';
  return `$(sync~spin) ${r ? r.label : 'waiting'}${pct}${more}${wait}`;
}
