// Diagnostics over real JSON-RPC: what darknet would say, published for the version it was computed on.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DiagnosticSeverity } from 'vscode-languageserver/node';
import {
  CORPUS, NEEDS_CORPUS, corpusCfg, corpusCfgs, fileUri, fixture, lastBefore, linesMatching, startClient,
  type TestClient,
} from './lsp-harness';

const errorsOf = <T extends { severity?: DiagnosticSeverity }>(ds: T[]) => ds.filter((d) => d.severity === DiagnosticSeverity.Error);

describe('lsp diagnostics', () => {
  let client: TestClient;
  before(async () => { client = await startClient(); });
  after(() => client.shutdown());

  test('yolov3.cfg with classes=3: exactly three errors, on the filters=255 line before each [yolo]', { skip: NEEDS_CORPUS }, async () => {
    const uri = 'untitled:yolov3-classes.cfg';
    const original = corpusCfg('yolov3.cfg');
    assert.deepEqual(errorsOf(await client.open(uri, original)), []);

    // Edit like a user would: each classes=80 becomes classes=3, in one incremental didChange.
    const classLines = linesMatching(original, /^classes=80\s*$/);
    assert.equal(classLines.length, 3);
    const diags = await client.changeAndWait(uri, classLines.map((line) => ({
      range: { start: { line, character: 'classes='.length }, end: { line, character: 'classes=80'.length } },
      text: '3',
    })));

    const expectedLines = lastBefore(original, /^\[yolo\]/, /^filters=/);
    for (const line of expectedLines) assert.match(original.split('\n')[line], /^filters=255/);
    const errors = errorsOf(diags);
    assert.equal(errors.length, 3, errors.map((e) => e.message).join('\n'));
    assert.deepEqual(errors.map((e) => e.range.start.line).sort((a, b) => a - b), expectedLines);
    for (const e of errors) {
      assert.equal(e.code, 'head-filters');
      assert.equal(e.source, 'darkslim');
      assert.match(e.message, /= 24/);
      // The range is the value 255, so the quick fix replaces just that.
      assert.equal(e.range.end.character - e.range.start.character, 3);
      assert.equal(e.relatedInformation?.length, 1, 'points at the [yolo] it must fit');
    }
  });

  test('diagnostics carry the version they were computed for, and clear when the error is fixed', async () => {
    const uri = 'untitled:tiny-heads.cfg';
    const text = fixture('tiny-heads.cfg');
    assert.deepEqual(await client.open(uri, text, 7), []);
    const line = linesMatching(text, /^classes=80/)[1];
    const broken = await client.changeAndWait(uri, [{ range: { start: { line, character: 8 }, end: { line, character: 10 } }, text: '2' }]);
    assert.equal(client.published.at(-1)?.version, 8);
    // The second head now has classes=2: its conv (filters=255) is wrong and the heads disagree.
    assert.deepEqual(broken.filter((d) => d.severity === DiagnosticSeverity.Error).map((d) => d.code).sort(), ['classes-mismatch', 'head-filters']);
    const fixed = await client.changeAndWait(uri, [{ range: { start: { line, character: 8 }, end: { line, character: 9 } }, text: '80' }]);
    assert.deepEqual(fixed, []);
    assert.equal(client.published.at(-1)?.version, 9);
  });

  test('typos: unknown section, unknown key and unknown activation, each with its did-you-mean', async () => {
    const uri = 'untitled:typos.cfg';
    const diags = await client.open(uri, fixture('typos.cfg'));
    const byCode = new Map(diags.map((d) => [d.code, d]));
    assert.equal(byCode.get('unknown-section')?.severity, DiagnosticSeverity.Error);
    assert.equal(byCode.get('unknown-section')?.range.start.line, 6);
    assert.match(byCode.get('unknown-section')?.message ?? '', /Did you mean \[convolutional\]/);
    assert.deepEqual(byCode.get('unknown-key')?.range, { start: { line: 14, character: 0 }, end: { line: 14, character: 6 } });
    assert.equal(byCode.get('bad-value')?.range.start.line, 18);
    assert.deepEqual((byCode.get('bad-value')?.data as { suggestion?: string }).suggestion, 'leaky');
  });

  test('closing a document clears its diagnostics', async () => {
    const uri = 'untitled:close-me.cfg';
    assert.notEqual((await client.open(uri, fixture('typos.cfg'))).length, 0);
    const cleared = client.nextDiagnostics(uri);
    await client.close(uri);
    assert.deepEqual((await cleared).diagnostics, []);
  });
});

describe('lsp diagnostics on every network cfg of the corpus', { skip: NEEDS_CORPUS }, () => {
  let client: TestClient;
  before(async () => { client = await startClient(); });
  after(() => client.shutdown());

  const cfgs = corpusCfgs();
  test('the corpus has the network cfgs it should', () => assert.ok(cfgs.length >= 90, `${cfgs.length} cfgs`));

  for (const path of cfgs) {
    const name = path.slice(CORPUS.length + 1);
    test(`no errors: ${name}`, async () => {
      const uri = fileUri(path);
      const text = readFileSync(path, 'utf8');
      assert.match(text, /^\s*\[(net|network)\]/m);
      let diags = await client.open(uri, text);
      if (existsSync(path.replace(/\.cfg$/, '.weights'))) {
        // Weights beside the cfg: the first publish went out while they loaded, the second checks them.
        diags = (await client.nthDiagnostics(uri, 1, 2)).diagnostics;
        const summary = await client.request<{ weights?: { ok: boolean; message: string } }>('darkslim/modelSummary', { uri });
        assert.equal(summary.weights?.ok, true, summary.weights?.message);
      }
      await client.close(uri);
      assert.deepEqual(errorsOf(diags).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
    });
  }
});
