// The questions commands ask, each with a sensible default first (the weights beside the cfg that
// fit it, the dataset last used, the answers given last time for this model). A question with a
// single sensible answer is not asked.
import { statSync } from 'node:fs';
import { basename, dirname, extname } from 'node:path';
import * as vscode from 'vscode';
import { analyzeCfg } from '../core/darknet/graph';
import { expectedWeightsBytes } from '../core/darknet/weights';
import {
  AnswerMemory, datasetCandidates, folderDescription, parseLambda, parseNumber, parsePercent, prunedFrom, teacherCandidates, weightsCandidates, type DistillChoice, type ModelAnswers,
} from './tasks/requests';
import { readSettings } from './settings';

const EXCLUDE = '{**/node_modules/**,**/.git/**,**/.e2e/**}';

function workspaceFolderOf(path: string): string | undefined {
  return vscode.workspace.getWorkspaceFolder(vscode.Uri.file(path))?.uri.fsPath;
}

/** The description of a file in a quick pick: its folder, relative to the workspace. */
function folderOf(file: string): string {
  return folderDescription(file, workspaceFolderOf(file));
}

/** The cfg a command acts on: the clicked file, the active darknet editor, or one picked. */
export async function resolveCfg(uri?: vscode.Uri): Promise<string | undefined> {
  if (uri instanceof vscode.Uri && uri.scheme === 'file' && /\.cfg$/i.test(uri.fsPath)) return uri.fsPath;
  const doc = vscode.window.activeTextEditor?.document;
  if (doc && doc.uri.scheme === 'file' && (doc.languageId === 'darknet' || /\.cfg$/i.test(doc.fileName))) {
    if (doc.isDirty) await doc.save();
    return doc.uri.fsPath;
  }
  const found = await vscode.workspace.findFiles('**/*.cfg', EXCLUDE, 500);
  if (!found.length) {
    void vscode.window.showErrorMessage('Darkslim: open a darknet .cfg first (no .cfg file in the workspace).');
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(found.map((u) => ({ label: basename(u.fsPath), description: folderOf(u.fsPath), path: u.fsPath })), {
    title: 'Darkslim: which model?', placeHolder: 'Pick a darknet cfg', matchOnDescription: true,
  });
  return pick?.path;
}

function fileSize(p: string): number | undefined {
  try { return statSync(p).size; } catch { return undefined; }
}

/** Expected .weights size of a cfg (undefined when the cfg does not parse into a graph). */
export async function expectedSize(cfg: string): Promise<number | undefined> {
  try {
    const text = Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.file(cfg))).toString('utf8');
    const graph = analyzeCfg(text);
    if (graph.diagnostics.some((d) => d.severity === 'error')) return undefined;
    return expectedWeightsBytes(graph);
  } catch {
    return undefined;
  }
}

/**
 * The weights for a cfg: asked only when more than one file fits the cfg exactly (or none does);
 * the remembered one and the one beside the cfg come first.
 */
export const NO_WEIGHTS = '';

export async function pickWeights(cfg: string, memory: AnswerMemory, opts: { allowOnnx?: boolean; title?: string; allowNone?: boolean } = {}): Promise<string | undefined> {
  const answers = memory.forModel(cfg);
  const pattern = opts.allowOnnx ? '**/*.{weights,onnx}' : '**/*.weights';
  const found = (await vscode.workspace.findFiles(pattern, EXCLUDE, 2000)).map((u) => u.fsPath);
  const expected = await expectedSize(cfg);
  const sizes = new Map<string, number | undefined>(found.map((f) => [f, fileSize(f)]));
  const fits = (f: string) => f.endsWith('.onnx') || expected === undefined || sizes.get(f) === expected;
  const candidates = weightsCandidates(cfg, found.filter((f) => !f.endsWith('.onnx')), answers.weights).filter((f) => sizes.has(f) || fileSize(f) !== undefined);
  const onnx = found.filter((f) => f.endsWith('.onnx') && basename(f).startsWith(basename(cfg, extname(cfg))));
  const fitting = candidates.filter(fits);
  if (fitting.length === 1 && !opts.allowOnnx) return fitting[0];
  type Item = vscode.QuickPickItem & { path?: string; browse?: boolean };
  const scratch: Item[] = opts.allowNone ? [{ label: '$(circle-slash) No initial weights', detail: 'train from scratch (random initialisation)', path: NO_WEIGHTS }] : [];
  const items: Item[] = [
    ...(fitting.length ? [] : scratch),
    ...fitting.map((p) => ({ label: basename(p), description: folderOf(p), detail: expected !== undefined ? `${(expected / 1e6).toFixed(2)} MB: fits ${basename(cfg)}` : undefined, path: p })),
    ...onnx.map((p) => ({ label: basename(p), description: folderOf(p), detail: 'exported ONNX model', path: p })),
    ...candidates.filter((p) => !fits(p)).slice(0, 20).map((p) => ({
      label: `$(warning) ${basename(p)}`, description: folderOf(p),
      detail: `${((sizes.get(p) ?? fileSize(p) ?? 0) / 1e6).toFixed(2)} MB: does not fit ${basename(cfg)}${expected !== undefined ? ` (${(expected / 1e6).toFixed(2)} MB expected)` : ''}`, path: p,
    })),
    ...(fitting.length ? scratch : []),
    { label: '$(folder-opened) Browse…', browse: true },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: opts.title ?? `Darkslim: weights for ${basename(cfg)}`,
    placeHolder: fitting.length ? 'Weights that fit the cfg come first' : 'No weights file in the workspace fits this cfg exactly',
    matchOnDescription: true,
  });
  if (!pick) return undefined;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: false, defaultUri: vscode.Uri.file(dirname(cfg)), openLabel: 'Use these weights',
      filters: opts.allowOnnx ? { 'Weights or ONNX': ['weights', 'onnx'], 'All files': ['*'] } : { 'Darknet weights': ['weights'], 'All files': ['*'] },
    });
    return uris?.[0]?.fsPath;
  }
  return pick.path;
}

/** A dataset (.data file, list, or folder): the remembered one and the last used first. */
export async function pickDataset(cfg: string, memory: AnswerMemory, title: string): Promise<string | undefined> {
  const answers = memory.forModel(cfg);
  const settings = readSettings(vscode.Uri.file(cfg));
  const folder = workspaceFolderOf(cfg);
  const setting = settings.defaultDataset ? (settings.defaultDataset.startsWith('/') || !folder ? settings.defaultDataset : `${folder}/${settings.defaultDataset}`) : undefined;
  const found = (await vscode.workspace.findFiles('**/*.data', EXCLUDE, 500)).map((u) => u.fsPath);
  const list = datasetCandidates(found, { remembered: answers.dataset, last: memory.lastDataset(), setting });
  type Item = vscode.QuickPickItem & { path?: string; browse?: 'file' | 'folder' };
  const items: Item[] = [
    ...list.map((p, i) => ({
      label: basename(p), description: folderOf(p),
      detail: p === answers.dataset ? 'used last time for this model' : p === memory.lastDataset() ? 'used last time' : p === setting ? 'darkslim.defaultDataset' : i === 0 ? undefined : undefined,
      path: p,
    })),
    { label: '$(file) Browse for a .data file or an image list…', browse: 'file' },
    { label: '$(folder) Browse for a folder of images…', browse: 'folder' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'A darknet .data file (train=, valid=, names=), an image list or a folder', matchOnDescription: true });
  if (!pick) return undefined;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: false, canSelectFiles: pick.browse === 'file', canSelectFolders: pick.browse === 'folder',
      defaultUri: vscode.Uri.file(dirname(cfg)), openLabel: 'Use this dataset',
    });
    return uris?.[0]?.fsPath;
  }
  return pick.path;
}

export async function askPercent(answers: ModelAnswers): Promise<number | undefined> {
  const value = answers.percent !== undefined ? `${Math.round(answers.percent * 10000) / 100}%` : '50%';
  const text = await vscode.window.showInputBox({
    title: 'Darkslim: prune how much?',
    prompt: 'Fraction of the ranked BN |γ| to prune with one global threshold (e.g. 50% or 0.5). A percent above the model\'s percent_limit is refused; "Show layer redundancy" previews it.',
    value,
    valueSelection: [0, value.length - (value.endsWith('%') ? 1 : 0)],
    validateInput: (t) => parsePercent(t).error,
  });
  return text === undefined ? undefined : parsePercent(text).value;
}

export async function askStrategy(answers: ModelAnswers): Promise<'normal' | 'shortcut' | 'slim' | undefined> {
  const all = [
    { label: 'slim', description: 'keep a coupled channel if any layer keeps it (prunes across shortcuts)' },
    { label: 'shortcut', description: 'coupled channels follow the first layer of their group' },
    { label: 'normal', description: 'never prune channels joined by a shortcut' },
  ] as const;
  const first = answers.strategy ?? 'slim';
  const items = [...all].sort((a, b) => (a.label === first ? -1 : b.label === first ? 1 : 0));
  const pick = await vscode.window.showQuickPick(items, { title: 'Darkslim: pruning strategy' });
  return pick?.label;
}

export async function askNumber(title: string, prompt: string, value: number, parse: (t: string) => { value?: number; error?: string }): Promise<number | undefined> {
  const text = await vscode.window.showInputBox({ title, prompt, value: String(value), validateInput: (t) => parse(t).error });
  return text === undefined ? undefined : parse(text).value;
}

export const askLambda = (answers: ModelAnswers) => askNumber('Darkslim: sparsity λ', 'λ of the L1 penalty on the BN scales (network slimming; typical 0.0001 to 0.01)', answers.lambda ?? 0.001, parseLambda);
export const askEpochs = (answers: ModelAnswers, what: string) => askNumber(`Darkslim: ${what} epochs`, 'Epochs to train', answers.epochs ?? 10, (t) => parseNumber(t, 'epochs', { min: 1, integer: true }));

export async function askImage(answers: ModelAnswers, cfg: string): Promise<string | undefined> {
  const uris = await vscode.window.showOpenDialog({
    canSelectMany: false, openLabel: 'Detect',
    defaultUri: vscode.Uri.file(answers.image ? dirname(answers.image) : dirname(cfg)),
    filters: { Images: ['jpg', 'jpeg', 'png', 'bmp', 'webp', 'tif', 'tiff'] },
  });
  return uris?.[0]?.fsPath;
}

export async function askMethod(answers: ModelAnswers): Promise<'kl' | 'minmax' | 'percentile' | undefined> {
  const all = [
    { label: 'kl', description: 'KL divergence thresholds (TensorRT/MNN style), the default' },
    { label: 'percentile', description: '99.99th percentile of |x|' },
    { label: 'minmax', description: 'the full observed range' },
  ] as const;
  const first = answers.method ?? 'kl';
  const pick = await vscode.window.showQuickPick([...all].sort((a, b) => (a.label === first ? -1 : b.label === first ? 1 : 0)), { title: 'Darkslim: calibration method' });
  return pick?.label;
}

/** The teacher of a distillation: the remembered one, the original its prune report names, then by name (teacherCandidates). */
export async function pickTeacherCfg(student: string, answers: ModelAnswers): Promise<string | undefined> {
  const found = (await vscode.workspace.findFiles('**/*.cfg', EXCLUDE, 500)).map((u) => u.fsPath);
  const original = prunedFrom(student);
  const list = teacherCandidates(student, found, answers.teacherCfg, original);
  type Item = vscode.QuickPickItem & { path?: string; browse?: boolean };
  const items: Item[] = [
    ...list.map((p) => ({
      label: basename(p), description: folderOf(p),
      detail: p === answers.teacherCfg ? 'used last time for this model' : p === original ? `${basename(student)} was pruned from it` : undefined,
      path: p,
    })),
    { label: '$(folder-opened) Browse…', browse: true },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: `Darkslim: teacher of ${basename(student)} (the unpruned model, frozen)`,
    placeHolder: 'The teacher must take the same input size and have the same [yolo] heads',
    matchOnDescription: true,
  });
  if (!pick) return undefined;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: false, defaultUri: vscode.Uri.file(dirname(student)), openLabel: 'Use as teacher',
      filters: { 'Darknet cfg': ['cfg'], 'All files': ['*'] },
    });
    return uris?.[0]?.fsPath;
  }
  return pick.path;
}

export async function askDistillMethod(answers: ModelAnswers): Promise<DistillChoice | undefined> {
  const all: (vscode.QuickPickItem & { choice: DistillChoice })[] = [
    { choice: 'objectness-gt', label: 'Objectness, labels first', description: 'the default', detail: 'the teacher\'s boxes and classes scaled by its objectness; where a label assigns a box, the label alone sets the objectness target' },
    { choice: 'objectness', label: 'Objectness', detail: 'Mehta & Ozturk 2018: the teacher\'s objectness is a target everywhere' },
    { choice: 'hinton', label: 'Hinton', detail: 'soft class targets at temperature 3 (α 0.5), plus half the ground-truth loss' },
  ];
  const first = answers.distillMethod ?? 'objectness-gt';
  const pick = await vscode.window.showQuickPick([...all].sort((a, b) => (a.choice === first ? -1 : b.choice === first ? 1 : 0)), { title: 'Darkslim: distillation method' });
  return pick?.choice;
}
