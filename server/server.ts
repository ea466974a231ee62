// The Darknet cfg language server. This file only wires the connection: every answer comes from a
// pure function in features/ over the shared, per-version analysis (analysis.ts).
//
// Run it as `node dist/server.js --stdio` (or --node-ipc, as the VS Code client does), as
// `darkslim lsp --stdio`, or in-process over any pair of streams with startServer().
import {
  CodeActionKind,
  createConnection,
  DidChangeConfigurationNotification,
  DidChangeWatchedFilesNotification,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type InitializeResult,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { AnalysisCache, type Analysis } from './analysis';
import { DEFAULT_DEBOUNCE, Debouncer, type DebounceOptions } from './debounce';
import { codeActions } from './features/codeActions';
import { codeLenses } from './features/codeLens';
import { completion, COMPLETION_TRIGGERS } from './features/completion';
import { diagnostics } from './features/diagnostics';
import { foldingRanges } from './features/folding';
import { hover } from './features/hover';
import { inlayHints } from './features/inlayHints';
import { definition, documentHighlights, references } from './features/layerReferences';
import { modelSummary } from './features/modelSummary';
import {
  isPruneConfig, pruneConfigCompletionLsp, pruneConfigContext, pruneConfigDiagnostics, pruneConfigHoverLsp,
} from './features/pruneConfig';
import { createModelLoader } from '../core/prune/config';
import { SEMANTIC_TOKENS_LEGEND, semanticTokens } from './features/semanticTokens';
import { documentSymbols } from './features/symbols';
import {
  MODEL_SUMMARY_REQUEST, SERVER_STATUS_REQUEST, type ModelSummary, type ModelSummaryParams, type ServerStatus, type ServerStatusParams,
} from './protocol';
import { SettingsStore, type Settings } from './settings';
import { uriToPath, weightsPathFor, WeightsStore, type WeightsInfo } from './weights';

export interface ServerOptions {
  debounce?: Partial<DebounceOptions>;
}

export interface ServerHandle {
  /** Analyses computed so far (each document version is analysed at most once). */
  readonly analyses: number;
}

export function startServer(connection: Connection, options: ServerOptions = {}): ServerHandle {
  const documents = new TextDocuments(TextDocument);
  const analyses = new AnalysisCache();
  let settings = new SettingsStore(connection, false);
  /** uri → the weights file its cfg is checked against, so a change of that file re-checks it. */
  const weightsPathOf = new Map<string, string>();
  const debouncer = new Debouncer({ ...DEFAULT_DEBOUNCE, ...options.debounce }, (uri) => void publish(uri));
  const recheckUsers = (path: string) => {
    for (const [uri, p] of weightsPathOf) if (p === path) debouncer.schedule(uri);
  };
  const store = new WeightsStore(recheckUsers);
  const client = { watchFiles: false, configurationChanges: false, documentChanges: false };

  const analysisOf = (uri: string): Analysis | undefined => {
    const doc = documents.get(uri);
    return doc && !isPruneConfig(uri) ? analyses.get(doc) : undefined;
  };
  /** Pruning configs (*.prune.yaml) read their model through one cache keyed by size and mtime. */
  const loadModel = createModelLoader();
  const pruneContext = (uri: string) => {
    const path = uriToPath(uri);
    return path ? pruneConfigContext(path, loadModel) : undefined;
  };

  const weightsFor = (a: Analysis, s: Settings): WeightsInfo => {
    const cfgPath = uriToPath(a.uri);
    if (cfgPath) weightsPathOf.set(a.uri, weightsPathFor(cfgPath, s.weightsPath));
    return store.info(a, s);
  };

  /** Settings are async (workspace/configuration); the answer must still be for the version asked about. */
  const withSettings = async <T>(uri: string, f: (a: Analysis, s: Settings) => T): Promise<T | null> => {
    const doc = documents.get(uri);
    if (!doc || isPruneConfig(uri)) return null;
    const s = await settings.get(uri);
    const now = documents.get(uri);
    if (!now || now.version !== doc.version) throw new ResponseError(LSPErrorCodes.ContentModified, 'The document changed.');
    return f(analyses.get(now), s);
  };

  async function publish(uri: string): Promise<void> {
    const doc = documents.get(uri);
    if (!doc) return;
    if (isPruneConfig(uri)) {
      const ctx = pruneContext(uri);
      if (ctx) await connection.sendDiagnostics({ uri, version: doc.version, diagnostics: pruneConfigDiagnostics(doc.getText(), ctx) });
      return;
    }
    try {
      const s = await settings.get(uri);
      const now = documents.get(uri);
      // A newer version has its own publish scheduled: never publish for an old one.
      if (!now || now.version !== doc.version) return;
      const a = analyses.get(now);
      await connection.sendDiagnostics({ uri, version: a.version, diagnostics: diagnostics(a, weightsFor(a, s)) });
    } catch (e) {
      connection.console.error(`darkslim: diagnostics of ${uri} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
  }

  connection.onInitialize((params): InitializeResult => {
    const caps = params.capabilities;
    settings = new SettingsStore(connection, caps.workspace?.configuration === true);
    settings.setInitial(params.initializationOptions);
    client.watchFiles = caps.workspace?.didChangeWatchedFiles?.dynamicRegistration === true;
    client.configurationChanges = caps.workspace?.didChangeConfiguration?.dynamicRegistration === true;
    client.documentChanges = caps.workspace?.workspaceEdit?.documentChanges === true;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        inlayHintProvider: true,
        codeLensProvider: { resolveProvider: false },
        definitionProvider: true,
        referencesProvider: true,
        documentHighlightProvider: true,
        documentSymbolProvider: true,
        foldingRangeProvider: true,
        semanticTokensProvider: { legend: SEMANTIC_TOKENS_LEGEND, full: true },
        completionProvider: { triggerCharacters: COMPLETION_TRIGGERS, resolveProvider: false },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, CodeActionKind.RefactorRewrite] },
      },
      serverInfo: { name: 'darkslim', version: '0.1.0' },
    };
  });

  connection.onInitialized(() => {
    if (client.configurationChanges) void connection.client.register(DidChangeConfigurationNotification.type, undefined);
    if (client.watchFiles) {
      void connection.client.register(DidChangeWatchedFilesNotification.type, { watchers: [{ globPattern: '**/*.weights' }] });
    }
  });

  connection.onDidChangeConfiguration((params) => {
    settings.changed(params.settings);
    for (const doc of documents.all()) debouncer.schedule(doc.uri);
  });

  connection.onDidChangeWatchedFiles(({ changes }) => {
    for (const change of changes) {
      const path = uriToPath(change.uri);
      if (!path) continue;
      store.invalidate(path);
      recheckUsers(path);
    }
    // pruning configs check percent_limit against the weights they name
    for (const doc of documents.all()) if (isPruneConfig(doc.uri)) debouncer.schedule(doc.uri);
  });

  documents.onDidChangeContent(({ document }) => debouncer.schedule(document.uri));
  documents.onDidClose(({ document }) => {
    const uri = document.uri;
    debouncer.cancel(uri);
    analyses.delete(uri);
    settings.forget(uri);
    weightsPathOf.delete(uri);
    store.retain(new Set(weightsPathOf.values()));
    void connection.sendDiagnostics({ uri, diagnostics: [] });
  });

  connection.onHover((p) => {
    const uri = p.textDocument.uri;
    if (isPruneConfig(uri)) {
      const doc = documents.get(uri);
      const ctx = pruneContext(uri);
      return doc && ctx ? pruneConfigHoverLsp(doc.getText(), p.position, ctx) : null;
    }
    return withSettings(uri, (a, s) => hover(a, p.position, weightsFor(a, s)));
  });
  connection.onRequest(MODEL_SUMMARY_REQUEST, (p: ModelSummaryParams): Promise<ModelSummary | null> =>
    withSettings(p.uri, (a, s) => modelSummary(a, weightsFor(a, s))));

  connection.onRequest(SERVER_STATUS_REQUEST, (p: ServerStatusParams | undefined): ServerStatus => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (p?.gc && gc) gc();
    const mem = process.memoryUsage();
    return { analyses: analyses.computed, openDocuments: documents.keys().length, heapUsed: mem.heapUsed, rss: mem.rss, gcRan: !!(p?.gc && gc) };
  });

  connection.languages.inlayHint.on((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? inlayHints(a, p.range) : null;
  });
  connection.onCodeLens((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? codeLenses(a) : null;
  });
  connection.onDefinition((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? definition(a, p.position) : null;
  });
  connection.onReferences((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? references(a, p.position, p.context.includeDeclaration) : null;
  });
  connection.onDocumentHighlight((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? documentHighlights(a, p.position) : null;
  });
  connection.onDocumentSymbol((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? documentSymbols(a) : null;
  });
  connection.onFoldingRanges((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? foldingRanges(a) : null;
  });
  connection.languages.semanticTokens.on((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? semanticTokens(a) : { data: [] };
  });
  connection.onCompletion((p) => {
    const uri = p.textDocument.uri;
    if (isPruneConfig(uri)) {
      const doc = documents.get(uri);
      const ctx = pruneContext(uri);
      return doc && ctx ? pruneConfigCompletionLsp(doc.getText(), p.position, ctx) : null;
    }
    const a = analysisOf(uri);
    return a ? completion(a, p.position) : null;
  });
  connection.onCodeAction((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? codeActions(a, p.range, p.context, { documentChanges: client.documentChanges }) : null;
  });

  connection.onShutdown(() => debouncer.dispose());

  documents.listen(connection);
  connection.listen();
  return {
    get analyses() {
      return analyses.computed;
    },
  };
}

// Started as a program (dist/server.js, or `node --import tsx server/server.ts --stdio`): the
// transport comes from the command line. The file-name test matters once bundled: esbuild inlines
// this module into dist/cli.js too, where `require.main === module` holds as well.
if (require.main === module && /(^|[\\/])server\.[cm]?[jt]s$/.test(require.main.filename)) {
  startServer(createConnection(ProposedFeatures.all));
}
