// Completion: section names, the keys of the current section not yet set, enum values, layer indices.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CompletionItem, CompletionList, TextEdit } from 'vscode-languageserver/node';
import { ACTIVATIONS } from '../../core/darknet/schema';
import { fixture, linesMatching, startClient, type TestClient } from './lsp-harness';

const base = fixture('tiny-heads.cfg');

describe('lsp completion', () => {
  let client: TestClient;
  let n = 0;
  before(async () => { client = await startClient(); });
  after(() => client.shutdown());

  /** Opens `text` with `|` marking the cursor and asks for completions there. */
  async function complete(marked: string): Promise<CompletionItem[]> {
    const offset = marked.indexOf('|');
    const text = marked.slice(0, offset) + marked.slice(offset + 1);
    const before = text.slice(0, offset).split('\n');
    const uri = `untitled:completion-${n++}.cfg`;
    await client.open(uri, text);
    const list = await client.request<CompletionList>('textDocument/completion', {
      textDocument: { uri }, position: { line: before.length - 1, character: before.at(-1)!.length },
    });
    assert.equal(list.isIncomplete, false);
    return list.items;
  }

  test('section names after [, replacing the typed text and an auto-closed ]', async () => {
    const items = await complete(base + '\n[conv|]\n');
    const labels = items.map((i) => i.label);
    for (const name of ['[convolutional]', '[conv]', '[yolo]', '[route]', '[shortcut]', '[Gaussian_yolo]']) assert.ok(labels.includes(name), name);
    const conv = items.find((i) => i.label === '[convolutional]')!;
    const edit = conv.textEdit as TextEdit;
    assert.equal(edit.newText, '[convolutional]');
    assert.equal(edit.range.end.character - edit.range.start.character, '[conv]'.length);
    assert.equal(items.find((i) => i.label === '[conv]')?.detail, 'alias of [convolutional]');
  });

  test('keys valid in the current section that are not set yet', async () => {
    const marked = base.replace('filters=16\n', 'filters=16\n|\n');
    const items = await complete(marked);
    const labels = new Set(items.map((i) => i.label));
    for (const set of ['batch_normalize', 'filters', 'size', 'stride', 'pad', 'activation']) assert.ok(!labels.has(set), `${set} is already set`);
    for (const unset of ['groups', 'dilation', 'padding', 'learning_rate']) assert.ok(labels.has(unset), unset);
    assert.ok(!labels.has('classes'), 'a [yolo] key is not offered in a [convolutional]');
    const groups = items.find((i) => i.label === 'groups')!;
    assert.equal((groups.textEdit as TextEdit).newText, 'groups=');
    assert.equal(groups.detail, 'int = 1');
  });

  test('activation values after activation=', async () => {
    const items = await complete(base.replace('activation=leaky\n', 'activation=le|\n'));
    assert.deepEqual(items.map((i) => i.label), [...ACTIVATIONS]);
    const edit = items.find((i) => i.label === 'leaky')!.textEdit as TextEdit;
    assert.equal(edit.range.end.character - edit.range.start.character, 'le'.length);
  });

  test('layers= offers every earlier layer, relative and absolute, with its shape', async () => {
    const items = await complete(base.replace('layers = -1, 2', 'layers = -1, |'));
    assert.equal(items.length, 2 * 10, 'layer 10 can read layers 0 to 9');
    const rel = items.find((i) => i.label === '-1')!;
    assert.equal(rel.detail, 'layer 9: upsample 208×208×32');
    const abs = items.find((i) => i.label === '2')!;
    assert.equal(abs.detail, 'layer 2 (absolute): convolutional 208×208×32');
    assert.ok(rel.sortText! < abs.sortText!, 'relative references come first');
    assert.equal((abs.textEdit as TextEdit).range.start.character, 'layers = -1, '.length);
  });

  test('nothing inside comments', async () => {
    assert.deepEqual(await complete('# a comm|ent\n' + base), []);
    assert.ok(linesMatching(base, /^#/).length > 0);
  });
});
