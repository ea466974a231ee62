// Inlay hints: `#61 26×26×512` after each section header.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InlayHint } from 'vscode-languageserver/node';
import { NEEDS_CORPUS, corpusCfg, fixture, linesMatching, startClient, type TestClient } from './lsp-harness';

describe('lsp inlay hints', () => {
  let client: TestClient;
  before(async () => { client = await startClient(); });
  after(() => client.shutdown());

  const hints = (uri: string, startLine: number, endLine: number) => client.request<InlayHint[]>('textDocument/inlayHint', {
    textDocument: { uri }, range: { start: { line: startLine, character: 0 }, end: { line: endLine, character: 0 } },
  });

  test('yolov3: layer 61 is 26×26×512, the first head 13×13×255, one hint per section', { skip: NEEDS_CORPUS }, async () => {
    const uri = 'untitled:yolov3.cfg';
    const text = corpusCfg('yolov3.cfg');
    await client.open(uri, text);
    const all = await hints(uri, 0, text.split('\n').length);
    const headers = linesMatching(text, /^\[/);
    assert.equal(all.length, headers.length);
    const at61 = all.find((h) => h.position.line === headers[62]);
    assert.deepEqual(at61, { position: { line: headers[62], character: '[shortcut]'.length }, label: '#61 26×26×512', paddingLeft: true });
    assert.equal(all.find((h) => h.position.line === headers[83])?.label, '#82 13×13×255');
    assert.equal(all[0].label, 'input 416×416×3');
  });

  test('only the hints inside the requested range', async () => {
    const uri = 'untitled:tiny-heads.cfg';
    const text = fixture('tiny-heads.cfg');
    await client.open(uri, text);
    const headers = linesMatching(text, /^\[/);
    const some = await hints(uri, headers[1], headers[3]);
    assert.deepEqual(some.map((h) => h.label), ['#0 416×416×16', '#1 208×208×16', '#2 208×208×32']);
  });
});
