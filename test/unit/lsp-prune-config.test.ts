// *.prune.yaml over real JSON-RPC: the server checks a pruning config against the model it names.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CompletionItem, Hover, MarkupContent } from 'vscode-languageserver/node';
import { corpusPath } from '../helpers/corpus';
import { fileUri, NEEDS_CORPUS, startClient, type TestClient } from './lsp-harness';

describe('lsp pruning configs', { skip: NEEDS_CORPUS }, () => {
  let client: TestClient;
  let dir = '';
  before(async () => {
    client = await startClient();
    dir = mkdtempSync(join(tmpdir(), 'darkslim-prune-yaml-'));
    copyFileSync(corpusPath('weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.cfg'), join(dir, 'model.cfg'));
    copyFileSync(corpusPath('weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.weights'), join(dir, 'model.weights'));
  });
  after(async () => {
    await client.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const uri = () => fileUri(join(dir, 'model.prune.yaml'));

  test('a valid config has no errors; a percent above percent_limit names the limit', async () => {
    const good = await client.open(uri(), 'model: model.cfg\nweights: model.weights\nstrategy: slim\npercent: 0.3\n');
    assert.deepEqual(good.filter((d) => d.severity === 1).map((d) => d.message), []);
    const bad = await client.replaceAll(uri(), 'model: model.cfg\nweights: model.weights\nstrategy: slim\npercent: 0.9\n');
    const limit = bad.find((d) => d.code === 'percent-limit');
    assert.ok(limit, JSON.stringify(bad.map((d) => d.message)));
    assert.match(limit.message, /above this model's percent_limit 0\.\d{4}/);
    assert.equal(limit.range.start.line, 3);
  });

  test('unknown keys, missing files and layers that do not exist', async () => {
    const diags = await client.replaceAll(uri(), 'model: model.cfg\nweights: missing.weights\npercnt: 0.3\nexclude: [500]\n');
    const messages = diags.map((d) => d.message).join('\n');
    assert.match(messages, /missing\.weights/);
    assert.match(messages, /percnt/);
    writeFileSync(join(dir, 'other.prune.yaml'), '');
    const d2 = await client.replaceAll(uri(), 'model: model.cfg\nweights: model.weights\npercent: 0.2\nexclude: [500]\n');
    assert.ok(d2.some((d) => /layer 500 does not exist/.test(d.message)), JSON.stringify(d2.map((d) => d.message)));
  });

  test('hover on a key and completion of strategy values', async () => {
    await client.replaceAll(uri(), 'model: model.cfg\nweights: model.weights\nstrategy: \npercent: 0.2\n');
    const h = await client.request<Hover | null>('textDocument/hover', { textDocument: { uri: uri() }, position: { line: 3, character: 2 } });
    assert.ok(h && (h.contents as MarkupContent).value.length > 10);
    const items = await client.request<CompletionItem[] | null>('textDocument/completion', { textDocument: { uri: uri() }, position: { line: 2, character: 10 } });
    const labels = (items ?? []).map((i) => i.label);
    for (const s of ['normal', 'shortcut', 'slim']) assert.ok(labels.includes(s), `${s} in ${labels}`);
  });
});
