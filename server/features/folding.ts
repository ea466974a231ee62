// Folding ranges: one per section, from its header to its last line with content.
import type { FoldingRange } from 'vscode-languageserver/node';
import type { Analysis } from '../analysis';

export function foldingRanges(a: Analysis): FoldingRange[] {
  const out: FoldingRange[] = [];
  for (const s of a.graph.doc.sections) {
    if (s.range.end.line > s.headerRange.start.line) out.push({ startLine: s.headerRange.start.line, endLine: s.range.end.line });
  }
  return out;
}
