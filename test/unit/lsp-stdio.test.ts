// The server as other editors run it: `darkslim lsp --stdio` (and `server.ts --stdio`, as dist/server.js
// is run), a child process speaking JSON-RPC on its stdin/stdout.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import type { Hover, MarkupContent } from 'vscode-languageserver/node';
import { REPO_ROOT, fixture, spawnClient } from './lsp-harness';

async function session(args: string[]): Promise<void> {
  const client = await spawnClient(['--import', 'tsx', ...args]);
  try {
    assert.equal(client.initializeResult.capabilities.hoverProvider, true);
    const uri = 'file:///tmp/typos.cfg';
    const diags = await client.open(uri, fixture('typos.cfg'));
    assert.deepEqual(diags.map((d) => d.code).sort(), ['bad-value', 'unknown-key', 'unknown-section']);
    const hover = await client.request<Hover>('textDocument/hover', { textDocument: { uri }, position: { line: 1, character: 2 } }); // [net]
    assert.match((hover.contents as MarkupContent).value, /network input 64×64×3/);
  } finally {
    assert.equal(await client.shutdown(), 0, 'exit code after shutdown + exit');
  }
}

describe('lsp over stdio', () => {
  test('darkslim lsp --stdio: initialize, diagnostics, hover, shutdown and exit 0', () => session(['cli/main.ts', 'lsp', '--stdio']));

  test('server.ts started as a program picks the transport from its arguments', () => session(['server/server.ts', '--stdio']));

  test('darkslim lsp without a transport is a usage error', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'lsp'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /choose a transport: --stdio/);
  });
});
