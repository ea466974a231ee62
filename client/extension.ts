// The VS Code extension: a thin client. It gives `.cfg` files holding a darknet network the
// `darknet` language, starts the language server (dist/server.js over node IPC), shows the active
// model in the status bar, and hosts the model commands, the task runner (tasks run in
// dist/worker.js processes, never here) and the webview panels.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { registerCommands, runPrune, outDirFor, type CommandContext } from './commands';
import { isDarknetCfg } from './languageDetection';
import { DashboardHub, DASHBOARD_VIEW } from './panels/dashboardPanel';
import { RedundancyPanel, REDUNDANCY_VIEW, type RedundancyHost } from './panels/redundancyPanel';
import { ReportPanel, REPORT_VIEW } from './panels/reportPanel';
import { PerfLog } from './perf';
import { readSettings } from './settings';
import { ModelStatusBar } from './statusBar';
import { TaskRunner } from './taskRunner';
import { AnswerMemory } from './tasks/requests';

export const LANGUAGE_ID = 'darknet';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const t0 = performance.now();
  const tasksOutput = vscode.window.createOutputChannel('Darkslim Tasks');
  const perf = new PerfLog(tasksOutput);
  perf.watchDiagnostics();
  context.subscriptions.push(tasksOutput, perf, detectDarknetDocuments());

  // tasks, commands and panels first: they work while the server starts
  const runner = new TaskRunner(context.asAbsolutePath(path.join('dist', 'worker.js')), tasksOutput, readSettings().maxParallelTasks);
  const memory = new AnswerMemory(context.workspaceState);
  const dashboard = new DashboardHub(context.extensionUri);
  const ctx: CommandContext = {
    extensionUri: context.extensionUri,
    storage: context.globalStorageUri,
    runner, memory, dashboard,
    redundancyHost: undefined as unknown as RedundancyHost,
  };
  const redundancyHost: RedundancyHost = {
    extensionUri: context.extensionUri,
    storage: context.globalStorageUri,
    runner, memory,
    pruneFromConfig: (cfg, config) => runPrune(ctx, { kind: 'prune', args: { cfg, config, outDir: outDirFor(cfg) } }),
    onFrames: (cfg, frames) => perf.frames(cfg, frames),
  };
  ctx.redundancyHost = redundancyHost;
  context.subscriptions.push(
    runner,
    ...registerCommands(ctx),
    vscode.window.registerWebviewPanelSerializer(REDUNDANCY_VIEW, RedundancyPanel.serializer(redundancyHost)),
    vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW, dashboard.serializer()),
    vscode.window.registerWebviewPanelSerializer(REPORT_VIEW, ReportPanel.serializer(context.extensionUri)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('darkslim.tasks.maxParallel')) runner.setConcurrency(readSettings().maxParallelTasks);
    }),
  );
  const tSync = performance.now() - t0;

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
  const languageClient = new LanguageClient('darkslim', 'Darkslim (Darknet cfg)', serverOptions, clientOptions);
  client = languageClient;
  // activation does not wait for the server: diagnostics and the status bar follow when it is up
  const g = globalThis as { __darkslimLoadStart?: number; __darkslimLoadEnd?: number };
  const load = g.__darkslimLoadStart && g.__darkslimLoadEnd ? { loadMs: g.__darkslimLoadEnd - g.__darkslimLoadStart, sinceLoadMs: Date.now() - g.__darkslimLoadStart } : {};
  perf.record('activate', { ms: performance.now() - t0, syncMs: tSync, ...load });
  languageClient.start().then(() => {
    context.subscriptions.push(new ModelStatusBar(languageClient));
    perf.record('serverReady', { ms: performance.now() - t0 });
  }, (e: unknown) => {
    tasksOutput.appendLine(`The Darkslim language server did not start: ${(e as Error).message}`);
  });
}

export async function deactivate(): Promise<void> {
  try {
    await client?.stop();
  } catch {
    // it never started
  }
  client = undefined;
}

/**
 * Switches `.cfg` documents that hold a darknet network to the `darknet` language when they open
 * (see languageDetection.ts for why this is not done with an extension/firstLine contribution).
 * A document is switched at most once while it is open, so a user who picks another language
 * keeps it; a document closed and opened again later is detected again. (A language change
 * fires close and open for the document in one go; a real close is one not followed by an open.)
 */
function detectDarknetDocuments(): vscode.Disposable {
  const switched = new Set<string>();
  const closing = new Map<string, ReturnType<typeof setTimeout>>();
  const check = (doc: vscode.TextDocument) => {
    const key = doc.uri.toString();
    const pending = closing.get(key);
    if (pending) { clearTimeout(pending); closing.delete(key); }
    if (doc.languageId === LANGUAGE_ID || switched.has(key) || !/\.cfg$/i.test(doc.fileName)) return;
    // The first section is near the top; do not copy a whole large file to find it.
    const head = doc.getText(new vscode.Range(0, 0, Math.min(doc.lineCount, 2000), 0));
    if (!isDarknetCfg(doc.fileName, head)) return;
    switched.add(key);
    void vscode.languages.setTextDocumentLanguage(doc, LANGUAGE_ID);
  };
  vscode.workspace.textDocuments.forEach(check);
  return vscode.Disposable.from(
    vscode.workspace.onDidOpenTextDocument(check),
    vscode.workspace.onDidCloseTextDocument((doc) => {
      const key = doc.uri.toString();
      if (!switched.has(key)) return;
      const old = closing.get(key);
      if (old) clearTimeout(old);
      // a language change fires close and open synchronously, before any timer runs
      closing.set(key, setTimeout(() => { closing.delete(key); switched.delete(key); }, 0));
    }),
    { dispose: () => { for (const t of closing.values()) clearTimeout(t); } },
  );
}
