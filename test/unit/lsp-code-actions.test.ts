// Code actions: fix filters before a head, "Change classes to N everywhere", did-you-mean.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DiagnosticSeverity, type CodeAction, type Diagnostic, type Range } from 'vscode-languageserver/node';
import { NEEDS_CORPUS, corpusCfg, editsFor, fixture, lastBefore, linesMatching, startClient, type TestClient } from './lsp-harness';

const errorsOf = (ds: Diagnostic[]) => ds.filter((d) => d.severity === DiagnosticSeverity.Error);

describe('lsp code actions', () => {
  let client: TestClient;
  let n = 0;
  before(async () => { client = await startClient(); });
  after(() => client.shutdown());

  const actions = (uri: string, range: Range, diagnostics: Diagnostic[]) =>
    client.request<CodeAction[]>('textDocument/codeAction', { textDocument: { uri }, range, context: { diagnostics } });

  test('yolov3 with classes=3: the quick fix on each error makes it filters=24, and then no errors remain', { skip: NEEDS_CORPUS }, async () => {
    const uri = `untitled:yolov3-${n++}.cfg`;
    const original = corpusCfg('yolov3.cfg');
    const errors = errorsOf(await client.open(uri, original.replaceAll('classes=80', 'classes=3')));
    const expectedLines = lastBefore(original, /^\[yolo\]/, /^filters=/);
    assert.equal(errors.length, 3);

    for (const error of errors) {
      const offered = await actions(uri, error.range, [error]);
      const fix = offered.find((a) => a.title.startsWith('Set filters='));
      assert.ok(fix, offered.map((a) => a.title).join(', '));
      assert.equal(fix.title, 'Set filters=24 to fit the [yolo] after it');
      assert.equal(fix.kind, 'quickfix');
      assert.equal(fix.isPreferred, true);
      assert.deepEqual(fix.diagnostics, [error]);
      // Versioned edit: the editor refuses it if the document moved on.
      const dc = fix.edit?.documentChanges?.[0] as { textDocument: { version: number } };
      assert.equal(dc.textDocument.version, client.version(uri));
      const edits = editsFor(uri, fix.edit!);
      assert.deepEqual(edits, [{ range: error.range, newText: '24' }]);
      const left = errorsOf(await client.applyEdit(uri, fix.edit!));
      assert.equal(left.length, errors.length - 1 - errors.indexOf(error));
    }
    const fixed = client.text(uri).split('\n');
    for (const line of expectedLines) assert.equal(fixed[line], 'filters=24');
  });

  test('"Change classes to 3 everywhere" updates every head and its conv in one edit', { skip: NEEDS_CORPUS }, async () => {
    const uri = `untitled:yolov3-${n++}.cfg`;
    const original = corpusCfg('yolov3.cfg');
    const classLine = linesMatching(original, /^classes=80/)[0];
    await client.open(uri, original);
    // The user types 3 in the first head: its conv no longer fits and the heads disagree.
    const diags = await client.changeAndWait(uri, [{ range: { start: { line: classLine, character: 8 }, end: { line: classLine, character: 10 } }, text: '3' }]);
    assert.ok(errorsOf(diags).length >= 2);
    const cursor = { start: { line: classLine, character: 9 }, end: { line: classLine, character: 9 } };
    const offered = await actions(uri, cursor, diags.filter((d) => d.range.start.line === classLine));
    const change = offered.find((a) => a.title === 'Change classes to 3 everywhere');
    assert.ok(change, offered.map((a) => a.title).join(', '));
    assert.deepEqual(offered.map((a) => a.title), ['Change classes to 3 everywhere'], 'the value under the cursor, nothing else');

    const after = await client.applyEdit(uri, change.edit!);
    assert.deepEqual(errorsOf(after), [], 'no errors after the change');
    const before = original.split('\n');
    const now = client.text(uri).split('\n');
    assert.equal(now.length, before.length);
    const changed = now.map((l, i) => (l !== before[i] ? i : -1)).filter((i) => i >= 0);
    const heads = linesMatching(original, /^classes=80/);
    const convs = lastBefore(original, /^\[yolo\]/, /^filters=/);
    assert.deepEqual(changed, [...heads, ...convs].sort((a, b) => a - b), 'only the three classes= and the three filters= lines');
    for (const l of heads) assert.equal(now[l], 'classes=3');
    for (const l of convs) assert.equal(now[l], 'filters=24');
  });

  test('classes change keeps comments after values and adds a missing classes= under the header', async () => {
    const uri = `untitled:tiny-${n++}.cfg`;
    const text = fixture('tiny-heads.cfg')
      .replace('filters=255\nsize=1', 'filters=255   # 3*(80+5)\nsize=1')
      .replace(/(mask = 0,1,2\n.*\n)classes=80\n/, '$1');
    // The second head lost its classes= line: darknet's default is 20, so its conv does not fit.
    const diags = await client.open(uri, text);
    const headErr = errorsOf(diags).find((d) => d.code === 'head-filters')!;
    assert.ok(headErr);
    const classLine = linesMatching(text, /^classes=80/)[0];
    const offered = await actions(uri, { start: { line: classLine, character: 0 }, end: { line: classLine, character: 0 } }, []);
    const change = offered.find((a) => a.title === 'Change classes to 80 everywhere');
    assert.ok(change);
    assert.equal(change.kind, 'refactor.rewrite', 'offered from the cursor, without a diagnostic');
    assert.deepEqual(errorsOf(await client.applyEdit(uri, change.edit!)), []);
    const now = client.text(uri);
    assert.match(now, /filters=255   # 3\*\(80\+5\)\n/, 'already right: untouched, comment kept');
    assert.match(now, /\[yolo\]\nclasses=80\nmask = 0,1,2/, 'inserted under the header');
  });

  test('no classes action when every head already agrees', async () => {
    const uri = `untitled:tiny-${n++}.cfg`;
    const text = fixture('tiny-heads.cfg');
    await client.open(uri, text);
    const line = linesMatching(text, /^classes=80/)[0];
    const offered = await actions(uri, { start: { line, character: 0 }, end: { line, character: 0 } }, []);
    assert.deepEqual(offered, []);
  });

  test('did-you-mean fixes for an unknown section, key and activation; applied, the file is clean', async () => {
    const uri = `untitled:typos-${n++}.cfg`;
    const diags = await client.open(uri, fixture('typos.cfg'));
    const titles: string[] = [];
    let final = diags;
    for (const d of diags) {
      // ask with the current diagnostics: earlier fixes do not move any line
      const offered = await actions(uri, d.range, [d]);
      const fix = offered.find((a) => a.title.startsWith('Change to'));
      assert.ok(fix, `a fix for ${d.code}`);
      titles.push(fix.title);
      final = await client.applyEdit(uri, fix.edit!);
    }
    assert.deepEqual(titles.sort(), ['Change to "filters"', 'Change to "leaky"', 'Change to [convolutional]']);
    assert.deepEqual(final, []);
    assert.match(client.text(uri), /\[convolutional\]\nfilters=8[\s\S]*filters=16[\s\S]*activation=leaky\n/);
  });
});
