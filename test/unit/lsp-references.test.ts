// Go to definition, find references and document highlight for layer references (layers=, from=),
// relative and absolute.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DocumentHighlightKind, type DocumentHighlight, type Location } from 'vscode-languageserver/node';
import { NEEDS_CORPUS, corpusCfg, fixture, linesMatching, startClient, type TestClient } from './lsp-harness';

const tinyText = fixture('tiny-heads.cfg');
const headers = linesMatching(tinyText, /^\[/); // headers[0] is [net], headers[i + 1] is layer i
const routeLine = linesMatching(tinyText, /^layers = -1, 2/)[0];
const shortcutLine = linesMatching(tinyText, /^from=10/)[0];
const firstRouteLine = linesMatching(tinyText, /^layers = -3/)[0];

describe('lsp layer references', () => {
  let client: TestClient;
  const uri = 'untitled:tiny-heads.cfg';
  before(async () => {
    client = await startClient();
    await client.open(uri, tinyText);
  });
  after(() => client.shutdown());

  const at = (line: number, character: number) => ({ textDocument: { uri }, position: { line, character } });
  const definition = (line: number, character: number) => client.request<Location | null>('textDocument/definition', at(line, character));
  const references = (line: number, character: number, includeDeclaration: boolean) =>
    client.request<Location[]>('textDocument/references', { ...at(line, character), context: { includeDeclaration } });
  const lines = (locs: Location[]) => locs.map((l) => `${l.range.start.line}:${l.range.start.character}`).sort();

  test('definition of a relative reference (-1) and of an absolute one (2) in the same list', async () => {
    const minusOne = await definition(routeLine, 'layers = -'.length);
    assert.equal(minusOne?.uri, uri);
    assert.deepEqual(minusOne?.range, { start: { line: headers[10], character: 0 }, end: { line: headers[10], character: '[upsample]'.length } });
    const two = await definition(routeLine, 'layers = -1, 2'.length);
    assert.equal(two?.range.start.line, headers[3]);
    const three = await definition(firstRouteLine, 'layers = -3'.length);
    assert.equal(three?.range.start.line, headers[5], '-3 in layer 7 is layer 4');
    assert.equal(await definition(routeLine, 'layers = -1, 2   # the'.length), null, 'nothing in the comment');
  });

  test('definition of from=10 in [shortcut] goes to layer 10', async () => {
    assert.equal((await definition(shortcutLine, 6))?.range.start.line, headers[11]);
  });

  test('references of a layer, from its header or from a reference to it', async () => {
    const fromHeader = await references(headers[11], 1, true);
    assert.deepEqual(lines(fromHeader), [`${headers[11]}:0`, `${shortcutLine}:5`].sort());
    const fromUse = await references(shortcutLine, 5, false);
    assert.deepEqual(lines(fromUse), [`${shortcutLine}:5`]);
    // layer 2 is read by `2` in the second route only
    assert.deepEqual(lines(await references(headers[3], 2, false)), [`${routeLine}:13`]);
  });

  test('document highlight: the header (write) and every use (read)', async () => {
    const hl = await client.request<DocumentHighlight[]>('textDocument/documentHighlight', at(routeLine, 'layers = -'.length));
    assert.deepEqual(hl.map((h) => [h.range.start.line, h.kind]), [[headers[10], DocumentHighlightKind.Write], [routeLine, DocumentHighlightKind.Read]]);
  });

  test('a forward reference has no definition', async () => {
    const uri2 = 'untitled:forward.cfg';
    await client.open(uri2, tinyText.replace('layers = -3', 'layers = 12'));
    const loc = await client.request<Location | null>('textDocument/definition', { textDocument: { uri: uri2 }, position: { line: firstRouteLine, character: 10 } });
    assert.equal(loc, null);
  });

  test('yolov3: route layers=-1, 61 goes to layer 61, which only that route reads', { skip: NEEDS_CORPUS }, async () => {
    const y = 'untitled:yolov3.cfg';
    const text = corpusCfg('yolov3.cfg');
    await client.open(y, text);
    const yHeaders = linesMatching(text, /^\[/);
    const route = linesMatching(text, /^layers\s*=\s*-1,\s*61/)[0];
    const def = await client.request<Location>('textDocument/definition', { textDocument: { uri: y }, position: { line: route, character: text.split('\n')[route].indexOf('61') + 1 } });
    assert.equal(def.range.start.line, yHeaders[62]);
    const refs = await client.request<Location[]>('textDocument/references', { textDocument: { uri: y }, position: { line: yHeaders[62], character: 1 }, context: { includeDeclaration: false } });
    // layer 62 starts the next stage (stride 2), so no residual shortcut reads 61: only the route
    assert.deepEqual(refs.map((r) => r.range.start.line), [route]);
    // while layer 62 is read by the shortcut at layer 65 (from=-3)
    const refs62 = await client.request<Location[]>('textDocument/references', { textDocument: { uri: y }, position: { line: yHeaders[63], character: 1 }, context: { includeDeclaration: false } });
    assert.deepEqual(refs62.map((r) => r.range.start.line), [yHeaders[66] + 1]);
  });
});
