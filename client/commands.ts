// The model commands (palette, explorer and editor context menus of a darknet cfg). Each asks only
// what it must, remembers the answers per model, runs a task in the worker, and opens the result.
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import * as vscode from 'vscode';
import type { TaskRequest } from '../core/pipeline/tasks';
import { DashboardHub } from './panels/dashboardPanel';
import { RedundancyPanel, type RedundancyHost } from './panels/redundancyPanel';
import { ReportPanel } from './panels/reportPanel';
import {
  askDistillMethod, askEpochs, askImage, askLambda, askMethod, askPercent, askStrategy, pickDataset, pickTeacherCfg, pickWeights, resolveCfg,
} from './prompts';
import { readSettings } from './settings';
import type { TaskOutcome, TaskRunner } from './taskRunner';
import { AnswerMemory, completionMessage, distillMethodArgs, resolveOutputFolder, taskTitle } from './tasks/requests';

export interface CommandContext {
  extensionUri: vscode.Uri;
  storage: vscode.Uri;
  runner: TaskRunner;
  memory: AnswerMemory;
  dashboard: DashboardHub;
  redundancyHost: RedundancyHost;
}

function workspaceFolderOf(path: string): string | undefined {
  return vscode.workspace.getWorkspaceFolder(vscode.Uri.file(path))?.uri.fsPath;
}

export function outDirFor(cfg: string): string | undefined {
  return resolveOutputFolder(readSettings(vscode.Uri.file(cfg)).outputFolder, cfg, workspaceFolderOf(cfg));
}

function threads(cfg: string): number | undefined {
  return readSettings(vscode.Uri.file(cfg)).threads || undefined;
}

const stem = (p: string) => basename(p, extname(p));

async function reveal(path: string): Promise<void> {
  await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(path));
}

/** Says what a task produced, with buttons that open it. */
async function announce(req: TaskRequest, outcome: TaskOutcome, actions: Record<string, () => unknown> = {}): Promise<void> {
  if (outcome.status !== 'done' || !outcome.done) return;
  const message = completionMessage(req, outcome.done, workspaceFolderOf(req.args.cfg ?? ''));
  const pick = await vscode.window.showInformationMessage(`Darkslim: ${message}`, ...Object.keys(actions));
  if (pick) await actions[pick]();
}

/** Runs a prune request, then opens the pruned cfg beside a diff with the original and the report. */
export async function runPrune(ctx: CommandContext, req: Extract<TaskRequest, { kind: 'prune' }>): Promise<{ ok: boolean; message: string }> {
  const outcome = await ctx.runner.run(req);
  if (!outcome) return { ok: false, message: 'The prune task did not start.' };
  if (outcome.status === 'cancelled') return { ok: false, message: 'Pruning was cancelled.' };
  if (outcome.status !== 'done' || !outcome.done) return { ok: false, message: outcome.error ?? 'Pruning failed.' };
  const o = outcome.done.outputs;
  const original = o.original ?? req.args.cfg;
  if (original && o.cfg) {
    await vscode.commands.executeCommand('vscode.diff', vscode.Uri.file(original), vscode.Uri.file(o.cfg),
      `${basename(original)} ↔ ${basename(o.cfg)}`, { preview: false, viewColumn: vscode.ViewColumn.One });
  }
  if (o.report) ReportPanel.show(ctx.extensionUri, o.report);
  void announce(req, outcome, {
    'Open Pruned cfg': () => vscode.window.showTextDocument(vscode.Uri.file(o.cfg)),
    // a pruned model recovers its mAP by training; its prune report names the original as teacher
    'Distill from the Original…': () => vscode.commands.executeCommand('darkslim.distill', vscode.Uri.file(o.cfg)),
    'Reveal in Explorer': () => reveal(o.cfg),
  });
  return { ok: true, message: completionMessage(req, outcome.done, workspaceFolderOf(o.cfg)) };
}

async function trainTask(ctx: CommandContext, req: Extract<TaskRequest, { kind: 'train' | 'finetune' | 'distill' }>): Promise<void> {
  const runId = `${Date.now()}`;
  ctx.dashboard.show(true);
  const outcome = await ctx.runner.run(req, {
    onStart: () => ctx.dashboard.startRun({ id: runId, label: taskTitle(req), task: req.kind }),
    onEvent: (e) => ctx.dashboard.push(runId, e),
  });
  if (!outcome || outcome.status !== 'done' || !outcome.done) return;
  const o = outcome.done.outputs;
  const weights = o.best ?? o.final ?? o.last;
  void announce(req, outcome, {
    ...(weights ? { 'Reveal Weights': () => reveal(weights) } : {}),
    'Show Dashboard': () => ctx.dashboard.show(),
  });
}

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const { runner, memory } = ctx;
  const reg = (id: string, f: (uri?: vscode.Uri) => Promise<unknown>) => vscode.commands.registerCommand(id, async (uri?: unknown) => {
    try {
      await f(uri instanceof vscode.Uri ? uri : undefined);
    } catch (e) {
      void vscode.window.showErrorMessage(`Darkslim: ${(e as Error).message}`);
    }
  });

  return [
    reg('darkslim.prune', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory);
      if (!weights) return;
      const answers = memory.forModel(cfg);
      const percent = await askPercent(answers);
      if (percent === undefined) return;
      const strategy = await askStrategy(answers);
      if (!strategy) return;
      await memory.remember(cfg, { weights, percent, strategy });
      await runPrune(ctx, { kind: 'prune', args: { cfg, weights, percent, strategy, outDir: outDirFor(cfg) } });
    }),

    reg('darkslim.showRedundancy', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory);
      if (!weights) return;
      await memory.remember(cfg, { weights });
      RedundancyPanel.show(ctx.redundancyHost, cfg, weights);
    }),

    reg('darkslim.sparsityTrain', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const picked = await pickWeights(cfg, memory, { title: `Darkslim: weights to start sparsity training of ${basename(cfg)} from`, allowNone: true });
      if (picked === undefined) return;
      const weights = picked || undefined;
      const answers = memory.forModel(cfg);
      const data = await pickDataset(cfg, memory, 'Darkslim: sparsity-train on which dataset?');
      if (!data) return;
      const lambda = await askLambda(answers);
      if (lambda === undefined) return;
      const epochs = await askEpochs(answers, 'sparsity training');
      if (epochs === undefined) return;
      await memory.remember(cfg, { weights, dataset: data, lambda, epochs });
      const s = readSettings(vscode.Uri.file(cfg));
      await trainTask(ctx, {
        kind: 'train',
        args: { cfg, weights, data, lambda, epochs, backend: s.backend, outDir: outDirFor(cfg) ?? join(dirname(cfg), `${stem(cfg)}-sparsity`) },
      });
    }),

    reg('darkslim.finetune', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const picked = await pickWeights(cfg, memory, { title: `Darkslim: weights to fine-tune ${basename(cfg)} from`, allowNone: true });
      if (picked === undefined) return;
      const weights = picked || undefined;
      const answers = memory.forModel(cfg);
      const data = await pickDataset(cfg, memory, 'Darkslim: fine-tune on which dataset?');
      if (!data) return;
      const epochs = await askEpochs(answers, 'fine-tuning');
      if (epochs === undefined) return;
      await memory.remember(cfg, { weights, dataset: data, epochs });
      const s = readSettings(vscode.Uri.file(cfg));
      await trainTask(ctx, {
        kind: 'finetune',
        args: { cfg, weights, data, epochs, backend: s.backend, outDir: outDirFor(cfg) ?? join(dirname(cfg), `${stem(cfg)}-finetune`) },
      });
    }),

    reg('darkslim.distill', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory, { title: `Darkslim: weights of the student ${basename(cfg)}` });
      if (!weights) return;
      const answers = memory.forModel(cfg);
      const teacherCfg = await pickTeacherCfg(cfg, answers);
      if (!teacherCfg) return;
      const teacherWeights = await pickWeights(teacherCfg, memory, { title: `Darkslim: weights of the teacher ${basename(teacherCfg)}` });
      if (!teacherWeights) return;
      const data = await pickDataset(cfg, memory, 'Darkslim: distil on which dataset?');
      if (!data) return;
      const choice = await askDistillMethod(answers);
      if (!choice) return;
      const epochs = await askEpochs(answers, 'distillation');
      if (epochs === undefined) return;
      await memory.remember(cfg, { weights, teacherCfg, dataset: data, distillMethod: choice, epochs });
      await memory.remember(teacherCfg, { weights: teacherWeights }); // offered first next time
      const s = readSettings(vscode.Uri.file(cfg));
      await trainTask(ctx, {
        kind: 'distill',
        args: {
          cfg, weights, teacherCfg, teacherWeights, data, epochs, ...distillMethodArgs(choice), backend: s.backend,
          outDir: outDirFor(cfg) ?? join(dirname(cfg), `${stem(cfg)}-distill`),
        },
      });
    }),

    reg('darkslim.quantize', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory);
      if (!weights) return;
      const answers = memory.forModel(cfg);
      const calib = await pickDataset(cfg, memory, 'Darkslim: calibration images (a .data file, a list or a folder)');
      if (!calib) return;
      const method = await askMethod(answers);
      if (!method) return;
      await memory.remember(cfg, { weights, dataset: calib, method });
      const req: TaskRequest = { kind: 'quantize', args: { cfg, weights, calib, method, images: answers.calibImages ?? 100, threads: threads(cfg), outDir: outDirFor(cfg) } };
      const outcome = await runner.run(req);
      if (outcome?.status === 'done' && outcome.done) {
        const o = outcome.done.outputs;
        if (o.report) ReportPanel.show(ctx.extensionUri, o.report);
        void announce(req, outcome, { 'Reveal in Explorer': () => reveal(o.onnx) });
      }
    }),

    reg('darkslim.exportOnnx', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory);
      if (!weights) return;
      await memory.remember(cfg, { weights });
      const req: TaskRequest = { kind: 'export', args: { cfg, weights, outDir: outDirFor(cfg) } };
      const outcome = await runner.run(req);
      if (outcome?.status === 'done' && outcome.done) {
        const onnx = outcome.done.outputs.onnx;
        void reveal(onnx);
        void announce(req, outcome, { 'Reveal in Explorer': () => reveal(onnx) });
      }
    }),

    reg('darkslim.evaluate', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory, { allowOnnx: true });
      if (!weights) return;
      const data = await pickDataset(cfg, memory, 'Darkslim: evaluate mAP on which dataset?');
      if (!data) return;
      await memory.remember(cfg, { dataset: data, ...(weights.endsWith('.onnx') ? {} : { weights }) });
      const req: TaskRequest = { kind: 'map', args: { cfg, weights, data, threads: threads(cfg) } };
      const outcome = await runner.run(req);
      if (outcome) void announce(req, outcome, { 'Show Log': () => runner.output.show(true) });
    }),

    reg('darkslim.benchmark', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory, { allowOnnx: true });
      if (!weights) return;
      const req: TaskRequest = { kind: 'bench', args: { cfg, weights, threads: threads(cfg) } };
      const outcome = await runner.run(req);
      if (outcome) void announce(req, outcome);
    }),

    reg('darkslim.detect', async (uri) => {
      const cfg = await resolveCfg(uri);
      if (!cfg) return;
      const weights = await pickWeights(cfg, memory, { allowOnnx: true });
      if (!weights) return;
      const image = await askImage(memory.forModel(cfg), cfg);
      if (!image) return;
      await memory.remember(cfg, { image, ...(weights.endsWith('.onnx') ? {} : { weights }) });
      const req: TaskRequest = { kind: 'detect', args: { cfg, weights, image, threads: threads(cfg), outDir: outDirFor(cfg) } };
      const outcome = await runner.run(req);
      if (outcome?.status === 'done' && outcome.done) {
        const out = outcome.done.outputs.image;
        await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(out), { viewColumn: vscode.ViewColumn.Beside, preview: false });
        void announce(req, outcome, { 'Show Log': () => runner.output.show(true) });
      }
    }),

    reg('darkslim.showReport', async (uri) => {
      let path = uri?.fsPath;
      if (!path || !path.endsWith('.json')) {
        const found = await vscode.workspace.findFiles('**/{*.report.json,report.json}', '**/node_modules/**', 200);
        if (!found.length) { void vscode.window.showInformationMessage('Darkslim: no *.report.json in the workspace yet (pruning and quantizing write one).'); return; }
        const pick = found.length === 1 ? { path: found[0].fsPath } : await vscode.window.showQuickPick(found.map((u) => ({ label: basename(u.fsPath), description: vscode.workspace.asRelativePath(dirname(u.fsPath)), path: u.fsPath })), { title: 'Darkslim: which report?' });
        path = pick?.path;
      }
      if (path && existsSync(path)) ReportPanel.show(ctx.extensionUri, path, vscode.ViewColumn.Active);
    }),

    reg('darkslim.showDashboard', async () => ctx.dashboard.show()),
    reg('darkslim.showTasks', async () => runner.showTasks()),
    reg('darkslim.cancelTasks', async () => runner.queue.cancelAll()),
  ];
}
