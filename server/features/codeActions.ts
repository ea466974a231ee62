// Code actions: set filters= before a [yolo]/[region] head; "Change classes to N everywhere" (every
// head's classes= and the filters= of the conv before it, in one edit); did-you-mean for unknown
// keys, sections and enum values. Fixes are computed from the current analysis, not from the
// diagnostics' data echoed by the client, so they never apply to an older version.
import {
  CodeActionKind, type CodeAction, type CodeActionContext, type Diagnostic, type Range, type TextEdit, type WorkspaceEdit,
} from 'vscode-languageserver/node';
import { changeClassesEdits, setIntEdit } from '../../core/darknet/edits';
import { isHead } from '../../core/darknet/graph';
import { cAtoi, stripAll } from '../../core/darknet/parser';
import type { Diagnostic as CoreDiagnostic, Layer } from '../../core/darknet/types';
import { sectionAt, type Analysis } from '../analysis';

export interface CodeActionOptions {
  /** The client accepts versioned documentChanges, which it refuses to apply to another version. */
  documentChanges: boolean;
}

function overlaps(a: Range, b: Range): boolean {
  return !(a.end.line < b.start.line || (a.end.line === b.start.line && a.end.character < b.start.character)
    || b.end.line < a.start.line || (b.end.line === a.start.line && b.end.character < a.start.character));
}

function sameRange(a: Range, b: Range): boolean {
  return a.start.line === b.start.line && a.start.character === b.start.character
    && a.end.line === b.end.line && a.end.character === b.end.character;
}

export function codeActions(a: Analysis, range: Range, context: CodeActionContext, options: CodeActionOptions): CodeAction[] {
  const edit = (edits: TextEdit[]): WorkspaceEdit => options.documentChanges
    ? { documentChanges: [{ textDocument: { uri: a.uri, version: a.version }, edits }] }
    : { changes: { [a.uri]: edits } };
  const matching = (d: CoreDiagnostic): Diagnostic[] =>
    context.diagnostics.filter((c) => c.code === d.code && sameRange(c.range, d.range));
  const actions: CodeAction[] = [];
  const classesOffered = new Set<number>();

  const offerClasses = (classes: number, kind: string, diagnostics: Diagnostic[]) => {
    if (classesOffered.has(classes) || classes < 1) return;
    const edits = changeClassesEdits(a.graph, classes);
    if (!edits.length) return;
    classesOffered.add(classes);
    actions.push({ title: `Change classes to ${classes} everywhere`, kind, diagnostics, edit: edit(edits) });
  };

  for (const d of a.graph.diagnostics) {
    if (!overlaps(d.range, range)) continue;
    const diags = matching(d);
    const data = d.data ?? {};
    switch (d.code) {
      case 'head-filters': {
        const conv = typeof data.conv === 'number' ? a.graph.layers[data.conv] : undefined;
        const head = typeof data.head === 'number' ? a.graph.layers[data.head] : undefined;
        if (conv && head && typeof data.expected === 'number') {
          actions.push({
            title: `Set filters=${data.expected} to fit the [${head.section.name}] after it`,
            kind: CodeActionKind.QuickFix,
            isPreferred: true,
            diagnostics: diags,
            edit: edit([setIntEdit(a.graph.doc, conv.section, 'filters', data.expected)]),
          });
        }
        if (head?.yolo) offerClasses(head.yolo.classes, CodeActionKind.QuickFix, diags);
        break;
      }
      case 'classes-mismatch': {
        const head = d.layer !== undefined ? a.graph.layers[d.layer] : undefined;
        if (head?.yolo) offerClasses(head.yolo.classes, CodeActionKind.QuickFix, diags);
        if (typeof data.expected === 'number') offerClasses(data.expected, CodeActionKind.QuickFix, diags);
        break;
      }
      case 'unknown-key':
      case 'unknown-section':
      case 'bad-value': {
        const suggestion = typeof data.suggestion === 'string' ? data.suggestion : undefined;
        const fix = suggestion ? didYouMeanEdit(a, d, suggestion) : undefined;
        if (fix) {
          actions.push({ title: `Change to ${fix.label}`, kind: CodeActionKind.QuickFix, isPreferred: true, diagnostics: diags, edit: edit([fix.edit]) });
        }
        break;
      }
      default:
        break;
    }
  }

  // On a head's classes= line, offer to propagate its value even before any diagnostic appears.
  const head = headOfClassesLine(a, range.start.line);
  if (head) {
    const entry = a.entryAtLine[range.start.line];
    if (entry) offerClasses(cAtoi(stripAll(entry.value)).value, CodeActionKind.RefactorRewrite, []);
  }

  const only = context.only;
  return only?.length ? actions.filter((x) => only.some((k) => x.kind === k || x.kind?.startsWith(`${k}.`))) : actions;
}

function headOfClassesLine(a: Analysis, line: number): Layer | undefined {
  const entry = a.entryAtLine[line];
  const section = sectionAt(a, line);
  if (!entry || entry.key !== 'classes' || !section || section.index < 0) return undefined;
  const layer = a.graph.layers[section.index];
  return layer && isHead(layer.type) && layer.yolo ? layer : undefined;
}

function didYouMeanEdit(a: Analysis, d: CoreDiagnostic, suggestion: string): { label: string; edit: TextEdit } | undefined {
  if (d.code === 'unknown-section') return { label: `[${suggestion}]`, edit: { range: d.range, newText: `[${suggestion}]` } };
  if (d.code === 'unknown-key') return { label: `"${suggestion}"`, edit: { range: d.range, newText: suggestion } };
  // bad-value: replace the word darknet reads, keeping any comment after it
  const entry = a.entryAtLine[d.range.start.line];
  if (!entry) return undefined;
  const line = a.graph.doc.lines[entry.line];
  const start = entry.valueRange.start.character;
  const word = /^[^\s#;,]+/.exec(line.slice(start, entry.valueRange.end.character));
  if (!word) return undefined;
  const range = { start: { line: entry.line, character: start }, end: { line: entry.line, character: start + word[0].length } };
  return { label: `"${suggestion}"`, edit: { range, newText: suggestion } };
}
