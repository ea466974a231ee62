// The weights check: a .weights beside the cfg (or named by darkslim.weightsPath) is read and checked
// against every version of the cfg; a mismatch is reported on the first layer that no longer fits.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DiagnosticSeverity, FileChangeType, type Diagnostic, type Hover, type MarkupContent } from 'vscode-languageserver/node';
import { CORPUS, HAS_CORPUS, NEEDS_CORPUS, fileUri, linesMatching, startClient, type TestClient } from './lsp-harness';

const MODEL_DIR = join(CORPUS, 'weights', 'yolo-fastest-1.1_coco');
const weightsErrors = (ds: Diagnostic[]) => ds.filter((d) => d.code === 'weights-size');

interface Summary { weights?: { ok: boolean; message: string; path: string } }

describe('lsp weights check', { skip: NEEDS_CORPUS }, () => {
  let dir: string;
  let cfgPath: string;
  let weightsPath: string;
  let text: string;
  before(() => {
    if (!HAS_CORPUS) return;
    // Copies in a temporary folder (never in the repository): the tests change the weights on disk.
    dir = mkdtempSync(join(tmpdir(), 'darkslim-lsp-weights-'));
    cfgPath = join(dir, 'model.cfg');
    weightsPath = join(dir, 'model.weights');
    copyFileSync(join(MODEL_DIR, 'yolo-fastest-1.1.cfg'), cfgPath);
    copyFileSync(join(MODEL_DIR, 'yolo-fastest-1.1.weights'), weightsPath);
    text = readFileSync(cfgPath, 'utf8');
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  /** Line of the i-th `filters=` and the header line of its section. */
  function filtersLine(i: number): { line: number; header: number; value: number } {
    const line = linesMatching(text, /^filters=/)[i];
    const lines = text.split('\n');
    let header = line;
    while (!lines[header].startsWith('[')) header--;
    return { line, header, value: parseInt(lines[line].slice('filters='.length), 10) };
  }

  test('weights beside the cfg that fit: no weights diagnostic; after filters= changes, one error on that layer', async () => {
    const client = await startClient();
    try {
      const uri = fileUri(cfgPath);
      await client.open(uri, text);
      const checked = await client.nthDiagnostics(uri, 1, 2); // the second publish comes once the file is read
      assert.deepEqual(weightsErrors(checked.diagnostics), []);
      const summary = await client.request<Summary>('darkslim/modelSummary', { uri });
      assert.equal(summary.weights?.ok, true);
      assert.equal(summary.weights?.path, weightsPath);

      const { line, header, value } = filtersLine(12);
      const diags = await client.changeAndWait(uri, [{
        range: { start: { line, character: 8 }, end: { line, character: 8 + String(value).length } },
        text: String(value + 8),
      }]);
      const errors = weightsErrors(diags);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].severity, DiagnosticSeverity.Error);
      assert.equal(errors[0].range.start.line, header, 'on the header of the edited layer');
      assert.match(errors[0].message, /^model\.weights: The weights do not fit the cfg/);
      assert.deepEqual(diags.filter((d) => d.severity === DiagnosticSeverity.Error), errors, 'the cfg itself is still valid');
    } finally {
      await client.shutdown();
    }
  });

  test('a change of the weights file on disk is re-checked (watched-files notification)', async () => {
    const client = await startClient();
    try {
      const uri = fileUri(cfgPath);
      await client.open(uri, text);
      await client.nthDiagnostics(uri, 1, 2);
      assert.ok(client.registrations.some((r) => r.method === 'workspace/didChangeWatchedFiles'
        && JSON.stringify(r.registerOptions).includes('**/*.weights')), 'the server asks to watch .weights files');

      // Someone overwrites the weights with a shorter file: the editor reports the change.
      truncateSync(weightsPath, 100_000);
      await client.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: fileUri(weightsPath), type: FileChangeType.Changed }] });
      const reread = await client.nthDiagnostics(uri, 1, 4); // loading, then checked
      assert.equal(weightsErrors(reread.diagnostics).length, 1);
      assert.match(weightsErrors(reread.diagnostics)[0].message, /the file has 100000 bytes/);
    } finally {
      copyFileSync(join(MODEL_DIR, 'yolo-fastest-1.1.weights'), weightsPath);
      await client.shutdown();
    }
  });

  test('without a file watcher the weights are re-stat\'ed at the next analysis', async () => {
    const client = await startClient({ capabilities: { workspace: { configuration: true } } });
    try {
      const uri = fileUri(cfgPath);
      await client.open(uri, text);
      await client.nthDiagnostics(uri, 1, 2);
      assert.deepEqual(client.registrations, []);
      truncateSync(weightsPath, 50_000);
      const version = await client.change(uri, [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '# edited\n' }]);
      const reread = await client.nthDiagnostics(uri, version, 2);
      assert.match(weightsErrors(reread.diagnostics)[0]?.message ?? '', /the file has 50000 bytes/);
    } finally {
      copyFileSync(join(MODEL_DIR, 'yolo-fastest-1.1.weights'), weightsPath);
      await client.shutdown();
    }
  });

  test('darkslim.weightsPath names the weights (relative, with ${cfgName}); a missing one is a warning', async () => {
    const other = join(dir, 'elsewhere');
    mkdirSync(other, { recursive: true });
    const lonelyCfg = join(other, 'yolo-fastest-1.1.cfg'); // no weights beside it
    copyFileSync(join(MODEL_DIR, 'yolo-fastest-1.1.cfg'), lonelyCfg);
    const client = await startClient({ settings: { weightsPath: `${MODEL_DIR}/\${cfgName}.weights` } });
    try {
      const uri = fileUri(lonelyCfg);
      await client.open(uri, text);
      await client.nthDiagnostics(uri, 1, 2);
      const summary = await client.request<Summary>('darkslim/modelSummary', { uri });
      assert.equal(summary.weights?.path, join(MODEL_DIR, 'yolo-fastest-1.1.weights'));
      assert.equal(summary.weights?.ok, true);

      // The setting changes (pull model: the server asks again) and now names a file that is not there.
      client.settings = { weightsPath: 'backup/${cfgName}_last.weights' };
      const next = client.nextDiagnostics(uri, 1);
      await client.connection.sendNotification('workspace/didChangeConfiguration', { settings: null });
      const missing = weightsErrors((await next).diagnostics);
      assert.equal(missing.length, 1);
      assert.equal(missing[0].severity, DiagnosticSeverity.Warning);
      assert.ok(missing[0].message.includes(join(other, 'backup', 'yolo-fastest-1.1_last.weights')), missing[0].message);
    } finally {
      await client.shutdown();
    }
  });

  test('hover on a conv header shows the γ summary of its batch-norm scales', async () => {
    const client = await startClient();
    try {
      const uri = fileUri(cfgPath);
      await client.open(uri, text);
      await client.nthDiagnostics(uri, 1, 2);
      const { header } = filtersLine(0);
      const hover = await client.request<Hover>('textDocument/hover', { textDocument: { uri }, position: { line: header, character: 2 } });
      const value = (hover.contents as MarkupContent).value;
      assert.match(value, /layer 0/);
      assert.match(value, /BN \|γ\| over 8 channels \(model\.weights\): min [\d.e-]+ · median [\d.e-]+ · mean/);
    } finally {
      await client.shutdown();
    }
  });
});
