// Code lens: params and BFLOPs per layer; the model totals on [net].
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CodeLens } from 'vscode-languageserver/node';
import { NEEDS_CORPUS, corpusCfg, fixture, linesMatching, startClient, type TestClient } from './lsp-harness';

describe('lsp code lens', () => {
  let client: TestClient;
  before(async () => { client = await startClient(); });
  after(() => client.shutdown());

  test('yolov3: totals on [net] (darknet prints 65.879 BFLOPs) and per-layer figures', { skip: NEEDS_CORPUS }, async () => {
    const uri = 'untitled:yolov3.cfg';
    const text = corpusCfg('yolov3.cfg');
    await client.open(uri, text);
    const lenses = await client.request<CodeLens[]>('textDocument/codeLens', { textDocument: { uri } });
    const headers = linesMatching(text, /^\[/);
    const byLine = new Map(lenses.map((l) => [l.range.start.line, l.command?.title]));
    assert.equal(byLine.get(headers[0]), '107 layers · 61,949,149 params (61.95 M) · 65.879 BFLOPs');
    assert.equal(byLine.get(headers[1]), '928 params · 0.299 BFLOPs');
    assert.equal(byLine.get(headers[82]), '261,375 params · 0.088 BFLOPs');
    assert.equal(byLine.has(headers[83]), false, 'a [yolo] head has neither params nor BFLOPs');
    assert.equal(byLine.get(headers[62]), '0.00035 BFLOPs', 'a shortcut: no params, a tiny number of adds');
  });

  test('every lens is display-only and sits on a section header', async () => {
    const uri = 'untitled:tiny-heads.cfg';
    const text = fixture('tiny-heads.cfg');
    await client.open(uri, text);
    const lenses = await client.request<CodeLens[]>('textDocument/codeLens', { textDocument: { uri } });
    const headers = new Set(linesMatching(text, /^\[/));
    assert.ok(lenses.length >= 8);
    for (const l of lenses) {
      assert.ok(headers.has(l.range.start.line));
      assert.equal(l.command?.command, '');
    }
    // convs and maxpools (BFLOPs) and the shortcut (adds) have lenses; routes, upsample and heads do not
    assert.equal(lenses.length, 1 + 7 + 2 + 1);
  });
});
