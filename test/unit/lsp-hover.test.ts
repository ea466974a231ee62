// Hover over real JSON-RPC: section headers (layer facts), keys (documentation), layer references.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Hover, MarkupContent } from 'vscode-languageserver/node';
import { NEEDS_CORPUS, corpusCfg, fixture, linesMatching, startClient, type TestClient } from './lsp-harness';

describe('lsp hover', () => {
  let client: TestClient;
  const yolov3 = 'untitled:yolov3.cfg';
  const tiny = 'untitled:tiny-heads.cfg';
  let yolov3Text = '';
  const tinyText = fixture('tiny-heads.cfg');

  before(async () => {
    client = await startClient();
    await client.open(tiny, tinyText);
    if (!NEEDS_CORPUS) {
      yolov3Text = corpusCfg('yolov3.cfg');
      await client.open(yolov3, yolov3Text);
    }
  });
  after(() => client.shutdown());

  async function hoverText(uri: string, line: number, character: number): Promise<string | null> {
    const h = await client.request<Hover | null>('textDocument/hover', { textDocument: { uri }, position: { line, character } });
    return h ? (h.contents as MarkupContent).value : null;
  }

  test('a layer header: index, type, input → output, params and BFLOPs', { skip: NEEDS_CORPUS }, async () => {
    const header = linesMatching(yolov3Text, /^\[/)[62]; // sections[62] = layer 61 ([net] is sections[0])
    const text = await hoverText(yolov3, header, 3);
    assert.ok(text);
    assert.match(text, /^\*\*\[shortcut\]\*\* layer 61/);
    assert.match(text, /\| 26×26×512 \| 26×26×512 \| 0 \| 0\.00035 \|/);
    assert.match(text, /Reads layer 60, layer 58\./);

    const conv = await hoverText(yolov3, linesMatching(yolov3Text, /^\[/)[2], 1); // layer 1: 3×3/2 conv
    assert.match(conv ?? '', /\| 416×416×32 \| 208×208×64 \| 18,560 \| 1\.595 \|/);
  });

  test('[net]: input size and the model totals', { skip: NEEDS_CORPUS }, async () => {
    const text = await hoverText(yolov3, linesMatching(yolov3Text, /^\[net\]/)[0], 2);
    assert.match(text ?? '', /network input 416×416×3/);
    assert.match(text ?? '', /\| 107 \| 61,949,149 \(61\.95 M\) \| 65\.879 \| 532,444 \|/);
  });

  test('a key: description, default and allowed values', async () => {
    const line = linesMatching(tinyText, /^activation=leaky/)[0];
    const text = await hoverText(tiny, line, 3);
    assert.match(text ?? '', /^\*\*activation\*\* \(enum, default logistic\)/);
    assert.match(text ?? '', /Allowed values: `linear`, `leaky`, .*`mish`/);
    const filters = await hoverText(tiny, linesMatching(tinyText, /^filters=/)[0], 1);
    assert.match(filters ?? '', /^\*\*filters\*\* \(int, default 1, ≥ 1\)/);
  });

  test('layers=: the referenced layers, relative and absolute, with their shapes', async () => {
    const line = linesMatching(tinyText, /^layers = -1, 2/)[0];
    const text = await hoverText(tiny, line, 'layers = -'.length);
    assert.ok(text);
    assert.match(text, /\| -1 \| 9 \| upsample \| 208×208×32 \|/);
    assert.match(text, /\| 2 \| 2 \| convolutional \| 208×208×32 \|/);
    assert.match(text, /Route output: 208×208×64/);
    const from = await hoverText(tiny, linesMatching(tinyText, /^from=10/)[0], 6);
    assert.match(from ?? '', /\| 10 \| 10 \| route \| 208×208×64 \|/);
  });

  test('nothing to say on blank lines and comments', async () => {
    assert.equal(await hoverText(tiny, linesMatching(tinyText, /^$/)[0], 0), null);
    assert.equal(await hoverText(tiny, linesMatching(tinyText, /^#/)[0], 3), null);
  });
});
