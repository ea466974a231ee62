#!/usr/bin/env node
// The darkslim command: each subcommand is a thin shell around core/ in cli/commands/.
import { UsageError } from './args';
import type { Command } from './command';
import { inspectCommand } from './commands/inspect';
import { trainCommand } from './commands/train';
import { pruneCommand } from './commands/prune';
import { lspCommand } from './commands/lsp';
import { exportCommand } from './commands/export';
import { detectCommand } from './commands/detect';
import { mapCommand } from './commands/map';
import { benchCommand } from './commands/bench';
import { quantizeCommand } from './commands/quantize';
import { demoCommand } from './commands/demo';
import { studyCommand } from './commands/study';
import { distillCommand } from './commands/distill';
// (more commands are registered below)

const commands: Command[] = [
  inspectCommand,
  trainCommand,
  distillCommand,
  pruneCommand,
  lspCommand,
  exportCommand,
  detectCommand,
  mapCommand,
  benchCommand,
  quantizeCommand,
  demoCommand,
  studyCommand,
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'darkslim: Darknet YOLO validation and compression',
    '',
    'Usage: darkslim <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `darkslim <command> --help` for a command\'s options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('darkslim 0.1.0\n');
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`darkslim: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`darkslim ${name}: ${e.message}\n\n${command.usage}\n`);
      return 2;
    }
    // Clear messages, not stack traces: core errors name the file, line or layer.
    process.stderr.write(`darkslim ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.DARKSLIM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
