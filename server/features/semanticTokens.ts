// Semantic tokens for layer references, so `-1` in `layers=-1,61` reads as a name, not a number.
// Encoded by hand (LSP relative encoding); references are already in document order.
import type { SemanticTokens, SemanticTokensLegend } from 'vscode-languageserver/node';
import type { Analysis } from '../analysis';

export const SEMANTIC_TOKENS_LEGEND: SemanticTokensLegend = {
  tokenTypes: ['variable'],
  // `readonly` on references that resolve to an earlier layer; broken ones get no modifier.
  tokenModifiers: ['readonly'],
};

const VARIABLE = 0;
const READONLY = 1 << 0;

export function semanticTokens(a: Analysis): SemanticTokens {
  const data: number[] = [];
  let line = 0;
  let char = 0;
  for (const r of a.refs) {
    const l = r.range.start.line;
    const c = r.range.start.character;
    data.push(l - line, l === line ? c - char : c, r.range.end.character - c, VARIABLE, r.valid ? READONLY : 0);
    line = l;
    char = c;
  }
  return { data };
}
