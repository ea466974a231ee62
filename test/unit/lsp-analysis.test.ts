// One analysis per version shared by every feature; bursts of edits coalesced; never a stale answer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Hover, MarkupContent } from 'vscode-languageserver/node';
import { fixture, linesMatching, startClient } from './lsp-harness';

const text = fixture('tiny-heads.cfg');
const filtersLine = linesMatching(text, /^filters=16$/)[0];
const header0 = linesMatching(text, /^\[convolutional\]/)[0];

/** An edit that sets the first conv's filters= to `value` (the line holds filters=NN). */
const setFilters = (value: number, current: number) => ({
  range: { start: { line: filtersLine, character: 8 }, end: { line: filtersLine, character: 8 + String(current).length } },
  text: String(value),
});

describe('lsp analysis sharing and scheduling', () => {
  test('a burst of 200 edits is analysed at most twice; published versions only increase', async () => {
    // A long quiet window makes the coalescing independent of this machine's speed.
    const client = await startClient({ server: { debounce: { quietMs: 300, maxWaitMs: 60_000 } } });
    try {
      const uri = 'untitled:burst.cfg';
      await client.open(uri, text);
      const analysesBefore = (await client.status()).analyses;
      let current = 16;
      let version = 1;
      for (let i = 0; i < 200; i++) {
        const next = 16 + ((i + 1) % 50);
        version = await client.change(uri, [setFilters(next, current)]);
        current = next;
      }
      await client.nthDiagnostics(uri, version, 1);
      const versions = client.published.filter((p) => p.uri === uri).map((p) => p.version ?? -1);
      // The open, perhaps the burst's first edit (analysed at once when the document was quiet), its end.
      assert.equal(versions[0], 1);
      assert.equal(versions.at(-1), version);
      assert.ok(versions.length <= 3, `published versions ${versions.join(', ')}`);
      assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
      assert.ok((await client.status()).analyses - analysesBefore <= 2, 'the intermediate versions were never analysed');
    } finally {
      await client.shutdown();
    }
  });

  test('a quiet document is analysed at once; an edit right after an analysis waits for the burst to end', async () => {
    // A window of a minute: only the immediate path can publish within these timeouts.
    const client = await startClient({ server: { debounce: { quietMs: 60_000, maxWaitMs: 60_000 } } });
    try {
      const uri = 'untitled:quiet.cfg';
      const opened = client.nextDiagnostics(uri, 1, 2000);
      await client.open(uri, text);
      await opened;
      const version = await client.change(uri, [setFilters(17, 16)]);
      await assert.rejects(client.nextDiagnostics(uri, version, 300), /no diagnostics/);
      // ...while requests still answer for that version
      const hover = await client.request<Hover>('textDocument/hover', { textDocument: { uri }, position: { line: header0, character: 2 } });
      assert.match((hover.contents as MarkupContent).value, /416×416×17/);
    } finally {
      await client.shutdown();
    }
  });

  test('a request right after a burst answers for the latest version', async () => {
    const client = await startClient();
    try {
      const uri = 'untitled:latest.cfg';
      await client.open(uri, text);
      let current = 16;
      let version = 1;
      for (let i = 1; i <= 100; i++) {
        version = await client.change(uri, [setFilters(16 + i, current)]);
        current = 16 + i;
      }
      const hover = await client.request<Hover>('textDocument/hover', { textDocument: { uri }, position: { line: header0, character: 2 } });
      assert.match((hover.contents as MarkupContent).value, /\| 416×416×3 \| 416×416×116 \|/);
      const last = await client.nthDiagnostics(uri, version, 1);
      assert.equal(last.version, version);
      const versions = client.published.filter((p) => p.uri === uri).map((p) => p.version ?? -1);
      assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'never an older version after a newer one');
      assert.equal(new Set(versions).size, versions.length, 'no version published twice');
    } finally {
      await client.shutdown();
    }
  });

  test('every feature reads the same analysis of a version', async () => {
    const client = await startClient();
    try {
      const uri = 'untitled:shared.cfg';
      await client.open(uri, text);
      const before = (await client.status()).analyses;
      const doc = { textDocument: { uri } };
      const pos = { ...doc, position: { line: header0, character: 1 } };
      await Promise.all([
        client.request('textDocument/hover', pos),
        client.request('textDocument/definition', pos),
        client.request('textDocument/references', { ...pos, context: { includeDeclaration: true } }),
        client.request('textDocument/documentHighlight', pos),
        client.request('textDocument/completion', pos),
        client.request('textDocument/inlayHint', { ...doc, range: { start: { line: 0, character: 0 }, end: { line: 200, character: 0 } } }),
        client.request('textDocument/codeLens', doc),
        client.request('textDocument/documentSymbol', doc),
        client.request('textDocument/foldingRange', doc),
        client.request('textDocument/semanticTokens/full', doc),
        client.request('textDocument/codeAction', { ...doc, range: pos.position && { start: pos.position, end: pos.position }, context: { diagnostics: [] } }),
        client.request('darkslim/modelSummary', { uri }),
      ]);
      assert.equal((await client.status()).analyses, before, 'the analysis made for the diagnostics served them all');
    } finally {
      await client.shutdown();
    }
  });
});
