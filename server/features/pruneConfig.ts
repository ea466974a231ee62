// *.prune.yaml support: the pure checks, hover and completion of core/prune/config.ts turned into
// LSP types. A pruning config names a model, its weights and a policy; the checks that need the
// model (layer indices, percent_limit) read it through a cached loader.
import { dirname } from 'node:path';
import {
  CompletionItemKind, DiagnosticSeverity, MarkupKind,
  type CompletionItem, type Diagnostic, type Hover, type Position,
} from 'vscode-languageserver/node';
import {
  listFilesFs, pruneConfigCompletions, pruneConfigHover, validatePruneConfig,
  type ConfigCompletionItem, type LoadedModel, type PruneConfigContext,
} from '../../core/prune/config';

export type ModelLoader = (cfgPath: string, weightsPath: string | undefined) => LoadedModel | undefined;

export function isPruneConfig(uri: string): boolean {
  return /\.prune\.ya?ml$/i.test(uri);
}

export function pruneConfigContext(path: string, loadModel: ModelLoader): PruneConfigContext {
  return { baseDir: dirname(path), loadModel, listFiles: listFilesFs };
}

const SEVERITY = { error: DiagnosticSeverity.Error, warning: DiagnosticSeverity.Warning, info: DiagnosticSeverity.Information } as const;

export function pruneConfigDiagnostics(text: string, ctx: PruneConfigContext): Diagnostic[] {
  return validatePruneConfig(text, ctx).map((d) => ({
    range: d.range,
    severity: SEVERITY[d.severity],
    source: 'darkslim',
    code: d.code,
    message: d.message,
    data: d.data,
  }));
}

export function pruneConfigHoverLsp(text: string, position: Position, ctx: PruneConfigContext): Hover | null {
  const h = pruneConfigHover(text, position, ctx);
  return h ? { contents: { kind: MarkupKind.Markdown, value: h.contents }, range: h.range } : null;
}

const KIND: Record<ConfigCompletionItem['kind'], CompletionItemKind> = {
  key: CompletionItemKind.Property,
  value: CompletionItemKind.EnumMember,
  layer: CompletionItemKind.Reference,
  file: CompletionItemKind.File,
};

export function pruneConfigCompletionLsp(text: string, position: Position, ctx: PruneConfigContext): CompletionItem[] {
  return pruneConfigCompletions(text, position, ctx).map((c) => ({
    label: c.label,
    kind: KIND[c.kind],
    detail: c.detail,
    documentation: c.documentation ? { kind: MarkupKind.Markdown, value: c.documentation } : undefined,
    insertText: c.insertText,
    sortText: c.sortText,
  }));
}
