// Go to definition, find references and document highlight for layer references: `layers=-1,61`
// in [route], `from=-3` in [shortcut]/[sam]/[scale_channels], relative (negative) or absolute.
// A section header is the "declaration" of its layer.
import { DocumentHighlightKind, type DocumentHighlight, type Location, type Position } from 'vscode-languageserver/node';
import { headerAt, refAt, type Analysis } from '../analysis';

/** The layer a position designates: a reference under the cursor, or the header under it. */
function targetAt(a: Analysis, p: Position): number | undefined {
  const ref = refAt(a, p);
  if (ref) return ref.valid ? ref.target : undefined;
  const header = headerAt(a, p);
  return header && header.index >= 0 ? header.index : undefined;
}

export function definition(a: Analysis, p: Position): Location | null {
  const ref = refAt(a, p);
  if (!ref || !ref.valid) return null;
  const target = a.graph.layers[ref.target];
  return target ? { uri: a.uri, range: target.section.headerRange } : null;
}

export function references(a: Analysis, p: Position, includeDeclaration: boolean): Location[] {
  const target = targetAt(a, p);
  if (target === undefined) return [];
  const out: Location[] = [];
  const layer = a.graph.layers[target];
  if (includeDeclaration && layer) out.push({ uri: a.uri, range: layer.section.headerRange });
  for (const r of a.refs) if (r.valid && r.target === target) out.push({ uri: a.uri, range: r.range });
  return out;
}

export function documentHighlights(a: Analysis, p: Position): DocumentHighlight[] {
  const target = targetAt(a, p);
  if (target === undefined) return [];
  const out: DocumentHighlight[] = [];
  const layer = a.graph.layers[target];
  if (layer) out.push({ range: layer.section.headerRange, kind: DocumentHighlightKind.Write });
  for (const r of a.refs) if (r.valid && r.target === target) out.push({ range: r.range, kind: DocumentHighlightKind.Read });
  return out;
}
