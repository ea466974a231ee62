export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code. Throw UsageError for bad arguments, Error for failures. */
  run(argv: string[]): Promise<number>;
}
