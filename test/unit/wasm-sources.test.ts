import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileWat, generatedModule, WASM_SOURCES } from '../../scripts/build-wasm';
import { repoRoot } from '../helpers/root';

test('each generated WebAssembly module is its .wat compiled (run `npm run build:wasm` after editing one)', async () => {
  for (const { wat, out, constant } of WASM_SOURCES) {
    const bytes = await compileWat(join(repoRoot(), wat));
    assert.ok(WebAssembly.validate(new Uint8Array(bytes)), `${wat} compiles to a valid module`);
    assert.equal(readFileSync(join(repoRoot(), out), 'utf8'), generatedModule(wat, constant, bytes), `${out} is stale: npm run build:wasm`);
  }
});
