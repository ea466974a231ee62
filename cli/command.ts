export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code. Throw UsageError for bad arguments, Error for failures. */
  run(argv: string[]): Promise<number>;
}

/**
 * Ctrl-C / SIGTERM abort `signal` (once, with `message` on stderr) so a long task stops cleanly;
 * call `release()` when the task is over, in a finally.
 */
export function stopOnSignals(message?: string): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (message && !controller.signal.aborted) process.stderr.write(`\n${message}\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
