// The VS Code extension: a thin client. It gives `.cfg` files holding a darknet network the
// `darknet` language, starts the language server (dist/server.js over node IPC) and shows the
// active model in the status bar. Everything else comes from the server.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { isDarknetCfg } from './languageDetection';
import { ModelStatusBar } from './statusBar';

export const LANGUAGE_ID = 'darknet';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(detectDarknetDocuments());

  const serverModule = context.asAbsolutePath(path.join('dist', 'server.js'));
  const serverOptions: ServerOptions = {
    run: { module: serverModule, transport: TransportKind.ipc },
    debug: { module: serverModule, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    // darknet cfgs, and the pruning configs (*.prune.yaml) whose layers and files the server checks
    documentSelector: [{ language: LANGUAGE_ID }, { scheme: 'file', pattern: '**/*.prune.yaml' }],
    // Settings (darkslim.weightsPath) are pulled by the server with workspace/configuration.
  };
  client = new LanguageClient('darkslim', 'Darkslim (Darknet cfg)', serverOptions, clientOptions);
  await client.start();
  context.subscriptions.push(new ModelStatusBar(client));
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

/**
 * Switches `.cfg` documents that hold a darknet network to the `darknet` language when they open
 * (see languageDetection.ts for why this is not done with an extension/firstLine contribution).
 * A document is switched at most once, so a user who picks another language keeps it.
 */
function detectDarknetDocuments(): vscode.Disposable {
  const switched = new Set<string>();
  const check = (doc: vscode.TextDocument) => {
    const key = doc.uri.toString();
    if (doc.languageId === LANGUAGE_ID || switched.has(key) || !/\.cfg$/i.test(doc.fileName)) return;
    // The first section is near the top; do not copy a whole large file to find it.
    const head = doc.getText(new vscode.Range(0, 0, Math.min(doc.lineCount, 2000), 0));
    if (!isDarknetCfg(doc.fileName, head)) return;
    switched.add(key);
    void vscode.languages.setTextDocumentLanguage(doc, LANGUAGE_ID);
  };
  vscode.workspace.textDocuments.forEach(check);
  return vscode.workspace.onDidOpenTextDocument(check);
}
