// The task worker: a separate process that runs one long task (prune, export, quantize, map, bench,
// detect, train, fine-tune, redundancy) so that none of it runs in VS Code's extension host.
//
// Protocol (JSON lines): the first line on stdin is the request {"kind", "args"} (see tasks.ts);
// a later {"type":"cancel"} line asks the task to stop (training stops after the current
// iteration; files are written atomically, so nothing half-written is left). Every line on stdout
// is a task event (core/pipeline/events.ts): start, progress, metrics, gamma, eval, checkpoint,
// log, done, error. Exit code 0 done, 1 error, 130 cancelled. Without a cancel line, SIGTERM ends
// the process at once (the client sends it after a grace period). No vscode import.
import { eventToJsonLine, type TaskEvent } from './events';
import { errorMessage, parseTaskRequest, runTask, TaskError } from './tasks';

function write(e: TaskEvent): void {
  process.stdout.write(eventToJsonLine(e));
}

function flushAndExit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

export async function workerMain(): Promise<void> {
  // anything a library prints must not corrupt the event stream
  console.log = (...a: unknown[]) => process.stderr.write(a.map(String).join(' ') + '\n');
  console.info = console.log;
  const controller = new AbortController();
  let buffer = '';
  let started = false;
  const onLine = (line: string) => {
    if (!line.trim()) return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      if (!started) {
        started = true;
        write({ type: 'error', task: 'worker', time: Date.now(), message: 'the task request is not valid JSON' });
        flushAndExit(1);
      }
      return;
    }
    if (!started) {
      started = true;
      void start(msg);
    } else if ((msg as { type?: string }).type === 'cancel') {
      controller.abort();
    }
  };
  const start = async (msg: unknown) => {
    let code: number;
    try {
      const req = parseTaskRequest(msg);
      code = await runTask(req, { sink: write, signal: controller.signal });
    } catch (e) {
      write({ type: 'error', task: 'worker', time: Date.now(), message: e instanceof TaskError ? e.message : errorMessage(e) });
      code = 1;
    }
    flushAndExit(code);
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffer += chunk;
    let i: number;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      onLine(line);
    }
  });
  process.stdin.on('end', () => {
    if (buffer.trim()) onLine(buffer);
    buffer = '';
    // the client went away before sending a request: nothing to do
    if (!started) process.exit(2);
  });
  // the client closing its end is a cancellation too
  process.on('disconnect', () => controller.abort());
}

if (require.main === module) void workerMain();
