import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startServer } from '../../server/server';
import { parseArgs, UsageError } from '../args';
import type { Command } from '../command';

export const lspCommand: Command = {
  name: 'lsp',
  summary: 'Run the Darknet cfg language server (for Neovim, Helix, Emacs…: --stdio)',
  usage: 'Usage: darkslim lsp --stdio | --node-ipc | --socket=PORT [--clientProcessId=PID]\n\n'
    + 'Speaks the Language Server Protocol for Darknet .cfg files: diagnostics (with the .weights\n'
    + 'check), hover, inlay hints, code lens, go to definition, references, symbols, completion and\n'
    + 'quick fixes. Editors start it with --stdio; the VS Code extension runs the same server.\n'
    + 'Setting (workspace/configuration or initializationOptions): darkslim.weightsPath.',
  async run(argv) {
    const args = parseArgs(argv, { booleans: ['stdio', 'node-ipc'], values: ['socket', 'clientProcessId'] });
    if (args.positional.length) throw new UsageError(`unexpected argument "${args.positional[0]}"`);
    if (!args.flags.has('stdio') && !args.flags.has('node-ipc') && !args.flags.has('socket')) {
      throw new UsageError('choose a transport: --stdio (editors), --node-ipc or --socket=PORT');
    }
    // vscode-languageserver reads the transport from process.argv (the same flags), patches console
    // so nothing but protocol reaches stdout, and exits the process on `exit` or when stdin closes.
    startServer(createConnection(ProposedFeatures.all));
    return new Promise<number>(() => {});
  },
};
