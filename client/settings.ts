// The extension's settings (package.json contributes.configuration, darkslim.*).
import * as vscode from 'vscode';

export type BackendSetting = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface DarkslimSettings {
  backend: BackendSetting;
  /** onnxruntime threads for evaluate, benchmark, detect and quantize (0: automatic). */
  threads: number;
  defaultDataset: string;
  outputFolder: string;
  maxParallelTasks: number;
}

export function readSettings(scope?: vscode.Uri): DarkslimSettings {
  const c = vscode.workspace.getConfiguration('darkslim', scope);
  return {
    backend: c.get<BackendSetting>('backend', 'auto'),
    threads: Math.max(0, Math.floor(c.get<number>('threads', 0))),
    defaultDataset: c.get<string>('defaultDataset', ''),
    outputFolder: c.get<string>('outputFolder', ''),
    maxParallelTasks: Math.max(1, Math.floor(c.get<number>('tasks.maxParallel', 1))),
  };
}
