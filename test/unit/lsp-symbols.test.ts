// Document symbols (outline), folding ranges and semantic tokens.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SymbolKind, type DocumentSymbol, type FoldingRange, type SemanticTokens, type SemanticTokensLegend } from 'vscode-languageserver/node';
import { fixture, linesMatching, startClient, type TestClient } from './lsp-harness';

const text = fixture('tiny-heads.cfg');
const lines = text.split('\n');
const headers = linesMatching(text, /^\[/);

describe('lsp document symbols, folding ranges and semantic tokens', () => {
  let client: TestClient;
  const uri = 'untitled:tiny-heads.cfg';
  before(async () => {
    client = await startClient();
    await client.open(uri, text);
  });
  after(() => client.shutdown());

  test('one symbol per section, named with its index, with its output shape and its keys', async () => {
    const symbols = await client.request<DocumentSymbol[]>('textDocument/documentSymbol', { textDocument: { uri } });
    assert.equal(symbols.length, headers.length);
    assert.deepEqual(symbols.slice(0, 3).map((s) => [s.name, s.detail, s.kind]), [
      ['[net]', '416×416×3', SymbolKind.Module],
      ['#0 [convolutional]', '416×416×16', SymbolKind.Function],
      ['#1 [maxpool]', '208×208×16', SymbolKind.Method],
    ]);
    assert.deepEqual(symbols.at(-1)?.name, '#14 [yolo]');
    assert.deepEqual(symbols[1].children?.map((c) => c.name), ['batch_normalize', 'filters', 'size', 'stride', 'pad', 'activation']);
    for (const s of symbols) assert.equal(s.selectionRange.start.line, s.range.start.line);
  });

  test('a folding range per section, from the header to its last line', async () => {
    const ranges = await client.request<FoldingRange[]>('textDocument/foldingRange', { textDocument: { uri } });
    assert.equal(ranges.length, headers.length);
    ranges.forEach((r, i) => {
      assert.equal(r.startLine, headers[i]);
      assert.notEqual(lines[r.endLine].trim(), '', 'ends on content, not on the blank line after');
      if (i + 1 < headers.length) assert.ok(r.endLine < headers[i + 1]);
    });
  });

  test('semantic tokens mark each layer reference; one pointing forward is not readonly', async () => {
    const legend = client.initializeResult.capabilities.semanticTokensProvider?.legend as SemanticTokensLegend;
    assert.deepEqual(legend.tokenTypes, ['variable']);
    const decode = (t: SemanticTokens) => {
      const out: [number, number, number, string, string[]][] = [];
      let line = 0;
      let char = 0;
      for (let i = 0; i < t.data.length; i += 5) {
        line += t.data[i];
        char = t.data[i] === 0 ? char + t.data[i + 1] : t.data[i + 1];
        const mods = legend.tokenModifiers.filter((_, bit) => t.data[i + 4] & (1 << bit));
        out.push([line, char, t.data[i + 2], legend.tokenTypes[t.data[i + 3]], mods]);
      }
      return out;
    };
    const tokens = decode(await client.request<SemanticTokens>('textDocument/semanticTokens/full', { textDocument: { uri } }));
    const route1 = linesMatching(text, /^layers = -3/)[0];
    const route2 = linesMatching(text, /^layers = -1, 2/)[0];
    const shortcut = linesMatching(text, /^from=10/)[0];
    assert.deepEqual(tokens, [
      [route1, 9, 2, 'variable', ['readonly']],
      [route2, 9, 2, 'variable', ['readonly']],
      [route2, 13, 1, 'variable', ['readonly']],
      [shortcut, 5, 2, 'variable', ['readonly']],
    ]);

    const broken = 'untitled:broken-refs.cfg';
    await client.open(broken, text.replace('from=10', 'from=13'));
    const brokenTokens = decode(await client.request<SemanticTokens>('textDocument/semanticTokens/full', { textDocument: { uri: broken } }));
    assert.deepEqual(brokenTokens.at(-1), [shortcut, 5, 2, 'variable', []]);
  });
});
