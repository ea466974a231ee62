// Picks the tfjs backend for training: `tensorflow` (@tensorflow/tfjs-node, an optional dependency
// that needs libtensorflow and so may be absent), else `wasm` (with the gradient kernels it lacks,
// see kernels.ts), else `cpu` (correct but far too slow to train anything real).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import { registerRaw, registerWasmGradKernels } from './kernels';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

export interface BackendInfo {
  name: BackendName;
  /** Why this backend was picked, or why preferred ones were not (for the log). */
  note: string;
}

let tfnodeError: string | undefined;

function tryTfNode(): boolean {
  if (tf.findBackend('tensorflow')) return true;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return tf.findBackend('tensorflow') !== null;
  } catch (e) {
    tfnodeError = (e as Error).message.split('\n')[0];
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmGradKernels();
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

async function useCpu(): Promise<void> {
  await import('@tensorflow/tfjs-backend-cpu');
  registerRaw('cpu');
  await tf.setBackend('cpu');
}

/** Selects and initialises a backend. `auto`: tensorflow, else wasm, else cpu. */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (choice === 'tensorflow' || choice === 'auto') {
    if (tryTfNode() && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return { name: 'tensorflow', note: '@tensorflow/tfjs-node (libtensorflow)' };
    }
    if (choice === 'tensorflow') {
      throw new Error(`backend tensorflow is not available: @tensorflow/tfjs-node did not load (${tfnodeError ?? 'not installed'}). Install it with \`npm install @tensorflow/tfjs-node\` or use --backend wasm.`);
    }
  }
  if (choice === 'wasm' || choice === 'auto') {
    if (await tryWasm()) {
      await tf.ready();
      const why = choice === 'auto' ? ` (@tensorflow/tfjs-node not available${tfnodeError ? `: ${tfnodeError}` : ''})` : '';
      return { name: 'wasm', note: `tfjs wasm, single-threaded${why}` };
    }
    if (choice === 'wasm') throw new Error('backend wasm failed to initialise');
  }
  await useCpu();
  await tf.ready();
  return { name: 'cpu', note: choice === 'cpu' ? 'tfjs cpu (slow)' : 'tfjs cpu (slow): neither tfjs-node nor wasm could be loaded' };
}

export function parseBackendChoice(text: string | undefined): BackendChoice {
  const v = (text ?? 'auto').toLowerCase();
  if (v === 'auto' || v === 'wasm' || v === 'cpu') return v;
  if (v === 'tensorflow' || v === 'tfjs-node' || v === 'node') return 'tensorflow';
  throw new Error(`unknown backend "${text}" (auto, tensorflow, wasm, cpu)`);
}
