// Splits a byte stream into lines (a chunk may end mid-line, or hold many lines) and parses task
// events from them. Pure: used by the worker process manager and tested without VS Code.
import { parseEventLine, type TaskEvent } from '../../core/pipeline/events';

export class LineSplitter {
  private rest = '';

  /** Feeds a chunk; returns the complete lines it finished (without their terminators). */
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }

  /** The unterminated last line, if any (at end of stream). */
  flush(): string[] {
    const r = this.rest;
    this.rest = '';
    return r ? [r] : [];
  }
}

export type ParsedLine = { event: TaskEvent } | { text: string };

/** A line of worker output: a task event, or plain text (anything else a library printed). */
export function parseWorkerLine(line: string): ParsedLine | undefined {
  if (!line.trim()) return undefined;
  const event = parseEventLine(line);
  return event ? { event } : { text: line };
}
