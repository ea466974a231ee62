// A language client for tests: the real server (startServer) and a real JSON-RPC client connected
// by two in-memory streams. Nothing is mocked: every request goes through vscode-jsonrpc framing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  createConnection,
  createProtocolConnection,
  InitializeRequest,
  PublishDiagnosticsNotification,
  StreamMessageReader,
  StreamMessageWriter,
  type ClientCapabilities,
  type Diagnostic,
  type InitializeResult,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type TextDocumentContentChangeEvent,
  type TextEdit,
  type WorkspaceEdit,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { SERVER_STATUS_REQUEST, type ServerStatus } from '../../server/protocol';
import { startServer, type ServerOptions } from '../../server/server';
import { CORPUS, HAS_CORPUS, NO_CORPUS, corpusCfgs, corpusPath } from '../helpers/corpus';
import { repoRoot } from '../helpers/root';

export const REPO_ROOT = repoRoot();
export const CFG_DIR = corpusPath('cfg', 'alexeyab');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'lsp');
/** Pass as a test's `skip` option: the reason shows in the report when the corpus is absent. */
export const NEEDS_CORPUS = NO_CORPUS;
export { CORPUS, HAS_CORPUS, corpusCfgs };

export function corpusCfg(name: string): string {
  return readFileSync(join(CFG_DIR, name), 'utf8');
}

export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

export function fileUri(path: string): string {
  return pathToFileURL(path).href;
}

export interface TestClientOptions {
  /** The `darkslim` settings section the client answers workspace/configuration with. */
  settings?: Record<string, unknown>;
  capabilities?: ClientCapabilities;
  server?: ServerOptions;
}

const CAPABILITIES: ClientCapabilities = {
  workspace: {
    configuration: true,
    didChangeConfiguration: { dynamicRegistration: true },
    didChangeWatchedFiles: { dynamicRegistration: true },
    workspaceEdit: { documentChanges: true },
  },
  textDocument: {
    publishDiagnostics: { versionSupport: true, relatedInformation: true },
    hover: { contentFormat: ['markdown', 'plaintext'] },
  },
};

export class TestClient {
  readonly published: PublishDiagnosticsParams[] = [];
  readonly registrations: { method: string; registerOptions?: unknown }[] = [];
  private readonly texts = new Map<string, TextDocument>();
  private readonly waiters: { uri: string; version?: number; resolve: (p: PublishDiagnosticsParams) => void }[] = [];
  settings: Record<string, unknown>;
  initializeResult!: InitializeResult;

  /** Set when the server runs in a child process. */
  child?: ChildProcess;

  constructor(readonly connection: ProtocolConnection, settings: Record<string, unknown>) {
    this.settings = settings;
    connection.onNotification(PublishDiagnosticsNotification.type, (p) => {
      this.published.push(p);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i];
        if (w.uri === p.uri && (w.version === undefined || p.version === w.version)) {
          this.waiters.splice(i, 1);
          w.resolve(p);
        }
      }
    });
    connection.onRequest('workspace/configuration', (p: { items: { section?: string }[] }) =>
      p.items.map((item) => (item.section === 'darkslim' ? this.settings : null)));
    connection.onRequest('client/registerCapability', (p: { registrations: { method: string; registerOptions?: unknown }[] }) => {
      this.registrations.push(...p.registrations);
      return null;
    });
  }

  /** Resolves with the next diagnostics published for `uri` (for `version` when given). */
  nextDiagnostics(uri: string, version?: number, timeoutMs = 5000): Promise<PublishDiagnosticsParams> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no diagnostics for ${uri} v${version} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ uri, version, resolve: (p) => { clearTimeout(timer); resolve(p); } });
    });
  }

  /** Resolves once `count` publishes for (uri, version) have arrived, with the last of them. */
  async nthDiagnostics(uri: string, version: number, count: number, timeoutMs = 5000): Promise<PublishDiagnosticsParams> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.published.filter((p) => p.uri === uri && p.version === version);
      if (seen.length >= count) return seen[count - 1];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`only ${seen.length} of ${count} publishes for ${uri} v${version}`);
      await this.nextDiagnostics(uri, version, left);
    }
  }

  async open(uri: string, text: string, version = 1): Promise<Diagnostic[]> {
    const next = this.nextDiagnostics(uri, version);
    this.texts.set(uri, TextDocument.create(uri, 'darknet', version, text));
    await this.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'darknet', version, text } });
    return (await next).diagnostics;
  }

  text(uri: string): string {
    const doc = this.texts.get(uri);
    if (!doc) throw new Error(`${uri} is not open`);
    return doc.getText();
  }

  version(uri: string): number {
    return this.texts.get(uri)?.version ?? 0;
  }

  /** Sends a didChange (incremental edits) without waiting for diagnostics; returns the new version. */
  async change(uri: string, changes: TextDocumentContentChangeEvent[]): Promise<number> {
    const doc = this.texts.get(uri);
    if (!doc) throw new Error(`${uri} is not open`);
    const version = doc.version + 1;
    TextDocument.update(doc, changes, version);
    await this.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: changes });
    return version;
  }

  async changeAndWait(uri: string, changes: TextDocumentContentChangeEvent[]): Promise<Diagnostic[]> {
    const version = this.version(uri) + 1;
    const next = this.nextDiagnostics(uri, version);
    await this.change(uri, changes);
    return (await next).diagnostics;
  }

  /** Replaces the whole text (a full-document change). */
  replaceAll(uri: string, text: string): Promise<Diagnostic[]> {
    return this.changeAndWait(uri, [{ text }]);
  }

  /** Applies a workspace edit from the server (as an editor would) and waits for the new diagnostics. */
  applyEdit(uri: string, edit: WorkspaceEdit): Promise<Diagnostic[]> {
    const edits = editsFor(uri, edit);
    return this.changeAndWait(uri, edits.map((e) => ({ range: e.range, text: e.newText })).reverse());
  }

  async close(uri: string): Promise<void> {
    this.texts.delete(uri);
    await this.connection.sendNotification('textDocument/didClose', { textDocument: { uri } });
  }

  request<R>(method: string, params: unknown): Promise<R> {
    return this.connection.sendRequest(method, params) as Promise<R>;
  }

  /** The server's own status (analyses so far, heap), over JSON-RPC like everything else. */
  status(gc = false): Promise<ServerStatus> {
    return this.request<ServerStatus>(SERVER_STATUS_REQUEST, { gc });
  }

  /** shutdown; a child process also gets `exit` and is waited for. Resolves with its exit code. */
  async shutdown(): Promise<number | null> {
    await this.connection.sendRequest('shutdown');
    if (!this.child) {
      // No `exit` notification in-process: it would end the test runner's process.
      this.connection.dispose();
      return null;
    }
    const exited = once(this.child, 'exit');
    await this.connection.sendNotification('exit');
    const [code] = (await exited) as [number | null];
    this.connection.dispose();
    return code;
  }
}

/** The edits of a workspace edit for one document, sorted from the start of the file. */
export function editsFor(uri: string, edit: WorkspaceEdit): TextEdit[] {
  const out: TextEdit[] = [...(edit.changes?.[uri] ?? [])];
  for (const dc of edit.documentChanges ?? []) {
    if ('textDocument' in dc && dc.textDocument.uri === uri) out.push(...(dc.edits as TextEdit[]));
  }
  return out.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
}

async function initialize(connection: ProtocolConnection, options: TestClientOptions, processId: number | null): Promise<TestClient> {
  const client = new TestClient(connection, options.settings ?? {});
  connection.listen();
  client.initializeResult = await connection.sendRequest(InitializeRequest.type, {
    processId,
    rootUri: fileUri(REPO_ROOT),
    capabilities: options.capabilities ?? CAPABILITIES,
    initializationOptions: undefined,
  });
  await connection.sendNotification('initialized', {});
  return client;
}

/** Starts the server in this process and an initialized client talking to it over JSON-RPC. */
export function startClient(options: TestClientOptions = {}): Promise<TestClient> {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  startServer(createConnection(new StreamMessageReader(toServer), new StreamMessageWriter(toClient)), options.server);
  const connection = createProtocolConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toServer));
  // null: a number would make the in-process server poll that process and keep the test runner alive
  return initialize(connection, options, null);
}

/** Starts `node <args>` (a server speaking LSP on stdio) and an initialized client talking to it. */
export async function spawnClient(args: string[], options: TestClientOptions = {}): Promise<TestClient> {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const client = await initialize(connection, options, process.pid);
  client.child = child;
  return client;
}

/** 0-based line numbers of lines matching a regex. */
export function linesMatching(text: string, re: RegExp): number[] {
  const out: number[] = [];
  text.split(/\r?\n/).forEach((l, i) => { if (re.test(l)) out.push(i); });
  return out;
}

/** For each `[header]` line matching `re`, the last line before it that matches `key`. */
export function lastBefore(text: string, header: RegExp, key: RegExp): number[] {
  const lines = text.split(/\r?\n/);
  return linesMatching(text, header).map((h) => {
    for (let i = h - 1; i >= 0; i--) if (key.test(lines[i])) return i;
    return -1;
  });
}

export function uriIn(dir: string, name: string): string {
  return fileUri(join(dir, name));
}

